//! XEP-0402: PEP Native Bookmarks, the account's list of rooms.
//!
//! Why bookmarks and not only our own table: the list lives on the server, so a
//! fresh Perch (a new machine, a wiped data directory) and the account's other
//! clients find the same rooms. Each room is one item of the PEP node
//! `urn:xmpp:bookmarks:1`, its id the room's JID; joining sets `autojoin`, leaving
//! clears it (the bookmark stays), and at session start every `autojoin` room is
//! joined. The node is published with `access_model=whitelist` (only the account
//! reads it: a bookmark may carry a room password) and `max_items=max`.
//!
//! What another client put in a bookmark (a name, `<extensions/>`) is kept when we
//! update it.

use perch_plugin_api::minidom::Element;
use serde::Serialize;
use serde_json::{Map, Value, json};

use perch_codec::dom::Attr;
use perch_codec::xep_0060::xml as pubsub;

pub const NODE: &str = "urn:xmpp:bookmarks:1";
pub const NS: &str = "urn:xmpp:bookmarks:1";

/// One bookmarked room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bookmark {
    /// The room's bare JID (the item id).
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub autojoin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Never shown to frontends.
    #[serde(skip)]
    pub password: Option<String>,
    /// Another client's `<extensions/>`, kept as is.
    #[serde(skip)]
    pub extensions: Option<Element>,
}

impl Bookmark {
    pub fn new(room: &str) -> Self {
        Self {
            room: room.to_owned(),
            name: None,
            autojoin: false,
            nick: None,
            password: None,
            extensions: None,
        }
    }

    /// The `<conference/>` payload.
    pub fn conference(&self) -> Element {
        let mut c = Element::builder("conference", NS)
            .a("autojoin", if self.autojoin { "true" } else { "false" });
        if let Some(n) = &self.name {
            c = c.a("name", n.as_str());
        }
        if let Some(n) = &self.nick {
            c = c.append(Element::builder("nick", NS).append(n.as_str()).build());
        }
        if let Some(p) = &self.password {
            c = c.append(Element::builder("password", NS).append(p.as_str()).build());
        }
        if let Some(x) = &self.extensions {
            c = c.append(x.clone());
        }
        c.build()
    }

    /// Reads one item (`<item id=room><conference/></item>`).
    pub fn from_item(item: &Element) -> Option<Self> {
        let room = item.attr("id").filter(|r| !r.is_empty())?;
        let c = item.get_child("conference", NS)?;
        let child_text = |name: &str| {
            c.get_child(name, NS)
                .map(Element::text)
                .filter(|t| !t.is_empty())
        };
        Some(Self {
            room: room.to_owned(),
            name: c.attr("name").map(str::to_owned),
            autojoin: matches!(c.attr("autojoin"), Some("true" | "1")),
            nick: child_text("nick"),
            password: child_text("password"),
            extensions: c.get_child("extensions", NS).cloned(),
        })
    }
}

/// The request for every bookmark.
pub fn request() -> Element {
    pubsub::items(NODE, None, &[], None)
}

/// The bookmarks of an items answer (items that are not bookmarks are skipped).
pub fn read(reply: Option<&Element>) -> Vec<Bookmark> {
    reply
        .and_then(|p| p.get_child("items", pubsub::NS))
        .map(|items| {
            items
                .children()
                .filter(|c| c.is("item", pubsub::NS))
                .filter_map(Bookmark::from_item)
                .collect()
        })
        .unwrap_or_default()
}

/// The publish-options every bookmark is published with (XEP-0402 §5).
pub fn publish_options() -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("pubsub#persist_items".into(), json!("true"));
    o.insert("pubsub#max_items".into(), json!("max"));
    o.insert("pubsub#send_last_published_item".into(), json!("never"));
    o.insert("pubsub#access_model".into(), json!("whitelist"));
    o
}

/// The publish of one bookmark.
pub fn publish(b: &Bookmark) -> Element {
    pubsub::publish(
        NODE,
        Some(&b.room),
        b.conference(),
        Some(&publish_options()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEMS: &str = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <items node='urn:xmpp:bookmarks:1'>\
        <item id='team@conf.x'><conference xmlns='urn:xmpp:bookmarks:1' name='The team' autojoin='true'>\
        <nick>alice</nick><password>pw</password>\
        <extensions><state xmlns='urn:example:client'/></extensions></conference></item>\
        <item id='old@conf.x'><conference xmlns='urn:xmpp:bookmarks:1'/></item>\
        <item id='junk@conf.x'><other xmlns='urn:example'/></item>\
        <item id='one@conf.x'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='1'/></item>\
        </items></pubsub>";

    #[test]
    fn items_are_read() {
        let reply: Element = ITEMS.parse().unwrap();
        let b = read(Some(&reply));
        assert_eq!(b.len(), 3, "{b:?}");
        assert_eq!(b[0].room, "team@conf.x");
        assert_eq!(b[0].name.as_deref(), Some("The team"));
        assert!(b[0].autojoin);
        assert_eq!(b[0].nick.as_deref(), Some("alice"));
        assert_eq!(b[0].password.as_deref(), Some("pw"));
        assert!(b[0].extensions.is_some());
        assert_eq!(b[1].room, "old@conf.x");
        assert!(!b[1].autojoin);
        assert_eq!(b[1].nick, None);
        assert!(b[2].autojoin);
        assert!(read(None).is_empty());
    }

    #[test]
    fn a_bookmark_reads_back_with_what_others_put_in() {
        let reply: Element = ITEMS.parse().unwrap();
        let mut b = read(Some(&reply)).remove(0);
        b.autojoin = false;
        let xml = String::from(&b.conference());
        assert_eq!(
            xml,
            "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='false' name='The team'>\
             <nick>alice</nick><password>pw</password>\
             <extensions><state xmlns='urn:example:client'/></extensions></conference>"
        );
        let item: Element = format!(
            "<item xmlns='http://jabber.org/protocol/pubsub' id='team@conf.x'>{xml}</item>"
        )
        .parse()
        .unwrap();
        assert_eq!(Bookmark::from_item(&item), Some(b));
    }

    #[test]
    fn publish_xml() {
        let mut b = Bookmark::new("r@conf.x");
        b.autojoin = true;
        b.nick = Some("alice".into());
        let xml = String::from(&publish(&b));
        assert!(
            xml.starts_with(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <publish node='urn:xmpp:bookmarks:1'><item id='r@conf.x'>\
                 <conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'><nick>alice</nick></conference>\
                 </item></publish><publish-options>"
            ),
            "{xml}"
        );
        for (var, value) in [
            ("pubsub#persist_items", "true"),
            ("pubsub#max_items", "max"),
            ("pubsub#access_model", "whitelist"),
        ] {
            assert!(
                xml.contains(&format!(
                    "<field var='{var}'><value>{value}</value></field>"
                )),
                "{var}: {xml}"
            );
        }
        assert_eq!(
            String::from(&request()),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub>"
        );
    }
}
