//! XEP-0353: Jingle Message Initiation — ringing every device of a contact before
//! the Jingle session exists.
//!
//! Why our own type: xmpp-parsers 0.23's `JingleMI` has no `ringing`, no `finish`
//! and no `<reason/>`, so a Conversations `<ringing/>` would not even parse.

use perch_plugin_api::minidom::Element;

use crate::dom::Attr;
use crate::xep_0166::xml::{ParseError, Reason, attr};
use crate::xep_0167::rtp;

pub const NS: &str = "urn:xmpp:jingle-message:0";
/// XEP-0334 message processing hints: `<store/>` so offline devices see the call.
pub const NS_HINTS: &str = "urn:xmpp:hints";

/// What a JMI message says about call `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// With the media offered (the `media` of each RTP `<description/>`).
    Propose(Vec<String>),
    Ringing,
    Proceed,
    Accept,
    Reject,
    Retract,
    Finish,
}

/// One JMI element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jmi {
    pub kind: Kind,
    pub id: String,
    pub reason: Option<Reason>,
    /// `<tie-break/>` (XEP-0353 0.8 "Tie Breaking"): this reject or retract
    /// settles two proposals that crossed, it is no refusal by the user.
    pub tie_break: bool,
}

/// The reason XEP-0353 puts on a tie-break reject or retract.
pub fn tie_break_reason() -> Reason {
    let mut r = Reason::new("expired");
    r.text = Some("Tie-Break".into());
    r
}

/// Which of two crossing proposals survives (XEP-0353 0.8, "Tie Breaking", no
/// existing session): the lower session id by i;octet collation, i.e. byte
/// order; with equal ids, the one from the lower bare JID. `true`: ours.
pub fn ours_wins(our_id: &str, our_bare: &str, their_id: &str, their_bare: &str) -> bool {
    match our_id.as_bytes().cmp(their_id.as_bytes()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => our_bare.as_bytes() < their_bare.as_bytes(),
    }
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Propose(_) => "propose",
            Self::Ringing => "ringing",
            Self::Proceed => "proceed",
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Retract => "retract",
            Self::Finish => "finish",
        }
    }
}

