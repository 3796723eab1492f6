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
        "groupchat" => MessageType::Groupchat,
        _ => return None,
    })
}

/// The body of a message in the language we prefer (none given: the first).
pub fn body(m: &Message) -> Option<String> {
    m.get_best_body_cloned(vec!["", "en"])
        .map(|(_, b)| b)
        .filter(|b| !b.is_empty())
}

/// The longest id taken from the network (origin-id, stanza-id, correction target):
/// longer ones are ignored, as if absent (XEP-0359 ids are short tokens).
pub const MAX_ID: usize = 256;

fn id_attr<'a>(m: &'a Message, name: &'a str, ns: &'a str) -> impl Iterator<Item = &'a Element> {
    m.payloads.iter().filter(move |p| p.is(name, ns))
}

fn usable(id: &str) -> Option<String> {
    (!id.is_empty() && id.len() <= MAX_ID).then(|| id.to_owned())
}

/// The sender's own id (XEP-0359 `<origin-id/>`).
pub fn origin_id(m: &Message) -> Option<String> {
    id_attr(m, "origin-id", ns::SID)
        .find_map(|e| e.attr("id"))
        .and_then(usable)
}

/// The id archive `by` gave the message (XEP-0359 `<stanza-id by=…/>`). Only the
/// given archive's is taken: a server removes stanza-ids claiming to be its own from
/// what it relays, so one naming our account (or the room, for a room's messages)
/// was put there by that archive.
pub fn stanza_id(m: &Message, by: &str) -> Option<String> {
    id_attr(m, "stanza-id", ns::SID)
        .filter(|e| e.attr("by").is_some_and(|b| b == by))
        .find_map(|e| e.attr("id"))
        .and_then(usable)
}

/// The id of the message this one corrects (XEP-0308 `<replace/>`).
pub fn replace_id(m: &Message) -> Option<String> {
    id_attr(m, "replace", ns::MESSAGE_CORRECT)
        .find_map(|e| e.attr("id"))
        .and_then(usable)
}

/// What a message carries for history: its text, what it says about itself, or
/// what it does to another message.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// The text, a reply's fallback quote taken out; empty for an action.
    pub body: String,
    /// `reply_to` = {id, to} (XEP-0461), `me` (XEP-0245).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// A reaction, a retraction or a moderation (then the body, a fallback for
    /// old clients, is not kept).
    pub apply: Option<crate::history::Apply>,
}

