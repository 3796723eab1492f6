"""A second device of an account, for Perch's carbons test (XEP-0280).

A third-party client (slixmpp, Debian's python3-slixmpp) logs in as JID with its own
resource, enables carbons, sends BODY to TO, prints "sent", then waits for a message
whose body is EXPECT and prints "received". Exit 0 once both happened, 1 after 60 s.

Usage: second_device.py JID PASSWORD PORT CA_FILE TO BODY EXPECT
"""

import asyncio
import sys

import slixmpp


def main() -> int:
    jid, password, port, ca_file, to, body, expect = sys.argv[1:8]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    got = loop.create_future()

    client = slixmpp.ClientXMPP(jid, password)
    client.ca_certs = ca_file
    client.register_plugin("xep_0280")

    async def start(_event):
        client.send_presence()
        await client.get_roster()
        await client.plugin["xep_0280"].enable()
        client.send_message(mto=to, mbody=body, mtype="chat")
        print("sent", flush=True)

    def on_message(msg):
        if msg["body"] == expect and not got.done():
            got.set_result(True)

    client.add_event_handler("session_start", start)
    client.add_event_handler("message", on_message)
    client.connect(address=("127.0.0.1", int(port)))
    try:
        loop.run_until_complete(asyncio.wait_for(got, 60))
    except asyncio.TimeoutError:
        print(f"no message {expect!r} within 60 s", file=sys.stderr, flush=True)
        return 1
    print("received", flush=True)
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
