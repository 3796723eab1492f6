//! The daemon's core: profiles, sessions and history behind one handle.
//!
//! Every frontend request goes through [`Daemon`]; the bridge only translates. Sessions
//! are kept in a map by profile name; a session that gave up stays in the map (with
//! its error) so `Status` can say why, until it is reconnected or the profile deleted.
//!
//! Its fields are private: the bridges and the plugins' host reach the profiles,
//! the history, the jobs and the registry through its methods only, so every rule
//! the daemon keeps (lifecycle locks, checks, signals) has one place. It knows
//! neither the bridges nor the host above it (`tests/backend/layers.rs`): the host is
//! handed to [`Daemon::start_plugins`] by whoever composes them (`run.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use perch_plugin_api::jid::Jid;
use perch_plugin_api::{
    ConnectionState, ContactPresence, Direction, HistoryMessage, MessageState, RosterItem, Show,
};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::{
    presence::{Presence, Type as PresenceType},
    roster::{Ask, Group, Item, Roster, Subscription},
};

use perch_plugin_api::points::{MessageSend, OutgoingMessage};
use perch_plugin_api::{Host, Outcome, PluginFactory, PluginInfo};
use serde_json::Value;
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{Event, EventSender};
use crate::history::{self, History};
use crate::jobs::{JobView, Jobs};
use crate::plugins::{Registry, report_fault};
use crate::profiles::{Credentials, NewProfile, ProfileView, Profiles};
use crate::receive::{self, Inbox};
use crate::roster::{RosterStore, StoredRoster};
use crate::validate;

/// A row of the profile table.
pub type ProfileModel = crate::db::entities::profile::Model;
use crate::xmpp::session::{self, Session, SessionConfig, Stores};
use crate::xmpp::stanzas;

mod balance;

/// The most messages one `HistoryGet` returns: a frontend pages through more with
/// `before`/`after`, so one call never builds an answer of unbounded size.
pub const MAX_HISTORY: u64 = 10_000;

/// One line of `Status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub profile: String,
    pub jid: String,
    pub state: ConnectionState,
    pub bound_jid: Option<String>,
    pub error: Option<ErrorView>,
    /// The daemon that owns the profile, when several share the database and one
    /// does (`doc/deployment.rst`); absent when none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    pub name: &'static str,
    pub message: String,
}

/// How long deleting a profile waits for its inbox to finish what its session
/// handed up (plugins' handlers are bounded; this bounds the lot).
const INBOX_DRAIN: Duration = Duration::from_secs(15);

pub struct Daemon {
    config: Config,
    db: DatabaseConnection,
    profiles: Profiles,
    history: History,
    roster: RosterStore,
    events: EventSender,
    registry: Arc<Registry>,
    jobs: Jobs,
    sessions: Mutex<HashMap<String, Session>>,
    /// Each profile's inbox task (`receive::Inbox`): it goes on with what its
    /// session handed up after the session ended, so a profile is deleted only once
    /// its inbox is done (nothing then writes for a deleted profile).
    inboxes: std::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// One lock per profile: its Connect, Disconnect and Delete run one at a time, so
    /// a Delete that comes while the profile connects cannot leave a session behind,
    /// bound at the server and writing for a profile that no longer exists.
    lifecycle: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Whether a frontend is listening (for Client State Indication).
    frontends: Arc<crate::frontends::Frontends>,
    /// The connection attempts all sessions may make at once.
    connect_slots: Arc<tokio::sync::Semaphore>,
    /// This daemon among those sharing the database (`cluster.rs`); none in tests
    /// that build a daemon without one.
    cluster: Option<Arc<Cluster>>,
    /// Whether the balance ran once while this daemon was the only live one.
    balanced_alone: std::sync::atomic::AtomicBool,
}

pub fn parse_jid(s: &str) -> Result<Jid> {
    Jid::new(s.trim()).map_err(|e| Error::invalid_jid(s, e))
}

impl Daemon {
    pub fn new(config: Config, db: DatabaseConnection, profiles: Profiles) -> Arc<Self> {
        Self::build(config, db, profiles, None)
    }

    /// A daemon that shares its database with others: it owns a profile before it
    /// connects it, and its history and outbox writes are fenced (`cluster.rs`).
    pub fn in_cluster(
        config: Config,
        db: DatabaseConnection,
        profiles: Profiles,
        cluster: Arc<Cluster>,
    ) -> Arc<Self> {
        Self::build(config, db, profiles, Some(cluster))
    }