/// What of `m` goes to history; `None` when nothing (no text and no action).
pub fn content(m: &Message) -> Option<Content> {
    use crate::history::Apply;
    use perch_codec::{xep_0424::Retract, xep_0444::Reactions, xep_0461};
    let apply = if let Some(r) = Reactions::find(&m.payloads) {
        usable(&r.id).map(|id| Apply::React {
            id,
            reactions: r.reactions,
        })
    } else if let Some(r) = Retract::find(&m.payloads) {
        usable(&r.id).map(|id| match r.moderated {
            Some(md) => Apply::Moderate {
                id,
                by: md.by,
                reason: md.reason,
            },
            None => Apply::Retract { id },
        })
    } else if body(m).is_none()
        && let Some(id) = perch_codec::xep_0333::find_displayed(&m.payloads)
    {
        usable(&id).map(|id| Apply::Displayed { id })
    } else {
        None
    };
    if apply.is_some() {
        return Some(Content {
            body: String::new(),
            extra: serde_json::Map::new(),
            apply,
        });
    }
    let mut body = body(m)?;
    let mut extra = serde_json::Map::new();
    if let Some(reply) = xep_0461::Reply::find(&m.payloads)
        && let Some(id) = usable(&reply.id)
    {
        let own = xep_0461::strip_quote(&body, &m.payloads);
        if !own.is_empty() {
            body = own;
        }
        let to = reply.to.as_deref().and_then(usable);
        extra.insert("reply_to".into(), serde_json::json!({"id": id, "to": to}));
    }
    if body.starts_with("/me ") {
        extra.insert("me".into(), true.into());
    }
    if perch_codec::xep_0333::is_markable(&m.payloads) {
        extra.insert("markable".into(), true.into());
    }
    // XEP-0071, filtered to XHTML-IM; Libervia 0.9's keys. The body without a
    // language is `xhtml`; when every body has one (a client that tags them all), the
    // first is `xhtml` too, so that frontends always find one there.
    for (lang, xhtml) in perch_codec::xep_0071::read(&m.payloads) {
        if lang.is_empty() {
            extra.insert("xhtml".into(), xhtml.into());
        } else {
            if !extra.contains_key("xhtml") {
                extra.insert("xhtml".into(), xhtml.clone().into());
            }
            extra.insert(format!("xhtml_{lang}"), xhtml.into());
        }
    }
    if let Some((_, subject)) = m.get_best_subject(vec![])
        && !subject.trim().is_empty()
    {
        extra.insert("subject".into(), subject.clone().into());
    }
    Some(Content {
        body,
        extra,
        apply: None,
    })
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
    let micros = crate::time::parse_datetime(stamp).filter(|t| *t >= EARLIEST_STAMP);
    match micros {
        Some(t) => Delay::Valid(t),
        None => Delay::Invalid(stamp.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Apply;

    fn el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    fn msg(inner: &str) -> Message {
        Message::try_from(el(&format!(
            "<message xmlns='jabber:client' from='b@x/r' to='a@x' type='chat' id='i1'>{inner}</message>"
        )))
        .unwrap()
    }

    #[test]
    fn message_actions_are_read_and_their_fallback_bodies_not_kept() {
        let c = content(&msg(
            "<reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction></reactions>\
             <store xmlns='urn:xmpp:hints'/>",
        ))
        .unwrap();
        assert_eq!(
            c.apply,
            Some(Apply::React {
                id: "m1".into(),
                reactions: vec!["👍".into()]
            })
        );
        let c = content(&msg(
            "<body>This person attempted to retract a previous message, but it's unsupported by your client.</body>\
             <retract xmlns='urn:xmpp:message-retract:1' id='m1'/>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>",
        ))
        .unwrap();
        assert_eq!(c.apply, Some(Apply::Retract { id: "m1".into() }));
        assert_eq!(c.body, "");
        let c = content(&msg(
            "<retract xmlns='urn:xmpp:message-retract:1' id='s1'>\
             <moderated xmlns='urn:xmpp:message-moderate:1' by='r@m/mod'/><reason>spam</reason></retract>",
        ))
        .unwrap();
        assert_eq!(
            c.apply,
            Some(Apply::Moderate {
                id: "s1".into(),
                by: Some("r@m/mod".into()),
                reason: Some("spam".into())
            })
        );
        // Neither text nor action: nothing to keep (a chat state).
        assert_eq!(
            content(&msg(
                "<active xmlns='http://jabber.org/protocol/chatstates'/>"
            )),
            None
        );
    }

    #[test]
    fn a_reply_loses_its_quote_and_me_is_flagged() {
        let c = content(&msg(
            "<body>&gt; cake?\nyes</body><reply xmlns='urn:xmpp:reply:0' to='a@x/r' id='m1'/>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='8'/></fallback>",
        ))
        .unwrap();
        assert_eq!(c.body, "yes");
        assert_eq!(
            serde_json::Value::Object(c.extra),
            serde_json::json!({"reply_to": {"id": "m1", "to": "a@x/r"}})
        );
        let c = content(&msg(
            "<body>hi</body><subject>Plans</subject>\
             <html xmlns='http://jabber.org/protocol/xhtml-im'>\
             <body xmlns='http://www.w3.org/1999/xhtml'><em>hi</em><script>x</script></body></html>",
        ))
        .unwrap();
        assert_eq!(c.body, "hi");
        assert_eq!(
            c.extra["xhtml"], "<div xmlns='http://www.w3.org/1999/xhtml'><em>hi</em></div>",
            "filtered"
        );
        assert_eq!(c.extra["subject"], "Plans");
        let c = content(&msg("<body>/me waves</body>")).unwrap();
        assert_eq!(c.body, "/me waves");
        assert_eq!(
            serde_json::Value::Object(c.extra),
            serde_json::json!({"me": true})
        );
        let c = content(&msg("<body>/meh</body>")).unwrap();
        assert!(c.extra.is_empty());
    }

    #[test]
    fn displayed_markers_are_actions_and_markable_is_kept() {
        let c = content(&msg(
            "<displayed xmlns='urn:xmpp:chat-markers:0' id='o1'/><store xmlns='urn:xmpp:hints'/>",
        ))
        .unwrap();
        assert_eq!(c.apply, Some(Apply::Displayed { id: "o1".into() }));
        assert_eq!(c.body, "");
        // A marker beside a text is not an action: the text is kept.
        let c = content(&msg(
            "<body>hi</body><markable xmlns='urn:xmpp:chat-markers:0'/>             <displayed xmlns='urn:xmpp:chat-markers:0' id='o1'/>",
        ))
        .unwrap();
        assert_eq!(c.apply, None);
        assert_eq!(c.body, "hi");
        assert_eq!(
            serde_json::Value::Object(c.extra),
            serde_json::json!({"markable": true})
        );
        assert_eq!(
            content(&msg("<displayed xmlns='urn:xmpp:chat-markers:0' id=''/>")),
            None
        );
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
                assert_eq!(item.groups, vec!["Friends".to_owned()]);
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

    /// Issue 11: these two messages stopped the profile: their stamp was stored and
    /// writing it back as RFC 3339 panicked. Whatever the stamp, what is read is in
    /// the range that `time::rfc3339` writes and reads back.
    #[test]
    fn hostile_delay_stamps_read_in_range() {
        for stamp in [
            "-1",
            "1e12",
            "1e300",
            "-1e300",
            "NaN",
            "99999999999999999999",
        ] {
            let m = Message::try_from(el(&format!(
                "<message xmlns='jabber:client' type='chat'><body>x</body>\
                 <delay xmlns='urn:xmpp:delay' stamp='{stamp}'/></message>"
            )))
            .unwrap();
            if let Delay::Valid(t) = delay(&m) {
                assert!(
                    (crate::time::MIN_MICROS..=crate::time::MAX_MICROS).contains(&t),
                    "{stamp}"
                );
                assert_eq!(crate::time::parse(&crate::time::rfc3339(t)), Some(t));
            }
        }
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::option::of;
    use proptest::prelude::*;
    use proptest::sample::select;
    use tokio_xmpp::minidom::Node;
    use tokio_xmpp::minidom::rxml::NcName;

    const SHOWS: &[Show] = &[
        Show::Available,
        Show::Away,
        Show::Xa,
        Show::Dnd,
        Show::Chat,
        Show::Unavailable,
    ];

    /// Text XML can carry, mostly ASCII.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[ -~\t\n]{0,12}",
            1 => r"[^\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]{0,12}",
        ]
    }

    /// A delay stamp: times of every form, numbers of every size, junk.
    fn stamp() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?[0-9]{1,14}(\\.[0-9]{0,8})?",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?",
            any::<f64>().prop_map(|f| f.to_string()),
            text(),
        ]
    }

    fn build(
        name: &str,
        ns: &str,
        attrs: Vec<(&'static str, String)>,
        children: Vec<Node>,
    ) -> Element {
        let mut b = Element::builder(name, ns);
        for (k, v) in attrs {
            if let Ok(k) = NcName::try_from(k) {
                b = b.attr(k, v);
            }
        }
        b.append_all(children).build()
    }

    /// A stanza's children as a stranger may send them: known names in known and
    /// unknown namespaces, nested, with any attribute values.
    fn child() -> impl Strategy<Value = Element> {
        let names = &[
            "body", "subject", "thread", "delay", "show", "status", "priority", "x",
        ][..];
        let nss = &[ns::DEFAULT_NS, ns::DELAY, "urn:other"][..];
        let attrs =
            || prop::collection::vec((select(&["stamp", "from", "xml", "id"][..]), stamp()), 0..3);
        let leaf = (select(names), select(nss), attrs(), text())
            .prop_map(|(n, s, a, t)| build(n, s, a, vec![Node::Text(t)]));
        leaf.prop_recursive(3, 24, 4, move |inner| {
            (
                select(names),
                select(nss),
                attrs(),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(n, s, a, c)| build(n, s, a, c.into_iter().map(Node::Element).collect()))
        })
    }

    /// A `<message/>` or `<presence/>` with any children and attributes, as read
    /// from the stream (written and parsed back).
    fn stanza(name: &'static str) -> impl Strategy<Value = Element> {
        let types = &[
            "chat",
            "normal",
            "groupchat",
            "headline",
            "error",
            "unavailable",
            "subscribe",
            "probe",
            "bogus",
            "",
        ][..];
        (
            of(select(types)),
            of(select(
                &["bob@example.org/a", "example.org", "bad@@jid", ""][..],
            )),
            prop::collection::vec(child(), 0..5),
        )
            .prop_map(move |(t, from, children)| {
                let mut attrs = Vec::new();
                if let Some(t) = t {
                    attrs.push(("type", t.to_owned()));
                }
                if let Some(f) = from {
                    attrs.push(("from", f.to_owned()));
                }
                let e = build(
                    name,
                    ns::DEFAULT_NS,
                    attrs,
                    children.into_iter().map(Node::Element).collect(),
                );
                String::from(&e).parse().expect("reads back")
            })
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config())]

        /// Our own presence, as a contact's, reads back as what we set.
        #[test]
        fn own_presence_reads_back(show in select(SHOWS), status in of(text()), priority in any::<i8>()) {
            let el: Element = own_presence(show, status.as_deref(), priority).into();
            let mut p = Presence::try_from(el).map_err(|e| TestCaseError::fail(e.to_string()))?;
            p.from = Some("bob@example.org/a".parse().expect("a JID"));
            prop_assert_eq!(
                read_presence(&p),
                PresenceUpdate::Contact(ContactPresence {
                    jid: "bob@example.org/a".into(),
                    show,
                    status: status.filter(|s| !s.is_empty()),
                    priority,
                })
            );
        }

        /// Any delay stamp reads as nothing or as a time in range, which is written
        /// and read back.
        #[test]
        fn delay_stamps_read_in_range(s in stamp()) {
            let e = Element::builder("message", ns::DEFAULT_NS)
                .append(build("delay", ns::DELAY, vec![("stamp", s)], vec![]))
                .build();
            let m = Message::try_from(e).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Delay::Valid(d) = delay(&m) {
                prop_assert!((crate::time::MIN_MICROS..=crate::time::MAX_MICROS).contains(&d));
                prop_assert_eq!(crate::time::parse(&crate::time::rfc3339(d)), Some(d));
            }
        }

        /// Any message the parser accepts: body and delay read without a panic.
        #[test]
        fn any_message_is_read(e in stanza("message")) {
            if let Ok(m) = Message::try_from(e) {
                prop_assert!(body(&m).is_none_or(|b| !b.is_empty()));
                let _ = delay(&m);
                let _ = message_type_name(&m.type_);
            }
        }

        /// Any presence the parser accepts reads without a panic.
        #[test]
        fn any_presence_is_read(e in stanza("presence")) {
            if let Ok(p) = Presence::try_from(e) {
                let _ = read_presence(&p);
            }
        }

        /// Any payload: classified without a panic.
        #[test]
        fn any_payload_is_classified(e in child(), get in any::<bool>(), me in any::<bool>()) {
            let _ = classify_request(&e, get, me);
        }
    }
}
