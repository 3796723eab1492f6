//! A mock host for plugins' unit tests: the test is the core and the server.
//!
//! Why: a plugin's state machines (a room join, a call, an archive catch-up, a
//! cache sync) are driven by what the server answers and what the core fires. With
//! a real daemon they need Prosody and D-Bus and take seconds; with a [`MockServer`]
//! the test plays both sides in memory and a test takes milliseconds.
//!
//! What it gives:
//! - **Hosts** ([`MockServer::build`]): one per plugin, bound to its import name like
//!   the daemon's, sharing one trigger registry (the core's points declared first),
//!   so plugins built on the same server see each other's points.
//! - **A real store**: a SQLite file in a temporary directory with every migration
//!   applied and one profile row; each plugin's [`PluginStore`] is scoped to its
//!   declared tables, as in perchd. [`MockServer::db`] reads any table.
//! - **The stream**: what plugins send is recorded ([`MockServer::sent`],
//!   [`MockServer::next_sent`]); their IQs are answered by a scripted reply
//!   ([`MockServer::script_iq`]) or wait for the test ([`MockServer::next_iq`]),
//!   bounded like perchd's `xmpp.iq_timeout`.
//! - **The core**: trigger points fired as the core does ([`MockServer::receive`],
//!   [`MockServer::receive_presence`], [`MockServer::session_started`]), incoming IQs
//!   dispatched to the claiming handler ([`MockServer::receive_iq`]), actions run
//!   ([`MockServer::action`]), signals collected ([`MockServer::signals`]).
//!
//! A dev-dependency only: perchd never links it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_migration::{MigrationTrait, SchemaManager};
use perch_plugin_api::action::{ActionHandler, ActionResult, ActionSpec, Call};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::Message;
use perch_plugin_api::parsers::presence::Presence;
use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, PresenceReceived, SessionEnded,
    SessionInfo, SessionStarted,
};
use perch_plugin_api::{
    Host, HostError, IqAnswer, IqHandler, IqRequest, JobHandle, JobSink, Outcome, Plugin,
    PluginFactory, PluginStore, PluginTriggers, StanzaError, TriggerPoint, Triggers,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The profile every mock session is for.
pub const PROFILE: &str = "p";
/// The JID its session is bound to.
pub const ME: &str = "me@example.org/perch";

/// How long a plugin's IQ waits for the test's answer, and the `next_*` helpers for
/// what they wait on, before they give up.
pub const WAIT: Duration = Duration::from_secs(5);

/// A stanza a plugin sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub profile: String,
    pub stanza: Element,
}

/// An IQ a plugin sent, as recorded.
#[derive(Debug, Clone)]
pub struct SentIq {
    pub profile: String,
    /// `None`: our own account.
    pub to: Option<Jid>,
    pub set: bool,
    pub payload: Element,
}

/// An IQ waiting for the test's answer ([`MockServer::next_iq`]).
#[derive(Debug)]
pub struct PendingIq {
    pub iq: SentIq,
    reply: oneshot::Sender<Result<Option<Element>, HostError>>,
}

impl PendingIq {
    /// Answers with a result carrying `payload` (XML; `""`: an empty result).
    pub fn result(self, payload: &str) {
        let _ = self.reply.send(Ok(parse_opt(payload)));
    }

    /// Answers with a stanza error of this condition.
    pub fn error(self, condition: &str) {
        let _ = self.reply.send(Err(stanza_error(condition)));
    }

    /// Answers with anything the host may give.
    pub fn answer(self, answer: Result<Option<Element>, HostError>) {
        let _ = self.reply.send(answer);
    }
}

/// A signal a plugin emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The name it carries on the bridge (`PluginInfo::signals_as`, else the import
    /// name).
    pub plugin: String,
    pub name: String,
    pub profile: String,
    pub data: Value,
}

/// A scripted answer to the plugins' IQs whose payload is `<name xmlns=ns>`.
struct Script {
    name: String,
    ns: String,
    /// Used once (then removed), or for every matching IQ.
    once: bool,
    answer: Result<Option<Element>, HostError>,
}