impl Jmi {
    pub fn new(kind: Kind, id: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            reason: None,
            tie_break: false,
        }
    }

    /// `None`: not a JMI element.
    pub fn from_element(e: &Element) -> Option<Result<Self, ParseError>> {
        if e.ns() != NS {
            return None;
        }
        let kind = match e.name() {
            "propose" => Kind::Propose(
                e.children()
                    .filter(|d| d.is("description", rtp::NS))
                    .filter_map(|d| d.attr("media").map(str::to_owned))
                    .collect(),
            ),
            "ringing" => Kind::Ringing,
            "proceed" => Kind::Proceed,
            "accept" => Kind::Accept,
            "reject" => Kind::Reject,
            "retract" => Kind::Retract,
            "finish" => Kind::Finish,
            _ => return None,
        };
        Some(attr(e, "id").map(|id| {
            Jmi {
                kind,
                id: id.to_owned(),
                reason: e
                    .children()
                    .find(|c| c.name() == "reason")
                    .map(Reason::from_element),
                tie_break: e.children().any(|c| c.is("tie-break", NS)),
            }
        }))
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder(self.kind.name(), NS).a("id", self.id.as_str());
        if let Kind::Propose(media) = &self.kind {
            b = b.append_all(media.iter().map(|m| {
                Element::builder("description", rtp::NS)
                    .a("media", m.as_str())
                    .build()
            }));
        }
        if let Some(r) = &self.reason {
            // JMI reuses Jingle's reason element, in the Jingle namespace.
            b = b.append(r.to_element());
        }
        if self.tie_break {
            b = b.append(Element::builder("tie-break", NS).build());
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0353 examples: propose, ringing, proceed, reject with a reason, finish.
    #[test]
    fn round_trips() {
        for xml in [
            "<propose xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>",
            "<ringing xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'/>",
            "<proceed xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'/>",
            "<accept xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'/>",
            "<retract xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'>\
             <reason xmlns='urn:xmpp:jingle:1'><cancel/><text>Retracted</text></reason></retract>",
            "<reject xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'>\
             <reason xmlns='urn:xmpp:jingle:1'><busy/><text>Busy</text></reason></reject>",
            "<finish xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'>\
             <reason xmlns='urn:xmpp:jingle:1'><success/><text>Success</text></reason></finish>",
        ] {
            let e: Element = xml.parse().unwrap();
            let j = Jmi::from_element(&e).expect("JMI").expect(xml);
            assert_eq!(j.to_element(), e, "{xml}");
        }
        let e: Element = "<reject xmlns='urn:xmpp:jingle-message:0' id='x'>\
            <reason xmlns='urn:xmpp:jingle:1'><busy/></reason></reject>"
            .parse()
            .unwrap();
        let j = Jmi::from_element(&e).unwrap().unwrap();
        assert_eq!(j.reason.unwrap().condition, "busy");
        let no_id: Element = "<proceed xmlns='urn:xmpp:jingle-message:0'/>"
            .parse()
            .unwrap();
        assert!(Jmi::from_element(&no_id).unwrap().is_err());
        let other: Element = "<body xmlns='jabber:client'/>".parse().unwrap();
        assert!(Jmi::from_element(&other).is_none());
    }

    /// XEP-0353 0.8's tie-break retract and reject: reason `expired`, text
    /// "Tie-Break", and `<tie-break/>`.
    #[test]
    fn tie_break_round_trips() {
        for (xml, kind) in [
            (
                "<retract xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'>\
                 <reason xmlns='urn:xmpp:jingle:1'><expired/><text>Tie-Break</text></reason>\
                 <tie-break/></retract>",
                Kind::Retract,
            ),
            (
                "<reject xmlns='urn:xmpp:jingle-message:0' id='989a46a6-f202-4910-a7c3-83c6ba3f3947'>\
                 <reason xmlns='urn:xmpp:jingle:1'><expired/><text>Tie-Break</text></reason>\
                 <tie-break/></reject>",
                Kind::Reject,
            ),
        ] {
            let e: Element = xml.parse().unwrap();
            let j = Jmi::from_element(&e).expect("JMI").expect(xml);
            assert_eq!(j.kind, kind);
            assert!(j.tie_break, "{xml}");
            assert_eq!(j.reason.as_ref(), Some(&tie_break_reason()));
            assert_eq!(j.to_element(), e, "{xml}");
            let mut built = Jmi::new(kind, &j.id);
            built.reason = Some(tie_break_reason());
            built.tie_break = true;
            assert_eq!(built.to_element(), e, "{xml}");
        }
        // A plain reject has no tie-break.
        let e: Element = "<reject xmlns='urn:xmpp:jingle-message:0' id='x'/>"
            .parse()
            .unwrap();
        assert!(!Jmi::from_element(&e).unwrap().unwrap().tie_break);
    }

    /// The lower id wins by byte order (not locale, not length first); equal ids
    /// go to the lower bare JID.
    #[test]
    fn tie_break_decision() {
        let (a, b) = ("alice@localhost", "bob@localhost");
        assert!(ours_wins("1", a, "2", b));
        assert!(!ours_wins("2", a, "1", b));
        // i;octet: "B" (0x42) sorts before "a" (0x61); a prefix sorts first.
        assert!(ours_wins("B", b, "a", a));
        assert!(ours_wins("ab", b, "abc", a));
        assert!(!ours_wins("abc", a, "ab", b));
        assert!(ours_wins("-tie", b, "0a1b2c", a));
        assert!(!ours_wins("zz-tie", a, "0a1b2c", b));
        // Equal ids: the lower bare JID wins, on both sides consistently.
        assert!(ours_wins("same", a, "same", b));
        assert!(!ours_wins("same", b, "same", a));
    }
}
