//! XEP-0425: Moderated Message Retraction (`urn:xmpp:message-moderate:1`) — a room
//! moderator asks the room, by an IQ, to retract an occupant's message for
//! everyone; the room then sends a XEP-0424 retraction carrying `<moderated/>`
//! (read by [`crate::xep_0424`]).

use crate::dom::Attr;
use crate::minidom::Element;
use crate::xep_0424;

pub const NS: &str = "urn:xmpp:message-moderate:1";
/// The earlier version (0.2), read in rooms' retractions ([`crate::xep_0424`]).
pub const NS_0: &str = "urn:xmpp:message-moderate:0";

/// The payload of the IQ set to the room: moderate its message `id` (the room's
/// stanza-id), with an optional reason.
pub fn moderate(id: &str, reason: Option<&str>) -> Element {
    let mut b = Element::builder("moderate", NS)
        .a("id", id)
        .append(Element::builder("retract", xep_0424::NS).build());
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        b = b.append(Element::builder("reason", NS).append(r).build());
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_as_the_xep_writes_it() {
        assert_eq!(
            String::from(&moderate("stanza-id-1", Some("spam"))),
            "<moderate xmlns='urn:xmpp:message-moderate:1' id='stanza-id-1'>\
             <retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate>"
        );
        assert_eq!(
            String::from(&moderate("s2", None)),
            "<moderate xmlns='urn:xmpp:message-moderate:1' id='s2'>\
             <retract xmlns='urn:xmpp:message-retract:1'/></moderate>"
        );
    }
}