    fn build(
        config: Config,
        db: DatabaseConnection,
        profiles: Profiles,
        cluster: Option<Arc<Cluster>>,
    ) -> Arc<Self> {
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let keep = Duration::from_secs(config.jobs.keep_hours.saturating_mul(3600));
        let registry = Arc::new(Registry::default());
        let faults = events.clone();
        let connect_slots = Arc::new(tokio::sync::Semaphore::new(
            config.xmpp.connect_concurrency as usize,
        ));
        registry
            .triggers
            .set_fault_sink(Arc::new(move |f| report_fault(&faults, f)));
        Arc::new(Self {
            jobs: Jobs::new(db.clone(), events.clone(), keep),
            registry,
            config,
            history: History::fenced(db.clone(), cluster.clone()),
            roster: RosterStore::new(db.clone()),
            db,
            profiles,
            events,
            sessions: Mutex::new(HashMap::new()),
            inboxes: std::sync::Mutex::default(),
            lifecycle: Default::default(),
            frontends: crate::frontends::Frontends::new(),
            connect_slots,
            cluster,
            balanced_alone: Default::default(),
        })
    }

    /// The frontends the bridges see (`frontends.rs`).
    pub fn frontends(&self) -> &Arc<crate::frontends::Frontends> {
        &self.frontends
    }

    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Loads plugins (before any session starts), each built with the host
    /// `host_for` makes for it, and recovers jobs cut off by a stop.
    pub async fn start_plugins(
        &self,
        plugins: Vec<PluginFactory>,
        host_for: impl Fn(&PluginInfo) -> Arc<dyn Host>,
    ) -> Result<()> {
        let interrupted = self.jobs.recover().await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "jobs left running by the previous perchd marked interrupted"
            );
        }
        self.registry
            .load(plugins, &self.config.plugins.disabled, host_for)
            .await;
        Ok(())
    }

    fn session_config(&self) -> SessionConfig {
        let x = &self.config.xmpp;
        SessionConfig {
            resource: x.resource.clone(),
            connect_attempts: x.connect_attempts,
            reconnect_attempts: x.reconnect_attempts,
            connect_timeout: Duration::from_secs(x.connect_timeout),
            reconnect_max_delay: Duration::from_secs(x.reconnect_max_delay),
            iq_timeout: Duration::from_secs(x.iq_timeout),
            limits: crate::xmpp::limits::Limits {
                max_depth: x.max_stanza_depth,
                max_bytes: usize::try_from(x.max_stanza_bytes).unwrap_or(usize::MAX),
            },
            frontends: x.csi.then(|| self.frontends.subscribe()),
            connect_slots: self.connect_slots.clone(),
        }
    }

    pub async fn create_profile(&self, p: NewProfile) -> Result<ProfileView> {
        self.profiles.create(p).await
    }

    /// Creates a profile whose XMPP password is given later (Libervia's way); see
    /// [`crate::profiles::Profiles::create_without_password`].
    pub async fn create_profile_without_password(&self, p: NewProfile) -> Result<ProfileView> {
        self.profiles.create_without_password(p).await
    }

    /// Takes the lifecycle lock of the profile `name` resolves to, then resolves it
    /// again under the lock: a profile deleted meanwhile is `UnknownProfile`.
    async fn lock_profile(
        &self,
        name: &str,
        resolve: bool,
    ) -> Result<(
        tokio::sync::OwnedMutexGuard<()>,
        crate::db::entities::profile::Model,
    )> {
        let get = |n: String| async move {
            if resolve {
                self.profiles.resolve(&n).await
            } else {
                self.profiles.get(&n).await
            }
        };
        let m = get(name.to_owned()).await?;
        let lock = {
            let mut map = self
                .lifecycle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(m.name.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        let again = self.profiles.get(&m.name).await?;
        if again.id != m.id {
            return Err(Error::UnknownProfile(m.name));
        }
        Ok((guard, again))
    }

    /// Changes the profile's account JID (its password sealed anew). Under the
    /// profile's lifecycle lock, so a Connect never reads half a change; a running
    /// session keeps its settings until it connects again.
    pub async fn set_profile_jid(&self, name: &str, jid: &str) -> Result<()> {
        let (_guard, m) = self.lock_profile(name, true).await?;
        self.profiles.set_jid(&m.name, jid).await
    }

    /// Sets or clears (`None`) the profile's server override (see [`Daemon::set_profile_jid`]).
    pub async fn set_profile_server(&self, name: &str, server: Option<&str>) -> Result<()> {
        let (_guard, m) = self.lock_profile(name, true).await?;
        self.profiles.set_server(&m.name, server).await
    }

    /// Turns the profile's certificate checks off or on (see [`Daemon::set_profile_jid`]).
    pub async fn set_profile_insecure(&self, name: &str, insecure: bool) -> Result<()> {
        let (_guard, m) = self.lock_profile(name, true).await?;
        self.profiles.set_insecure(&m.name, insecure).await
    }

    /// Whether perchd connects the profile when it starts.
    pub async fn set_profile_autoconnect(&self, name: &str, on: bool) -> Result<()> {
        let (_guard, m) = self.lock_profile(name, true).await?;
        self.profiles.set_autoconnect(&m.name, on).await
    }

    /// Replaces the profile's XMPP password (stored sealed).
    pub async fn set_profile_password(
        &self,
        name: &str,
        password: &crate::secret::Password,
    ) -> Result<()> {
        let (_guard, m) = self.lock_profile(name, true).await?;
        self.profiles.set_password(&m.name, password).await
    }

    /// Deletes a profile: its session ended, its inbox done (at most
    /// [`INBOX_DRAIN`]), then its rows.
    pub async fn delete_profile(&self, name: &str) -> Result<()> {
        let (_guard, m) = self.lock_profile(name, false).await?;
        let session = self.sessions.lock().await.remove(&m.name);
        if let Some(s) = session {
            s.disconnect().await;
        }
        let inbox = self
            .inboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&m.name);
        if let Some(inbox) = inbox
            && tokio::time::timeout(INBOX_DRAIN, inbox).await.is_err()
        {
            tracing::warn!(profile = %m.name, "the inbox did not finish in time; deleting the profile all the same");
        }
        self.profiles.delete(&m.name).await?;
        self.lifecycle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&m.name);
        Ok(())
    }

    /// Starts a session for the profile unless one is running; returns it.
    async fn start_session(&self, profile: &str) -> Result<Session> {
        let (_guard, m) = self.lock_profile(profile, true).await?;
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(&m.name)
            && s.profile_id == m.id
            && s.is_running()
            && s.state().state != ConnectionState::Disconnected
        {
            return Ok(s.clone());
        }
        if let Some(c) = &self.cluster {
            c.acquire(&m.name, m.id).await?;
        }
        let mut creds = self.profiles.credentials(&m)?;
        creds.priority = self.profiles.initial_priority(m.id).await?;
        let stored = self.roster.load(m.id, &creds.jid.to_string()).await?;
        tracing::info!(profile = %m.name, jid = %m.jid, "connecting");
        let s = self.spawn_session(creds, m.id, stored)?;
        sessions.insert(m.name.clone(), s.clone());
        Ok(s)
    }

    /// A session and its receive pipeline ([`crate::receive`]): what it hands up
    /// goes through the plugins, is stored, then signalled.
    fn spawn_session(
        &self,
        creds: Credentials,
        profile_id: i32,
        stored_roster: StoredRoster,
    ) -> Result<Session> {
        let (upstream, inbox) =
            receive::upstream(self.registry.clone(), self.events.clone(), &creds.profile);
        let (profile, own) = (creds.profile.clone(), creds.jid.clone());
        let s = Session::spawn(
            creds,
            profile_id,
            self.session_config(),
            Stores {
                history: self.history.clone(),
                roster: self.roster.clone(),
                stored_roster,
            },
            self.events.clone(),
            upstream,
        )?;
        let name = profile.clone();
        let inbox = Inbox {
            profile,
            profile_id,
            own,
            history: self.history.clone(),
            events: self.events.clone(),
            registry: self.registry.clone(),
            link: s.link(),
        }
        .spawn(inbox);
        self.inboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, inbox);
        Ok(s)
    }

    /// Connects and waits until the session is up or has failed.
    ///
    /// Bounded: a session that keeps reconnecting (its server is down) does not hold
    /// the caller forever; it gets `Timeout` with the last reason, and the session
    /// goes on trying in the background.
    pub async fn connect(&self, profile: &str) -> Result<()> {
        let s = self.start_session(profile).await?;
        let x = &self.config.xmpp;
        let max_delay = Duration::from_secs(x.reconnect_max_delay);
        let bound = (1..=x.connect_attempts)
            .map(|n| {
                Duration::from_secs(x.connect_timeout) + crate::xmpp::connect::backoff(n, max_delay)
            })
            .sum::<Duration>()
            + Duration::from_secs(5);
        match tokio::time::timeout(bound, s.wait_ready()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "profile {:?} is still connecting after {} s; perchd keeps trying (see `perch status`)",
                s.profile,
                bound.as_secs()
            ))),
        }
    }

    pub async fn disconnect(&self, profile: &str) -> Result<()> {
        let (_guard, m) = self.lock_profile(profile, true).await?;
        let s = self.sessions.lock().await.remove(&m.name);
        match s {
            Some(s) => {
                s.disconnect().await;
                Ok(())
            }
            None => Err(Error::NotConnected(m.name)),
        }
    }

    /// Connects every autoconnect profile, in the background; with other daemons on
    /// the database, this daemon's share of them ([`Daemon::balance`]).
    pub async fn autoconnect(self: &Arc<Self>) -> Result<()> {
        if self.cluster.is_some() {
            return self.balance().await;
        }
        for m in self.profiles.list().await? {
            if m.autoconnect {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.connect(&m.name).await {
                        tracing::warn!(profile = %m.name, jid = %m.jid, error = %e, "autoconnect failed");
                    }
                });
            }
        }
        Ok(())
    }

    pub async fn status(&self) -> Result<Vec<StatusEntry>> {
        let owners = match &self.cluster {
            Some(c) => c.owners().await?,
            None => HashMap::new(),
        };
        let sessions = self.sessions.lock().await;
        Ok(self
            .profiles
            .list()
            .await?
            .into_iter()
            .map(|m| {
                let session = sessions.get(&m.name).filter(|s| s.profile_id == m.id);
                let (state, bound_jid, error) = match session {
                    Some(s) => {
                        let st = s.state();
                        let error = st.error.as_ref().map(|e| ErrorView {
                            name: session::error_name(e),
                            message: s.error_of(e).to_string(),
                        });
                        (st.state, st.bound_jid, error)
                    }
                    None => (ConnectionState::Disconnected, None, None),
                };
                StatusEntry {
                    owner: owners.get(&m.id).cloned(),
                    profile: m.name,
                    jid: m.jid,
                    state,
                    bound_jid,
                    error,
                }
            })
            .collect())
    }

    /// The running session of a profile, or `NotConnected`.
    pub async fn session(&self, profile: &str) -> Result<Session> {
        let m = self.profiles.resolve(profile).await?;
        match self.sessions.lock().await.get(&m.name) {
            Some(s)
                if s.profile_id == m.id
                    && s.is_running()
                    && s.state().state != ConnectionState::Disconnected =>
            {
                Ok(s.clone())
            }
            _ => Err(self.not_here(m.name, m.id).await),
        }
    }

    /// Why a profile has no session here: another daemon owns it, or it is not
    /// connected.
    async fn not_here(&self, profile: String, profile_id: i32) -> Error {
        let owner = match &self.cluster {
            Some(c) => c.owned_elsewhere(profile_id).await,
            None => Ok(None),
        };
        match owner {
            Ok(Some(owner)) => Error::OwnedElsewhere { profile, owner },
            Ok(None) => Error::NotConnected(profile),
            Err(e) => e,
        }
    }

    /// Sends a message from a frontend; see [`Daemon::queue_message`].
    pub async fn send_message(
        &self,
        profile: &str,
        to: &str,
        body: &str,
        kind: &str,
    ) -> Result<HistoryMessage> {
        self.send_message_with(profile, to, body, kind, None, Vec::new())
            .await
    }

    /// [`Daemon::send_message`] with a subject and more payloads (XHTML-IM…).
    pub async fn send_message_with(
        &self,
        profile: &str,
        to: &str,
        body: &str,
        kind: &str,
        subject: Option<&str>,
        payloads: Vec<Element>,
    ) -> Result<HistoryMessage> {
        validate::text("to", to, validate::MAX_JID)?;
        validate::text("body", body, validate::MAX_BODY)?;
        let to = parse_jid(to)?;
        let kind = stanzas::parse_message_type(kind).ok_or_else(|| {
            Error::bad_argument(
                "type",
                format!("{kind:?}: use chat, normal, headline or groupchat"),
            )
        })?;
        if body.is_empty() {
            return Err(Error::bad_argument("body", "empty message"));
        }
        let mut message =
            Message::new_with_type(kind, Some(to)).with_body(Lang(String::new()), body.to_owned());
        if let Some(subject) = subject.filter(|s| !s.is_empty()) {
            validate::text("subject", subject, validate::MAX_BODY)?;
            message
                .subjects
                .insert(Lang(String::new()), subject.to_owned());
        }
        message.payloads.extend(payloads);
        self.queue_message(profile, message).await
    }

    /// The one way out for messages, a frontend's or a plugin's: `message.send`
    /// handlers see it (and may edit it), then it is stored with its stanza in the
    /// outbox — only then is the caller told — and the profile's session, when
    /// there is one, sends it (`xmpp::session::outbox`). A profile that is offline
    /// keeps it queued until it connects, across restarts.
    pub async fn queue_message(
        &self,
        profile: &str,
        mut message: Message,
    ) -> Result<HistoryMessage> {
        let p = self.profiles.resolve(profile).await?;
        let Some(to) = message.to.clone() else {
            return Err(Error::bad_argument("to", "a message needs a recipient"));
        };
        if message.id.is_none() {
            message.id = Some(Id(new_message_id()));
        }
        let mut args = OutgoingMessage::new(p.name.clone(), message);
        match self.registry.triggers.fire::<MessageSend>(&mut args).await {
            Outcome::Proceed => {}
            Outcome::Stopped { by } => {
                if let Some(why) = args.refused {
                    return Err(why.into());
                }
                return Err(Error::Cancelled(format!(
                    "plugin {by} stopped sending this message"
                )));
            }
            Outcome::Replaced { by, value } => {
                tracing::debug!(profile = %p.name, plugin = %by, id = %value, "message sent by a plugin");
                return Err(Error::Cancelled(format!(
                    "plugin {by} took the message over (id {value}); it is not stored"
                )));
            }
        }
        let OutgoingMessage {
            message,
            peer,
            history_body,
            extra,
            ..
        } = args;
        let mut content = stanzas::content(&message).ok_or_else(|| {
            Error::bad_argument("body", "a message to send needs a text (or an action)")
        })?;
        // An encryption plugin sent a fallback on the wire; history keeps the text.
        if let Some(text) = history_body {
            content.body = text;
        }
        content.extra.extend(extra);
        let session = self.sessions.lock().await.get(&p.name).cloned();
        let from = session
            .as_ref()
            .filter(|s| s.profile_id == p.id)
            .and_then(|s| s.bound_jid())
            .map_or_else(|| p.jid.clone(), |j| j.to_string());
        let id = message.id.clone().map(|i| i.0).unwrap_or_default();
        let record = history::NewMessage {
            msg_id: id,
            timestamp: crate::time::now_micros(),
            direction: Direction::Out,
            peer: peer.unwrap_or_else(|| to.to_bare().to_string()),
            from,
            to: to.to_string(),
            kind: stanzas::message_type_name(&message.type_).to_owned(),
            body: content.body,
            state: MessageState::Queued,
            origin_id: stanzas::origin_id(&message),
            stanza_id: None,
            replaces: stanzas::replace_id(&message),
            extra: content.extra,
            apply: content.apply,
        };
        let stanza = String::from(&Element::from(message));
        let (message, corrected) = match self.history.enqueue(p.id, record, stanza).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(profile = %p.name, jid = %p.jid, error = %e, "storing a message to send failed; not queued");
                return Err(e);
            }
        };
        // A correction is signalled as the message it changed; anything else as new.
        let _ = self.events.send(match corrected {
            Some(corrected) => Event::MessageUpdated {
                profile: p.name.clone(),
                message: corrected,
            },
            None => Event::Message {
                profile: p.name.clone(),
                message: message.clone(),
            },
        });
        if let Some(s) = session.filter(|s| s.profile_id == p.id) {
            s.wake_outbox();
        }
        Ok(message)
    }

    /// We are in `room` again: our messages it refused because we were not in it
    /// go back to the outbox, rebuilt from history (their text and id) and through
    /// `message.send` as any message, then sent. Returns how many.
    pub async fn resend_held(&self, profile: &str, room: &str) -> Result<usize> {
        let p = self.profiles.resolve(profile).await?;
        let held = self.history.held_for_room(p.id, room).await?;
        if held.is_empty() {
            return Ok(0);
        }
        let to = parse_jid(room)?;
        let mut requeued = 0;
        for m in held {
            let mut message = Message::new_with_type(MessageType::Groupchat, Some(to.clone()))
                .with_body(Lang(String::new()), m.body.clone());
            message.id = Some(Id(m.id.clone()));
            let mut args = OutgoingMessage::new(p.name.clone(), message);
            if !matches!(
                self.registry.triggers.fire::<MessageSend>(&mut args).await,
                Outcome::Proceed
            ) {
                tracing::info!(profile = %p.name, %room, id = %m.id, "a held room message was refused by a plugin; left failed");
                continue;
            }
            let stanza = String::from(&Element::from(args.message));
            if let Some(message) = self.history.requeue(p.id, &m.id, stanza).await? {
                tracing::info!(profile = %p.name, %room, id = %m.id, "a room message refused before the join goes again");
                requeued += 1;
                let _ = self.events.send(Event::MessageUpdated {
                    profile: p.name.clone(),
                    message,
                });
            }
        }
        if let Some(s) = self
            .sessions
            .lock()
            .await
            .get(&p.name)
            .filter(|s| s.profile_id == p.id)
        {
            s.wake_outbox();
        }
        Ok(requeued)
    }

    /// What is still to be confirmed by the server, oldest first.
    pub async fn outbox(&self, profile: &str) -> Result<Vec<HistoryMessage>> {
        let p = self.profiles.resolve(profile).await?;
        self.history.outbox(p.id).await
    }

    /// Takes a queued message out of the outbox (not once it is on the wire).
    pub async fn cancel_message(&self, profile: &str, id: &str) -> Result<HistoryMessage> {
        validate::text("id", id, validate::MAX_TEXT)?;
        let p = self.profiles.resolve(profile).await?;
        let m = self.history.cancel(p.id, id).await?;
        let _ = self.events.send(Event::MessageUpdated {
            profile: p.name.clone(),
            message: m.clone(),
        });
        Ok(m)
    }

    /// A stored message of the conversation with `with`, by its id, origin-id or
    /// stanza-id (for message actions: a reply's quote, a target's id on the wire).
    pub async fn find_message(
        &self,
        profile: &str,
        with: &str,
        id: &str,
    ) -> Result<Option<HistoryMessage>> {
        let p = self.profiles.resolve(profile).await?;
        self.history.find(p.id, with, id).await
    }

    /// Unread counts against the read positions `read` (see `History::unread`).
    pub async fn unread(
        &self,
        profile: &str,
        with: Option<&str>,
        read: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<perch_plugin_api::ConversationCount>> {
        let p = self.profiles.resolve(profile).await?;
        self.history.unread(p.id, with, read).await
    }

    /// A stored message of any conversation, by its id in history (the Libervia
    /// bridge's uid).
    pub async fn message_by_id(&self, profile: &str, id: &str) -> Result<Option<HistoryMessage>> {
        let p = self.profiles.resolve(profile).await?;
        self.history.by_id(p.id, id).await
    }

    /// The newest id archive `by` gave a stored message of this profile.
    pub async fn last_archive_id(&self, profile: &str, by: &str) -> Result<Option<String>> {
        let p = self.profiles.resolve(profile).await?;
        self.history.last_archive_id(p.id, by).await
    }

    /// Runs plugin action `A` in process: the typed form of [`Daemon::run_action`],
    /// for callers inside perchd (the Libervia bridge).
    pub async fn action<A: perch_actions::Action>(
        &self,
        profile: &str,
        args: &A::Args,
    ) -> Result<A::Output> {
        let args = serde_json::to_value(args)
            .map_err(|e| Error::Internal(format!("action {}: arguments: {e}", A::NAME)))?;
        let out = self.run_action(profile, A::NAME, args).await?;
        serde_json::from_value(out)
            .map_err(|e| Error::Internal(format!("action {}: result: {e}", A::NAME)))
    }

    /// Whether an action of that name is registered (`UnknownAction` if not).
    pub fn action_exists(&self, name: &str) -> Result<()> {
        match self.registry.action(name) {
            Some(_) => Ok(()),
            None => Err(Error::UnknownAction(name.to_owned())),
        }
    }

    /// Runs plugin action `name` with `args` (a JSON object), checked against the
    /// action's declared parameters. JSON text is parsed at the edge, by the bridge
    /// ([`validate::action_args`]).
    pub async fn run_action(&self, profile: &str, name: &str, args: Value) -> Result<Value> {
        let (spec, handler) = self
            .registry
            .action(name)
            .ok_or_else(|| Error::UnknownAction(name.to_owned()))?;
        validate::json_strings("args", &args)?;
        let args = spec
            .check(&args)
            .map_err(|e| Error::bad_argument("args", e.to_string()))?;
        let profile = if spec.needs_session {
            self.session(profile).await?.profile
        } else {
            self.profiles.resolve(profile).await?.name
        };
        tracing::debug!(%profile, action = name, "running action");
        let run = std::panic::AssertUnwindSafe(handler(perch_plugin_api::action::Call {
            profile: profile.clone(),
            args,
        }));
        match futures::FutureExt::catch_unwind(run).await {
            Ok(result) => Ok(result?),
            Err(payload) => {
                let what = perch_plugin_api::trigger::panic_message(payload.as_ref());
                report_fault(
                    &self.events,
                    perch_plugin_api::HandlerFault {
                        plugin: spec.plugin.clone(),
                        point: format!("action {name}"),
                        what: what.clone(),
                    },
                );
                Err(Error::Internal(format!(
                    "action {name} of plugin {} failed: {what}",
                    spec.plugin
                )))
            }
        }
    }

    pub async fn job_view(&self, id: &str) -> Result<JobView> {
        let m = self.jobs.get(id).await?;
        let profile = self.profile_name(m.profile_id).await;
        Ok(self.jobs.view(m, profile))
    }

    pub async fn job_list(&self, profile: &str) -> Result<Vec<JobView>> {
        let p = self.profiles.resolve(profile).await?;
        Ok(self
            .jobs
            .list(p.id)
            .await?
            .into_iter()
            .map(|m| self.jobs.view(m, p.name.clone()))
            .collect())
    }

    /// The name of the profile `id`, `""` when there is none.
    async fn profile_name(&self, id: i32) -> String {
        self.profile_name_of(id).await.unwrap_or_default()
    }

    pub async fn history(
        &self,
        profile: &str,
        filters: &HashMap<String, String>,
    ) -> Result<Vec<HistoryMessage>> {
        let m = self.profiles.resolve(profile).await?;
        let mut q = history::Query {
            limit: Some(100),
            ..Default::default()
        };
        for (k, v) in filters {
            let time = |v: &str| {
                crate::time::parse(v).ok_or_else(|| {
                    Error::bad_argument(
                        k,
                        format!(
                            "{:?} is neither RFC 3339 nor Unix seconds",
                            validate::excerpt(v, 40)
                        ),
                    )
                })
            };
            match k.as_str() {
                "with" if !v.is_empty() => q.with = Some(parse_jid(v)?.to_string()),
                "with" => {}
                "after" => q.after = Some(time(v)?),
                "before" => q.before = Some(time(v)?),
                "limit" => {
                    let n = v
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=MAX_HISTORY).contains(n))
                        .ok_or_else(|| {
                            Error::bad_argument(
                                "limit",
                                format!(
                                    "{:?} is not a whole number from 1 to {MAX_HISTORY} (page with before/after)",
                                    validate::excerpt(v, 40)
                                ),
                            )
                        })?;
                    q.limit = Some(n);
                }
                other => {
                    return Err(Error::bad_argument(
                        &validate::excerpt(other, 40),
                        "unknown filter (known: with, after, before, limit)",
                    ));
                }
            }
        }
        self.history.query(m.id, &q).await
    }

    /// The roster: the session's when the profile is connected (or connecting),
    /// else the last one stored (RFC 6121's roster, kept across restarts).
    pub async fn roster(&self, profile: &str) -> Result<Vec<RosterItem>> {
        let m = self.profiles.resolve(profile).await?;
        let session = self.sessions.lock().await.get(&m.name).cloned();
        match session {
            Some(s) if s.profile_id == m.id && s.is_running() => Ok(s.roster()),
            _ => {
                let account = crate::profiles::parse_account_jid(&m.jid)?.to_string();
                Ok(self.roster.load(m.id, &account).await?.items)
            }
        }
    }

    pub async fn roster_add(
        &self,
        profile: &str,
        jid: &str,
        name: &str,
        groups: Vec<String>,
    ) -> Result<()> {
        validate::text("jid", jid, validate::MAX_JID)?;
        validate::text("name", name, validate::MAX_TEXT)?;
        for g in &groups {
            validate::text("groups", g, validate::MAX_TEXT)?;
        }
        let jid = parse_jid(jid)?.to_bare();
        let s = self.session(profile).await?;
        let item = Item {
            jid: jid.clone(),
            name: (!name.is_empty()).then(|| name.to_owned()),
            subscription: Subscription::None,
            ask: Ask::None,
            groups: groups.into_iter().map(Group).collect(),
            approved: None,
        };
        let query: Element = Roster {
            ver: None,
            items: vec![item],
        }
        .into();
        s.iq(None, true, query).await?;
        self.send_subscription(&s, PresenceType::Subscribe, jid.into())
            .await
    }

    /// A subscription presence; a request goes through `presence.send` (a plugin
    /// adds our nickname, XEP-0172), the others as they are.
    async fn send_subscription(&self, s: &Session, t: PresenceType, to: Jid) -> Result<()> {
        let request = matches!(t, PresenceType::Subscribe);
        let presence = Presence::new(t).with_to(to);
        if !request {
            return s.send_presence(presence).await;
        }
        match receive::presence_through_triggers(&self.registry, &s.profile, presence).await {
            Some(p) => s.send_presence(p).await,
            None => Ok(()),
        }
    }

    pub async fn roster_remove(&self, profile: &str, jid: &str) -> Result<()> {
        let jid = parse_jid(jid)?.to_bare();
        let s = self.session(profile).await?;
        let item = Item {
            jid,
            name: None,
            subscription: Subscription::Remove,
            ask: Ask::None,
            groups: vec![],
            approved: None,
        };
        let query: Element = Roster {
            ver: None,
            items: vec![item],
        }
        .into();
        s.iq(None, true, query).await.map(|_| ())
    }

    pub async fn subscription(&self, profile: &str, action: &str, jid: &str) -> Result<()> {
        let t = match action {
            "subscribe" => PresenceType::Subscribe,
            "subscribed" => PresenceType::Subscribed,
            "unsubscribe" => PresenceType::Unsubscribe,
            "unsubscribed" => PresenceType::Unsubscribed,
            other => {
                return Err(Error::bad_argument(
                    "action",
                    format!("{other:?}: use subscribe, subscribed, unsubscribe or unsubscribed"),
                ));
            }
        };
        let jid = parse_jid(jid)?.to_bare();
        let s = self.session(profile).await?;
        self.send_subscription(&s, t, jid.into()).await
    }

    pub async fn set_presence(
        &self,
        profile: &str,
        show: &str,
        status: &str,
        priority: i32,
    ) -> Result<()> {
        validate::text("status", status, validate::MAX_TEXT)?;
        let show = Show::parse(show)
            .filter(|s| *s != Show::Unavailable)
            .ok_or_else(|| {
                Error::bad_argument("show", format!("{show:?}: use away, xa, dnd, chat or \"\""))
            })?;
        let priority = i8::try_from(priority).map_err(|_| {
            Error::bad_argument(
                "priority",
                format!("{priority} is not between -128 and 127"),
            )
        })?;
        let s = self.session(profile).await?;
        let status = (!status.is_empty()).then(|| status.to_owned());
        let presence = stanzas::own_presence(show, status.as_deref(), priority);
        // Through `presence.send` in the caller's task: plugins add to it.
        let Some(presence) =
            receive::presence_through_triggers(&self.registry, &s.profile, presence).await
        else {
            return Ok(());
        };
        s.set_own_presence(presence, show, status, priority).await
    }

    pub async fn presences(&self, profile: &str) -> Result<Vec<ContactPresence>> {
        Ok(self.session(profile).await?.presences())
    }

    /// Disconnects every session (in parallel), gives the profiles' leases up and
    /// closes the database.
    pub async fn shutdown(&self) {
        let sessions: Vec<Session> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        futures::future::join_all(sessions.iter().map(|s| s.disconnect())).await;
        if let Some(c) = &self.cluster
            && let Err(e) = c.release_all().await
        {
            tracing::warn!(error = %e, "giving the profiles' leases up");
        }
        if let Err(e) = self.db.clone().close().await {
            tracing::warn!(error = %e, "closing the database");
        }
    }
}

