//! XEP-0424: Message Retraction (`urn:xmpp:message-retract:1`), and the room's
//! side of XEP-0425 moderation, which arrives as a retraction carrying
//! `<moderated/>`.
//!
//! The earlier form (`urn:xmpp:message-retract:0` inside a XEP-0422 `<apply-to/>`,
//! and XEP-0425 0.2's `<moderated/>` in it), which Libervia 0.9 and older clients
//! send, is read too; only the current form is written.
//!
//! A retraction asks every client to remove message `id`'s content; old clients
//! see the fallback body. It is only honoured from the message's own sender, or, a
//! moderated one, from the room itself: that check needs the history and is the
//! core's (`backend/src/history.rs`); this module only reads and writes the XML.

use crate::dom::Attr;
use crate::minidom::Element;
use crate::{xep_0425, xep_0428, xep_0444};

pub const NS: &str = "urn:xmpp:message-retract:1";
/// The earlier version (0.3 and before), fastened with XEP-0422 `<apply-to/>`:
/// what Libervia 0.9 and older clients send. Read, never written.
pub const NS_0: &str = "urn:xmpp:message-retract:0";
/// XEP-0422 Message Fastening, which the earlier version used.
pub const NS_FASTEN: &str = "urn:xmpp:fasten:0";

/// What clients that do not know retraction show.
pub const FALLBACK_BODY: &str =
    "This person attempted to retract a previous message, but it's unsupported by your client.";

/// A retraction of message `id` (its origin-id / id in a chat, the room's
/// stanza-id in a room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retract {
    pub id: String,
    /// Set when a room moderator retracted it (XEP-0425).
    pub moderated: Option<Moderated>,
}

/// Who moderated a message and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderated {
    /// The moderator, as the room names them (an occupant JID), when it says.
    pub by: Option<String>,
    pub reason: Option<String>,
}

impl Retract {
    /// Reads a `<retract/>`; `None` if it is not one or has no `id`.
    pub fn parse(e: &Element) -> Option<Self> {
        if !e.is("retract", NS) {
            return None;
        }
        let id = e.attr("id").filter(|i| !i.is_empty())?.to_owned();
        let moderated = e.get_child("moderated", xep_0425::NS).map(|m| Moderated {
            by: m.attr("by").filter(|b| !b.is_empty()).map(str::to_owned),
            reason: e
                .get_child("reason", NS)
                .map(|r| r.text())
                .filter(|r| !r.is_empty()),
        });
        Some(Self { id, moderated })
    }

    /// The first `<retract/>` among a message's payloads, in the current form or
    /// the earlier fastened one ([`Self::parse_fastened`]).
    pub fn find(payloads: &[Element]) -> Option<Self> {
        payloads
            .iter()
            .find_map(Self::parse)
            .or_else(|| payloads.iter().find_map(Self::parse_fastened))
    }

    /// The earlier form: `<apply-to id=…>` holding `<retract/>` (a sender's) or
    /// `<moderated><retract/><reason/></moderated>` (XEP-0425 0.2, a room's), both
    /// in the `:0` namespaces.
    pub fn parse_fastened(e: &Element) -> Option<Self> {
        if !e.is("apply-to", NS_FASTEN) {
            return None;
        }
        let id = e.attr("id").filter(|i| !i.is_empty())?.to_owned();
        if e.has_child("retract", NS_0) {
            return Some(Self {
                id,
                moderated: None,
            });
        }
        let m = e.get_child("moderated", xep_0425::NS_0)?;
        m.has_child("retract", NS_0).then(|| Self {
            id,
            moderated: Some(Moderated {
                by: m.attr("by").filter(|b| !b.is_empty()).map(str::to_owned),
                reason: m
                    .get_child("reason", xep_0425::NS_0)
                    .map(|r| r.text())
                    .filter(|r| !r.is_empty()),
            }),
        })
    }

