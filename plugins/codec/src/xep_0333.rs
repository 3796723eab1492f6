//! XEP-0333: Displayed Markers (`urn:xmpp:chat-markers:0`), the `markable` and
//! `displayed` elements only (`received` and `acknowledged` are not used: XEP-0184
//! receipts say "received", and "displayed" is what a reader means).
//!
//! A `<markable/>` on a message asks the recipient's client to say when it was shown;
//! `<displayed id=…/>` says so, naming the message by its origin-id (a chat) or the
//! room's stanza-id (a room). Applying one to the message it names needs the history
//! and is the core's (`backend/src/history.rs`); this module only reads and writes
//! the XML.

use crate::dom::Attr;
use crate::minidom::Element;

pub const NS: &str = "urn:xmpp:chat-markers:0";

/// `<markable/>`: put on our outgoing chat messages.
pub fn markable() -> Element {
    Element::builder("markable", NS).build()
}

/// Whether a message's payloads carry `<markable/>`.
pub fn is_markable(payloads: &[Element]) -> bool {
    payloads.iter().any(|p| p.is("markable", NS))
}

/// `<displayed id=…/>`: the message `id`, and those before it, were shown.
pub fn displayed(id: &str) -> Element {
    Element::builder("displayed", NS).a("id", id).build()
}

/// The id a message's `<displayed/>` names; `None` when it has none (or an empty id).
pub fn find_displayed(payloads: &[Element]) -> Option<String> {
    payloads
        .iter()
        .find(|p| p.is("displayed", NS))
        .and_then(|d| d.attr("id"))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markable_and_displayed_xml() {
        assert_eq!(
            String::from(&markable()),
            "<markable xmlns='urn:xmpp:chat-markers:0'/>"
        );
        assert_eq!(
            String::from(&displayed("o-1")),
            "<displayed xmlns='urn:xmpp:chat-markers:0' id='o-1'/>"
        );
    }

    #[test]
    fn displayed_is_read() {
        let d: Element = "<displayed xmlns='urn:xmpp:chat-markers:0' id='abc'/>"
            .parse()
            .expect("xml");
        let other: Element = "<displayed xmlns='urn:example' id='x'/>"
            .parse()
            .expect("xml");
        let empty: Element = "<displayed xmlns='urn:xmpp:chat-markers:0' id=''/>"
            .parse()
            .expect("xml");
        assert_eq!(find_displayed(&[other.clone(), d]), Some("abc".into()));
        assert_eq!(find_displayed(&[other]), None);
        assert_eq!(find_displayed(&[empty]), None);
        let m: Element = "<markable xmlns='urn:xmpp:chat-markers:0'/>"
            .parse()
            .expect("xml");
        assert!(is_markable(&[m]));
        assert!(!is_markable(&[]));
    }
}
