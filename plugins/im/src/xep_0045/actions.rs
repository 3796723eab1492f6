//! The group chat actions (`muc_*`), what frontends and `perch muc` call.
//!
//! Each is declared (doc, parameters, argument and result types) in
//! `perch_actions::muc`; here is only what it does.

use std::sync::Arc;

use perch_actions::NoArgs;
use perch_actions::muc::{
    self as actions, BanArgs, Banned, BookmarkArgs, DestroyArgs, JoinArgs, KickArgs, PmArgs,
    RoomArgs, RoomNick, RoomSubject, SayArgs,
};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::parsers::message::{Message, MessageType};
use perch_plugin_api::{HostError, Serve};
use serde_json::{Value, json};

use super::{Muc, bad, bookmarks, default_nick, lock, xml};

type Answer<T> = Result<T, HostError>;

pub(super) fn register(m: &Arc<Muc>) {
    let host = &m.host;
    host.serve(actions::Join, m.clone(), join);
    host.serve(
        actions::Leave,
        m.clone(),
        |m, profile, a: RoomArgs| async move { m.leave(&profile, &room(&a.room)?).await },
    );
    host.serve(actions::List, m.clone(), list);
    host.serve(actions::Occupants, m.clone(), occupants);
    host.serve(actions::Say, m.clone(), say);
    host.serve(actions::Pm, m.clone(), pm);
    host.serve(actions::Subject, m.clone(), subject);
    host.serve(actions::Nick, m.clone(), |m, profile, a: RoomNick| async move {
        m.change_nick(&profile, &room(&a.room)?, &a.nick).await
    });
    host.serve(actions::Kick, m.clone(), kick);
    host.serve(actions::Ban, m.clone(), ban);
    host.serve(actions::Destroy, m.clone(), destroy);
    host.serve(actions::Bookmarks, m.clone(), bookmarked);
    host.serve(actions::Config, m.clone(), super::config::config);
    host.serve(actions::Configure, m.clone(), super::config::configure);
    host.serve(actions::Invite, m.clone(), super::invitations::invite);
    host.serve(actions::BookmarkSet, m.clone(), bookmark_set);
    host.serve(actions::BookmarkRemove, m.clone(), bookmark_remove);
}

/// `muc_list`.
async fn list(m: Arc<Muc>, profile: String, _: NoArgs) -> Answer<Vec<Value>> {
    let all = lock(&m.rooms);
    Ok(all
        .get(&profile)
        .map(|rooms| rooms.iter().map(|(k, r)| r.summary(k)).collect())
        .unwrap_or_default())
}

/// `muc_occupants`.
async fn occupants(m: Arc<Muc>, profile: String, a: RoomArgs) -> Answer<Value> {
    let room = room(&a.room)?.to_bare().to_string();
    m.with_room(&profile, &room, |r| {
        json!({"room": room, "nick": r.nick, "joined": r.joined, "subject": r.subject,
               "occupants": r.occupants.values().collect::<Vec<_>>(), "codes": r.codes})
    })
    .ok_or_else(|| bad(format!("not in room {room}")))
}

/// `muc_say`.
async fn say(m: Arc<Muc>, profile: String, a: SayArgs) -> Answer<Value> {
    let room = joined_room(&m, &profile, &a.room)?;
    let mut msg = Message::new(Some(room.to_bare().into()));
    msg.type_ = MessageType::Groupchat;
    msg.bodies.insert(Default::default(), text("text", a.text)?);
    to_value(m.host.send_message(&profile, msg).await?)
}

/// `muc_pm`.
async fn pm(m: Arc<Muc>, profile: String, a: PmArgs) -> Answer<Value> {
    let room = joined_room(&m, &profile, &a.room)?;
    let to = xml::occupant(&room, &a.nick).map_err(bad)?;
    let mut msg = Message::new(Some(to));
    msg.type_ = MessageType::Chat;
    msg.bodies.insert(Default::default(), text("text", a.text)?);
    to_value(m.host.send_message(&profile, msg).await?)
}

/// `muc_subject`.
async fn subject(m: Arc<Muc>, profile: String, a: RoomSubject) -> Answer<RoomSubject> {
    let room = joined_room(&m, &profile, &a.room)?;
    m.host
        .send(&profile, xml::subject(&room, &a.subject))
        .await?;
    Ok(RoomSubject {
        room: room.to_bare().to_string(),
        subject: a.subject,
    })
}

/// `muc_kick`.
async fn kick(m: Arc<Muc>, profile: String, a: KickArgs) -> Answer<RoomNick> {
    let room = joined_room(&m, &profile, &a.room)?;
    m.host
        .iq(
            &profile,
            Some(room.to_bare().into()),
            true,
            xml::kick(&a.nick, a.reason.as_deref()),
        )
        .await?;
    Ok(RoomNick {
        room: room.to_bare().to_string(),
        nick: a.nick,
    })
}

