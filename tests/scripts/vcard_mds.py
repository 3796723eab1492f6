"""A third-party client for Perch's vCard (XEP-0054), nickname (XEP-0172) and
read-state (XEP-0490) test.

slixmpp (Debian's python3-slixmpp; it has no XEP-0490 plugin, so the PEP node is
read and written with its XEP-0060 plugin) logs in as JID, another device of a Perch
profile's account, and:
1. reads PEER's vcard-temp and prints "peer FN <its FN>";
2. publishes its own account's vcard-temp (FN "Bob via slixmpp"), prints
   "published vcard"; reads PEER's nickname over PEP and prints "peer nick <it>",
   publishes its account's nickname "Bobby" and prints "published nick";
3. on the line "fetch" on stdin, reads its account's MDS item for PEER and prints
   "displayed <the stanza-id it names>" ("displayed none" without one);
4. on the line "publish ID", publishes ID as its read position with PEER (with the
   publish-options XEP-0490 asks for) and prints "published displayed";
5. exits 0 on an empty line or the end of stdin; exits 1 when not done within 60 s.

Usage: vcard_mds.py JID PASSWORD PORT CA_FILE PEER
"""

import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixrun import Script

NS_MDS = "urn:xmpp:mds:displayed:0"
NS_SID = "urn:xmpp:sid:0"
NS_NICK = "http://jabber.org/protocol/nick"
PLUGINS = ("xep_0030", "xep_0004", "xep_0054", "xep_0060", "xep_0163", "xep_0172")


def main() -> int:
    script = Script(PLUGINS, ("peer",))
    client, peer = script.client, script.arg("peer")
    own = slixmpp.JID(script.arg("jid")).bare

    def mds_options():
        form = client.plugin["xep_0004"].make_form("submit")
        form.add_field(
            "FORM_TYPE",
            ftype="hidden",
            value="http://jabber.org/protocol/pubsub#publish-options",
        )
        form.add_field("pubsub#persist_items", value="true")
        form.add_field("pubsub#max_items", value="max")
        form.add_field("pubsub#send_last_published_item", value="never")
        form.add_field("pubsub#access_model", value="whitelist")
        return form

    async def fetch():
        try:
            item = await client.plugin["xep_0060"].get_item(own, NS_MDS, peer)
        except slixmpp.exceptions.IqError:
            return "none"
        sid = item.xml.find(".//{%s}displayed/{%s}stanza-id" % (NS_MDS, NS_SID))
        return "none" if sid is None else sid.get("id")

    async def publish(stanza_id):
        displayed = ET.Element("{%s}displayed" % NS_MDS)
        ET.SubElement(displayed, "{%s}stanza-id" % NS_SID, id=stanza_id, by=own)
        await client.plugin["xep_0060"].publish(
            own, NS_MDS, id=peer, payload=displayed, options=mds_options()
        )

    async def vcards():
        theirs = await client.plugin["xep_0054"].get_vcard(peer, local=False)
        print(f"peer FN {theirs['vcard_temp']['FN']}", flush=True)
        card = client.plugin["xep_0054"].make_vcard()
        card["FN"] = "Bob via slixmpp"
        await client.plugin["xep_0054"].publish_vcard(card)
        print("published vcard", flush=True)

    async def nicks():
        items = await client.plugin["xep_0060"].get_items(peer, NS_NICK, max_items=1)
        nick = items.xml.find(".//{%s}nick" % NS_NICK)
        print(f"peer nick {None if nick is None else nick.text}", flush=True)
        await client.plugin["xep_0172"].publish_nick("Bobby")
        print("published nick", flush=True)

    async def steps():
        await vcards()
        await nicks()
        while line := await script.line():
            if line == "fetch":
                print(f"displayed {await fetch()}", flush=True)
            elif line.startswith("publish "):
                await publish(line.split(" ", 1)[1])
                print("published displayed", flush=True)
            else:
                print(f"unknown command {line!r}", file=sys.stderr, flush=True)

    async def start(_event):
        client.send_presence(ppriority=-1)
        await client.get_roster()
        script.finish(steps())

    client.add_event_handler("session_start", start)
    return script.run()


if __name__ == "__main__":
    sys.exit(main())
