"""A second device of an account, for Perch's carbons test (XEP-0280).

A third-party client (slixmpp, Debian's python3-slixmpp) logs in as JID with its own
resource, enables carbons, sends BODY to TO, prints "sent", then waits for a message
whose body is EXPECT and prints "received". Exit 0 once both happened, 1 after 60 s.

Usage: second_device.py JID PASSWORD PORT CA_FILE TO BODY EXPECT
"""

import sys

from slixrun import Script


def main() -> int:
    script = Script(("xep_0280",), ("to", "body", "expect"))
    client, got = script.client, script.done
    to, body, expect = script.arg("to"), script.arg("body"), script.arg("expect")

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
    status = script.run(on_timeout=lambda: f"no message {expect!r} within 60 s")
    if status == 0:
        print("received", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
