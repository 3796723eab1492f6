//! XEP-0444: Message Reactions — `<reactions id=…>` with one `<reaction>` per emoji.
//!
//! A reactions element is the sender's whole set for that message: a new one
//! replaces the sender's earlier set, an empty one takes it back. What is read here
//! is bounded (count and length), so a hostile sender cannot grow a stored message
//! without limit.

use crate::dom::Attr;
use crate::minidom::Element;

pub const NS: &str = "urn:xmpp:reactions:0";
/// XEP-0334 message processing hints: `<store/>`, a reaction has no body.
pub const NS_HINTS: &str = "urn:xmpp:hints";

/// The most reactions one sender keeps on one message; more are dropped.
pub const MAX_REACTIONS: usize = 32;
/// The longest reaction kept, in bytes (an emoji with its modifiers is short).
pub const MAX_REACTION: usize = 64;

/// One sender's reactions to message `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reactions {
    pub id: String,
    /// Distinct, in the order given; empty: every reaction taken back.
    pub reactions: Vec<String>,
}

impl Reactions {
    /// Reads a `<reactions/>`; `None` if it is not one or has no `id`.
    pub fn parse(e: &Element) -> Option<Self> {
        if !e.is("reactions", NS) {
            return None;
        }
        let id = e.attr("id").filter(|i| !i.is_empty())?.to_owned();
        let mut reactions: Vec<String> = Vec::new();
        for r in e.children().filter(|c| c.is("reaction", NS)) {
            let text = r.text();
            let text = text.trim();
            if text.is_empty() || text.len() > MAX_REACTION || reactions.iter().any(|x| x == text) {
                continue;
            }
            if reactions.len() == MAX_REACTIONS {
                break;
            }
            reactions.push(text.to_owned());
        }
        Some(Self { id, reactions })
    }

    /// The first `<reactions/>` among a message's payloads.
    pub fn find(payloads: &[Element]) -> Option<Self> {
        payloads.iter().find_map(Self::parse)
    }

    pub fn to_element(&self) -> Element {
        Element::builder("reactions", NS)
            .a("id", self.id.as_str())
            .append_all(
                self.reactions
                    .iter()
                    .map(|r| Element::builder("reaction", NS).append(r.as_str()).build()),
            )
            .build()
    }
}

/// The `<store/>` hint a body-less message needs to be archived and sent offline.
pub fn store_hint() -> Element {
    Element::builder("store", NS_HINTS).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_xeps_example() {
        let e: Element =
            "<reactions id='744f6e18-a57a-11e9-a656-4889e7820c76' xmlns='urn:xmpp:reactions:0'>\
                          <reaction>👋</reaction><reaction>🐢</reaction></reactions>"
                .parse()
                .expect("xml");
        let r = Reactions::parse(&e).expect("reactions");
        assert_eq!(r.id, "744f6e18-a57a-11e9-a656-4889e7820c76");
        assert_eq!(r.reactions, ["👋", "🐢"]);
    }

    #[test]
    fn duplicates_blanks_and_overlong_are_dropped_and_no_id_is_nothing() {
        let long = "x".repeat(MAX_REACTION + 1);
        let e: Element = format!(
            "<reactions id='m1' xmlns='urn:xmpp:reactions:0'><reaction>👍</reaction>\
             <reaction>👍</reaction><reaction> </reaction><reaction>{long}</reaction></reactions>"
        )
        .parse()
        .expect("xml");
        assert_eq!(Reactions::parse(&e).expect("reactions").reactions, ["👍"]);
        let none: Element = "<reactions xmlns='urn:xmpp:reactions:0'/>"
            .parse()
            .expect("xml");
        assert_eq!(Reactions::parse(&none), None);
        let empty: Element = "<reactions id='m1' xmlns='urn:xmpp:reactions:0'/>"
            .parse()
            .expect("xml");
        assert!(
            Reactions::parse(&empty)
                .expect("parses")
                .reactions
                .is_empty()
        );
    }

    #[test]
    fn built_as_the_xep_writes_it() {
        let r = Reactions {
            id: "m1".into(),
            reactions: vec!["👍".into(), "🎉".into()],
        };
        assert_eq!(
            String::from(&r.to_element()),
            "<reactions xmlns='urn:xmpp:reactions:0' id='m1'>\
             <reaction>👍</reaction><reaction>🎉</reaction></reactions>"
        );
        assert_eq!(
            String::from(&store_hint()),
            "<store xmlns='urn:xmpp:hints'/>"
        );
    }
}
