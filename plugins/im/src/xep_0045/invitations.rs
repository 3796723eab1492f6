//! Invitations to rooms: XEP-0249 direct invitations, sent and received, and the
//! room-mediated ones of XEP-0045 §7.8.2, received.
//!
//! Why in the group chat plugin: an invitation names a room and, for a protected
//! room, carries its password, which only this plugin knows (it is never stored by
//! perchd); accepting one is a join, this plugin's work.
//!
//! A received invitation is kept like a message: filed under the inviter, with the
//! invitation in `extra.invitation` = `{room, from, reason, password}`, and
//! signalled (`invitation`) so a frontend can offer to join. A direct invitation
//! has no text of its own; one without a body gets a short one, so that frontends
//! that only show bodies still show something, and the history has it. Joining is
//! `muc_join` with the room and password: nothing is joined behind the user's back.

use std::sync::Arc;

use perch_actions::muc::{InviteArgs, Invited};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::points::StoredMessage;
use perch_plugin_api::{Host, HostError};
use serde::Serialize;
use serde_json::json;

use super::{Muc, signal, xml};
use perch_codec::dom::Attr;

pub const NS_CONFERENCE: &str = "jabber:x:conference";

/// An invitation read from a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub room: String,
    /// Who invites (bare JID).
    pub from: String,
    pub reason: Option<String>,
    pub password: Option<String>,
}

/// A direct invitation to `room` (XEP-0249 §2), sent to `to`.
pub fn direct(
    to: perch_plugin_api::jid::Jid,
    room: &str,
    reason: Option<&str>,
    password: Option<&str>,
) -> Message {
    let mut x = Element::builder("x", NS_CONFERENCE).a("jid", room);
    if let Some(p) = password {
        x = x.a("password", p);
    }
    if let Some(r) = reason {
        x = x.a("reason", r);
    }
    let mut m = Message::new_with_type(MessageType::Normal, Some(to));
    m.payloads.push(x.build());
    m
}

/// The invitation a message carries: a direct one (any sender), or one mediated by
/// the room (from the room's bare JID, the inviter inside).
pub fn read(m: &Message) -> Option<Invitation> {
    let from = m.from.as_ref()?;
    if let Some(x) = m.payloads.iter().find(|p| p.is("x", NS_CONFERENCE)) {
        let room = x.attr("jid").filter(|r| valid_room(r))?;
        return Some(Invitation {
            room: room.to_owned(),
            from: from.to_bare().to_string(),
            reason: x
                .attr("reason")
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            password: x.attr("password").map(str::to_owned),
        });
    }
    let x = m.payloads.iter().find(|p| p.is("x", xml::NS_USER))?;
    let invite = x.get_child("invite", xml::NS_USER)?;
    let inviter = invite
        .attr("from")?
        .parse::<perch_plugin_api::jid::Jid>()
        .ok()?;
    let child = |e: &Element, name: &str| {
        e.get_child(name, xml::NS_USER)
            .map(Element::text)
            .filter(|t| !t.is_empty())
    };
    Some(Invitation {
        room: from.to_bare().to_string(),
        from: inviter.to_bare().to_string(),
        reason: child(invite, "reason"),
        password: child(x, "password"),
    })
}

fn valid_room(room: &str) -> bool {
    room.parse::<perch_plugin_api::jid::Jid>()
        .is_ok_and(|j| j.node().is_some() && j.resource().is_none())
}

/// Gives a bodiless invitation a short text, so that it is stored and shown; the
/// message goes on to the core, filed under the inviter (a mediated invitation
/// comes from the room: it is filed under the inviter all the same).
pub(super) fn on_received(m: &mut Message, peer: &mut Option<String>) -> bool {
    let Some(inv) = read(m) else {
        return false;
    };
    if m.bodies.is_empty() {
        let text = match &inv.reason {
            Some(r) => format!("Invitation to {}: {r}", inv.room),
            None => format!("Invitation to {}", inv.room),
        };
        m.bodies.insert(Lang(String::new()), text);
    }
    if m.from
        .as_ref()
        .is_some_and(|f| f.to_bare().to_string() == inv.room)
    {
        *peer = Some(inv.from);
    }
    true
}

