//! What of a message may travel in clear beside OMEMO's ciphertext, and what may
//! not. Decided here, on the stanza alone, so the send path only applies it.
//!
//! Why: OMEMO 0.3 encrypts the body only, and Perch encrypts the body only in 2 as
//! well (the message's history is read from the stanza as it leaves, so what moves
//! into the envelope would be lost from history). Every other element stays
//! outside. That is fine for metadata (chat states, receipts, markers, ids, the
//! reference a correction, reply or retraction makes), which every OMEMO client
//! sends in clear; it is not for content. So, in an encrypted conversation:
//! - an element that repeats the body (an out-of-band link, XHTML-IM) is dropped:
//!   the encrypted body holds the same thing;
//! - a message carrying content no body holds (a reaction, a subject, anything
//!   not known to be metadata) is refused, `NotEncrypted` naming it. Conversations,
//!   Dino and Gajim send reactions in clear in 0.3; Movim refuses them, as Perch
//!   does, because the user was promised nothing leaves in clear.

use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::Message;

/// Namespaces of what a message without a body may carry in clear: metadata that
/// every OMEMO client leaves outside the encryption.
pub const METADATA: &[&str] = &[
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:receipts",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:hints",
    "urn:xmpp:sid:0",
    "urn:xmpp:delay",
];

/// Namespaces of elements that repeat the body (so the encrypted body holds what
/// they say): dropped from an encrypted message.
pub const REPEATS_THE_BODY: &[&str] = &["jabber:x:oob", "http://jabber.org/protocol/xhtml-im"];

/// What a non-metadata element of a message without a body is, in words.
fn what(e: &Element) -> String {
    match e.ns().as_str() {
        "urn:xmpp:reactions:0" => "a reaction".into(),
        "urn:xmpp:message-retract:1" => "a retraction without a body".into(),
        "jabber:x:oob" => "a file link without a body".into(),
        ns => format!("<{} xmlns='{ns}'/>", e.name()),
    }
}

/// Why `m`, in an encrypted conversation, can't be sent at all: content that
/// would travel in clear. `None`: it can (encrypted, or, without a body,
/// metadata only).
pub fn refusal(m: &Message) -> Option<String> {
    if !m.subjects.is_empty() {
        return Some(
            "a subject can't be encrypted (OMEMO encrypts the text only); not sent".into(),
        );
    }
    if !m.bodies.is_empty() {
        return None;
    }
    let content = m
        .payloads
        .iter()
        .find(|e| !METADATA.contains(&e.ns().as_str()))?;
    Some(format!(
        "{} can't be encrypted (OMEMO encrypts the text of a message only); not sent",
        what(content)
    ))
}

/// Drops the elements that repeat `m`'s body; how many.
pub fn drop_repeats(m: &mut Message) -> usize {
    let before = m.payloads.len();
    m.payloads
        .retain(|e| !REPEATS_THE_BODY.contains(&e.ns().as_str()));
    before - m.payloads.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::parsers::message::{Lang, MessageType};

    fn el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    fn message(body: Option<&str>, payloads: &[&str]) -> Message {
        let mut m = Message::new_with_type(MessageType::Chat, Some("b@x".parse().unwrap()));
        if let Some(b) = body {
            m.bodies.insert(Lang(String::new()), b.to_owned());
        }
        m.payloads.extend(payloads.iter().map(|p| el(p)));
        m
    }

    #[test]
    fn content_without_a_body_is_refused_metadata_is_not() {
        let reaction =
            "<reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction></reactions>";
        let hint = "<store xmlns='urn:xmpp:hints'/>";
        let why = refusal(&message(None, &[reaction, hint])).unwrap();
        assert!(why.starts_with("a reaction can't be encrypted"), "{why}");
        let marker = "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>";
        assert_eq!(refusal(&message(None, &[marker, hint])), None);
        let state = "<active xmlns='http://jabber.org/protocol/chatstates'/>";
        assert_eq!(refusal(&message(None, &[state])), None);
        let unknown = "<poll xmlns='urn:example:poll'/>";
        let why = refusal(&message(None, &[unknown])).unwrap();
        assert!(why.contains("<poll xmlns='urn:example:poll'/>"), "{why}");
        // With a body, the body is encrypted; other elements are references.
        assert_eq!(refusal(&message(Some("hi"), &[reaction])), None);
        let mut m = message(Some("hi"), &[]);
        m.subjects.insert(Lang(String::new()), "topic".into());
        assert!(refusal(&m).unwrap().contains("subject"));
    }

    #[test]
    fn what_repeats_the_body_is_dropped() {
        let oob = "<x xmlns='jabber:x:oob'><url>https://h/a.png</url></x>";
        let html = "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>hi</body></html>";
        let hint = "<store xmlns='urn:xmpp:hints'/>";
        let mut m = message(Some("https://h/a.png"), &[oob, html, hint]);
        assert_eq!(drop_repeats(&mut m), 2);
        assert_eq!(m.payloads.len(), 1);
        assert!(m.payloads[0].is("store", "urn:xmpp:hints"));
    }
}
