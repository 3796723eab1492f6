//! The bridge's own state beside the daemon ([`Lib`]), the context every handler and
//! the signal forwarder get.
//!
//! Why apart from `mod.rs`: every other module needs `Lib`, and `mod.rs` needs them
//! all to start the bridge; with `Lib` here, the modules' imports only go down
//! (the order is in `mod.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use zbus::Connection;

use super::errors::{self, LibError};
use super::params::Params;
use super::reply::Map;
use super::rooms::Rooms;
use crate::daemon::Daemon;

/// One pending action: its data, id and security limit (`actionsGet`'s `(a{ss}si)`).
pub type Pending = (Map, String, i32);

/// Pending actions by profile.
pub type PendingTable = HashMap<String, Vec<Pending>>;

/// An OMEMO trust form sent by `encryptionTrustUIGet` and not submitted yet: the
/// submit id, the profile, the contact, and each listed key's fingerprint with the
/// trust level shown for it (the form's `trust_N` is entry N).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustForm {
    pub id: String,
    pub profile: String,
    pub jid: String,
    pub keys: Vec<(String, String)>,
}

/// A room configuration form sent by `mucConfigureRoom`, until submitted: its
/// submit id, the profile, the room, and each field's type by var.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomForm {
    pub id: String,
    pub profile: String,
    pub room: String,
    pub types: Vec<(String, String)>,
}

/// The prefix frontends give the names of a submitted form's controls.
pub const FORM_PREFIX: &str = "SAT_FORM_";

/// A form sent to the frontends, named by its submit id, for one profile.
pub trait Form {
    fn id(&self) -> &str;
    fn profile(&self) -> &str;
}

impl Form for TrustForm {
    fn id(&self) -> &str {
        &self.id
    }
    fn profile(&self) -> &str {
        &self.profile
    }
}

impl Form for RoomForm {
    fn id(&self) -> &str {
        &self.id
    }
    fn profile(&self) -> &str {
        &self.profile
    }
}

/// Forms waiting for their submission (`launchAction`), oldest first: each taken
/// once, the last [`Waiting::MAX`] kept (a frontend that never answers must not
/// make the list grow).
pub struct Waiting<F>(Mutex<Vec<F>>);

impl<F> Default for Waiting<F> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<F: Form> Waiting<F> {
    pub const MAX: usize = 32;

    /// Keeps `form` until it is submitted.
    pub fn keep(&self, form: F) {
        let mut forms = lock(&self.0);
        if forms.len() >= Self::MAX {
            forms.remove(0);
        }
        forms.push(form);
    }

    /// The form waiting under submit id `id` for `profile`, taken.
    pub fn take(&self, profile: &str, id: &str) -> Option<F> {
        let mut forms = lock(&self.0);
        let i = forms
            .iter()
            .position(|f| f.id() == id && f.profile() == profile)?;
        Some(forms.remove(i))
    }
}

pub const BUS_NAME: &str = "org.libervia.Libervia";
pub const PATH: &str = "/org/libervia/Libervia/bridge";
pub const CORE_INTERFACE: &str = "org.libervia.Libervia.core";
pub const PLUGIN_INTERFACE: &str = "org.libervia.Libervia.plugin";

/// What the bridge keeps beside the daemon: Libervia's notion of a started "session"
/// (the profile password was given), pending subscription requests, and which
/// profiles were announced as connected (so `connected` goes out once, before the
/// reply to `connect`), which group chats were announced.
pub struct Lib {
    pub daemon: Arc<Daemon>,
    pub params: Params,
    pub(in crate::libervia) sessions: Mutex<HashMap<String, i64>>,
    pub(in crate::libervia) waiting_sub: Mutex<HashMap<String, HashMap<String, String>>>,
    pub(in crate::libervia) announced: Mutex<HashSet<String>>,
    /// Dialogs sent with `actionNew` and not answered yet (`actionsGet`).
    pub(in crate::libervia) actions: Mutex<PendingTable>,
    /// OMEMO trust forms waiting for their submission, oldest first.
    pub(in crate::libervia) trust_forms: Waiting<TrustForm>,
    /// Room configuration forms waiting for their submission, oldest first.
    pub(in crate::libervia) room_forms: Waiting<RoomForm>,
    /// Woken each time a profile is announced as connected.
    pub(in crate::libervia) announced_changed: tokio::sync::Notify,
    pub(in crate::libervia) conn: OnceLock<Connection>,
    /// The group chats announced to the frontends (`mucRoomJoined`).
    pub(in crate::libervia) rooms: Rooms,
}