/// `message.stored`: the stored invitation gets `extra.invitation`, and frontends
/// hear of it.
pub(super) async fn on_stored(host: &Arc<dyn Host>, stored: &StoredMessage) {
    let Some(inv) = read(&stored.message) else {
        return;
    };
    let profile = &stored.profile;
    let value = serde_json::to_value(&inv).unwrap_or_default();
    if let Err(e) = host
        .set_message_extra(profile, &stored.id, "invitation", value)
        .await
    {
        tracing::warn!(%profile, room = %inv.room, error = %e, "keeping an invitation's details failed");
    }
    tracing::info!(%profile, room = %inv.room, from = %inv.from, "invited to a room");
    host.emit(
        signal::INVITATION,
        profile,
        json!({"room": inv.room, "from": inv.from, "reason": inv.reason,
               "password": inv.password, "id": stored.id}),
    );
}

/// `muc_invite`: to any room (we need not be in it); the password is the one given,
/// else the one we joined with.
pub(super) async fn invite(
    m: Arc<Muc>,
    profile: String,
    a: InviteArgs,
) -> Result<Invited, HostError> {
    let room = super::actions::room(&a.room)?.to_bare().to_string();
    let to = jid_arg("jid", &a.jid)?.to_bare();
    let password = match a.password.filter(|p| !p.is_empty()) {
        Some(p) => Some(p),
        None => m
            .with_room(&profile, &room, |r| r.password.clone())
            .flatten(),
    };
    let reason = a.reason.filter(|r| !r.is_empty());
    let msg = direct(
        to.clone().into(),
        &room,
        reason.as_deref(),
        password.as_deref(),
    );
    m.host.send(&profile, msg.into()).await?;
    tracing::info!(%profile, %room, %to, "invitation sent");
    Ok(Invited {
        room,
        jid: to.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml: &str) -> Message {
        let e: Element = xml.parse().expect("xml");
        Message::try_from(e).expect("message")
    }

    #[test]
    fn a_direct_invitation_both_ways() {
        let m = direct(
            "bob@x".parse().unwrap(),
            "team@conf.x",
            Some("come"),
            Some("pw"),
        );
        let xml = String::from(&Element::from(m));
        assert!(
            xml.contains(
                "<x xmlns='jabber:x:conference' jid='team@conf.x' password='pw' reason='come'/>"
            ),
            "{xml}"
        );
        let received = message(
            "<message xmlns='jabber:client' from='alice@x/phone' to='bob@x'>\
             <x xmlns='jabber:x:conference' jid='team@conf.x' password='pw' reason='come'/></message>",
        );
        assert_eq!(
            read(&received),
            Some(Invitation {
                room: "team@conf.x".into(),
                from: "alice@x".into(),
                reason: Some("come".into()),
                password: Some("pw".into()),
            })
        );
    }

    #[test]
    fn a_mediated_invitation_is_filed_under_the_inviter() {
        let mut m = message(
            "<message xmlns='jabber:client' from='team@conf.x' to='bob@x'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <invite from='alice@x/phone'><reason>come</reason></invite>\
             <password>pw</password></x></message>",
        );
        let mut peer = None;
        assert!(on_received(&mut m, &mut peer));
        assert_eq!(peer.as_deref(), Some("alice@x"));
        assert_eq!(
            m.bodies.get(&Lang(String::new())).map(String::as_str),
            Some("Invitation to team@conf.x: come")
        );
        assert_eq!(read(&m).and_then(|i| i.password).as_deref(), Some("pw"));
    }

    #[test]
    fn not_an_invitation() {
        let mut m = message(
            "<message xmlns='jabber:client' from='alice@x/phone'><body>hi</body>\
             <x xmlns='jabber:x:conference' jid='not a room'/></message>",
        );
        let mut peer = None;
        assert!(!on_received(&mut m, &mut peer));
        assert!(peer.is_none());
    }
}
