"""A third-party client for Perch's avatar test (XEP-0084), each way.

slixmpp (Debian's python3-slixmpp) logs in as JID and:
1. publishes a PNG avatar (data, then metadata) on PEP with open access, prints
   "published SHA1";
2. then asks PEER's PEP for its avatar metadata every half second, fetches the data
   it names and prints "got avatar SHA1" (the SHA-1 of the bytes it got).
Exits 0 then; exits 1 after 60 s without it.

Usage: avatar.py JID PASSWORD PORT CA_FILE PEER
"""

import asyncio
import base64
import hashlib
import sys

import slixmpp
from slixrun import Script

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
NS_META = "urn:xmpp:avatar:metadata"
NS_DATA = "urn:xmpp:avatar:data"


def main() -> int:
    script = Script(("xep_0030", "xep_0004", "xep_0060", "xep_0163", "xep_0084"), ("peer",))
    client, peer = script.client, script.arg("peer")

    def open_access():
        form = client.plugin["xep_0004"].make_form("submit")
        form.add_field(
            "FORM_TYPE",
            ftype="hidden",
            value="http://jabber.org/protocol/pubsub#publish-options",
        )
        form.add_field("pubsub#access_model", value="open")
        return form

    async def peer_avatar():
        while True:
            try:
                meta = await client.plugin["xep_0060"].get_items(peer, NS_META, max_items=1)
                info = meta.xml.find(".//{%s}info" % NS_META)
                if info is not None:
                    item = await client.plugin["xep_0060"].get_item(peer, NS_DATA, info.get("id"))
                    data = item.xml.find(".//{%s}data" % NS_DATA)
                    return base64.b64decode(data.text)
            except slixmpp.exceptions.IqError:
                pass
            await asyncio.sleep(0.5)

    async def start(_event):
        client.send_presence()
        await client.get_roster()
        sha1 = hashlib.sha1(PNG).hexdigest()
        avatar = client.plugin["xep_0084"]
        await avatar.publish_avatar(PNG, options=open_access())
        await avatar.publish_avatar_metadata(
            [{"id": sha1, "type": "image/png", "bytes": str(len(PNG)), "width": "1", "height": "1"}],
            options=open_access(),
        )
        print(f"published {sha1}", flush=True)
        got = await peer_avatar()
        print(f"got avatar {hashlib.sha1(got).hexdigest()}", flush=True)

    client.add_event_handler("session_start", lambda event: script.finish(start(event)))
    return script.run()


if __name__ == "__main__":
    sys.exit(main())