    /// The payloads of a retraction message (its body is [`FALLBACK_BODY`]): the
    /// `<retract/>` (with `<moderated/>` and reason, the room's form), the fallback
    /// marker and the `<store/>` hint.
    pub fn payloads(&self) -> Vec<Element> {
        let mut r = Element::builder("retract", NS).a("id", self.id.as_str());
        if let Some(m) = &self.moderated {
            let mut by = Element::builder("moderated", xep_0425::NS);
            if let Some(b) = &m.by {
                by = by.a("by", b.as_str());
            }
            r = r.append(by.build());
            if let Some(reason) = &m.reason {
                r = r.append(
                    Element::builder("reason", NS)
                        .append(reason.as_str())
                        .build(),
                );
            }
        }
        vec![
            r.build(),
            xep_0428::element(NS, None),
            xep_0444::store_hint(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_senders_retraction() {
        let e: Element = "<retract id='origin-id-1' xmlns='urn:xmpp:message-retract:1'/>"
            .parse()
            .expect("xml");
        assert_eq!(
            Retract::parse(&e),
            Some(Retract {
                id: "origin-id-1".into(),
                moderated: None
            })
        );
        let no_id: Element = "<retract xmlns='urn:xmpp:message-retract:1'/>"
            .parse()
            .expect("xml");
        assert_eq!(Retract::parse(&no_id), None);
    }

    #[test]
    fn reads_a_rooms_moderation() {
        let e: Element = "<retract id='stanza-id-1' xmlns='urn:xmpp:message-retract:1'>\
             <moderated by='room@muc.example/macbeth' xmlns='urn:xmpp:message-moderate:1'>\
             <occupant-id xmlns='urn:xmpp:occupant-id:0' id='dd72603deec90a38ba552f7c68cbcc61bca202cd'/>\
             </moderated><reason>This message contains inappropriate content for this forum</reason>\
             </retract>"
            .parse()
            .expect("xml");
        let r = Retract::parse(&e).expect("a retraction");
        assert_eq!(r.id, "stanza-id-1");
        let m = r.moderated.expect("moderated");
        assert_eq!(m.by.as_deref(), Some("room@muc.example/macbeth"));
        assert_eq!(
            m.reason.as_deref(),
            Some("This message contains inappropriate content for this forum")
        );
    }

    #[test]
    fn reads_the_earlier_fastened_forms() {
        let own: Element = "<apply-to xmlns='urn:xmpp:fasten:0' id='origin-id-1'>\
                            <retract xmlns='urn:xmpp:message-retract:0'/></apply-to>"
            .parse()
            .expect("xml");
        assert_eq!(
            Retract::find(&[own]),
            Some(Retract {
                id: "origin-id-1".into(),
                moderated: None
            })
        );
        let room: Element = "<apply-to xmlns='urn:xmpp:fasten:0' id='stanza-id-1'>\
             <moderated by='r@m/mod' xmlns='urn:xmpp:message-moderate:0'>\
             <retract xmlns='urn:xmpp:message-retract:0'/><reason>spam</reason></moderated></apply-to>"
            .parse()
            .expect("xml");
        let r = Retract::find(&[room]).expect("a moderation");
        assert_eq!(r.id, "stanza-id-1");
        assert_eq!(
            r.moderated,
            Some(Moderated {
                by: Some("r@m/mod".into()),
                reason: Some("spam".into())
            })
        );
        // Fastened to something else: no retraction.
        let other: Element = "<apply-to xmlns='urn:xmpp:fasten:0' id='x'>\
                              <external xmlns='urn:xmpp:fasten:0' name='body'/></apply-to>"
            .parse()
            .expect("xml");
        assert_eq!(Retract::find(&[other]), None);
    }

    #[test]
    fn built_with_fallback_and_store_hint() {
        let xml: Vec<String> = Retract {
            id: "m1".into(),
            moderated: None,
        }
        .payloads()
        .iter()
        .map(String::from)
        .collect();
        assert_eq!(
            xml,
            [
                "<retract xmlns='urn:xmpp:message-retract:1' id='m1'/>",
                "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>",
                "<store xmlns='urn:xmpp:hints'/>",
            ]
        );
        let moderated = Retract {
            id: "s1".into(),
            moderated: Some(Moderated {
                by: Some("r@m/mod".into()),
                reason: Some("spam".into()),
            }),
        };
        assert_eq!(
            String::from(&moderated.payloads()[0]),
            "<retract xmlns='urn:xmpp:message-retract:1' id='s1'>\
             <moderated xmlns='urn:xmpp:message-moderate:1' by='r@m/mod'/>\
             <reason>spam</reason></retract>"
        );
        let back = Retract::find(&moderated.payloads()).expect("reads back");
        assert_eq!(back, moderated);
    }
}
