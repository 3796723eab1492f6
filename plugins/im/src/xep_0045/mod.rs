//! XEP-0045: Multi-User Chat, with XEP-0402 bookmarks as the list of rooms.
//!
//! Why it is shaped this way:
//! - **The core files the messages.** A room's messages go through `message.received`
//!   like any other, and the core stores them under the room's bare JID, recognising
//!   one it already has by the room's `stanza-id` or the sender's `origin-id` (join
//!   history, archive catch-up, reconnections). This plugin only says what the core
//!   cannot know: that the room's echo of our own message (from `room/our-nick`) went
//!   out, and that a private message from `room/nick` belongs to that occupant, not
//!   to the room. A subject change is no message: remembered, signalled, dropped.
//! - **Room presences are ours.** The core would take `room/nick` for a contact's
//!   resource; every presence from a room we are in (or any with the `muc#user`
//!   payload) is read here and stopped. Occupants live in memory, per session.
//! - **Joining waits for the room's word.** A join (or nick change) is done when our
//!   own presence comes back (status 110), and fails with the room's error presence
//!   as a typed `HostError::Stanza` (`Conflict`, `NotAuthorized`, …). The presence
//!   handler runs on the session's inbox and answers the waiting operation through a
//!   oneshot channel; operations run outside the inbox (actions, spawned tasks), so
//!   they may wait.
//! - **Rooms come back.** Each joined room is kept in the `muc_room` table (room and
//!   nick, never a password) and in the account's bookmarks (`autojoin`); at every
//!   session start — after a reconnection, after a perchd restart, on a fresh data
//!   directory — the union of both is joined again, and `room.joined` is fired after
//!   each join so the archive plugin catches up with the room.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::muc::{NickChanged, RoomNick};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::MessageType;
use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, MessageSend, MessageStored,
    OutgoingMessage, OutgoingPresence, PresenceReceived, PresenceSend, RoomJoined, RoomJoinedPoint,
    RoomOccupant, RoomOccupants, RoomOccupantsPoint, RoomQuery,
};
use perch_plugin_api::{
    BuildResult, Direction, Flow, Host, HostError, Plugin, PluginFactory, PluginInfo,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

mod actions;
pub mod bookmarks;
mod config;
pub mod invitations;
pub mod self_ping;
pub mod store;
pub use perch_codec::xep_0045::xml;

use bookmarks::Bookmark;
use xml::{Occupant, OccupantPresence, RoomPresence, code};

pub const IMPORT_NAME: &str = "XEP-0045";

/// After carbons (1000) and archive unwrapping (900): we see unwrapped messages.
pub const PRIORITY: i32 = 500;

/// How long a join or a nick change waits for the room's answer.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long leaving waits for the room to confirm.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Signals (`PluginSignal("XEP-0045", name, profile, data)`).
pub mod signal {
    pub const ROOM_JOINED: &str = "room_joined";
    pub const ROOM_LEFT: &str = "room_left";
    pub const OCCUPANT: &str = "occupant";
    pub const SUBJECT: &str = "subject";
    pub const NICK_CHANGED: &str = "nick_changed";
    pub const INVITATION: &str = "invitation";
}

/// What an operation waits for from the room.
#[derive(Debug)]
enum Wait {
    /// Our own presence (a join).
    Join,
    /// Our own presence under the new nick.
    Nick,
    /// Our own unavailable presence.
    Leave,
}

/// What the room answered a join or nick change.
#[derive(Debug)]
struct Answer {
    nick: String,
    /// Status 201: the room was created by this join (and is locked).
    created: bool,
}

struct Waiter {
    what: Wait,
    tx: oneshot::Sender<Result<Answer, HostError>>,
}

/// A room of one profile.
struct Room {
    nick: String,
    /// In memory only (never stored by perchd).
    password: Option<String>,
    joined: bool,
    archived: bool,
    subject: Option<String>,
    occupants: BTreeMap<String, Occupant>,
    /// The status codes of our own presence when the room let us in (110, 201,
    /// 170…).
    codes: Vec<u16>,
    waiter: Option<Waiter>,
    /// When the room last spoke to us (XEP-0410: a silent room is pinged).
    heard: tokio::time::Instant,
}

impl Room {
    fn new(nick: String, password: Option<String>) -> Self {
        Self {
            nick,
            password,
            joined: false,
            archived: false,
            subject: None,
            occupants: BTreeMap::new(),
            codes: Vec::new(),
            waiter: None,
            heard: tokio::time::Instant::now(),
        }
    }

    fn answer(&mut self, result: Result<Answer, HostError>) {
        if let Some(w) = self.waiter.take() {
            let _ = w.tx.send(result);
        }
    }

    fn summary(&self, room: &str) -> Value {
        json!({
            "room": room,
            "nick": self.nick,
            "joined": self.joined,
            "archived": self.archived,
            "subject": self.subject,
            "occupants": self.occupants.len(),
        })
    }
}

/// What a presence handled under the lock leads to, done after it.
enum Effect {
    Emit(&'static str, Value),
    /// The room's row goes (we left or were thrown out); `true`: thrown out, so
    /// its bookmark loses autojoin too (a destroyed room must not be created again
    /// by our next join, nor a kick undone behind the moderator's back).
    Forget(String, bool),
    /// The room's row gets this nick.
    Save(String, String),
}

type Rooms = HashMap<String, HashMap<String, Room>>;

pub struct Muc {
    host: Arc<dyn Host>,
    /// profile → room's bare JID → room.
    rooms: Mutex<Rooms>,
    /// profile → its self-ping task, running while the profile is in a room.
    pingers: perch_plugin_api::tasks::SessionTasks,
}

fn lock(m: &Mutex<Rooms>) -> std::sync::MutexGuard<'_, Rooms> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn bad(what: impl Into<String>) -> HostError {
    HostError::BadArgument(what.into())
}

impl Muc {
    /// Runs `f` on a profile's room, if we have it.
    fn with_room<T>(&self, profile: &str, room: &str, f: impl FnOnce(&mut Room) -> T) -> Option<T> {
        lock(&self.rooms)
            .get_mut(profile)
            .and_then(|m| m.get_mut(room))
            .map(f)
    }

    /// `room.occupants`: who is in a room we have, real JIDs where the room tells
    /// them (what the encryption plugin encrypts to).
    fn occupants_of(&self, q: &RoomQuery) -> Option<RoomOccupants> {
        self.with_room(&q.profile, &q.room, |r| RoomOccupants {
            nick: r.nick.clone(),
            joined: r.joined,
            occupants: r
                .occupants
                .values()
                .map(|o| RoomOccupant {
                    nick: o.nick.clone(),
                    jid: o.jid.clone(),
                })
                .collect(),
        })
    }

    fn has_room(&self, profile: &str, room: &str) -> bool {
        self.with_room(profile, room, |_| ()).is_some()
    }

    /// Reads a presence from a room we have; `None` when it is not from one.
    fn on_presence(&self, profile: &str, p: &IncomingPresence) -> Option<Vec<Effect>> {
        let from = p.presence.from.as_ref()?;
        let room = from.to_bare().to_string();
        let mut all = lock(&self.rooms);
        let r = all.get_mut(profile)?.get_mut(&room)?;
        r.heard = tokio::time::Instant::now();
        let mut effects = Vec::new();
        match xml::read_presence(&p.presence) {
            RoomPresence::Other => {}
            RoomPresence::Error { nick, error } => {
                tracing::info!(%profile, %room, %nick, %error, "the room refused our presence");
                let was_join = matches!(
                    r.waiter,
                    Some(Waiter {
                        what: Wait::Join,
                        ..
                    })
                );
                r.answer(Err(HostError::Stanza(error)));
                if was_join && !r.joined {
                    all.get_mut(profile).map(|m| m.remove(&room));
                }
            }
            RoomPresence::Occupant(o) => {
                let own = o.codes.contains(&code::SELF) || o.occupant.nick == r.nick;
                self.occupant_presence(&room, r, *o, own, &mut effects);
                if !r.joined
                    && r.waiter.is_none()
                    && effects.iter().any(|e| matches!(e, Effect::Forget(..)))
                {
                    all.get_mut(profile).map(|m| m.remove(&room));
                }
            }
        }
        Some(effects)
    }

    fn occupant_presence(
        &self,
        room: &str,
        r: &mut Room,
        o: OccupantPresence,
        own: bool,
        effects: &mut Vec<Effect>,
    ) {
        let nick = o.occupant.nick.clone();
        if o.available {
            let event = if r.occupants.contains_key(&nick) {
                "changed"
            } else {
                "joined"
            };
            r.occupants.insert(nick.clone(), o.occupant.clone());
            if own {
                r.nick = nick.clone();
                r.joined = true;
                if matches!(
                    r.waiter,
                    Some(Waiter {
                        what: Wait::Join,
                        ..
                    })
                ) {
                    r.codes = o.codes.iter().copied().collect();
                }
                if matches!(
                    r.waiter,
                    Some(Waiter {
                        what: Wait::Join | Wait::Nick,
                        ..
                    })
                ) {
                    r.answer(Ok(Answer {
                        nick,
                        created: o.codes.contains(&code::CREATED),
                    }));
                }
            } else {
                effects.push(Effect::Emit(
                    signal::OCCUPANT,
                    json!({"room": room, "event": event, "occupant": o.occupant}),
                ));
            }
            return;
        }
        // Unavailable: a nick change, a departure, or ours.
        if o.codes.contains(&code::NICK_CHANGED)
            && let Some(new) = o.new_nick.clone()
        {
            if let Some(mut occ) = r.occupants.remove(&nick) {
                occ.nick = new.clone();
                r.occupants.insert(new.clone(), occ);
            }
            if own {
                r.nick = new.clone();
                effects.push(Effect::Save(room.to_owned(), new.clone()));
            }
            effects.push(Effect::Emit(
                signal::NICK_CHANGED,
                json!({"room": room, "old": nick, "new": new, "own": own}),
            ));
            return;
        }
        r.occupants.remove(&nick);
        let reason = o.departure();
        if !own {
            effects.push(Effect::Emit(
                signal::OCCUPANT,
                json!({"room": room, "event": "left", "occupant": o.occupant,
                       "reason": reason, "text": o.reason}),
            ));
            return;
        }
        r.joined = false;
        r.occupants.clear();
        let left = Ok(Answer {
            nick: r.nick.clone(),
            created: false,
        });
        match r.waiter.as_ref().map(|w| &w.what) {
            Some(Wait::Leave) => r.answer(left),
            Some(_) => r.answer(Err(HostError::Xmpp(format!(
                "removed from {room}: {reason}"
            )))),
            None => {}
        }
        tracing::info!(room, reason, "out of the room");
        effects.push(Effect::Forget(room.to_owned(), reason != "left"));
        effects.push(Effect::Emit(
            signal::ROOM_LEFT,
            json!({"room": room, "nick": r.nick, "reason": reason, "actor": o.actor,
                   "text": o.reason, "alternate": o.destroyed.flatten()}),
        ));
    }

    async fn apply(&self, host: &Arc<dyn Host>, profile: &str, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Emit(name, data) => host.emit(name, profile, data),
                Effect::Forget(room, removed) => {
                    if let Err(e) = forget(&**host, profile, &room).await {
                        tracing::warn!(%profile, %room, error = %e, "forgetting a room failed");
                    }
                    if removed {
                        // Off the inbox: the bookmark's IQs come back through it.
                        let (host, profile) = (host.clone(), profile.to_owned());
                        tokio::spawn(async move {
                            if let Err(e) =
                                update_bookmark(&*host, &profile, &room, |b| b.autojoin = false)
                                    .await
                            {
                                tracing::warn!(%profile, %room, error = %e, "clearing the bookmark's autojoin failed");
                            }
                        });
                    }
                }
                Effect::Save(room, nick) => {
                    let saved = match host.profile_id(profile).await {
                        Ok(id) => store::save(host.store(), id, &room, &nick).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = saved {
                        tracing::warn!(%profile, %room, error = %e, "saving a room's nick failed");
                    }
                }
            }
        }
    }

    /// Reads a message from a room we have: a subject change (taken), our own echo
    /// (direction out), a private message (filed under the occupant).
    fn on_message(&self, args: &mut IncomingMessage) -> Flow<()> {
        if invitations::on_received(&mut args.message, &mut args.peer) {
            return Flow::Continue;
        }
        let Some(from) = args.message.from.clone() else {
            return Flow::Continue;
        };
        let room = from.to_bare().to_string();
        let mut all = lock(&self.rooms);
        let Some(r) = all.get_mut(&args.profile).and_then(|m| m.get_mut(&room)) else {
            return Flow::Continue;
        };
        r.heard = tokio::time::Instant::now();
        let nick = from.resource().map(|n| n.to_string());
        match args.message.type_ {
            MessageType::Groupchat => {
                if let Some(subject) = xml::subject_change(&args.message) {
                    let subject = (!subject.is_empty()).then_some(subject);
                    r.subject = subject.clone();
                    drop(all);
                    self.host.emit(
                        signal::SUBJECT,
                        &args.profile,
                        json!({"room": room, "subject": subject, "by": nick}),
                    );
                    return Flow::Stop;
                }
                if nick.as_deref() == Some(r.nick.as_str()) || sent_by_us(r, &args.message) {
                    args.direction = Some(Direction::Out);
                }
            }
            MessageType::Chat | MessageType::Normal if nick.is_some() => {
                args.peer = Some(from.to_string());
            }
            _ => {}
        }
        Flow::Continue
    }

    /// Our availability changed (away, a status…): the rooms we are in see it too.
    /// Sent from a task of its own (this point must not wait on the session).
    fn share_presence(&self, args: &OutgoingPresence) {
        use perch_plugin_api::parsers::presence::Type;
        if args.presence.type_ != Type::None || args.presence.to.is_some() {
            return;
        }
        let host = self.host.clone();
        let targets: Vec<Jid> = lock(&self.rooms)
            .get(&args.profile)
            .map(|rooms| {
                rooms
                    .iter()
                    .filter(|(_, r)| r.joined)
                    .filter_map(|(room, r)| Jid::new(&format!("{room}/{}", r.nick)).ok())
                    .collect()
            })
            .unwrap_or_default();
        if targets.is_empty() {
            return;
        }
        let (profile, presence) = (args.profile.clone(), args.presence.clone());
        tokio::spawn(async move {
            for to in targets {
                let mut p = presence.clone();
                p.to = Some(to.clone());
                if let Err(e) = host.send(&profile, p.into()).await {
                    tracing::debug!(%profile, %to, error = %e, "sharing our presence with a room failed");
                }
            }
        });
    }

    /// Joins (or rejoins) a room and waits until we are in; `bookmark`: also mark it
    /// autojoin in the account's bookmarks.
    async fn join(
        &self,
        profile: &str,
        room: &Jid,
        nick: &str,
        password: Option<String>,
        bookmark: bool,
    ) -> Result<Value, HostError> {
        let host = self.host.clone();
        let room_s = room.to_bare().to_string();
        let after = Self::archive_catch_up_point(&*host, profile, &room_s).await;
        let presence = xml::join(room, nick, password.as_deref(), after.is_none()).map_err(bad)?;
        let answer = self
            .enter(&*host, profile, &room_s, nick, password.as_ref(), presence)
            .await?;
        self.in_the_room(profile, room, answer, after, password, bookmark)
            .await
    }

    /// The room let us in: configure it when we created it, see whether it keeps an
    /// archive, remember it, tell the plugins (`room.joined`) and frontends, bookmark
    /// it.
    async fn in_the_room(
        &self,
        profile: &str,
        room: &Jid,
        answer: Answer,
        after: Option<String>,
        password: Option<String>,
        bookmark: bool,
    ) -> Result<Value, HostError> {
        let host = self.host.clone();
        let room_s = room.to_bare().to_string();
        if answer.created {
            // Prosody locks a new room until its owner configures it: accept the
            // defaults (an instant room).
            host.iq(
                profile,
                Some(room.to_bare().into()),
                true,
                xml::instant_room(),
            )
            .await?;
            tracing::info!(%profile, room = %room_s, "created an instant room");
        }
        let archived = Self::room_archived(&*host, profile, room).await;
        let (subject, occupants) = self
            .with_room(profile, &room_s, |r| {
                r.archived = archived;
                (r.subject.clone(), r.occupants.len())
            })
            .unwrap_or_default();
        let pid = host.profile_id(profile).await?;
        store::save(host.store(), pid, &room_s, &answer.nick).await?;
        tracing::info!(%profile, room = %room_s, nick = %answer.nick, archived, "in the room");
        let mut joined = RoomJoined {
            profile: profile.to_owned(),
            room: room_s.clone(),
            nick: answer.nick.clone(),
            archived,
            after,
        };
        if let Err(e) = host.triggers().fire::<RoomJoinedPoint>(&mut joined).await {
            tracing::error!(%profile, room = %room_s, error = %e, "room.joined not fired");
        }
        // What the room refused while we were away goes again now.
        if let Err(e) = host.resend_held(profile, &room_s).await {
            tracing::warn!(%profile, room = %room_s, error = %e, "room messages refused before the join not sent again");
        }
        host.emit(
            signal::ROOM_JOINED,
            profile,
            json!({"room": room_s, "nick": answer.nick, "created": answer.created, "archived": archived}),
        );
        if bookmark {
            Self::bookmark_autojoin(&*host, profile, &room_s, &answer.nick, password).await;
        }
        Ok(json!({
            "room": room_s, "nick": answer.nick, "created": answer.created,
            "archived": archived, "subject": subject, "occupants": occupants,
        }))
    }

    /// Sends the join presence and waits for the room's answer: the room's state is
    /// reset (not joined, no occupants) and its waiter set first; on failure the
    /// waiter goes.
    async fn enter(
        &self,
        host: &dyn Host,
        profile: &str,
        room_s: &str,
        nick: &str,
        password: Option<&String>,
        presence: Element,
    ) -> Result<Answer, HostError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut all = lock(&self.rooms);
            let r = all
                .entry(profile.to_owned())
                .or_default()
                .entry(room_s.to_owned())
                .or_insert_with(|| Room::new(nick.to_owned(), password.cloned()));
            r.nick = nick.to_owned();
            if password.is_some() {
                r.password = password.cloned();
            }
            r.joined = false;
            r.occupants.clear();
            r.waiter = Some(Waiter {
                what: Wait::Join,
                tx,
            });
        }
        if let Err(e) = host.send(profile, presence).await {
            self.with_room(profile, room_s, |r| r.waiter = None);
            return Err(e);
        }
        let answer = wait(rx, JOIN_TIMEOUT, room_s).await;
        if answer.is_err() {
            self.with_room(profile, room_s, |r| r.waiter = None);
        }
        answer
    }

    /// Where catching up with the room's archive starts (`RoomJoined::after`).
    /// Once we have messages of the room's archive, the room sends no history: the
    /// archive gives what we missed, oldest first, where the join history would give
    /// only its last messages, stamped to the second, ahead of the rest and in no order
    /// the history could tell.
    async fn archive_catch_up_point(
        host: &dyn Host,
        profile: &str,
        room_s: &str,
    ) -> Option<String> {
        match host.last_archive_id(profile, room_s).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%profile, room = %room_s, error = %e, "reading the room's last archive id failed");
                None
            }
        }
    }

    /// Whether the room keeps an archive (MAM), from its disco#info.
    async fn room_archived(host: &dyn Host, profile: &str, room: &Jid) -> bool {
        let info = host
            .iq(
                profile,
                Some(room.to_bare().into()),
                false,
                Element::builder("query", xml::NS_DISCO_INFO).build(),
            )
            .await;
        match &info {
            Ok(q) => xml::has_feature(q.as_ref(), xml::NS_MAM),
            Err(e) => {
                let room_s = room.to_bare().to_string();
                tracing::debug!(%profile, room = %room_s, error = %e, "disco#info of the room failed");
                false
            }
        }
    }

    /// Marks the room autojoin, with our nick (and the password, if given), in the
    /// account's bookmarks; a failure is only logged.
    async fn bookmark_autojoin(
        host: &dyn Host,
        profile: &str,
        room_s: &str,
        nick: &str,
        password: Option<String>,
    ) {
        let nick = nick.to_owned();
        if let Err(e) = update_bookmark(host, profile, room_s, move |b| {
            b.autojoin = true;
            b.nick = Some(nick);
            if password.is_some() {
                b.password = password;
            }
        })
        .await
        {
            tracing::warn!(%profile, room = %room_s, error = %e, "bookmarking the room failed");
        }
    }

    /// [`Muc::join`], tried again while the room answers `item-not-found`: a room
    /// someone else is creating is locked until its owner configures it (after a
    /// server restart, every occupant rejoins at once and one of them re-creates it).
    async fn join_patiently(
        &self,
        profile: &str,
        room: &Jid,
        nick: &str,
        password: Option<String>,
        bookmark: bool,
    ) -> Result<Value, HostError> {
        let mut attempt = 0u64;
        loop {
            match self
                .join(profile, room, nick, password.clone(), bookmark)
                .await
            {
                Err(HostError::Stanza(e)) if e.condition == "item-not-found" && attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(%profile, %room, attempt, "the room is locked; trying again");
                    tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn leave(&self, profile: &str, room: &Jid) -> Result<RoomNick, HostError> {
        let host = self.host.clone();
        let room_s = room.to_bare().to_string();
        let (tx, rx) = oneshot::channel();
        let nick = self.with_room(profile, &room_s, |r| {
            let joined = r.joined;
            r.waiter = joined.then_some(Waiter {
                what: Wait::Leave,
                tx,
            });
            (r.nick.clone(), joined)
        });
        let pid = host.profile_id(profile).await?;
        let stored = store::rooms(host.store(), pid)
            .await?
            .into_iter()
            .find(|(r, _)| *r == room_s);
        let (nick, joined) = match (nick, stored) {
            (Some(n), _) => n,
            (None, Some((_, nick))) => (nick, false),
            (None, None) => return Err(bad(format!("not in room {room_s}"))),
        };
        if joined {
            host.send(profile, xml::leave(room, &nick).map_err(bad)?)
                .await?;
            if let Err(e) = wait(rx, LEAVE_TIMEOUT, &room_s).await {
                tracing::info!(%profile, room = %room_s, error = %e, "the room did not confirm our leaving");
            }
        }
        // The presence handler forgot the room when the room confirmed; else here.
        let still = lock(&self.rooms)
            .get_mut(profile)
            .and_then(|m| m.remove(&room_s))
            .is_some();
        if still || !joined {
            forget(&*host, profile, &room_s).await?;
            host.emit(
                signal::ROOM_LEFT,
                profile,
                json!({"room": room_s, "nick": nick, "reason": "left"}),
            );
        }
        if let Err(e) = update_bookmark(&*host, profile, &room_s, |b| b.autojoin = false).await {
            tracing::warn!(%profile, room = %room_s, error = %e, "clearing the bookmark's autojoin failed");
        }
        Ok(RoomNick { room: room_s, nick })
    }

    async fn change_nick(
        &self,
        profile: &str,
        room: &Jid,
        nick: &str,
    ) -> Result<NickChanged, HostError> {
        let host = self.host.clone();
        let room_s = room.to_bare().to_string();
        let presence = xml::change_nick(room, nick).map_err(bad)?;
        let (tx, rx) = oneshot::channel();
        let old = self
            .with_room(profile, &room_s, |r| {
                r.joined.then(|| {
                    r.waiter = Some(Waiter {
                        what: Wait::Nick,
                        tx,
                    });
                    r.nick.clone()
                })
            })
            .flatten()
            .ok_or_else(|| bad(format!("not in room {room_s}")))?;
        host.send(profile, presence).await?;
        let answer = wait(rx, JOIN_TIMEOUT, &room_s).await?;
        Ok(NickChanged {
            room: room_s,
            old,
            nick: answer.nick,
        })
    }

    /// Joins again every room of a profile: those of the table, those joined in this
    /// run, and the autojoin bookmarks.
    async fn rejoin_all(&self, profile: &str) -> Result<(), HostError> {
        let host = self.host.clone();
        let pid = host.profile_id(profile).await?;
        let mut wanted: BTreeMap<String, (String, Option<String>)> =
            store::rooms(host.store(), pid)
                .await?
                .into_iter()
                .map(|(room, nick)| (room, (nick, None)))
                .collect();
        // Rooms being joined right now (a frontend was quicker than this task), or
        // still joined (a resumed stream), are left alone.
        let mut busy = std::collections::HashSet::new();
        if let Some(rooms) = lock(&self.rooms).get(profile) {
            for (room, r) in rooms {
                if r.joined || r.waiter.is_some() {
                    busy.insert(room.clone());
                } else {
                    wanted.insert(room.clone(), (r.nick.clone(), r.password.clone()));
                }
            }
        }
        let default_nick = default_nick(&*host, profile).await;
        match host.iq(profile, None, false, bookmarks::request()).await {
            Ok(reply) => {
                for b in bookmarks::read(reply.as_ref()) {
                    if let Some((_, pw)) = wanted.get_mut(&b.room) {
                        if pw.is_none() {
                            *pw = b.password;
                        }
                    } else if b.autojoin {
                        let nick = b.nick.unwrap_or_else(|| default_nick.clone());
                        wanted.insert(b.room, (nick, b.password));
                    }
                }
            }
            Err(HostError::Stanza(e)) if e.condition == "item-not-found" => {}
            Err(e) => tracing::warn!(%profile, error = %e, "reading the bookmarks failed"),
        }
        for (room, (nick, password)) in wanted {
            if busy.contains(&room) {
                continue;
            }
            let Ok(jid) = Jid::new(&room) else {
                tracing::warn!(%profile, %room, "a stored room is not a JID; skipped");
                continue;
            };
            match self
                .join_patiently(profile, &jid, &nick, password, false)
                .await
            {
                Ok(_) => tracing::debug!(%profile, %room, "rejoined"),
                Err(e) => tracing::warn!(%profile, %room, error = %e, "rejoining the room failed"),
            }
        }
        Ok(())
    }
}

/// Whether a room's message under another nick is ours all the same: a
/// non-anonymous room's archive names each sender's real JID (`<x muc#user><item
/// jid/>`), so what we said under a nick we no longer have is still known as ours.
fn sent_by_us(r: &Room, m: &perch_plugin_api::parsers::message::Message) -> bool {
    let Some(ours) = r
        .occupants
        .get(&r.nick)
        .and_then(|o| o.jid.as_deref())
        .and_then(|j| Jid::new(j).ok())
    else {
        return false;
    };
    m.payloads
        .iter()
        .filter(|p| p.is("x", xml::NS_USER))
        .filter_map(|x| x.get_child("item", xml::NS_USER))
        .filter_map(|i| i.attr("jid"))
        .filter_map(|j| Jid::new(j).ok())
        .any(|j| j.to_bare() == ours.to_bare())
}

/// Waits for the room's answer.
async fn wait(
    rx: oneshot::Receiver<Result<Answer, HostError>>,
    timeout: Duration,
    room: &str,
) -> Result<Answer, HostError> {
    match tokio::time::timeout(timeout, rx).await {
        Err(_) => Err(HostError::Timeout(format!(
            "room {room} did not answer within {timeout:?}"
        ))),
        Ok(Err(_)) => Err(HostError::Xmpp(format!(
            "the session ended (or another operation started) before {room} answered"
        ))),
        Ok(Ok(r)) => r,
    }
}

async fn forget(host: &dyn Host, profile: &str, room: &str) -> Result<(), HostError> {
    let pid = host.profile_id(profile).await?;
    store::remove(host.store(), pid, room).await
}

/// Our nick when none is given: the account's local part.
async fn default_nick(host: &dyn Host, profile: &str) -> String {
    host.bound_jid(profile)
        .await
        .and_then(|j| j.node().map(|n| n.to_string()))
        .unwrap_or_else(|| "perch".into())
}

/// Reads the room's bookmark (or a new one), lets `edit` change it, and publishes it
/// when it changed.
async fn update_bookmark(
    host: &dyn Host,
    profile: &str,
    room: &str,
    edit: impl FnOnce(&mut Bookmark),
) -> Result<(), HostError> {
    let existing = match host.iq(profile, None, false, bookmarks::request()).await {
        Ok(reply) => bookmarks::read(reply.as_ref())
            .into_iter()
            .find(|b| b.room == room),
        Err(HostError::Stanza(e)) if e.condition == "item-not-found" => None,
        Err(e) => return Err(e),
    };
    let was = existing.clone();
    let mut b = existing.unwrap_or_else(|| Bookmark::new(room));
    edit(&mut b);
    if was.as_ref() == Some(&b) || (was.is_none() && !b.autojoin) {
        return Ok(());
    }
    host.iq(profile, None, true, bookmarks::publish(&b)).await?;
    Ok(())
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Multi-User Chat",
    description: "Group chats: join, leave, occupants, subject, nick, private messages; \
                  rooms rejoined and kept in bookmarks (XEP-0402)",
    dependencies: &[],
    recommendations: &["XEP-0030", "XEP-0359"],
    tables: &["muc_room"],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

const SIGNALS: [(&str, &str); 6] = [
    (
        signal::ROOM_JOINED,
        "we are in a room: {room, nick, created, archived}",
    ),
    (
        signal::ROOM_LEFT,
        "we are out of a room: {room, nick, reason (left, kicked, banned, destroyed, \
         affiliation_changed, members_only, shutdown), actor, text, alternate}",
    ),
    (
        signal::OCCUPANT,
        "another occupant joined, changed or left: {room, event, occupant {nick, jid, \
         role, affiliation, show, status}, reason}",
    ),
    (
        signal::SUBJECT,
        "a room's subject: {room, subject (null: none), by}",
    ),
    (
        signal::NICK_CHANGED,
        "an occupant (own: us) changed nick: {room, old, new, own}",
    ),
    (
        signal::INVITATION,
        "we are invited to a room (XEP-0249, or by the room): {room, from, reason, password, \
         id (the stored message)}",
    ),
];

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let me = Arc::new(Muc {
        host: host.clone(),
        rooms: Mutex::default(),
        pingers: perch_plugin_api::tasks::SessionTasks::default(),
    });
    host.add_feature(xml::NS_MUC);
    host.add_feature(invitations::NS_CONFERENCE);
    for (name, doc) in SIGNALS {
        host.declare_signal(name, doc);
    }
    let t = host.triggers();
    t.declare::<RoomJoinedPoint>()?;
    t.declare_shared::<RoomOccupantsPoint>()?;
    t.add_with::<RoomOccupantsPoint, _>(PRIORITY, me.clone(), |me, q| {
        let flow = me.occupants_of(q).map_or(Flow::Continue, Flow::StopWith);
        async move { flow }.boxed()
    })?;
    t.add_with::<PresenceReceived, _>(PRIORITY, me.clone(), on_presence)?;
    t.add_with::<MessageReceived, _>(PRIORITY, me.clone(), |me, args| {
        let flow = me.on_message(args);
        async move { flow }.boxed()
    })?;
    t.add_with::<MessageStored, _>(PRIORITY, me.clone(), |me, args| {
        async move {
            invitations::on_stored(&me.host, args).await;
            Flow::Continue
        }
        .boxed()
    })?;
    // After receipts (0), before the unique ids (-100): nothing here depends on the
    // order, and `perch debug triggers` keeps receipts first.
    t.add_with::<MessageSend, _>(-10, me.clone(), on_send)?;
    t.add_with::<PresenceSend, _>(-100, me.clone(), |me, args| {
        me.share_presence(args);
        async { Flow::Continue }.boxed()
    })?;
    actions::register(&me);
    Ok(me)
}

/// `presence.received`: a room's presence is the plugin's, never a contact's.
fn on_presence(me: Arc<Muc>, args: &mut IncomingPresence) -> BoxFuture<'_, Flow<()>> {
    let profile = args.profile.clone();
    let effects = me.on_presence(&profile, args);
    let stray = effects.is_none() && xml::is_room_presence(&args.presence);
    async move {
        match effects {
            Some(effects) => {
                let host = me.host.clone();
                me.apply(&host, &profile, effects).await;
                self_ping::ensure(&me, &profile);
                Flow::Stop
            }
            // A room we are no longer in: not a contact either.
            None if stray => Flow::Stop,
            None => Flow::Continue,
        }
    }
    .boxed()
}

/// `message.send`: a private message to an occupant is filed under the occupant.
fn on_send(me: Arc<Muc>, args: &mut OutgoingMessage) -> BoxFuture<'_, Flow<String>> {
    if let Some(to) = args.message.to.clone()
        && to.resource().is_some()
        && matches!(args.message.type_, MessageType::Chat | MessageType::Normal)
        && me.has_room(&args.profile, &to.to_bare().to_string())
    {
        args.peer = Some(to.to_string());
        if !args
            .message
            .payloads
            .iter()
            .any(|p| p.is("x", xml::NS_USER))
        {
            args.message.payloads.push(xml::pm_marker());
        }
    }
    async { Flow::Continue }.boxed()
}

