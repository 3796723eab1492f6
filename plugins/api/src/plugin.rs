//! The plugin contract: what a plugin declares ([`PluginInfo`]), what it implements
//! ([`Plugin`]), and everything it may ask of the daemon ([`Host`]).
//!
//! Why a `Host` trait instead of handing plugins the daemon: a plugin sees only this
//! surface, so the backend can change inside without touching plugins, and a plugin
//! cannot reach another one's state except through triggers, actions and signals.
//!
//! A host is bound to one plugin: the backend makes one per plugin, under the import
//! name of its [`PluginInfo`], so what the plugin registers (IQ handlers, actions,
//! signals, trigger handlers, jobs) is filed under that name without the plugin
//! asserting it, its options are its own, and its database is its declared tables
//! ([`PluginStore`]).
//!
//! Why a factory ([`PluginFactory`]) instead of constructing plugins then calling an
//! `init`: a plugin built with its host keeps it (and the options it read) in plain
//! fields, with no "not initialised yet" state to handle in every handler.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::stanza_error::StanzaError;

use crate::action::{ActionHandler, ActionSpec};
use crate::jid::Jid;
use crate::store::PluginStore;
use crate::trigger::PluginTriggers;

/// What a plugin is and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Unique, stable: `XEP-0199`, `PUBSUB_CACHE`. Dependencies name these.
    pub import_name: &'static str,
    /// For people: "XMPP Ping".
    pub name: &'static str,
    pub description: &'static str,
    /// Plugins that must be loaded first; without one this plugin is not loaded.
    pub dependencies: &'static [&'static str],
    /// Plugins used when present; a missing one is only logged.
    pub recommendations: &'static [&'static str],
    /// The database tables the plugin owns (created by the migrations): its
    /// [`PluginStore`] reaches these and no other. An FTS5 table covers its shadow
    /// tables; an index counts as its table.
    pub tables: &'static [&'static str],
    /// The plugin name its signals carry on the bridge (`PluginSignal(plugin, …)`)
    /// when not its import name: the calls plugin's are `xep_0167`, as its frontends
    /// expect. `None`: the import name.
    pub signals_as: Option<&'static str>,
}

/// Why a plugin failed to initialise (it is then not loaded, and neither is anything
/// that depends on it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PluginError(pub String);

/// A built plugin. What it registers goes through the host it was built with; what
/// remains here are the session notifications the daemon sends every loaded plugin.
pub trait Plugin: Send + Sync + 'static {
    /// A profile's session is up (bound, roster fetched, initial presence sent).
    fn session_started(self: Arc<Self>, _profile: String) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }

    /// A profile's session ended (disconnected, or given up).
    fn session_ended(self: Arc<Self>, _profile: String) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}

/// What [`PluginFactory::build`] returns.
pub type BuildResult = Result<Arc<dyn Plugin>, PluginError>;

/// Builds a plugin with its host: registers its trigger handlers, IQ handlers,
/// features, actions and signals, and returns the plugin.
pub type Builder = Box<dyn FnOnce(Arc<dyn Host>) -> BoxFuture<'static, BuildResult> + Send>;

/// A plugin before it exists: its declaration (read to plan the load: dependencies,
/// disabled, cycles) and how to build it. The backend builds the planned ones once,
/// in dependency order, before any session starts, each with a host of its own.
pub struct PluginFactory {
    pub info: PluginInfo,
    pub build: Builder,
}

impl std::fmt::Debug for PluginFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginFactory")
            .field("info", &self.info)
            .finish()
    }
}

impl PluginFactory {
    /// A factory from an async build function of the host.
    pub fn new<F, Fut>(info: PluginInfo, build: F) -> Self
    where
        F: FnOnce(Arc<dyn Host>) -> Fut + Send + 'static,
        Fut: Future<Output = BuildResult> + Send + 'static,
    {
        Self {
            info,
            build: Box::new(move |host| build(host).boxed()),
        }
    }
}

impl From<crate::trigger::TriggerError> for PluginError {
    fn from(e: crate::trigger::TriggerError) -> Self {
        Self(e.to_string())
    }
}

/// Errors the host gives plugins; they reach frontends under the same names as the
/// core's (`doc/bridge.rst`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    #[error("profile {0:?} is not connected")]
    NotConnected(String),
    #[error("invalid JID {jid:?}: {reason}")]
    InvalidJid { jid: String, reason: String },
    #[error("{0}")]
    BadArgument(String),
    #[error("{0}")]
    Timeout(String),
    /// A server outside XMPP (an HTTP one) could not be reached: DNS, TCP, TLS.
    #[error("server unreachable for {host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// A server's TLS certificate did not verify (with the profile's CA rules).
    #[error("TLS certificate of {host} not trusted: {reason}")]
    CertificateNotTrusted { host: String, reason: String },
    /// A message that must go encrypted could not be (no device, none trusted):
    /// it was not sent, in clear or otherwise. The text says why.
    #[error("not encrypted, not sent: {0}")]
    NotEncrypted(String),
    /// The other entity answered with a stanza error.
    #[error("{0}")]
    Stanza(crate::StanzaError),
    /// The other entity answered something unusable (malformed, unexpected).
    #[error("{0}")]
    Xmpp(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Internal(String),
}

