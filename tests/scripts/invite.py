"""A third-party client for Perch's direct invitation test (XEP-0249), each way.

slixmpp (Debian's python3-slixmpp) logs in as JID, prints "ready", and:
1. when a direct invitation comes, prints "invited ROOM REASON", joins ROOM as
   "carol" (with the invitation's password) and prints "joined ROOM";
2. then invites PEER to OTHER_ROOM with the reason "come too" and prints
   "invited peer";
3. exits 0 on an empty line or the end of stdin; exits 1 when not done within 60 s.

Usage: invite.py JID PASSWORD PORT CA_FILE PEER OTHER_ROOM
"""

import sys

import slixmpp
from slixrun import Script


def main() -> int:
    script = Script(("xep_0030", "xep_0045", "xep_0249"), ("peer", "other_room"))
    client = script.client

    async def accept(msg):
        invite = msg["groupchat_invite"]
        room = slixmpp.JID(invite["jid"])
        print(f"invited {room} {invite['reason']}", flush=True)
        await client.plugin["xep_0045"].join_muc_wait(
            room, "carol", password=invite["password"] or None, maxstanzas=0, timeout=30
        )
        print(f"joined {room}", flush=True)
        client.plugin["xep_0249"].send_invitation(
            slixmpp.JID(script.arg("peer")),
            slixmpp.JID(script.arg("other_room")),
            reason="come too",
        )
        print("invited peer", flush=True)
        await script.line()

    async def start(_event):
        client.send_presence()
        await client.get_roster()
        print("ready", flush=True)

    client.add_event_handler("session_start", start)
    client.add_event_handler("groupchat_direct_invite", lambda msg: script.finish(accept(msg)))
    return script.run()


if __name__ == "__main__":
    sys.exit(main())
