//! XEP-0166: Jingle — the session layer under calls: the elements ([`xml`]), the
//! state machine every session follows ([`session`]), and the errors the XEP
//! prescribes for actions that do not fit.
//!
//! The plugin that runs sessions is XEP-0167's (calls are the only Jingle
//! application Perch has); this module is what any other application would reuse.

pub mod session;
pub mod xml;

use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

pub use xml::{Action, Content, Group, Jingle, ParseError, Reason, Senders};

fn error(
    kind: ErrorType,
    condition: DefinedCondition,
    text: &str,
    specific: Option<&str>,
) -> StanzaError {
    let mut e = StanzaError::new(kind, condition, "en", text);
    e.other = specific.map(|s| Element::builder(s, xml::NS_ERRORS).build());
    e
}

/// `<item-not-found/>` + `<unknown-session/>`: no session with that sid (XEP-0166 §8).
pub fn unknown_session(sid: &str) -> StanzaError {
    error(
        ErrorType::Cancel,
        DefinedCondition::ItemNotFound,
        &format!("no Jingle session {sid:?} with you"),
        Some("unknown-session"),
    )
}

/// `<unexpected-request/>` + `<out-of-order/>`: the action does not fit the state.
pub fn out_of_order(what: &str) -> StanzaError {
    error(
        ErrorType::Wait,
        DefinedCondition::UnexpectedRequest,
        what,
        Some("out-of-order"),
    )
}

/// `<bad-request/>`: the Jingle element could not be read.
pub fn bad_request(what: &str) -> StanzaError {
    error(ErrorType::Modify, DefinedCondition::BadRequest, what, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_jingle_conditions() {
        let e = Element::from(unknown_session("a73sjjvkla37jfea"));
        let s = String::from(&e);
        assert!(
            s.contains("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
            "{s}"
        );
        assert!(
            s.contains("<unknown-session xmlns='urn:xmpp:jingle:errors:1'/>"),
            "{s}"
        );
        let s = String::from(&Element::from(out_of_order("x")));
        assert!(
            s.contains("unexpected-request")
                && s.contains("out-of-order")
                && s.contains("type='wait'"),
            "{s}"
        );
        let s = String::from(&Element::from(bad_request("x")));
        assert!(
            s.contains("bad-request") && s.contains("type='modify'"),
            "{s}"
        );
    }

    /// XEP-0166 Example 1 (session-initiate) with XEP-0167/0176/0338 payloads, and
    /// Example 12's session-terminate: read and written back unchanged.
    #[test]
    fn jingle_round_trips() {
        for xml in [
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'>\
             <group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='voice'/><content name='webcam'/></group>\
             <content creator='initiator' name='voice'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <payload-type clockrate='16000' id='96' name='speex'/><payload-type id='0' name='PCMU'/></description>\
             <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='asd88fgpdd777uzjYhagZg' ufrag='8hhy'>\
             <candidate component='1' foundation='1' generation='0' id='el0747fg11' ip='10.0.1.1' network='1' port='8998' priority='2130706431' protocol='udp' type='host'/>\
             </transport></content>\
             <content creator='initiator' name='webcam' senders='initiator'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'><payload-type clockrate='90000' id='96' name='VP8'/></description>\
             <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle>",
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='a73sjjvkla37jfea'>\
             <reason><success/><text>Sorry, gotta go!</text></reason></jingle>",
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'>\
             <ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/></jingle>",
            "<jingle xmlns='urn:xmpp:jingle:1' action='content-remove' sid='a73sjjvkla37jfea'>\
             <content creator='initiator' name='webcam'/></jingle>",
        ] {
            let e: Element = xml.parse().unwrap();
            let j = Jingle::from_element(&e).expect(xml);
            assert_eq!(j.to_element(), e, "{xml}");
        }
        let e: Element = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='x'>\
            <reason><busy/></reason></jingle>"
            .parse()
            .unwrap();
        let j = Jingle::from_element(&e).unwrap();
        assert_eq!(j.reason, Some(Reason::new("busy")));
        assert_eq!(
            String::from(&Jingle::new(Action::TransportInfo, "s1").to_element()),
            "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s1'/>"
        );
    }

    #[test]
    fn malformed_jingle_is_refused_saying_why() {
        for (xml, why) in [
            ("<jingle xmlns='urn:xmpp:jingle:1' sid='x'/>", "action"),
            (
                "<jingle xmlns='urn:xmpp:jingle:1' action='session-dance' sid='x'/>",
                "session-dance",
            ),
            (
                "<jingle xmlns='urn:xmpp:jingle:1' action='session-info'/>",
                "sid",
            ),
            (
                "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='x'><content name='a'/></jingle>",
                "creator",
            ),
            (
                "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='x'><content creator='initiator' name='a'>\
                 <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'><candidate component='1'/></transport></content></jingle>",
                "foundation",
            ),
        ] {
            let e: Element = xml.parse().unwrap();
            let err = Jingle::from_element(&e).unwrap_err();
            assert!(err.to_string().contains(why), "{xml}: {err}");
        }
    }
}