/// What the edges (the bridges, the plugins' host) read and change through the
/// daemon, rather than through its parts: the plain reads and writes of the
/// profile table, the history, the jobs and the registry they need.
impl Daemon {
    /// The settings perchd runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The events the bridges turn into signals, from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Publishes an event (a plugin's signal, through the host).
    pub fn emit(&self, event: Event) {
        // No receiver (no frontend yet) is fine.
        let _ = self.events.send(event);
    }

    /// The registry of plugins: their IQ handlers, features, actions, signals and
    /// trigger points.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// What became of each plugin (loaded, disabled, failed, and why).
    pub fn plugin_statuses(&self) -> Vec<crate::plugins::PluginStatus> {
        self.registry.statuses()
    }

    /// The actions plugins registered.
    pub fn action_specs(&self) -> Vec<perch_plugin_api::action::ActionSpec> {
        self.registry.actions()
    }

    /// The trigger points, with their handlers.
    pub fn trigger_points(&self) -> Vec<perch_plugin_api::trigger::PointListing> {
        self.registry.triggers.list()
    }

    /// Every profile, by name.
    pub async fn profile_list(&self) -> Result<Vec<ProfileModel>> {
        self.profiles.list().await
    }

    /// The profile called `name` exactly.
    pub async fn profile(&self, name: &str) -> Result<ProfileModel> {
        self.profiles.get(name).await
    }