struct ClaimedIq {
    set: bool,
    name: String,
    ns: String,
    handler: IqHandler,
}

#[derive(Default)]
struct Records {
    sent: Vec<Sent>,
    iqs: Vec<SentIq>,
    scripts: Vec<Script>,
    signals: Vec<Signal>,
    undeclared: Vec<Signal>,
    declared: BTreeSet<(String, String)>,
    iq_handlers: Vec<ClaimedIq>,
    actions: BTreeMap<String, (ActionSpec, ActionHandler)>,
    features: BTreeSet<String>,
    options: HashMap<String, Value>,
    last_archive_ids: HashMap<String, String>,
    /// What `message(profile, with, id)` finds: the test's stored messages.
    messages: Vec<perch_plugin_api::HistoryMessage>,
    jobs: Vec<(String, String)>,
    /// `set_message_extra` calls: (profile, message id, key, value).
    extras: Vec<(String, String, String, Value)>,
    plugins: Vec<Arc<dyn Plugin>>,
    connected: bool,
}

struct Shared {
    db: DatabaseConnection,
    /// The temporary directory plugins' files go under.
    files: std::path::PathBuf,
    triggers: Arc<Triggers>,
    profile_id: i32,
    records: Mutex<Records>,
    sent_tx: mpsc::UnboundedSender<Element>,
    sent_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Element>>,
    iq_tx: mpsc::UnboundedSender<PendingIq>,
    iq_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<PendingIq>>,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The core and the server of a test; see the module documentation.
pub struct MockServer {
    shared: Arc<Shared>,
    /// Kept for the database file's lifetime.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").finish_non_exhaustive()
    }
}

/// Parses XML a test wrote; panics on a typo, which is the test's bug.
pub fn xml(s: &str) -> Element {
    s.parse()
        .unwrap_or_else(|e| panic!("test XML does not parse: {e}\n{s}"))
}

fn parse_opt(s: &str) -> Option<Element> {
    (!s.trim().is_empty()).then(|| xml(s))
}

/// The host's error for a stanza error answer of this condition.
pub fn stanza_error(condition: &str) -> HostError {
    HostError::Stanza(StanzaError::new(condition, None))
}

impl MockServer {
    /// A server with a fresh database (the core's tables only), profile [`PROFILE`]
    /// connected as [`ME`].
    pub async fn new() -> Self {
        Self::with_migrations(Vec::new()).await
    }

