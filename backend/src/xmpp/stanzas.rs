//! Pure conversions between stanzas and Perch's types.
//!
//! Kept apart from the session task so they can be tested on literal XML, without a
//! server: how presences, roster items and
//! messages are read, and which IQ replies we accept as answers.

use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::{ContactPresence, RosterItem, Show};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::{
    message::{Lang, Message, MessageType},
    ns,
    presence::{self, Presence},
    roster,
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
};

/// What an incoming IQ get/set asks of us.
#[derive(Debug, PartialEq)]
pub enum IqRequest {
    RosterPush(roster::Roster),
    /// Anything else: for the plugin that claims it, else `service-unavailable`.
    Other,
}

pub fn classify_request(payload: &Element, is_get: bool, from_self: bool) -> IqRequest {
    // A roster push is only legitimate from our own account (RFC 6121 §2.1.6).
    if !is_get
        && from_self
        && payload.is("query", ns::ROSTER)
        && let Ok(r) = roster::Roster::try_from(payload.clone())
    {
        return IqRequest::RosterPush(r);
    }
    IqRequest::Other
}

pub fn service_unavailable() -> StanzaError {
    StanzaError::new(
        ErrorType::Cancel,
        DefinedCondition::ServiceUnavailable,
        "en",
        "not supported by this client",
    )
}

/// The answer to a request whose handler failed (a plugin's panic).
pub fn internal_error() -> StanzaError {
    StanzaError::new(
        ErrorType::Wait,
        DefinedCondition::InternalServerError,
        "en",
        "the handler of this request failed",
    )
}

/// Does a reply `from` come from the entity we sent a request `to`?
///
/// A request to ourselves (no `to`, or our bare JID) is answered by the server with no
/// `from` or with our bare or full JID.
pub fn reply_matches(from: Option<&Jid>, to: Option<&Jid>, own: &BareJid) -> bool {
    let is_self = |j: Option<&Jid>| match j {
        None => true,
        Some(j) => j.to_bare() == *own,
    };
    match to {
        None => is_self(from),
        Some(t) if t.to_bare() == *own && t.resource().is_none() => is_self(from),
        Some(t) => from == Some(t),
    }
}

pub fn roster_item(item: &roster::Item) -> RosterItem {
    RosterItem {
        jid: item.jid.to_string(),
        name: item.name.clone().filter(|n| !n.is_empty()),
        subscription: match item.subscription {
            roster::Subscription::None => "none",
            roster::Subscription::From => "from",
            roster::Subscription::To => "to",
            roster::Subscription::Both => "both",
            roster::Subscription::Remove => "remove",
        }
        .to_owned(),
        ask: item.ask == roster::Ask::Subscribe,
        groups: item.groups.iter().map(|g| g.0.clone()).collect(),
    }
}

fn show_of(p: &Presence) -> Show {
    match p.show {
        None => Show::Available,
        Some(presence::Show::Away) => Show::Away,
        Some(presence::Show::Chat) => Show::Chat,
        Some(presence::Show::Dnd) => Show::Dnd,
        Some(presence::Show::Xa) => Show::Xa,
    }
}

