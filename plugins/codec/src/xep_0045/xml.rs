//! What a room sends and what we send it, read and built with minidom.
//!
//! Why by hand: a room's presence mixes the core's fields (show, status) with the
//! `muc#user` payload (item, status codes, destroy), and a single misread code
//! changes its meaning (303 is a nick change, not a departure; 110 marks our own
//! presence). Reading the few elements we need in one place, tested on the literal
//! stanzas rooms send, keeps that meaning in one function.

use std::collections::BTreeSet;

use crate::StanzaError;
use crate::jid::Jid;
use crate::minidom::Element;
use crate::parsers::message::{Message, MessageType};
use crate::parsers::presence::{Presence, Show, Type};
use serde::Serialize;

use crate::dom::Attr;

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_CLIENT: &str = "jabber:client";
const NS_DATA: &str = "jabber:x:data";

/// Status codes (XEP-0045 §15.6) this plugin acts on.
pub mod code {
    /// This presence is our own.
    pub const SELF: u16 = 110;
    /// The room was just created (and is locked until configured).
    pub const CREATED: u16 = 201;
    pub const BANNED: u16 = 301;
    /// A nick change: the unavailable presence names the new nick.
    pub const NICK_CHANGED: u16 = 303;
    pub const KICKED: u16 = 307;
    pub const AFFILIATION_CHANGED: u16 = 321;
    pub const MEMBERS_ONLY: u16 = 322;
    pub const SHUTDOWN: u16 = 332;
}

/// One occupant of a room, as frontends get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occupant {
    pub nick: String,
    /// The occupant's real JID, when the room tells it (non-anonymous rooms, or to
    /// moderators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    /// moderator, participant, visitor, none.
    pub role: String,
    /// owner, admin, member, outcast, none.
    pub affiliation: String,
    /// available, away, chat, dnd, xa.
    pub show: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A room's presence for one occupant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantPresence {
    pub occupant: Occupant,
    pub available: bool,
    pub codes: BTreeSet<u16>,
    /// With 303: the occupant's new nick.
    pub new_nick: Option<String>,
    /// Why (a kick's or ban's reason, a destruction's).
    pub reason: Option<String>,
    /// Who did it (kick, ban), by nick or JID.
    pub actor: Option<String>,
    /// The room was destroyed; the alternate room if given.
    pub destroyed: Option<Option<String>>,
}

impl OccupantPresence {
    /// Why an unavailable occupant is gone: `left`, `kicked`, `banned`, `destroyed`,
    /// `affiliation_changed`, `members_only`, `shutdown`.
    pub fn departure(&self) -> &'static str {
        if self.destroyed.is_some() {
            "destroyed"
        } else if self.codes.contains(&code::BANNED) {
            "banned"
        } else if self.codes.contains(&code::KICKED) {
            "kicked"
        } else if self.codes.contains(&code::AFFILIATION_CHANGED) {
            "affiliation_changed"
        } else if self.codes.contains(&code::MEMBERS_ONLY) {
            "members_only"
        } else if self.codes.contains(&code::SHUTDOWN) {
            "shutdown"
        } else {
            "left"
        }
    }
}

/// What a presence from a room's JID is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomPresence {
    /// An occupant's presence (ours when `codes` holds 110).
    Occupant(Box<OccupantPresence>),
    /// The room refused a presence of ours to `nick` (join, nick change).
    Error { nick: String, error: StanzaError },
    /// Not from an occupant (no nick), or a type rooms do not send.
    Other,
}

fn show_name(s: Option<&Show>) -> &'static str {
    match s {
        None => "available",
        Some(Show::Away) => "away",
        Some(Show::Chat) => "chat",
        Some(Show::Dnd) => "dnd",
        Some(Show::Xa) => "xa",
    }
}

fn text_of(e: Option<&Element>) -> Option<String> {
    e.map(Element::text).filter(|t| !t.is_empty())
}