    /// Seals a plugin's secret for a profile (`Host::seal`).
    pub async fn seal_secret(&self, plugin: &str, profile: &str, secret: &[u8]) -> Result<String> {
        let m = self.profiles.get(profile).await?;
        self.profiles.seal_secret(plugin, &m, secret)
    }

    /// Opens a plugin's sealed secret (`Host::unseal`).
    pub async fn open_secret(&self, plugin: &str, profile: &str, sealed: &str) -> Result<Vec<u8>> {
        let m = self.profiles.get(profile).await?;
        self.profiles.open_secret(plugin, &m, sealed)
    }

    /// The profile `name`, or the default one for `""`.
    pub async fn resolve_profile(&self, name: &str) -> Result<ProfileModel> {
        self.profiles.resolve(name).await
    }

    /// The name of the profile `id`, if there is one.
    pub async fn profile_name_of(&self, id: i32) -> Option<String> {
        self.profiles.name_of(id).await.ok().flatten()
    }

    /// The profile's account, password unsealed.
    pub fn credentials(&self, m: &ProfileModel) -> Result<Credentials> {
        self.profiles.credentials(m)
    }

    pub async fn set_default_profile(&self, name: &str) -> Result<()> {
        self.profiles.set_default(name).await
    }

    /// Replaces the password of the profile called `name` exactly (the native
    /// bridge's `ProfileSetPassword`; see also [`Daemon::set_profile_password`]).
    pub async fn replace_password(
        &self,
        name: &str,
        password: &crate::secret::Password,
    ) -> Result<()> {
        self.profiles.set_password(name, password).await
    }

