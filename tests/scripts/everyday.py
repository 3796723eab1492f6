"""A third-party client for Perch's everyday-IM test: file links (XEP-0066), XHTML-IM
(XEP-0071) and chat markers (XEP-0333), each way.

slixmpp (Debian's python3-slixmpp) logs in as JID and talks with PEER (perchd):
1. sends a message whose body is URL with a XEP-0066 `<x xmlns='jabber:x:oob'>`
   (id e1), then a markable XHTML-IM message (id e2) whose XHTML holds a `<script>`
   Perch must drop; prints "sent";
2. then, as PEER's messages come: a displayed marker for e2 prints "got displayed";
   a markable message from PEER is marked displayed and prints "marked ID"; a link
   with OOB prints "got oob URL".
Prints "done" and exits 0 once it has all three; exits 1 after 60 s.

Usage: everyday.py JID PASSWORD PORT CA_FILE PEER URL
"""

import sys

from slixrun import Script

NS_MARKERS = "{urn:xmpp:chat-markers:0}"
NS_OOB = "{jabber:x:oob}"


def main() -> int:
    script = Script(("xep_0030", "xep_0066", "xep_0071", "xep_0333"), ("peer", "url"))
    client, peer, url, done = script.client, script.arg("peer"), script.arg("url"), script.done
    got = set()

    async def start(_event):
        client.send_presence()
        await client.get_roster()
        link = client.make_message(mto=peer, mbody=url, mtype="chat")
        link["id"] = "e1"
        link["oob"]["url"] = url
        link.send()
        rich = client.make_message(
            mto=peer,
            mbody="formatted hello",
            mhtml="<p>formatted <em>hello</em><script>alert(1)</script></p>",
            mtype="chat",
        )
        rich["id"] = "e2"
        rich.enable("markable")
        rich.send()
        print("sent", flush=True)

    def note(what, line):
        if what not in got:
            got.add(what)
            print(line, flush=True)
        if len(got) == 3 and not done.done():
            print("done", flush=True)
            done.set_result(True)

    def on_message(msg):
        xml = msg.xml
        shown = xml.find(NS_MARKERS + "displayed")
        if shown is not None and shown.get("id") == "e2":
            note("displayed", "got displayed")
        if xml.find(NS_MARKERS + "markable") is not None and msg["body"]:
            client.plugin["xep_0333"].send_marker(msg["from"], msg["id"], "displayed")
            note("marked", f"marked {msg['id']}")
        oob = xml.find(NS_OOB + "x")
        if oob is not None and oob.find(NS_OOB + "url") is not None:
            note("oob", f"got oob {oob.find(NS_OOB + 'url').text}")

    client.add_event_handler("session_start", start)
    client.add_event_handler("message", on_message)
    # slixmpp hands a body-less marker to its plugin's event only.
    client.add_event_handler("marker_displayed", on_message)
    return script.run(linger=1, on_timeout=lambda: f"timed out; got {sorted(got)}")


if __name__ == "__main__":
    sys.exit(main())
