"""A third-party client for Perch's blocking test (XEP-0191): another device of a
Perch profile's account, sharing its blocklist.

slixmpp (Debian's python3-slixmpp) logs in as JID, prints "ready", then follows the
lines on stdin:
- "list": prints "blocked JID1 JID2 …" (sorted; "blocked" alone when empty);
- "block JID" / "unblock JID": changes the account's blocklist, prints "done";
- an empty line or the end of stdin: exits 0. Exits 1 when not done within 60 s.

Usage: blocking.py JID PASSWORD PORT CA_FILE PEER
"""

import sys

from slixrun import Script


def main() -> int:
    script = Script(("xep_0030", "xep_0191"), ("peer",))
    client = script.client
    blocking = client.plugin["xep_0191"]

    async def commands():
        while line := await script.line():
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
        script.finish(commands())

    client.add_event_handler("session_start", start)
    return script.run()


if __name__ == "__main__":
    sys.exit(main())