/// What an incoming presence means to us.
#[derive(Debug, PartialEq)]
pub enum PresenceUpdate {
    /// Availability of a full JID.
    Contact(ContactPresence),
    /// A subscription request or answer: (action, bare JID).
    Subscription(&'static str, String),
    Ignore,
}

pub fn read_presence(p: &Presence) -> PresenceUpdate {
    let Some(from) = &p.from else {
        return PresenceUpdate::Ignore;
    };
    let status = p
        .statuses
        .get("")
        .or_else(|| p.statuses.values().next())
        .cloned();
    let sub = |a| PresenceUpdate::Subscription(a, from.to_bare().to_string());
    match p.type_ {
        presence::Type::None => PresenceUpdate::Contact(ContactPresence {
            jid: from.to_string(),
            show: show_of(p),
            status,
            priority: p.priority.0,
        }),
        presence::Type::Unavailable => PresenceUpdate::Contact(ContactPresence {
            jid: from.to_string(),
            show: Show::Unavailable,
            status,
            priority: p.priority.0,
        }),
        presence::Type::Subscribe => sub("subscribe"),
        presence::Type::Subscribed => sub("subscribed"),
        presence::Type::Unsubscribe => sub("unsubscribe"),
        presence::Type::Unsubscribed => sub("unsubscribed"),
        presence::Type::Error | presence::Type::Probe => PresenceUpdate::Ignore,
    }
}

/// Our own presence.
pub fn own_presence(show: Show, status: Option<&str>, priority: i8) -> Presence {
    let mut p = Presence::new(if show == Show::Unavailable {
        presence::Type::Unavailable
    } else {
        presence::Type::None
    });
    p.show = match show {
        Show::Away => Some(presence::Show::Away),
        Show::Xa => Some(presence::Show::Xa),
        Show::Dnd => Some(presence::Show::Dnd),
        Show::Chat => Some(presence::Show::Chat),
        Show::Available | Show::Unavailable => None,
    };
    if let Some(s) = status.filter(|s| !s.is_empty()) {
        p.statuses.insert(Lang(String::new()), s.to_owned());
    }
    p.priority = presence::Priority(priority);
    p
}

pub fn message_type_name(t: &MessageType) -> &'static str {
    match t {
        MessageType::Chat => "chat",
        MessageType::Error => "error",
        MessageType::Groupchat => "groupchat",
        MessageType::Headline => "headline",
        MessageType::Normal => "normal",
    }
}

pub fn parse_message_type(s: &str) -> Option<MessageType> {
    Some(match s {
        "" | "chat" => MessageType::Chat,
        "normal" => MessageType::Normal,
        "headline" => MessageType::Headline,
        _ => return None,
    })
}

/// The body of a message in the language we prefer (none given: the first).
pub fn body(m: &Message) -> Option<String> {
    m.get_best_body_cloned(vec!["", "en"])
        .map(|(_, b)| b)
        .filter(|b| !b.is_empty())
}

/// The earliest delay stamp believed: 1999-01-01T00:00:00Z, before XMPP carried its
/// first message. Anything earlier is a forged or broken stamp.
pub const EARLIEST_STAMP: i64 = 915_148_800_000_000;

/// A message's XEP-0203 delay stamp, as the network gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delay {
    /// No `<delay/>`.
    None,
    /// A XEP-0082 date-time from [`EARLIEST_STAMP`] on, in microseconds. It may still
    /// lie in the future: the caller compares it with the arrival time.
    Valid(i64),
    /// A stamp that is not a XEP-0082 date-time, or before [`EARLIEST_STAMP`]
    /// (`-1`, `1e12`, `0000-01-01T00:00:00Z` …): the text, for the log.
    Invalid(String),
}