impl Plugin for Muc {
    fn session_started(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            // Off the inbox: joining waits for presences that come through it.
            tokio::spawn(async move {
                if let Err(e) = self.rejoin_all(&profile).await {
                    tracing::warn!(%profile, error = %e, "rejoining rooms failed");
                }
            });
        }
        .boxed()
    }

    fn session_ended(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            self.pingers.stop(&profile);
            if let Some(rooms) = lock(&self.rooms).get_mut(&profile) {
                for r in rooms.values_mut() {
                    r.joined = false;
                    r.occupants.clear();
                    // Dropping the waiter tells the waiting operation.
                    r.waiter = None;
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::parsers::message::Message;
    use perch_plugin_api::parsers::presence::Presence;

    const ROOM: &str = "r@conf.x";

    fn presence(xml: &str) -> IncomingPresence {
        let e: Element = xml.parse().expect("xml");
        IncomingPresence {
            profile: "p".into(),
            presence: Presence::try_from(e).expect("presence"),
        }
    }

    fn incoming(xml: &str) -> IncomingMessage {
        let e: Element = xml.parse().expect("xml");
        IncomingMessage::live("p".into(), Message::try_from(e).expect("message"))
    }

    /// A plugin in `ROOM` as `alice`, joining (a waiter) or joined.
    fn muc(joined: bool) -> (Muc, oneshot::Receiver<Result<Answer, HostError>>) {
        let m = Muc {
            host: perch_plugin_api::testing::OfflineHost::new(IMPORT_NAME),
            rooms: Mutex::default(),
            pingers: perch_plugin_api::tasks::SessionTasks::default(),
        };
        let (tx, rx) = oneshot::channel();
        let mut r = Room::new("alice".into(), None);
        r.joined = joined;
        r.waiter = (!joined).then_some(Waiter {
            what: Wait::Join,
            tx,
        });
        lock(&m.rooms)
            .entry("p".into())
            .or_default()
            .insert(ROOM.into(), r);
        (m, rx)
    }

    fn occupant_xml(nick: &str, kind: &str, inner: &str) -> String {
        format!(
            "<presence xmlns='jabber:client' from='{ROOM}/{nick}' {kind}>\
             <x xmlns='http://jabber.org/protocol/muc#user'>{inner}</x></presence>"
        )
    }

    fn signals(effects: &[Effect]) -> Vec<(&'static str, Value)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Emit(n, v) => Some((*n, v.clone())),
                _ => None,
            })
            .collect()
    }

    /// The self-ping task runs while the profile is in a room, and not otherwise.
    #[tokio::test(start_paused = true)]
    async fn the_pinger_runs_only_while_in_a_room() {
        let (m, _rx) = muc(true);
        let m = Arc::new(m);
        self_ping::ensure(&m, "other");
        assert!(!m.pingers.is_running("other"), "a pinger for no room");
        self_ping::ensure(&m, "p");
        assert!(m.pingers.is_running("p"));
        m.with_room("p", ROOM, |r| r.joined = false);
        // Its next round finds nothing to ping, and it ends.
        tokio::time::sleep(self_ping::DEFAULT_INTERVAL).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!m.pingers.is_running("p"), "the pinger outlived the room");
        m.with_room("p", ROOM, |r| r.joined = true);
        self_ping::ensure(&m, "p");
        assert!(m.pingers.is_running("p"), "not started again");
    }

    #[test]
    fn a_join_ends_with_our_own_presence() {
        let (m, mut rx) = muc(false);
        let bob = presence(&occupant_xml(
            "bob",
            "",
            "<item affiliation='none' role='participant'/>",
        ));
        let effects = m.on_presence("p", &bob).expect("a room of ours");
        assert_eq!(signals(&effects)[0].0, signal::OCCUPANT);
        assert!(rx.try_recv().is_err(), "answered before our own presence");
        let own = presence(&occupant_xml(
            "alice",
            "",
            "<item affiliation='owner' role='moderator'/><status code='110'/><status code='201'/>",
        ));
        m.on_presence("p", &own).expect("a room of ours");
        let answer = rx.try_recv().expect("answered").expect("joined");
        assert!(answer.created);
        assert_eq!(answer.nick, "alice");
        let joined = m.with_room("p", ROOM, |r| (r.joined, r.occupants.len()));
        assert_eq!(joined, Some((true, 2)));
        // Presences of rooms we are not in are not ours to read.
        let other = presence(
            "<presence xmlns='jabber:client' from='other@conf.x/bob'>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></presence>",
        );
        assert!(m.on_presence("p", &other).is_none());
        assert!(xml::is_room_presence(&other.presence));
    }

    #[test]
    fn room_occupants_answers_for_rooms_we_have_with_real_jids() {
        let (m, _rx) = muc(true);
        let bob = presence(&occupant_xml(
            "bob",
            "",
            "<item affiliation='member' role='participant' jid='bob@x/phone'/>",
        ));
        m.on_presence("p", &bob).expect("a room of ours");
        let carol = presence(&occupant_xml(
            "carol",
            "",
            "<item affiliation='none' role='participant'/>",
        ));
        m.on_presence("p", &carol).expect("a room of ours");
        let q = |room: &str| RoomQuery {
            profile: "p".into(),
            room: room.into(),
        };
        let got = m.occupants_of(&q(ROOM)).expect("our room");
        assert_eq!(got.nick, "alice");
        assert!(got.joined);
        assert_eq!(
            got.occupants,
            [
                RoomOccupant {
                    nick: "bob".into(),
                    jid: Some("bob@x/phone".into())
                },
                RoomOccupant {
                    nick: "carol".into(),
                    jid: None
                },
            ]
        );
        assert!(m.occupants_of(&q("other@conf.x")).is_none());
    }

    #[test]
    fn a_refused_join_is_the_rooms_error_and_leaves_nothing() {
        let (m, mut rx) = muc(false);
        let refused = presence(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/alice' type='error'>\
             <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        ));
        m.on_presence("p", &refused).expect("a room of ours");
        match rx.try_recv().expect("answered") {
            Err(HostError::Stanza(e)) => assert_eq!(e.condition, "conflict"),
            other => panic!("{other:?}"),
        }
        assert!(!m.has_room("p", ROOM));
    }

    #[test]
    fn nick_changes_and_departures() {
        let (m, _rx) = muc(true);
        m.on_presence(
            "p",
            &presence(&occupant_xml(
                "bob",
                "",
                "<item affiliation='none' role='participant'/>",
            )),
        );
        let renamed = m
            .on_presence(
                "p",
                &presence(&occupant_xml(
                    "bob",
                    "type='unavailable'",
                    "<item affiliation='none' role='participant' nick='robert'/><status code='303'/>",
                )),
            )
            .expect("ours");
        assert_eq!(
            signals(&renamed),
            [(
                signal::NICK_CHANGED,
                json!({"room": ROOM, "old": "bob", "new": "robert", "own": false})
            )]
        );
        let nicks = m.with_room("p", ROOM, |r| {
            r.occupants.keys().cloned().collect::<Vec<_>>()
        });
        assert_eq!(nicks, Some(vec!["robert".to_owned()]));
        // Our own nick change is saved for rejoins.
        let ours = m
            .on_presence(
                "p",
                &presence(&occupant_xml(
                    "alice",
                    "type='unavailable'",
                    "<item affiliation='owner' role='moderator' nick='alicia'/>\
                     <status code='303'/><status code='110'/>",
                )),
            )
            .expect("ours");
        assert!(
            ours.iter()
                .any(|e| matches!(e, Effect::Save(r, n) if r == ROOM && n == "alicia"))
        );
        assert_eq!(
            m.with_room("p", ROOM, |r| r.nick.clone()).as_deref(),
            Some("alicia")
        );
        // Kicked: the room is forgotten, with its bookmark's autojoin.
        let kicked = m
            .on_presence(
                "p",
                &presence(&occupant_xml(
                    "alicia",
                    "type='unavailable'",
                    "<item affiliation='none' role='none'><reason>bye</reason></item>\
                     <status code='307'/><status code='110'/>",
                )),
            )
            .expect("ours");
        assert!(
            kicked
                .iter()
                .any(|e| matches!(e, Effect::Forget(r, true) if r == ROOM))
        );
        let left = signals(&kicked);
        assert_eq!(left[0].0, signal::ROOM_LEFT);
        assert_eq!(left[0].1["reason"], "kicked");
        assert_eq!(left[0].1["text"], "bye");
        assert!(!m.has_room("p", ROOM));
    }

    #[test]
    fn messages_from_a_room() {
        let (m, _rx) = muc(true);
        // Our own echo went out; another occupant's came in.
        let mut echo = incoming(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/alice' type='groupchat'><body>hi</body></message>"
        ));
        assert_eq!(m.on_message(&mut echo), Flow::Continue);
        assert_eq!(echo.direction, Some(Direction::Out));
        let mut theirs = incoming(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/bob' type='groupchat'><body>yo</body></message>"
        ));
        assert_eq!(m.on_message(&mut theirs), Flow::Continue);
        assert_eq!((theirs.direction, theirs.peer), (None, None));
        // A private message is filed under the occupant.
        let mut pm = incoming(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/bob' type='chat'><body>psst</body></message>"
        ));
        assert_eq!(m.on_message(&mut pm), Flow::Continue);
        assert_eq!(pm.peer.as_deref(), Some("r@conf.x/bob"));
        // A subject is remembered and taken.
        let mut subject = incoming(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/bob' type='groupchat'><subject>Topic</subject></message>"
        ));
        assert_eq!(m.on_message(&mut subject), Flow::Stop);
        assert_eq!(
            m.with_room("p", ROOM, |r| r.subject.clone())
                .flatten()
                .as_deref(),
            Some("Topic")
        );
        // A chat from a stranger is none of ours.
        let mut stranger = incoming(
            "<message xmlns='jabber:client' from='bob@x/phone' type='chat'><body>hi</body></message>",
        );
        assert_eq!(m.on_message(&mut stranger), Flow::Continue);
        assert_eq!(stranger.peer, None);
    }

    /// The room's archive names the real sender: what we said under an old nick is
    /// ours; another's message with a real JID is not.
    #[test]
    fn an_old_nick_of_ours_is_known_by_our_real_jid() {
        let (m, _rx) = muc(true);
        m.with_room("p", ROOM, |r| {
            r.occupants.insert(
                "alice".into(),
                Occupant {
                    nick: "alice".into(),
                    jid: Some("alice@x/perch.1".into()),
                    role: "participant".into(),
                    affiliation: "member".into(),
                    show: "available".into(),
                    status: None,
                },
            );
        });
        let archived = |nick: &str, jid: &str| {
            incoming(&format!(
                "<message xmlns='jabber:client' from='{ROOM}/{nick}' type='groupchat'><body>x</body>\
                 <x xmlns='http://jabber.org/protocol/muc#user'><item jid='{jid}'/></x></message>"
            ))
        };
        let mut old = archived("ali", "alice@x/phone");
        m.on_message(&mut old);
        assert_eq!(old.direction, Some(Direction::Out));
        let mut bob = archived("bob", "bob@x/pc");
        m.on_message(&mut bob);
        assert_eq!(bob.direction, None);
    }
}