    /// As [`MockServer::new`], with a plugin crate's own tables too (its
    /// `migrations()`), applied with the core's in name order, as perchd does.
    pub async fn with_migrations(plugin: Vec<Box<dyn MigrationTrait>>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("perch.db");
        let mut opt = sea_orm::ConnectOptions::new("sqlite://perch.db?mode=rwc");
        // As perchd's pool (two connections, WAL, foreign keys), minus durability: a
        // test's database dies with it, and fsyncs would be most of its time.
        opt.max_connections(2)
            .min_connections(1)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |o| {
                o.filename(&file)
                    .create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Off)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
        let db = sea_orm::Database::connect(opt)
            .await
            .expect("opening the test database");
        let mut all = perch_migration::migrations();
        all.extend(plugin);
        all.sort_by(|a, b| a.name().cmp(b.name()));
        let schema = SchemaManager::new(&db);
        for m in &all {
            m.up(&schema)
                .await
                .unwrap_or_else(|e| panic!("migration {}: {e}", m.name()));
        }
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO profile (name, jid, password, created_at) VALUES (?, ?, '', 0)",
            [PROFILE.into(), ME.into()],
        ))
        .await
        .expect("the profile row");
        let profile_id = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT id FROM profile",
            ))
            .await
            .expect("the profile id")
            .and_then(|r| r.try_get::<i32>("", "id").ok())
            .expect("the profile row");
        let triggers = Arc::new(Triggers::new());
        perch_plugin_api::points::declare_core(&triggers).expect("the core's points");
        let (sent_tx, sent_rx) = mpsc::unbounded_channel();
        let (iq_tx, iq_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            db,
            files: dir.path().join("plugins"),
            triggers,
            profile_id,
            records: Mutex::new(Records {
                connected: true,
                ..Default::default()
            }),
            sent_tx,
            sent_rx: tokio::sync::Mutex::new(sent_rx),
            iq_tx,
            iq_rx: tokio::sync::Mutex::new(iq_rx),
        });
        Self { shared, _dir: dir }
    }

    /// Builds a plugin with a host of its own, as perchd does; the plugin's session
    /// notifications are then sent by [`Self::session_started`]/[`Self::session_ended`].
    pub async fn build(&self, factory: PluginFactory) -> Arc<dyn Plugin> {
        let info = factory.info.clone();
        let host = Arc::new(MockHost {
            shared: self.shared.clone(),
            plugin: info.import_name,
            signals_as: info.signals_as.unwrap_or(info.import_name),
            triggers: PluginTriggers::new(self.shared.triggers.clone(), info.import_name),
            store: PluginStore::new(self.shared.db.clone(), info.import_name, info.tables),
        });
        let plugin = (factory.build)(host)
            .await
            .unwrap_or_else(|e| panic!("building {}: {e}", info.import_name));
        self.shared.records().plugins.push(plugin.clone());
        plugin
    }

    /// Sets a plugin's options (`[plugins.options."<import name>"]`); before
    /// [`Self::build`].
    pub fn set_options(&self, plugin: &str, options: Value) {
        self.shared
            .records()
            .options
            .insert(plugin.to_owned(), options);
    }

    /// The whole database (any table), for assertions on stored rows.
    pub fn db(&self) -> &DatabaseConnection {
        &self.shared.db
    }

    /// The database id of [`PROFILE`].
    pub fn profile_id(&self) -> i32 {
        self.shared.profile_id
    }

    /// Rows of a query on the whole database, each as its columns' text (NULL:
    /// `None`), for short assertions.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let db = &self.shared.db;
        let wrapped = format!("SELECT * FROM ({sql})");
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), wrapped))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter()
            .map(|r| {
                r.column_names()
                    .iter()
                    .map(|c| {
                        r.try_get::<Option<String>>("", c)
                            .ok()
                            .flatten()
                            .or_else(|| {
                                r.try_get::<Option<i64>>("", c)
                                    .ok()
                                    .flatten()
                                    .map(|n| n.to_string())
                            })
                    })
                    .collect()
            })
            .collect()
    }

    /// What `last_archive_id(profile, archive)` answers (the core reads it from
    /// history; here the test says it).
    pub fn set_last_archive_id(&self, archive: &str, id: &str) {
        self.shared
            .records()
            .last_archive_ids
            .insert(archive.to_owned(), id.to_owned());
    }

    /// A message `message(profile, with, id)` finds (by its peer, and its id,
    /// origin-id or stanza-id): the core's history, as the test says it is.
    pub fn store_message(&self, m: perch_plugin_api::HistoryMessage) {
        self.shared.records().messages.push(m);
    }

    /// Whether the session is up: when not, sends and IQs fail `NotConnected`.
    pub fn set_connected(&self, up: bool) {
        self.shared.records().connected = up;
    }

    // --- the stream --------------------------------------------------------------

    /// Every stanza sent so far (IQs through `Host::iq` are in [`Self::iqs`]).
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.records().sent.clone()
    }

    /// The next stanza sent (in order), waiting for it (up to [`WAIT`]).
    pub async fn next_sent(&self) -> Element {
        let mut rx = self.shared.sent_rx.lock().await;
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .ok()
            .flatten()
            .expect("no stanza sent in time")
    }

    /// Whether a stanza is waiting to be taken by [`Self::next_sent`].
    pub async fn nothing_sent(&self) -> bool {
        self.shared.sent_rx.lock().await.is_empty()
    }

    /// Every IQ the plugins sent so far, answered or not.
    pub fn iqs(&self) -> Vec<SentIq> {
        self.shared.records().iqs.clone()
    }

    /// Answers the next IQ with payload `<name xmlns=ns>` with `answer` (XML; `""`:
    /// an empty result). Scripts are tried in the order given; an IQ no script
    /// matches waits for [`Self::next_iq`].
    pub fn script_iq(&self, name: &str, ns: &str, answer: &str) {
        self.script(name, ns, true, Ok(parse_opt(answer)));
    }

    /// Answers every IQ with payload `<name xmlns=ns>` with `answer`.
    pub fn script_iq_always(&self, name: &str, ns: &str, answer: &str) {
        self.script(name, ns, false, Ok(parse_opt(answer)));
    }

    /// Answers the next IQ with payload `<name xmlns=ns>` with a stanza error.
    pub fn script_iq_error(&self, name: &str, ns: &str, condition: &str) {
        self.script(name, ns, true, Err(stanza_error(condition)));
    }

    fn script(&self, name: &str, ns: &str, once: bool, answer: Result<Option<Element>, HostError>) {
        self.shared.records().scripts.push(Script {
            name: name.to_owned(),
            ns: ns.to_owned(),
            once,
            answer,
        });
    }

    /// The next IQ no script answered, for the test to answer (up to [`WAIT`]).
    pub async fn next_iq(&self) -> PendingIq {
        let mut rx = self.shared.iq_rx.lock().await;
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .ok()
            .flatten()
            .expect("no IQ sent in time")
    }

    /// The next IQ no script answered, if one comes within `wait` (for a test
    /// that plays a whole service in a task of its own).
    pub async fn next_iq_within(&self, wait: Duration) -> Option<PendingIq> {
        let mut rx = self.shared.iq_rx.lock().await;
        tokio::time::timeout(wait, rx.recv()).await.ok().flatten()
    }

    // --- the core ------------------------------------------------------------------

    /// Fires a point as the core (or the plugin owning it) would.
    pub async fn fire<P: TriggerPoint>(&self, args: &mut P::Args) -> Outcome<P::Value> {
        self.shared.triggers.fire::<P>(args).await
    }

    /// A message arrives (XML of a `<message/>`): `message.received` is fired, and
    /// its outcome returned with the arguments as the handlers left them.
    pub async fn receive(&self, stanza: &str) -> (Outcome<()>, IncomingMessage) {
        let message = Message::try_from(xml(stanza)).expect("a message");
        let mut args = IncomingMessage::live(PROFILE.into(), message);
        let outcome = self.fire::<MessageReceived>(&mut args).await;
        (outcome, args)
    }

    /// A presence arrives: `presence.received` is fired.
    pub async fn receive_presence(&self, stanza: &str) -> Outcome<()> {
        let presence = Presence::try_from(xml(stanza)).expect("a presence");
        let mut args = IncomingPresence {
            profile: PROFILE.into(),
            presence,
        };
        self.fire::<PresenceReceived>(&mut args).await
    }

    /// An IQ get/set addressed to us: the plugin that claimed its payload answers
    /// (`None`: nobody claimed it; the core would answer `service-unavailable`).
    pub async fn receive_iq(&self, from: &str, set: bool, payload: &str) -> Option<IqAnswer> {
        let payload = xml(payload);
        let handler = self
            .shared
            .records()
            .iq_handlers
            .iter()
            .find(|h| h.set == set && payload.is(h.name.as_str(), h.ns.as_str()))
            .map(|h| h.handler.clone())?;
        let req = IqRequest {
            profile: PROFILE.into(),
            from: Some(Jid::new(from).expect("a JID")),
            set,
            payload,
        };
        Some(handler(req).await)
    }

    /// The session is up: `session.started` is fired, then every plugin told.
    pub async fn session_started(&self) {
        self.set_connected(true);
        let mut args = SessionInfo {
            profile: PROFILE.into(),
            jid: ME.into(),
        };
        self.fire::<SessionStarted>(&mut args).await;
        for p in self.plugins() {
            p.session_started(PROFILE.into()).await;
        }
    }

    /// The session ended.
    pub async fn session_ended(&self) {
        self.set_connected(false);
        let mut args = SessionInfo {
            profile: PROFILE.into(),
            jid: ME.into(),
        };
        self.fire::<SessionEnded>(&mut args).await;
        for p in self.plugins() {
            p.session_ended(PROFILE.into()).await;
        }
    }

    fn plugins(&self) -> Vec<Arc<dyn Plugin>> {
        self.shared.records().plugins.clone()
    }

    /// Runs an action for [`PROFILE`] with JSON arguments, checked against its
    /// declaration as the bridge does.
    pub async fn action(&self, name: &str, args: Value) -> ActionResult {
        let (spec, handler) = self
            .shared
            .records()
            .actions
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no action {name:?}"));
        let args = spec
            .check(&args)
            .unwrap_or_else(|e| panic!("action {name}: {e}"));
        handler(Call {
            profile: PROFILE.into(),
            args,
        })
        .await
    }

    /// The announced features, sorted.
    pub fn features(&self) -> Vec<String> {
        self.shared.records().features.iter().cloned().collect()
    }

    // --- signals -------------------------------------------------------------------

    /// Every declared signal emitted so far, in order.
    pub fn signals(&self) -> Vec<Signal> {
        self.shared.records().signals.clone()
    }

    /// The emitted signals named `name`.
    pub fn signals_named(&self, name: &str) -> Vec<Value> {
        self.signals()
            .into_iter()
            .filter(|s| s.name == name)
            .map(|s| s.data)
            .collect()
    }

    /// Signals emitted without being declared (perchd drops them): a plugin's bug.
    pub fn undeclared_signals(&self) -> Vec<Signal> {
        self.shared.records().undeclared.clone()
    }

    /// Waits (up to [`WAIT`]) until `done` holds, for what spawned tasks do.
    pub async fn eventually(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Jobs started: (kind, description).
    pub fn jobs(&self) -> Vec<(String, String)> {
        self.shared.records().jobs.clone()
    }

    /// What plugins asked `set_message_extra`: (profile, message id, key, value).
    pub fn extra_calls(&self) -> Vec<(String, String, String, Value)> {
        self.shared.records().extras.clone()
    }
}