/// The sender's timestamp (XEP-0203 delay). Timestamps from the network are checked
/// here, where they enter: only a XEP-0082 date-time (never Unix seconds) in a
/// plausible range is taken; see [`Delay`].
pub fn delay(m: &Message) -> Delay {
    let Some(stamp) = m
        .payloads
        .iter()
        .find(|p| p.is("delay", ns::DELAY))
        .and_then(|d| d.attr("stamp"))
    else {
        return Delay::None;
    };
    let micros = stamp
        .parse::<tokio_xmpp::parsers::date::DateTime>()
        .ok()
        .map(|d| d.0.timestamp_micros())
        .filter(|t| *t >= EARLIEST_STAMP);
    match micros {
        Some(t) => Delay::Valid(t),
        None => Delay::Invalid(stamp.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn classifies_requests() {
        assert_eq!(
            classify_request(&el("<ping xmlns='urn:xmpp:ping'/>"), true, false),
            IqRequest::Other
        );
        let push = el(
            "<query xmlns='jabber:iq:roster'><item jid='bob@example.org' subscription='both'><group>Friends</group></item></query>",
        );
        match classify_request(&push, false, true) {
            IqRequest::RosterPush(r) => {
                let item = roster_item(&r.items[0]);
                assert_eq!(item.jid, "bob@example.org");
                assert_eq!(item.subscription, "both");
                assert_eq!(item.groups, vec!["Friends".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        // A roster push from a stranger is refused.
        assert_eq!(classify_request(&push, false, false), IqRequest::Other);
    }

    #[test]
    fn reply_matching() {
        let own: BareJid = "alice@example.org".parse().unwrap();
        let j = |s: &str| -> Jid { s.parse().unwrap() };
        assert!(reply_matches(None, None, &own));
        assert!(reply_matches(Some(&j("alice@example.org")), None, &own));
        assert!(reply_matches(None, Some(&j("alice@example.org")), &own));
        assert!(reply_matches(
            Some(&j("pubsub.example.org")),
            Some(&j("pubsub.example.org")),
            &own
        ));
        assert!(!reply_matches(
            Some(&j("mallory@example.org")),
            Some(&j("pubsub.example.org")),
            &own
        ));
        assert!(!reply_matches(Some(&j("mallory@example.org")), None, &own));
    }

    #[test]
    fn reads_presences() {
        let p = Presence::try_from(el(
            "<presence xmlns='jabber:client' from='bob@example.org/phone'><show>away</show><status>lunch</status><priority>5</priority></presence>",
        ))
        .unwrap();
        assert_eq!(
            read_presence(&p),
            PresenceUpdate::Contact(ContactPresence {
                jid: "bob@example.org/phone".into(),
                show: Show::Away,
                status: Some("lunch".into()),
                priority: 5
            })
        );
        let p = Presence::try_from(el(
            "<presence xmlns='jabber:client' from='bob@example.org/x' type='subscribe'/>",
        ))
        .unwrap();
        assert_eq!(
            read_presence(&p),
            PresenceUpdate::Subscription("subscribe", "bob@example.org".into())
        );
    }

    #[test]
    fn own_presence_serialises() {
        let p: Element = own_presence(Show::Dnd, Some("busy"), -1).into();
        let xml = String::from(&p);
        assert!(xml.contains("<show>dnd</show>"), "{xml}");
        assert!(xml.contains("<status>busy</status>"), "{xml}");
        assert!(xml.contains("<priority>-1</priority>"), "{xml}");
        let off: Element = own_presence(Show::Unavailable, None, 0).into();
        assert_eq!(off.attr("type"), Some("unavailable"));
    }

    #[test]
    fn delay_stamps_are_checked_where_they_enter() {
        let with_stamp = |stamp: &str| {
            Message::try_from(el(&format!(
                "<message xmlns='jabber:client' from='x@example.org/a' type='chat'><body>x</body><delay xmlns='urn:xmpp:delay' stamp='{stamp}'/></message>"
            )))
            .unwrap()
        };
        for bad in [
            "-1",
            "1e12",
            "1795000000",
            "",
            "yesterday",
            "0000-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "99999-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(
                delay(&with_stamp(bad)),
                Delay::Invalid(bad.to_owned()),
                "{bad}"
            );
        }
        // Offsets are honoured (XEP-0082 TZD), far futures are valid stamps that the
        // session files at the arrival time.
        assert_eq!(
            delay(&with_stamp("2026-11-18T12:06:40+01:00")),
            Delay::Valid(1_795_000_000_000_000)
        );
        assert_eq!(
            delay(&with_stamp("9999-12-31T23:59:59Z")),
            Delay::Valid(253_402_300_799_000_000)
        );
    }

    #[test]
    fn reads_message_body_and_delay() {
        let m = Message::try_from(el(
            "<message xmlns='jabber:client' from='bob@example.org/a' type='chat' id='m1'><body>hello</body><delay xmlns='urn:xmpp:delay' stamp='2026-11-18T11:06:40Z'/></message>",
        ))
        .unwrap();
        assert_eq!(body(&m).as_deref(), Some("hello"));
        assert_eq!(delay(&m), Delay::Valid(1_795_000_000_000_000));
        assert_eq!(message_type_name(&m.type_), "chat");
    }
}