/// Reads a presence from a room's occupant JID (`room@service/nick`).
pub fn read_presence(p: &Presence) -> RoomPresence {
    let Some(nick) = p
        .from
        .as_ref()
        .and_then(|f| f.resource())
        .map(|r| r.to_string())
    else {
        return RoomPresence::Other;
    };
    let available = match p.type_ {
        Type::None => true,
        Type::Unavailable => false,
        Type::Error => {
            let error = p
                .payloads
                .iter()
                .find(|e| e.name() == "error")
                .map(StanzaError::from_element)
                .unwrap_or_else(|| StanzaError::new("undefined-condition", None));
            return RoomPresence::Error { nick, error };
        }
        _ => return RoomPresence::Other,
    };
    let x = p.payloads.iter().find(|e| e.is("x", NS_USER));
    let item = x.and_then(|x| x.get_child("item", NS_USER));
    let codes = x
        .map(|x| {
            x.children()
                .filter(|c| c.is("status", NS_USER))
                .filter_map(|c| c.attr("code")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let destroy = x.and_then(|x| x.get_child("destroy", NS_USER));
    let attr = |name: &str| item.and_then(|i| i.attr(name)).map(str::to_owned);
    let status = p
        .statuses
        .values()
        .next()
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty());
    RoomPresence::Occupant(Box::new(OccupantPresence {
        occupant: Occupant {
            nick,
            jid: attr("jid"),
            role: attr("role").unwrap_or_else(|| "none".into()),
            affiliation: attr("affiliation").unwrap_or_else(|| "none".into()),
            show: show_name(p.show.as_ref()).to_owned(),
            status,
        },
        available,
        codes,
        new_nick: attr("nick"),
        reason: text_of(item.and_then(|i| i.get_child("reason", NS_USER)))
            .or_else(|| text_of(destroy.and_then(|d| d.get_child("reason", NS_USER)))),
        actor: item
            .and_then(|i| i.get_child("actor", NS_USER))
            .and_then(|a| a.attr("nick").or_else(|| a.attr("jid")))
            .map(str::to_owned),
        destroyed: destroy.map(|d| d.attr("jid").map(str::to_owned)),
    }))
}

/// Whether a presence carries the `muc#user` payload (it is from some room).
pub fn is_room_presence(p: &Presence) -> bool {
    p.payloads.iter().any(|e| e.is("x", NS_USER))
}

/// The presence that joins `room` as `nick` (or changes nick: the same stanza
/// without the `muc` payload is enough, but rooms accept it). `history: false`
/// asks the room for no history (we catch up from its archive instead).
pub fn join(
    room: &Jid,
    nick: &str,
    password: Option<&str>,
    history: bool,
) -> Result<Element, String> {
    let to = occupant(room, nick)?;
    let mut x = Element::builder("x", NS_MUC);
    if !history {
        x = x.append(
            Element::builder("history", NS_MUC)
                .a("maxstanzas", "0")
                .build(),
        );
    }
    if let Some(pw) = password {
        x = x.append(Element::builder("password", NS_MUC).append(pw).build());
    }
    Ok(Element::builder("presence", NS_CLIENT)
        .a("to", to.to_string())
        .append(x.build())
        .build())
}

/// The presence changing our nick in a room.
pub fn change_nick(room: &Jid, nick: &str) -> Result<Element, String> {
    Ok(Element::builder("presence", NS_CLIENT)
        .a("to", occupant(room, nick)?.to_string())
        .build())
}

/// The presence leaving a room.
pub fn leave(room: &Jid, nick: &str) -> Result<Element, String> {
    Ok(Element::builder("presence", NS_CLIENT)
        .a("to", occupant(room, nick)?.to_string())
        .a("type", "unavailable")
        .build())
}

/// `room@service/nick`; a nick that is not a valid resource is refused.
pub fn occupant(room: &Jid, nick: &str) -> Result<Jid, String> {
    if nick.is_empty() {
        return Err("the nick is empty".into());
    }
    Jid::new(&format!("{}/{nick}", room.to_bare()))
        .map_err(|e| format!("{nick:?} cannot be a nick: {e}"))
}

/// The owner's answer that unlocks a new room as an instant room (default
/// configuration).
pub fn instant_room() -> Element {
    Element::builder("query", NS_OWNER)
        .append(Element::builder("x", NS_DATA).a("type", "submit").build())
        .build()
}

/// The `FORM_TYPE` of a room's configuration form.
pub const NS_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";

/// The owner's request for the room's configuration form.
pub fn config_request() -> Element {
    Element::builder("query", NS_OWNER).build()
}

/// The owner's new configuration: these fields (`{var: value}`, see
/// [`crate::xep_0004::submit`]) changed, the others kept as the room has them.
pub fn config_submit(values: &serde_json::Map<String, serde_json::Value>) -> Element {
    Element::builder("query", NS_OWNER)
        .append(crate::xep_0004::submit(NS_ROOMCONFIG, values))
        .build()
}

/// The configuration form in the room's answer to [`config_request`].
pub fn config_form(answer: Option<&Element>) -> Option<&Element> {
    answer
        .filter(|q| q.is("query", NS_OWNER))
        .and_then(crate::xep_0004::find)
}

/// A moderator's request to kick `nick`.
pub fn kick(nick: &str, reason: Option<&str>) -> Element {
    let mut item = Element::builder("item", NS_ADMIN)
        .a("nick", nick)
        .a("role", "none");
    if let Some(r) = reason {
        item = item.append(Element::builder("reason", NS_ADMIN).append(r).build());
    }
    Element::builder("query", NS_ADMIN)
        .append(item.build())
        .build()
}

/// An admin's request to ban `jid` (affiliation `outcast`).
pub fn ban(jid: &str, reason: Option<&str>) -> Element {
    let mut item = Element::builder("item", NS_ADMIN)
        .a("jid", jid)
        .a("affiliation", "outcast");
    if let Some(r) = reason {
        item = item.append(Element::builder("reason", NS_ADMIN).append(r).build());
    }
    Element::builder("query", NS_ADMIN)
        .append(item.build())
        .build()
}

/// The owner's request to destroy the room.
pub fn destroy(reason: Option<&str>) -> Element {
    let mut d = Element::builder("destroy", NS_OWNER);
    if let Some(r) = reason {
        d = d.append(Element::builder("reason", NS_OWNER).append(r).build());
    }
    Element::builder("query", NS_OWNER)
        .append(d.build())
        .build()
}

/// A message setting a room's subject.
pub fn subject(room: &Jid, subject: &str) -> Element {
    Element::builder("message", NS_CLIENT)
        .a("to", room.to_bare().to_string())
        .a("type", "groupchat")
        .append(
            Element::builder("subject", NS_CLIENT)
                .append(subject)
                .build(),
        )
        .build()
}

/// A group chat message's subject change: `Some(subject)` ("" when cleared) for a
/// message with a `<subject/>` and no body (XEP-0045 §8.1).
pub fn subject_change(m: &Message) -> Option<String> {
    if m.type_ != MessageType::Groupchat || !m.bodies.is_empty() || m.subjects.is_empty() {
        return None;
    }
    let s = m
        .subjects
        .get("")
        .or_else(|| m.subjects.values().next())
        .cloned()
        .unwrap_or_default();
    Some(s)
}

/// Whether a disco#info answer lists `feature`.
pub fn has_feature(info: Option<&Element>, feature: &str) -> bool {
    info.is_some_and(|q| {
        q.children()
            .any(|c| c.is("feature", NS_DISCO_INFO) && c.attr("var") == Some(feature))
    })
}

/// The `muc#user` marker of a private message to an occupant.
pub fn pm_marker() -> Element {
    Element::builder("x", NS_USER).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml: &str) -> Presence {
        let e: Element = xml.parse().expect("xml");
        Presence::try_from(e).expect("presence")
    }

    fn occupant_of(xml: &str) -> OccupantPresence {
        match read_presence(&presence(xml)) {
            RoomPresence::Occupant(o) => *o,
            other => panic!("not an occupant presence: {other:?}"),
        }
    }

    #[test]
    fn self_presence_of_a_new_room() {
        let o = occupant_of(
            "<presence xmlns='jabber:client' from='r@conf.x/alice' to='alice@x/perch'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='owner' role='moderator' jid='alice@x/perch'/>\
             <status code='110'/><status code='201'/></x></presence>",
        );
        assert!(o.available);
        assert!(o.codes.contains(&code::SELF) && o.codes.contains(&code::CREATED));
        assert_eq!(o.occupant.nick, "alice");
        assert_eq!(o.occupant.role, "moderator");
        assert_eq!(o.occupant.affiliation, "owner");
        assert_eq!(o.occupant.jid.as_deref(), Some("alice@x/perch"));
        assert_eq!(o.occupant.show, "available");
    }

    #[test]
    fn another_occupant_with_show_and_status() {
        let o = occupant_of(
            "<presence xmlns='jabber:client' from='r@conf.x/bob'><show>away</show>\
             <status>lunch</status><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='participant'/></x></presence>",
        );
        assert!(o.codes.is_empty());
        assert_eq!(o.occupant.show, "away");
        assert_eq!(o.occupant.status.as_deref(), Some("lunch"));
        assert_eq!(o.occupant.jid, None);
        assert_eq!(o.departure(), "left");
    }

    #[test]
    fn nick_change_names_the_new_nick() {
        let o = occupant_of(
            "<presence xmlns='jabber:client' from='r@conf.x/bob' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='participant' nick='robert'/>\
             <status code='303'/></x></presence>",
        );
        assert!(!o.available);
        assert!(o.codes.contains(&code::NICK_CHANGED));
        assert_eq!(o.new_nick.as_deref(), Some("robert"));
    }

    #[test]
    fn kicked_banned_and_destroyed() {
        let kicked = occupant_of(
            "<presence xmlns='jabber:client' from='r@conf.x/carol' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'><actor nick='alice'/><reason>spam</reason></item>\
             <status code='307'/><status code='110'/></x></presence>",
        );
        assert_eq!(kicked.departure(), "kicked");
        assert_eq!(kicked.reason.as_deref(), Some("spam"));
        assert_eq!(kicked.actor.as_deref(), Some("alice"));
        assert!(kicked.codes.contains(&code::SELF));

        let banned = occupant_of(
            "<presence xmlns='jabber:client' from='r@conf.x/carol' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='outcast' role='none'/><status code='301'/></x></presence>",
        );
        assert_eq!(banned.departure(), "banned");

        let destroyed = occupant_of(
            "<presence xmlns='jabber:client' from='r@conf.x/carol' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'/>\
             <destroy jid='new@conf.x'><reason>moved</reason></destroy></x></presence>",
        );
        assert_eq!(destroyed.departure(), "destroyed");
        assert_eq!(destroyed.destroyed, Some(Some("new@conf.x".into())));
        assert_eq!(destroyed.reason.as_deref(), Some("moved"));
    }

    #[test]
    fn join_errors_are_typed() {
        let p = presence(
            "<presence xmlns='jabber:client' from='r@conf.x/alice' type='error'>\
             <x xmlns='http://jabber.org/protocol/muc'/>\
             <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>\
             </presence>",
        );
        match read_presence(&p) {
            RoomPresence::Error { nick, error } => {
                assert_eq!(nick, "alice");
                assert_eq!(error.condition, "conflict");
            }
            other => panic!("{other:?}"),
        }
        let p = presence(
            "<presence xmlns='jabber:client' from='r@conf.x/alice' type='error'>\
             <error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>password required</text></error>\
             </presence>",
        );
        let RoomPresence::Error { error, .. } = read_presence(&p) else {
            panic!("not an error")
        };
        assert_eq!(error.condition, "not-authorized");
        assert_eq!(error.text.as_deref(), Some("password required"));
    }

    #[test]
    fn presences_without_a_nick_are_not_occupants() {
        let p = presence("<presence xmlns='jabber:client' from='r@conf.x'/>");
        assert_eq!(read_presence(&p), RoomPresence::Other);
        assert!(!is_room_presence(&p));
    }

    #[test]
    fn ban_and_destroy_xml() {
        assert_eq!(
            String::from(&ban("mallory@x", Some("spam"))),
            "<query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item affiliation='outcast' jid='mallory@x'><reason>spam</reason></item></query>"
        );
        assert_eq!(
            String::from(&destroy(None)),
            "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query>"
        );
    }

    #[test]
    fn join_and_leave_xml() {
        let room: Jid = "r@conf.x".parse().unwrap();
        let j = join(&room, "alice", Some("s3cret"), true).unwrap();
        assert_eq!(
            String::from(&j),
            "<presence xmlns='jabber:client' to='r@conf.x/alice'>\
             <x xmlns='http://jabber.org/protocol/muc'><password>s3cret</password></x></presence>"
        );
        let quiet = join(&room, "alice", None, false).unwrap();
        assert_eq!(
            String::from(&quiet),
            "<presence xmlns='jabber:client' to='r@conf.x/alice'>\
             <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
        );
        let l = leave(&room, "alice").unwrap();
        assert_eq!(
            String::from(&l),
            "<presence xmlns='jabber:client' to='r@conf.x/alice' type='unavailable'/>"
        );
        assert!(join(&room, "", None, true).is_err());
    }

    #[test]
    fn owner_and_admin_xml() {
        assert_eq!(
            String::from(&instant_room()),
            "<query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query>"
        );
        assert_eq!(
            String::from(&kick("carol", Some("spam"))),
            "<query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item nick='carol' role='none'><reason>spam</reason></item></query>"
        );
    }

    fn message(xml: &str) -> Message {
        let e: Element = xml.parse().expect("xml");
        Message::try_from(e).expect("message")
    }

    #[test]
    fn subjects_are_recognised() {
        let m = message(
            "<message xmlns='jabber:client' from='r@conf.x/alice' type='groupchat'>\
             <subject>Weekly sync</subject></message>",
        );
        assert_eq!(subject_change(&m).as_deref(), Some("Weekly sync"));
        let cleared = message(
            "<message xmlns='jabber:client' from='r@conf.x/alice' type='groupchat'><subject/></message>",
        );
        assert_eq!(subject_change(&cleared).as_deref(), Some(""));
        let with_body = message(
            "<message xmlns='jabber:client' from='r@conf.x/alice' type='groupchat'>\
             <subject>s</subject><body>hello</body></message>",
        );
        assert_eq!(subject_change(&with_body), None);
        let chat = message(
            "<message xmlns='jabber:client' from='r@conf.x/alice' type='chat'><subject>s</subject></message>",
        );
        assert_eq!(subject_change(&chat), None);
        let built = message(&String::from(&subject(
            &"r@conf.x".parse().unwrap(),
            "New topic",
        )));
        assert_eq!(
            built.to.as_ref().map(|t| t.to_string()).as_deref(),
            Some("r@conf.x")
        );
        assert_eq!(subject_change(&built).as_deref(), Some("New topic"));
    }

    #[test]
    fn room_configuration_request_and_submit() {
        assert_eq!(
            String::from(&config_request()),
            "<query xmlns='http://jabber.org/protocol/muc#owner'/>"
        );
        let mut values = serde_json::Map::new();
        values.insert("muc#roomconfig_roomsecret".into(), "pw".into());
        values.insert("muc#roomconfig_passwordprotectedroom".into(), true.into());
        assert_eq!(
            String::from(&config_submit(&values)),
            "<query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'>\
             <value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field var='muc#roomconfig_passwordprotectedroom'><value>true</value></field>\
             <field var='muc#roomconfig_roomsecret'><value>pw</value></field></x></query>"
        );
        let answer: Element = "<query xmlns='http://jabber.org/protocol/muc#owner'>\
            <x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'>\
            <value>http://jabber.org/protocol/muc#roomconfig</value></field>\
            <field var='muc#roomconfig_whois' type='list-single'><value>moderators</value>\
            <option><value>moderators</value></option><option><value>anyone</value></option>\
            </field></x></query>"
            .parse()
            .unwrap();
        let form = config_form(Some(&answer)).expect("the form");
        let j = crate::xep_0004::to_json(form);
        assert_eq!(j["form_type"], NS_ROOMCONFIG);
        assert_eq!(j["values"]["muc#roomconfig_whois"], "moderators");
        assert!(config_form(None).is_none());
    }

    #[test]
    fn archive_feature_is_read_from_disco() {
        let info: Element = "<query xmlns='http://jabber.org/protocol/disco#info'>\
            <identity category='conference' type='text' name='r'/>\
            <feature var='http://jabber.org/protocol/muc'/><feature var='urn:xmpp:mam:2'/></query>"
            .parse()
            .unwrap();
        assert!(has_feature(Some(&info), NS_MAM));
        assert!(!has_feature(Some(&info), "urn:xmpp:mam:1"));
        assert!(!has_feature(None, NS_MAM));
    }
}