/// A codec reader's refusal reaches frontends as the host's own would: a malformed
/// reply as [`HostError::Xmpp`], a stanza error as [`HostError::Stanza`].
impl From<perch_codec::ReplyError> for HostError {
    fn from(e: perch_codec::ReplyError) -> Self {
        match e {
            perch_codec::ReplyError::Malformed(m) => Self::Xmpp(m),
            perch_codec::ReplyError::Stanza(s) => Self::Stanza(s),
        }
    }
}

/// An IQ get/set addressed to us that a plugin claimed.
#[derive(Debug, Clone)]
pub struct IqRequest {
    pub profile: String,
    pub from: Option<Jid>,
    pub set: bool,
    pub payload: Element,
}

/// A plugin's answer: a result (with an optional payload) or a stanza error.
pub type IqAnswer = Result<Option<Element>, StanzaError>;

/// Code answering claimed IQs.
pub type IqHandler = Arc<dyn Fn(IqRequest) -> BoxFuture<'static, IqAnswer> + Send + Sync>;

/// Where a job's records go (implemented by the host).
pub trait JobSink: Send + Sync {
    fn progress(
        &self,
        id: &str,
        status: &str,
        percent: Option<f64>,
        data: Value,
    ) -> BoxFuture<'_, ()>;
    fn finish(&self, id: &str, result: Value) -> BoxFuture<'_, ()>;
    fn fail(&self, id: &str, error: &str) -> BoxFuture<'_, ()>;
}

/// A running job: append progress, then finish or fail, exactly once. A handle dropped
/// without either marks the job failed, so no job stays "running" forever.
pub struct JobHandle {
    id: String,
    sink: Arc<dyn JobSink>,
    done: bool,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish()
    }
}

impl JobHandle {
    pub fn new(id: String, sink: Arc<dyn JobSink>) -> Self {
        Self {
            id,
            sink,
            done: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Appends a progress record (`percent` in 0..=100 when known).
    pub async fn progress(&self, status: &str, percent: Option<f64>, data: Value) {
        self.sink.progress(&self.id, status, percent, data).await;
    }

    pub async fn finish(mut self, result: Value) {
        self.done = true;
        self.sink.finish(&self.id, result).await;
    }

    pub async fn fail(mut self, error: &str) {
        self.done = true;
        self.sink.fail(&self.id, error).await;
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.done {
            let (sink, id) = (self.sink.clone(), self.id.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    sink.fail(&id, "the job ended without a result").await;
                });
            }
        }
    }
}

/// Everything a plugin may ask of the daemon. Each plugin gets its own, bound to its
/// import name: nothing here takes a plugin's name.
pub trait Host: Send + Sync {
    /// The import name this host is bound to.
    fn plugin(&self) -> &'static str;

    /// Trigger points: add handlers to any, declare and fire this plugin's own.
    fn triggers(&self) -> &PluginTriggers;

    /// Sends a stanza (message, presence or IQ element) on a profile's session.
    fn send(&self, profile: &str, stanza: Element) -> BoxFuture<'_, Result<(), HostError>>;

    /// Sends an IQ get (or set) to `to` (`None`: our own account) and waits for the
    /// answer, bounded by `xmpp.iq_timeout`. An error answer is `HostError::Xmpp`.
    fn iq(
        &self,
        profile: &str,
        to: Option<Jid>,
        set: bool,
        payload: Element,
    ) -> BoxFuture<'_, Result<Option<Element>, HostError>>;

    /// The database id of a profile (what plugin tables reference, with
    /// `ON DELETE CASCADE` so a deleted profile takes its plugin data along).
    fn profile_id(&self, profile: &str) -> BoxFuture<'_, Result<i32, HostError>>;

    /// The profiles' names, for ids read back from plugin tables.
    fn profile_name(&self, id: i32) -> BoxFuture<'_, Option<String>>;

    /// The full JID a connected profile is bound to.
    fn bound_jid(&self, profile: &str) -> BoxFuture<'_, Option<Jid>>;

    /// Claims incoming IQ gets (or sets) whose payload is `<name xmlns=ns>`.
    fn add_iq_handler(&self, set: bool, name: &str, ns: &str, handler: IqHandler);

    /// Adds a feature to what we announce in disco#info.
    fn add_feature(&self, namespace: &str);