/// The host of one plugin on a [`MockServer`].
struct MockHost {
    shared: Arc<Shared>,
    plugin: &'static str,
    signals_as: &'static str,
    triggers: PluginTriggers,
    store: PluginStore,
}

impl MockHost {
    fn up(&self, profile: &str) -> Result<(), HostError> {
        if profile != PROFILE {
            return Err(HostError::UnknownProfile(profile.to_owned()));
        }
        if !self.shared.records().connected {
            return Err(HostError::NotConnected(profile.to_owned()));
        }
        Ok(())
    }

    /// A scripted answer for this IQ, if any.
    fn scripted(&self, payload: &Element) -> Option<Result<Option<Element>, HostError>> {
        let mut r = self.shared.records();
        let i = r
            .scripts
            .iter()
            .position(|s| payload.is(s.name.as_str(), s.ns.as_str()))?;
        if r.scripts[i].once {
            Some(r.scripts.remove(i).answer)
        } else {
            Some(r.scripts[i].answer.clone())
        }
    }
}

impl Host for MockHost {
    fn plugin(&self) -> &'static str {
        self.plugin
    }

    fn files_dir(&self) -> Option<std::path::PathBuf> {
        let dir = self.shared.files.join(self.plugin);
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir)
    }

    fn triggers(&self) -> &PluginTriggers {
        &self.triggers
    }

    fn send(&self, profile: &str, stanza: Element) -> BoxFuture<'_, Result<(), HostError>> {
        let res = self.up(profile).map(|()| {
            self.shared.records().sent.push(Sent {
                profile: profile.to_owned(),
                stanza: stanza.clone(),
            });
            let _ = self.shared.sent_tx.send(stanza);
        });
        async move { res }.boxed()
    }

    fn iq(
        &self,
        profile: &str,
        to: Option<Jid>,
        set: bool,
        payload: Element,
    ) -> BoxFuture<'_, Result<Option<Element>, HostError>> {
        let iq = SentIq {
            profile: profile.to_owned(),
            to,
            set,
            payload,
        };
        async move {
            self.up(&iq.profile)?;
            self.shared.records().iqs.push(iq.clone());
            if let Some(answer) = self.scripted(&iq.payload) {
                return answer;
            }
            let (reply, rx) = oneshot::channel();
            let _ = self.shared.iq_tx.send(PendingIq { iq, reply });
            match tokio::time::timeout(WAIT, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(HostError::Internal("the test dropped the IQ".into())),
                Err(_) => Err(HostError::Timeout("the test did not answer the IQ".into())),
            }
        }
        .boxed()
    }

    fn profile_id(&self, profile: &str) -> BoxFuture<'_, Result<i32, HostError>> {
        let res = if profile == PROFILE {
            Ok(self.shared.profile_id)
        } else {
            Err(HostError::UnknownProfile(profile.to_owned()))
        };
        async move { res }.boxed()
    }

    fn profile_name(&self, id: i32) -> BoxFuture<'_, Option<String>> {
        let name = (id == self.shared.profile_id).then(|| PROFILE.to_owned());
        async move { name }.boxed()
    }

    fn bound_jid(&self, profile: &str) -> BoxFuture<'_, Option<Jid>> {
        let jid = self.up(profile).ok().map(|()| Jid::new(ME).expect("ME"));
        async move { jid }.boxed()
    }

    fn add_iq_handler(&self, set: bool, name: &str, ns: &str, handler: IqHandler) {
        self.shared.records().iq_handlers.push(ClaimedIq {
            set,
            name: name.to_owned(),
            ns: ns.to_owned(),
            handler,
        });
    }

    fn add_feature(&self, namespace: &str) {
        self.shared.records().features.insert(namespace.to_owned());
    }

    fn features(&self) -> Vec<String> {
        self.shared.records().features.iter().cloned().collect()
    }

    fn add_action(&self, mut spec: ActionSpec, handler: ActionHandler) {
        spec.plugin = self.plugin.to_owned();
        self.shared
            .records()
            .actions
            .insert(spec.name.to_owned(), (spec, handler));
    }

    fn declare_signal(&self, name: &'static str, _doc: &'static str) {
        self.shared
            .records()
            .declared
            .insert((self.signals_as.to_owned(), name.to_owned()));
    }

    fn emit(&self, name: &str, profile: &str, data: Value) {
        let signal = Signal {
            plugin: self.signals_as.to_owned(),
            name: name.to_owned(),
            profile: profile.to_owned(),
            data,
        };
        let mut r = self.shared.records();
        if r.declared
            .contains(&(signal.plugin.clone(), signal.name.clone()))
        {
            r.signals.push(signal);
        } else {
            r.undeclared.push(signal);
        }
    }

    fn options(&self) -> Value {
        self.shared
            .records()
            .options
            .get(self.plugin)
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    fn store(&self) -> &PluginStore {
        &self.store
    }

    fn set_message_extra(
        &self,
        profile: &str,
        message_id: &str,
        key: &str,
        value: Value,
    ) -> BoxFuture<'_, Result<bool, HostError>> {
        // History is the core's: no message is stored in a mock session; the call
        // is recorded.
        self.shared.records().extras.push((
            profile.to_owned(),
            message_id.to_owned(),
            key.to_owned(),
            value,
        ));
        async { Ok(false) }.boxed()
    }

    fn send_message(
        &self,
        profile: &str,
        message: Message,
    ) -> BoxFuture<'_, Result<perch_plugin_api::HistoryMessage, HostError>> {
        let profile = profile.to_owned();
        async move {
            let element = Element::from(message.clone());
            self.send(&profile, element).await?;
            Ok(perch_plugin_api::HistoryMessage {
                id: message.id.clone().map(|i| i.0).unwrap_or_default(),
                timestamp: String::new(),
                direction: perch_plugin_api::Direction::Out,
                peer: message
                    .to
                    .as_ref()
                    .map(|j| j.to_bare().to_string())
                    .unwrap_or_default(),
                from: ME.into(),
                to: message.to.map(|j| j.to_string()).unwrap_or_default(),
                kind: "chat".into(),
                body: message.bodies.values().next().cloned().unwrap_or_default(),
                state: perch_plugin_api::MessageState::Sent,
                origin_id: None,
                stanza_id: None,
                extra: Default::default(),
            })
        }
        .boxed()
    }

    fn message(
        &self,
        _profile: &str,
        with: &str,
        id: &str,
    ) -> BoxFuture<'_, Result<Option<perch_plugin_api::HistoryMessage>, HostError>> {
        let found = self
            .shared
            .records()
            .messages
            .iter()
            .rev()
            .find(|m| {
                m.peer == with
                    && (m.id == id
                        || m.origin_id.as_deref() == Some(id)
                        || m.stanza_id.as_deref() == Some(id))
            })
            .cloned();
        async move { Ok(found) }.boxed()
    }

    fn seal(&self, _profile: &str, secret: &[u8]) -> BoxFuture<'_, Result<String, HostError>> {
        // Not secret: a test's stand-in for perchd's sealing, recognisable in rows.
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let sealed = format!("mock-sealed:{}:{hex}", self.plugin);
        async move { Ok(sealed) }.boxed()
    }

    fn unseal(&self, _profile: &str, sealed: &str) -> BoxFuture<'_, Result<Vec<u8>, HostError>> {
        let prefix = format!("mock-sealed:{}:", self.plugin);
        let opened = sealed
            .strip_prefix(&prefix)
            .and_then(|hex| {
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .ok_or_else(|| HostError::Internal("not sealed for this plugin".into()));
        async move { opened }.boxed()
    }

    /// The core's count over the test's stored messages, in the order stored
    /// (oldest first).
    fn unread(
        &self,
        _profile: &str,
        with: Option<&str>,
        read: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<Vec<perch_plugin_api::ConversationCount>, HostError>> {
        let messages = self.shared.records().messages.clone();
        let mut peers: Vec<String> = match with {
            Some(w) => vec![w.to_owned()],
            None => messages.iter().map(|m| m.peer.clone()).collect(),
        };
        peers.sort();
        peers.dedup();
        let counts = peers
            .into_iter()
            .map(|peer| {
                let mine: Vec<_> = messages.iter().filter(|m| m.peer == peer).collect();
                let is_read = |m: &&perch_plugin_api::HistoryMessage| {
                    read.get(&peer).is_some_and(|id| {
                        m.id == *id
                            || m.origin_id.as_ref() == Some(id)
                            || m.stanza_id.as_ref() == Some(id)
                    })
                };
                let since = mine
                    .iter()
                    .rposition(|m| m.direction == perch_plugin_api::Direction::Out || is_read(m))
                    .map_or(0, |i| i + 1);
                let unread = mine[since..]
                    .iter()
                    .filter(|m| m.direction == perch_plugin_api::Direction::In)
                    .count() as u64;
                perch_plugin_api::ConversationCount {
                    newest: mine.last().map(|m| (*m).clone()),
                    with: peer,
                    unread,
                }
            })
            .collect();
        async move { Ok(counts) }.boxed()
    }

    fn last_archive_id(
        &self,
        _profile: &str,
        archive: &str,
    ) -> BoxFuture<'_, Result<Option<String>, HostError>> {
        let id = self.shared.records().last_archive_ids.get(archive).cloned();
        async move { Ok(id) }.boxed()
    }

    fn start_job(
        &self,
        profile: &str,
        kind: &str,
        description: &str,
    ) -> BoxFuture<'_, Result<JobHandle, HostError>> {
        let res = self.up(profile).map(|()| {
            let mut r = self.shared.records();
            r.jobs.push((kind.to_owned(), description.to_owned()));
            JobHandle::new(format!("job-{}", r.jobs.len()), Arc::new(NoSink))
        });
        async move { res }.boxed()
    }
}