    /// Turns autoconnect of the profile called `name` exactly on or off (the native
    /// bridge's `ProfileSetAutoconnect`).
    pub async fn replace_autoconnect(&self, name: &str, on: bool) -> Result<()> {
        self.profiles.set_autoconnect(name, on).await
    }

    /// Messages of the profile `profile_id` (already resolved).
    pub async fn query_history(
        &self,
        profile_id: i32,
        q: &history::Query,
    ) -> Result<Vec<HistoryMessage>> {
        self.history.query(profile_id, q).await
    }

    /// Sets (or clears) one key of a stored message's extra data; `false` when there
    /// is no such message.
    pub async fn set_message_extra(
        &self,
        profile: &str,
        message_id: &str,
        key: &str,
        value: Value,
    ) -> Result<bool> {
        let m = self.profiles.resolve(profile).await?;
        Ok(self
            .history
            .set_extra(m.id, message_id, key, value)
            .await?
            .is_some())
    }

    /// A job row, by id.
    pub async fn job(&self, id: &str) -> Result<crate::db::entities::job::Model> {
        self.jobs.get(id).await
    }

    /// A job's progress records.
    pub async fn job_log(&self, id: &str) -> Result<Vec<crate::jobs::ProgressRecord>> {
        self.jobs.log(id).await
    }

    /// Starts a job of a plugin for a profile.
    pub async fn start_job(
        &self,
        profile: &str,
        plugin: &str,
        kind: &str,
        description: &str,
    ) -> Result<perch_plugin_api::JobHandle> {
        let m = self.profiles.resolve(profile).await?;
        self.jobs
            .start(m.id, &m.name, plugin, kind, description)
            .await
    }

    /// Forgets finished jobs past `jobs.keep_hours`, from now on, in the background.
    pub fn spawn_job_pruner(&self) -> tokio::task::JoinHandle<()> {
        self.jobs.spawn_pruner()
    }
}

/// A fresh, unguessable stanza id for a message we send.
fn new_message_id() -> String {
    format!("perch-{}", perch_plugin_api::ids::random_hex(9))
}