    /// Every announced feature, sorted.
    fn features(&self) -> Vec<String>;

    /// Offers an action to frontends.
    fn add_action(&self, spec: ActionSpec, handler: ActionHandler);

    /// Declares a signal the plugin emits (`PluginSignal` on the bridge).
    fn declare_signal(&self, name: &'static str, doc: &'static str);

    /// Emits a declared signal for a profile with a JSON payload.
    fn emit(&self, name: &str, profile: &str, data: Value);

    /// The plugin's settings from the config file (`[plugins.options."<import name>"]`),
    /// as a JSON object (empty when there are none).
    fn options(&self) -> Value;

    /// The plugin's database: its declared tables, and no other.
    fn store(&self) -> &PluginStore;

    /// Sets a key of a stored message's `extra` object (found by profile and message
    /// id, newest first); false when no such message is stored.
    fn set_message_extra(
        &self,
        profile: &str,
        message_id: &str,
        key: &str,
        value: Value,
    ) -> BoxFuture<'_, Result<bool, HostError>>;

    /// Sends a message the way a frontend's goes: through `message.send`, stored and
    /// queued in the outbox (sent now when connected, else when the profile
    /// connects). Returns it as stored.
    fn send_message(
        &self,
        profile: &str,
        message: tokio_xmpp::parsers::message::Message,
    ) -> BoxFuture<'_, Result<crate::HistoryMessage, HostError>>;

    /// A stored message of the conversation with `with` (a contact's or a room's
    /// bare JID), named by its id, its origin-id or its archive's stanza-id (newest
    /// first); `None` when there is none. What message actions (a reply's quote, a
    /// reaction's target id) read of the history, which is the core's. A host
    /// without a history (a test's) has none.
    fn message(
        &self,
        _profile: &str,
        _with: &str,
        _id: &str,
    ) -> BoxFuture<'_, Result<Option<crate::HistoryMessage>, HostError>> {
        Box::pin(async { Ok(None) })
    }

    /// Unread counts: for conversation `with` (or every conversation of the
    /// profile), the incoming messages newer than both the message `read` names for
    /// it (by id, origin-id or stanza-id) and our own newest message. A host without
    /// a history (a test's) has no conversations.
    fn unread(
        &self,
        _profile: &str,
        _with: Option<&str>,
        _read: std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<Vec<crate::ConversationCount>, HostError>> {
        Box::pin(async { Ok(vec![]) })
    }

    /// We are in `room` now: our messages it refused because we were not (a send
    /// that raced the join) go again, as they were stored. Returns how many. A host
    /// without an outbox (a test's) has none.
    fn resend_held(&self, _profile: &str, _room: &str) -> BoxFuture<'_, Result<usize, HostError>> {
        async { Ok(0) }.boxed()
    }

    /// The newest id that archive `archive` (our account's bare JID, or a room's)
    /// gave a message stored for this profile: where catching up with it starts.
    fn last_archive_id(
        &self,
        profile: &str,
        archive: &str,
    ) -> BoxFuture<'_, Result<Option<String>, HostError>>;

    /// A directory of the plugin's own for files (created when asked for), under
    /// perchd's data directory; `None` where there is none (an offline test host).
    fn files_dir(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Starts a job for a profile; follow it with the returned handle.
    fn start_job(
        &self,
        profile: &str,
        kind: &str,
        description: &str,
    ) -> BoxFuture<'_, Result<JobHandle, HostError>>;

    /// The TLS client configuration of the profile's XMPP stream (the system's roots
    /// plus the profile's CA file, or no verification when the profile is
    /// `insecure`): what a plugin's own TLS connections (HTTP uploads) must use, so
    /// they trust exactly what the stream trusts.
    fn tls_config(
        &self,
        _profile: &str,
    ) -> BoxFuture<'_, Result<Arc<rustls::ClientConfig>, HostError>> {
        async {
            Err(HostError::Internal(
                "this host has no TLS configuration".into(),
            ))
        }
        .boxed()
    }

    /// Seals a secret of the plugin's for a profile (an identity key) with perchd's
    /// sealing key, as the XMPP passwords are: the text is what to store, bound to
    /// the plugin and the profile. A host without a sealing key refuses.
    fn seal(&self, _profile: &str, _secret: &[u8]) -> BoxFuture<'_, Result<String, HostError>> {
        async { Err(HostError::Internal("this host seals nothing".into())) }.boxed()
    }

    /// Opens what [`Host::seal`] gave for the same plugin and profile.
    fn unseal(&self, _profile: &str, _sealed: &str) -> BoxFuture<'_, Result<Vec<u8>, HostError>> {
        async { Err(HostError::Internal("this host seals nothing".into())) }.boxed()
    }
}
