"""A third-party client for Perch's blocking test (XEP-0191): another device of a
Perch profile's account, sharing its blocklist.

slixmpp (Debian's python3-slixmpp) logs in as JID, prints "ready", then follows the
lines on stdin:
- "list": prints "blocked JID1 JID2 …" (sorted; "blocked" alone when empty);
- "block JID" / "unblock JID": changes the account's blocklist, prints "done";
- an empty line or the end of stdin: exits 0. Exits 1 when not done within 60 s.

Usage: blocking.py JID PASSWORD PORT CA_FILE PEER
"""

import asyncio
import sys

import slixmpp


def main() -> int:
    jid, password, port, ca_file, _peer = sys.argv[1:6]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    done = loop.create_future()

    client = slixmpp.ClientXMPP(jid, password)
    client.ca_certs = ca_file
    for plugin in ("xep_0030", "xep_0191"):
        client.register_plugin(plugin)
    blocking = client.plugin["xep_0191"]

    async def commands():
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line:
                return
            verb, _, arg = line.partition(" ")
            if verb == "list":
                iq = await blocking.get_blocked()
                items = sorted(str(j) for j in iq["blocklist"]["items"])
                print(" ".join(["blocked"] + items), flush=True)
            elif verb == "block":
                await blocking.block(arg)
                print("done", flush=True)
            elif verb == "unblock":
                await blocking.unblock(arg)
                print("done", flush=True)
            else:
                print(f"unknown command {line!r}", file=sys.stderr, flush=True)

    async def start(_event):
        client.send_presence(ppriority=-1)
        await client.get_roster()
        print("ready", flush=True)
        try:
            await commands()
            done.set_result(True)
        except Exception as e:  # the test reads stderr
            done.set_exception(e)

    client.add_event_handler("session_start", start)
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