/// Jobs' records go nowhere: tests look at what the job did.
struct NoSink;

impl JobSink for NoSink {
    fn progress(&self, _: &str, _: &str, _: Option<f64>, _: Value) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
    fn finish(&self, _: &str, _: Value) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
    fn fail(&self, _: &str, _: &str) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::{BuildResult, PluginInfo};

    struct Probe;
    impl Plugin for Probe {}

    /// A plugin that keeps its host, so the test can act through it.
    fn probe(host_out: Arc<Mutex<Option<Arc<dyn Host>>>>) -> PluginFactory {
        const INFO: PluginInfo = PluginInfo {
            import_name: "PROBE",
            name: "probe",
            description: "",
            dependencies: &[],
            recommendations: &[],
            tables: &["probe_note"],
            signals_as: None,
        };
        PluginFactory::new(INFO, move |host: Arc<dyn Host>| async move {
            host.declare_signal("seen", "a test signal");
            *host_out.lock().expect("lock") = Some(host);
            Ok(Arc::new(Probe) as Arc<dyn Plugin>) as BuildResult
        })
    }

    async fn with_probe() -> (MockServer, Arc<dyn Host>) {
        let s = MockServer::new().await;
        // The probe's own table, as a plugin crate's migration would make it.
        s.db()
            .execute_unprepared(
                "CREATE TABLE probe_note (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL \
                 REFERENCES profile(id) ON DELETE CASCADE, room TEXT NOT NULL, nick TEXT NOT NULL)",
            )
            .await
            .expect("the probe's table");
        let slot = Arc::new(Mutex::new(None));
        s.build(probe(slot.clone())).await;
        let host = slot.lock().expect("lock").clone().expect("built");
        (s, host)
    }