impl Lib {
    pub fn new(daemon: Arc<Daemon>) -> Arc<Self> {
        Arc::new(Self {
            params: Params::new(daemon.clone()),
            daemon,
            sessions: Mutex::default(),
            waiting_sub: Mutex::default(),
            announced: Mutex::default(),
            actions: Mutex::default(),
            trust_forms: Waiting::default(),
            room_forms: Waiting::default(),
            announced_changed: tokio::sync::Notify::new(),
            conn: OnceLock::new(),
            rooms: Rooms::default(),
        })
    }

    /// Resolves a Libervia profile key to a profile name: `@DEFAULT@` (or `""`) is the
    /// default profile, `@NONE@` is `ProfileNotSetError`, anything else must exist.
    pub async fn profile(&self, key: &str) -> Result<String, LibError> {
        match key {
            "@NONE@" => Err(LibError::exc(
                errors::PROFILE_NOT_SET,
                "no profile given (@NONE@)",
                "",
            )),
            "@DEFAULT@" | "" => match self.daemon.resolve_profile("").await {
                Ok(m) => Ok(m.name),
                Err(crate::error::Error::NoDefaultProfile) => {
                    // Libervia picks the first profile, and remembers it.
                    let first = self.daemon.profile_list().await?.into_iter().next();
                    match first {
                        Some(m) => {
                            self.daemon.set_default_profile(&m.name).await?;
                            Ok(m.name)
                        }
                        None => Err(LibError::exc(
                            errors::PROFILE_NOT_SET,
                            "there is no profile yet",
                            "",
                        )),
                    }
                }
                Err(e) => Err(e.into()),
            },
            name => Ok(self.daemon.profile(name).await?.name),
        }
    }

    /// Starts the Libervia session of `profile`; true when it was started already.
    pub(in crate::libervia) fn start_session(&self, profile: &str) -> bool {
        let mut s = lock(&self.sessions);
        if s.contains_key(profile) {
            return true;
        }
        s.insert(profile.to_owned(), crate::time::now_micros() / 1_000_000);
        false
    }

    pub(in crate::libervia) fn session_started(&self, profile: &str) -> Option<i64> {
        lock(&self.sessions).get(profile).copied()
    }

    pub(in crate::libervia) fn end_session(&self, profile: &str) {
        lock(&self.sessions).remove(profile);
    }

    /// Emits a signal on one of the two interfaces; logged when it cannot be sent.
    pub async fn emit<B>(&self, interface: &str, name: &str, body: &B)
    where
        B: serde::Serialize + zbus::DynamicType,
    {
        let Some(conn) = self.conn.get() else { return };
        if let Err(e) = conn
            .emit_signal(None::<&str>, PATH, interface, name, body)
            .await
        {
            tracing::warn!(signal = name, error = %e, "a Libervia signal could not be sent");
        }
    }
}

impl Lib {
    pub(in crate::libervia) fn sub_answered(&self, profile: &str, jid: &str) {
        if let Some(m) = lock(&self.waiting_sub).get_mut(profile) {
            m.remove(jid);
        }
    }

    pub(in crate::libervia) fn waiting_subs(&self, profile: &str) -> Map {
        lock(&self.waiting_sub)
            .get(profile)
            .cloned()
            .unwrap_or_default()
    }

    pub(in crate::libervia) fn sub_requested(&self, profile: &str, jid: &str, kind: &str) {
        let mut w = lock(&self.waiting_sub);
        let m = w.entry(profile.to_owned()).or_default();
        if kind == "subscribe" {
            m.insert(jid.to_owned(), kind.to_owned());
        } else if kind == "unsubscribe" {
            m.remove(jid);
        }
    }
}

/// Locks a mutex of the bridge's state; a poisoned lock is used as it is (each
/// critical section leaves the data consistent).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