/// `muc_ban`.
async fn ban(m: Arc<Muc>, profile: String, a: BanArgs) -> Answer<Banned> {
    let room = joined_room(&m, &profile, &a.room)?;
    let jid = jid_arg("jid", &a.jid)?.to_bare().to_string();
    m.host
        .iq(
            &profile,
            Some(room.to_bare().into()),
            true,
            xml::ban(&jid, a.reason.as_deref()),
        )
        .await?;
    Ok(Banned {
        room: room.to_bare().to_string(),
        jid,
    })
}

/// `muc_destroy`.
async fn destroy(m: Arc<Muc>, profile: String, a: DestroyArgs) -> Answer<RoomArgs> {
    let room = joined_room(&m, &profile, &a.room)?;
    m.host
        .iq(
            &profile,
            Some(room.to_bare().into()),
            true,
            xml::destroy(a.reason.as_deref()),
        )
        .await?;
    Ok(RoomArgs {
        room: room.to_bare().to_string(),
    })
}

/// `muc_bookmarks`.
async fn bookmarked(m: Arc<Muc>, profile: String, _: NoArgs) -> Answer<Vec<Value>> {
    let list = match m.host.iq(&profile, None, false, bookmarks::request()).await {
        Ok(reply) => bookmarks::read(reply.as_ref()),
        Err(HostError::Stanza(e)) if e.condition == "item-not-found" => Vec::new(),
        Err(e) => return Err(e),
    };
    list.into_iter().map(to_value).collect()
}

/// `muc_bookmark_set`: published even when new and not autojoin (unlike the
/// bookmark a join or leave keeps up to date).
async fn bookmark_set(m: Arc<Muc>, profile: String, a: BookmarkArgs) -> Answer<RoomArgs> {
    let room = room(&a.room)?.to_bare().to_string();
    let existing = match m.host.iq(&profile, None, false, bookmarks::request()).await {
        Ok(reply) => bookmarks::read(reply.as_ref())
            .into_iter()
            .find(|b| b.room == room),
        Err(HostError::Stanza(e)) if e.condition == "item-not-found" => None,
        Err(e) => return Err(e),
    };
    let mut b = existing.unwrap_or_else(|| bookmarks::Bookmark::new(&room));
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    b.name = given(a.name).or(b.name);
    b.nick = given(a.nick).or(b.nick);
    b.password = given(a.password).or(b.password);
    b.autojoin = a.autojoin;
    m.host
        .iq(&profile, None, true, bookmarks::publish(&b))
        .await?;
    Ok(RoomArgs { room })
}

/// `muc_bookmark_remove`.
async fn bookmark_remove(m: Arc<Muc>, profile: String, a: RoomArgs) -> Answer<RoomArgs> {
    let room = room(&a.room)?.to_bare().to_string();
    let retract =
        perch_codec::xep_0060::xml::retract(bookmarks::NODE, std::slice::from_ref(&room), true);
    match m.host.iq(&profile, None, true, retract).await {
        Ok(_) => {}
        Err(HostError::Stanza(e)) if e.condition == "item-not-found" => {}
        Err(e) => return Err(e),
    }
    Ok(RoomArgs { room })
}

fn to_value(v: impl serde::Serialize) -> Answer<Value> {
    serde_json::to_value(v).map_err(|e| HostError::Internal(e.to_string()))
}

/// The `room` argument, which must be a room's bare JID.
pub(super) fn room(room: &str) -> Result<Jid, HostError> {
    let j = jid_arg("room", room)?;
    if j.node().is_none() || j.resource().is_some() {
        return Err(bad(format!(
            "room: {j} is not a room's bare JID (room@service)"
        )));
    }
    Ok(j)
}

/// The room of the call, which we must be in.
pub(super) fn joined_room(m: &Muc, profile: &str, room_arg: &str) -> Result<Jid, HostError> {
    let j = room(room_arg)?;
    let bare = j.to_bare().to_string();
    match m.with_room(profile, &bare, |r| r.joined) {
        Some(true) => Ok(j),
        Some(false) => Err(bad(format!("not in room {bare} yet (joining)"))),
        None => Err(bad(format!("not in room {bare} (join it first)"))),
    }
}

fn text(name: &str, t: String) -> Result<String, HostError> {
    if t.is_empty() {
        return Err(bad(format!("{name}: empty")));
    }
    Ok(t)
}

/// `muc_join`.
async fn join(m: Arc<Muc>, profile: String, a: JoinArgs) -> Answer<Value> {
    let room = room(&a.room)?;
    let nick = match a.nick.filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => default_nick(&*m.host, &profile).await,
    };
    m.join_patiently(&profile, &room, &nick, a.password, true)
        .await
}
