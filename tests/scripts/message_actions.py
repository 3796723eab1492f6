"""A third-party client for Perch's message-actions test (XEP-0444, 0461, 0424).

slixmpp (Debian's python3-slixmpp) logs in as JID and talks with PEER (perchd):
1. sends "hello from slixmpp" (id c1), prints "sent";
2. waits until PEER reacted to c1, replied to it and retracted one of its own
   messages, each as the current XEPs write it; prints "got reaction", "got reply",
   "got retraction" as they come;
3. then does the same with slixmpp's own plugins: reacts to PEER's reply, replies
   to it (the quote marked with slixmpp's fallback), retracts c1 (XEP-0424 0.3, the
   fastened form slixmpp 1.8 sends); prints "done" and exits 0.
Exits 1 after 60 s without all of it.

Usage: message_actions.py JID PASSWORD PORT CA_FILE PEER
"""

import sys

from slixrun import Script

NS_REACTIONS = "{urn:xmpp:reactions:0}"
NS_REPLY = "{urn:xmpp:reply:0}"
NS_RETRACT = "{urn:xmpp:message-retract:1}"
NS_FALLBACK = "{urn:xmpp:fallback:0}"


def main() -> int:
    script = Script(("xep_0030", "xep_0444", "xep_0461", "xep_0424"), ("peer",))
    client, peer, done = script.client, script.arg("peer"), script.done
    got = {}

    async def start(_event):
        client.send_presence()
        await client.get_roster()
        msg = client.make_message(mto=peer, mbody="hello from slixmpp", mtype="chat")
        msg["id"] = "c1"
        msg.send()
        print("sent", flush=True)

    def answer():
        reply_id = got["reply"]
        client.plugin["xep_0444"].send_reactions(peer, reply_id, ["🎉"])
        quote = "> hi slixmpp\n"
        msg = client.make_message(mto=peer, mbody=quote + "hi perch", mtype="chat")
        msg["reply"]["to"] = peer
        msg["reply"]["id"] = reply_id
        msg["feature_fallback"]["for"] = "urn:xmpp:reply:0"
        msg["feature_fallback"]["fallback_body"]["start"] = "0"
        msg["feature_fallback"]["fallback_body"]["end"] = str(len(quote))
        msg.send()
        client.plugin["xep_0424"].send_retraction(peer, "c1")
        print("done", flush=True)
        done.set_result(True)

    def on_message(msg):
        xml = msg.xml
        r = xml.find(NS_REACTIONS + "reactions")
        if r is not None and r.get("id") == "c1" and "reaction" not in got:
            emojis = [e.text for e in r.findall(NS_REACTIONS + "reaction")]
            if emojis == ["👍"]:
                got["reaction"] = True
                print("got reaction", flush=True)
        rep = xml.find(NS_REPLY + "reply")
        fb = xml.find(NS_FALLBACK + "fallback")
        if rep is not None and rep.get("id") == "c1" and fb is not None and "reply" not in got:
            got["reply"] = msg["id"]
            print("got reply", flush=True)
        ret = xml.find(NS_RETRACT + "retract")
        if ret is not None and "retraction" not in got:
            got["retraction"] = ret.get("id")
            print("got retraction", flush=True)
        if {"reaction", "reply", "retraction"} <= got.keys() and not done.done():
            answer()

    client.add_event_handler("session_start", start)
    client.add_event_handler("message", on_message)
    # slixmpp hands a body-less reactions message to its plugin's event only.
    client.add_event_handler("reactions", on_message)
    # linger: the last stanzas leave before the stream closes.
    return script.run(linger=1, on_timeout=lambda: f"timed out; got {sorted(got)}")


if __name__ == "__main__":
    sys.exit(main())
