"""A third-party client for Perch's direct invitation test (XEP-0249), each way.

slixmpp (Debian's python3-slixmpp) logs in as JID, prints "ready", and:
1. when a direct invitation comes, prints "invited ROOM REASON", joins ROOM as
   "carol" (with the invitation's password) and prints "joined ROOM";
2. then invites PEER to OTHER_ROOM with the reason "come too" and prints
   "invited peer";
3. exits 0 on an empty line or the end of stdin; exits 1 when not done within 60 s.

Usage: invite.py JID PASSWORD PORT CA_FILE PEER OTHER_ROOM
"""

import asyncio
import sys

import slixmpp


def main() -> int:
    jid, password, port, ca_file, peer, other_room = sys.argv[1:7]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    done = loop.create_future()

    client = slixmpp.ClientXMPP(jid, password)
    client.ca_certs = ca_file
    for plugin in ("xep_0030", "xep_0045", "xep_0249"):
        client.register_plugin(plugin)

    async def accept(msg):
        invite = msg["groupchat_invite"]
        room = slixmpp.JID(invite["jid"])
        print(f"invited {room} {invite['reason']}", flush=True)
        await client.plugin["xep_0045"].join_muc_wait(
            room, "carol", password=invite["password"] or None, maxstanzas=0, timeout=30
        )
        print(f"joined {room}", flush=True)
        client.plugin["xep_0249"].send_invitation(
            slixmpp.JID(peer), slixmpp.JID(other_room), reason="come too"
        )
        print("invited peer", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        done.set_result(True)

    def invited(msg):
        task = loop.create_task(accept(msg))
        task.add_done_callback(
            lambda t: t.exception() and not done.done() and done.set_exception(t.exception())
        )

    async def start(_event):
        client.send_presence()
        await client.get_roster()
        print("ready", flush=True)

    client.add_event_handler("session_start", start)
    client.add_event_handler("groupchat_direct_invite", invited)
    client.connect(address=("127.0.0.1", int(port)))
    try:
        loop.run_until_complete(asyncio.wait_for(done, 60))
    except asyncio.TimeoutError:
        print("timed out", file=sys.stderr, flush=True)
        return 1
    finally:
        client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
