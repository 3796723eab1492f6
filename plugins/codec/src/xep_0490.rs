//! XEP-0490: Message Displayed Synchronization (`urn:xmpp:mds:displayed:0`). Our
//! read position in each conversation, one item per conversation (its bare JID as
//! the item id) in a PEP node of that name, so our other devices follow it.
//!
//! The payload names the last message read by the id our account's archive gave it
//! (a chat) or the room's archive (a room): an XEP-0359 `<stanza-id/>` with `by`.

use serde_json::{Map, Value, json};

use crate::dom::Attr;
use crate::minidom::Element;

pub const NS: &str = "urn:xmpp:mds:displayed:0";
/// The PEP node, named as the namespace.
pub const NODE: &str = NS;
/// XEP-0359 Unique and Stable Stanza IDs.
pub const NS_SID: &str = "urn:xmpp:sid:0";

/// A read position: the archive id `id` given by `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displayed {
    pub id: String,
    pub by: String,
}

impl Displayed {
    /// `<displayed><stanza-id id by/></displayed>`.
    pub fn to_element(&self) -> Element {
        Element::builder("displayed", NS)
            .append(
                Element::builder("stanza-id", NS_SID)
                    .a("id", self.id.as_str())
                    .a("by", self.by.as_str())
                    .build(),
            )
            .build()
    }

    /// Reads a `<displayed/>`; `None` when it is not one or its stanza-id lacks
    /// `id` or `by`.
    pub fn parse(e: &Element) -> Option<Self> {
        if !e.is("displayed", NS) {
            return None;
        }
        let sid = e.get_child("stanza-id", NS_SID)?;
        let id = sid.attr("id").filter(|i| !i.is_empty())?;
        let by = sid.attr("by").filter(|b| !b.is_empty())?;
        Some(Self {
            id: id.to_owned(),
            by: by.to_owned(),
        })
    }
}

/// The publish-options XEP-0490 asks for: every conversation's item kept, sent to
/// nobody else, never pushed as a "last item" on presence.
pub fn publish_options() -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("pubsub#persist_items".into(), json!("true"));
    o.insert("pubsub#max_items".into(), json!("max"));
    o.insert("pubsub#send_last_published_item".into(), json!("never"));
    o.insert("pubsub#access_model".into(), json!("whitelist"));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displayed_xml_both_ways() {
        let d = Displayed {
            id: "s-1".into(),
            by: "alice@x".into(),
        };
        let xml = String::from(&d.to_element());
        assert_eq!(
            xml,
            "<displayed xmlns='urn:xmpp:mds:displayed:0'>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='alice@x' id='s-1'/></displayed>"
        );
        let back: Element = xml.parse().expect("xml");
        assert_eq!(Displayed::parse(&back), Some(d));
    }

    #[test]
    fn incomplete_positions_are_not_read() {
        for xml in [
            "<displayed xmlns='urn:xmpp:mds:displayed:0'/>",
            "<displayed xmlns='urn:xmpp:mds:displayed:0'><stanza-id xmlns='urn:xmpp:sid:0' id='x'/></displayed>",
            "<displayed xmlns='urn:example'><stanza-id xmlns='urn:xmpp:sid:0' id='x' by='a@x'/></displayed>",
        ] {
            let e: Element = xml.parse().expect("xml");
            assert_eq!(Displayed::parse(&e), None, "{xml}");
        }
        assert_eq!(publish_options()["pubsub#access_model"], "whitelist");
    }
}