    #[tokio::test]
    async fn the_store_is_scoped_and_real() {
        let (s, host) = with_probe().await;
        let store = host.store();
        let pid = s.profile_id();
        store
            .execute_raw(Statement::from_string(
                store.get_database_backend(),
                format!(
                    "INSERT INTO probe_note (profile_id, room, nick) VALUES ({pid}, 'r@c', 'n')"
                ),
            ))
            .await
            .expect("its own table");
        assert_eq!(
            s.rows("SELECT room, nick FROM probe_note").await,
            [[Some("r@c".to_owned()), Some("n".to_owned())]]
        );
        let refused = store
            .query_all_raw(Statement::from_string(
                store.get_database_backend(),
                "SELECT name FROM profile",
            ))
            .await
            .expect_err("another table");
        assert!(perch_plugin_api::StoreDenied::of(&refused).is_some());
    }

    #[tokio::test]
    async fn iqs_are_scripted_or_answered_by_the_test() {
        let (s, host) = with_probe().await;
        s.script_iq("ping", "urn:xmpp:ping", "");
        let ping = xml("<ping xmlns='urn:xmpp:ping'/>");
        assert_eq!(host.iq(PROFILE, None, false, ping.clone()).await, Ok(None));
        // Used once: the next one waits for the test.
        let (answer, ()) = tokio::join!(host.iq(PROFILE, None, false, ping), async {
            s.next_iq().await.error("service-unavailable");
        });
        assert!(
            matches!(answer, Err(HostError::Stanza(e)) if e.condition == "service-unavailable")
        );
        assert_eq!(s.iqs().len(), 2);
        s.set_connected(false);
        let offline = host
            .send(PROFILE, xml("<presence xmlns='jabber:client'/>"))
            .await;
        assert_eq!(offline, Err(HostError::NotConnected(PROFILE.into())));
        assert!(s.sent().is_empty());
    }

    #[tokio::test]
    async fn signals_are_collected_when_declared() {
        let (s, host) = with_probe().await;
        host.emit("seen", PROFILE, serde_json::json!({"n": 1}));
        host.emit("unknown", PROFILE, serde_json::json!({}));
        assert_eq!(s.signals_named("seen"), [serde_json::json!({"n": 1})]);
        assert_eq!(s.undeclared_signals().len(), 1);
        assert_eq!(s.signals()[0].plugin, "PROBE");
    }
}
