//! The D-Bus bridge: Perch's native interface (`doc/bridge.rst` is its contract).
//!
//! It only translates: arguments in, [`Daemon`] calls, JSON or plain values out,
//! [`Error`]s to stable D-Bus error names, [`Event`]s to signals. The same object is
//! served on the session bus (when there is one) and on a peer-to-peer socket, so a
//! headless box needs no dbus-daemon; signals go to every connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use perch_client::socket::DirPolicy;

use serde::Serialize;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, connection::Builder};

use crate::daemon::Daemon;
use crate::error::Error;
use crate::events::{Event, JobPhase};
use crate::profiles::NewProfile;
use crate::secret::Password;

// The names live in perch-client, with the frontends' side of the contract. The
// attribute literals of this file (`interface(name)`, `zbus(prefix)`) must match them:
// backend/tests/backend/client_contract.rs checks.
pub use perch_client::{BUS_NAME, INTERFACE, PATH};

/// Every connection the bridge is served on: its id, and the queue of the task that
/// sends it signals.
type Conns = Arc<Mutex<Vec<(u64, Connection, SignalQueue)>>>;

/// Signals waiting for one connection. Each connection has its own queue and its own
/// sending task: a client that stops reading (its socket full) stalls only its own
/// task, never the others' signals. When its queue is full it is cut off (logged),
/// rather than delay everyone or silently miss signals.
type SignalQueue = tokio::sync::mpsc::Sender<Arc<Event>>;

/// How many signals may wait for one connection before it counts as stalled.
const SIGNAL_QUEUE: usize = 1024;

/// Registers a connection for signals and starts its sending task; returns its id.
fn attach(conns: &Conns, conn: Connection) -> u64 {
    let id = conn_id();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Arc<Event>>(SIGNAL_QUEUE);
    lock(conns).push((id, conn.clone(), tx));
    let conns = conns.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let sent = match SignalEmitter::new(&conn, PATH) {
                Ok(emitter) => emit(&emitter, &ev).await.is_ok(),
                Err(_) => false,
            };
            if !sent {
                tracing::debug!(
                    profile = ev.profile(),
                    "a bridge connection failed; dropped"
                );
                break;
            }
        }
        lock(&conns).retain(|(i, _, _)| *i != id);
    });
    id
}

static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn conn_id() -> u64 {
    NEXT_CONN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Errors as frontends see them: `org.perch.Perch1.Error.<Name>`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.perch.Perch1.Error")]
pub enum BridgeError {
    #[zbus(error)]
    ZBus(zbus::Error),
    UnknownProfile(String),
    ProfileExists(String),
    NoDefaultProfile(String),
    NotConnected(String),
    InvalidJid(String),
    AuthenticationFailed(String),
    ServerUnreachable(String),
    CertificateNotTrusted(String),
    BadArgument(String),
    UnknownAction(String),
    UnknownJob(String),
    UnknownMessage(String),
    Cancelled(String),
    Timeout(String),
    NotEncrypted(String),
    Xmpp(String),
    OwnedElsewhere(String),
    Storage(String),
    Internal(String),
    // Stanza errors from other entities, one name per RFC 6120 condition.
    BadRequest(String),
    Conflict(String),
    FeatureNotImplemented(String),
    Forbidden(String),
    Gone(String),
    InternalServerError(String),
    ItemNotFound(String),
    JidMalformed(String),
    NotAcceptable(String),
    NotAllowed(String),
    NotAuthorized(String),
    PolicyViolation(String),
    RecipientUnavailable(String),
    Redirect(String),
    RegistrationRequired(String),
    RemoteServerNotFound(String),
    RemoteServerTimeout(String),
    ResourceConstraint(String),
    ServiceUnavailable(String),
    SubscriptionRequired(String),
    UndefinedCondition(String),
    UnexpectedRequest(String),
}

impl From<Error> for BridgeError {
    fn from(e: Error) -> Self {
        // A message names what was wrong, but never echoes a whole argument back: a
        // 10 MB profile name makes a 10 MB error otherwise.
        e.log_if_ours();
        let m = crate::validate::excerpt(&e.to_string(), 1000);
        match e {
            Error::UnknownProfile(_) => Self::UnknownProfile(m),
            Error::ProfileExists(_) => Self::ProfileExists(m),
            Error::NoDefaultProfile => Self::NoDefaultProfile(m),
            Error::NotConnected(_) => Self::NotConnected(m),
            Error::InvalidJid { .. } => Self::InvalidJid(m),
            Error::AuthenticationFailed { .. } | Error::NoPassword(_) => {
                Self::AuthenticationFailed(m)
            }
            Error::ServerUnreachable { .. } => Self::ServerUnreachable(m),
            Error::CertificateNotTrusted { .. } => Self::CertificateNotTrusted(m),
            Error::BadArgument { .. } => Self::BadArgument(m),
            Error::UnknownAction(_) => Self::UnknownAction(m),
            Error::UnknownJob(_) => Self::UnknownJob(m),
            Error::UnknownMessage(_) => Self::UnknownMessage(m),
            Error::Cancelled(_) => Self::Cancelled(m),
            Error::Timeout(_) => Self::Timeout(m),
            Error::NotEncrypted(_) => Self::NotEncrypted(m),
            Error::Xmpp(_) => Self::Xmpp(m),
            Error::OwnedElsewhere { .. } | Error::LeaseLost { .. } => Self::OwnedElsewhere(m),
            Error::Storage(_) => Self::Storage(m),
            Error::Internal(_) => Self::Internal(m),
            Error::Stanza(s) => match s.dbus_name() {
                "BadRequest" => Self::BadRequest(m),
                "Conflict" => Self::Conflict(m),
                "FeatureNotImplemented" => Self::FeatureNotImplemented(m),
                "Forbidden" => Self::Forbidden(m),
                "Gone" => Self::Gone(m),
                "InternalServerError" => Self::InternalServerError(m),
                "ItemNotFound" => Self::ItemNotFound(m),
                "JidMalformed" => Self::JidMalformed(m),
                "NotAcceptable" => Self::NotAcceptable(m),
                "NotAllowed" => Self::NotAllowed(m),
                "NotAuthorized" => Self::NotAuthorized(m),
                "PolicyViolation" => Self::PolicyViolation(m),
                "RecipientUnavailable" => Self::RecipientUnavailable(m),
                "Redirect" => Self::Redirect(m),
                "RegistrationRequired" => Self::RegistrationRequired(m),
                "RemoteServerNotFound" => Self::RemoteServerNotFound(m),
                "RemoteServerTimeout" => Self::RemoteServerTimeout(m),
                "ResourceConstraint" => Self::ResourceConstraint(m),
                "ServiceUnavailable" => Self::ServiceUnavailable(m),
                "SubscriptionRequired" => Self::SubscriptionRequired(m),
                "UndefinedCondition" => Self::UndefinedCondition(m),
                "UnexpectedRequest" => Self::UnexpectedRequest(m),
                _ => Self::UndefinedCondition(m),
            },
        }
    }
}

fn json<T: Serialize>(v: &T) -> Result<String, BridgeError> {
    serde_json::to_string(v).map_err(|e| BridgeError::Internal(format!("serialising: {e}")))
}

fn flag(options: &HashMap<String, String>, key: &str) -> Result<bool, BridgeError> {
    match options.get(key).map(String::as_str) {
        None | Some("false") | Some("") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => {
            Err(Error::bad_argument(key, format!("{other:?} is not \"true\" or \"false\"")).into())
        }
    }
}

/// The object served at [`PATH`].
#[derive(Clone)]
pub struct Core {
    daemon: Arc<Daemon>,
}

#[zbus::interface(name = "org.perch.Perch1")]
impl Core {
    async fn version(
        &self,
        // Named so that zbus checks the body's signature: without any parameter
        // read from the message it checks nothing, and a call with extra arguments
        // was answered as if it had none (`InvalidArgs` now).
        #[zbus(header)] _hdr: zbus::message::Header<'_>,
    ) -> Result<String, BridgeError> {
        Ok(env!("CARGO_PKG_VERSION").to_owned())
    }

    async fn profile_create(
        &self,
        name: String,
        jid: String,
        password: String,
        options: HashMap<String, String>,
    ) -> Result<(), BridgeError> {
        for key in options.keys() {
            if !matches!(
                key.as_str(),
                "server" | "ca_file" | "insecure" | "autoconnect"
            ) {
                return Err(Error::bad_argument(
                    key,
                    "unknown option (known: server, ca_file, insecure, autoconnect)",
                )
                .into());
            }
        }
        let text = |k: &str| options.get(k).filter(|v| !v.is_empty()).cloned();
        self.daemon
            .create_profile(NewProfile {
                name,
                jid,
                password: Password::new(password),
                server: text("server"),
                ca_file: text("ca_file"),
                insecure: flag(&options, "insecure")?,
                autoconnect: flag(&options, "autoconnect")?,
            })
            .await?;
        Ok(())
    }

    async fn profile_list(
        &self,
        // Named so that zbus checks the body's signature: without any parameter
        // read from the message it checks nothing, and a call with extra arguments
        // was answered as if it had none (`InvalidArgs` now).
        #[zbus(header)] _hdr: zbus::message::Header<'_>,
    ) -> Result<String, BridgeError> {
        let list: Vec<_> = self
            .daemon
            .profile_list()
            .await?
            .iter()
            .map(crate::profiles::ProfileView::from)
            .collect();
        json(&list)
    }

    async fn profile_get(&self, name: String) -> Result<String, BridgeError> {
        let m = self.daemon.resolve_profile(&name).await?;
        json(&crate::profiles::ProfileView::from(&m))
    }

    async fn profile_delete(&self, name: String) -> Result<(), BridgeError> {
        Ok(self.daemon.delete_profile(&name).await?)
    }

    async fn profile_set_default(&self, name: String) -> Result<(), BridgeError> {
        Ok(self.daemon.set_default_profile(&name).await?)
    }

    async fn profile_set_password(
        &self,
        name: String,
        password: String,
    ) -> Result<(), BridgeError> {
        Ok(self
            .daemon
            .replace_password(&name, &Password::new(password))
            .await?)
    }

    async fn profile_set_autoconnect(
        &self,
        name: String,
        autoconnect: bool,
    ) -> Result<(), BridgeError> {
        Ok(self.daemon.replace_autoconnect(&name, autoconnect).await?)
    }

    async fn connect(&self, profile: String) -> Result<(), BridgeError> {
        Ok(self.daemon.connect(&profile).await?)
    }

    async fn disconnect(&self, profile: String) -> Result<(), BridgeError> {
        Ok(self.daemon.disconnect(&profile).await?)
    }

    async fn status(
        &self,
        // Named so that zbus checks the body's signature: without any parameter
        // read from the message it checks nothing, and a call with extra arguments
        // was answered as if it had none (`InvalidArgs` now).
        #[zbus(header)] _hdr: zbus::message::Header<'_>,
    ) -> Result<String, BridgeError> {
        json(&self.daemon.status().await?)
    }

    async fn message_send(
        &self,
        profile: String,
        to: String,
        body: String,
        r#type: String,
    ) -> Result<String, BridgeError> {
        Ok(self
            .daemon
            .send_message(&profile, &to, &body, &r#type)
            .await?
            .id)
    }

    async fn message_outbox(&self, profile: String) -> Result<String, BridgeError> {
        json(&self.daemon.outbox(&profile).await?)
    }

    async fn message_cancel(&self, profile: String, id: String) -> Result<String, BridgeError> {
        json(&self.daemon.cancel_message(&profile, &id).await?)
    }

    async fn history_get(
        &self,
        profile: String,
        filters: HashMap<String, String>,
    ) -> Result<String, BridgeError> {
        json(&self.daemon.history(&profile, &filters).await?)
    }

    async fn roster_get(&self, profile: String) -> Result<String, BridgeError> {
        json(&self.daemon.roster(&profile).await?)
    }

    async fn roster_add(
        &self,
        profile: String,
        jid: String,
        name: String,
        groups: Vec<String>,
    ) -> Result<(), BridgeError> {
        Ok(self
            .daemon
            .roster_add(&profile, &jid, &name, groups)
            .await?)
    }

    async fn roster_remove(&self, profile: String, jid: String) -> Result<(), BridgeError> {
        Ok(self.daemon.roster_remove(&profile, &jid).await?)
    }

    async fn subscription(
        &self,
        profile: String,
        action: String,
        jid: String,
    ) -> Result<(), BridgeError> {
        Ok(self.daemon.subscription(&profile, &action, &jid).await?)
    }

    async fn presence_set(
        &self,
        profile: String,
        show: String,
        status: String,
        priority: i32,
    ) -> Result<(), BridgeError> {
        Ok(self
            .daemon
            .set_presence(&profile, &show, &status, priority)
            .await?)
    }

    async fn presence_get(&self, profile: String) -> Result<String, BridgeError> {
        json(&self.daemon.presences(&profile).await?)
    }

    async fn plugin_list(
        &self,
        // Named so that zbus checks the body's signature: without any parameter
        // read from the message it checks nothing, and a call with extra arguments
        // was answered as if it had none (`InvalidArgs` now).
        #[zbus(header)] _hdr: zbus::message::Header<'_>,
    ) -> Result<String, BridgeError> {
        json(&self.daemon.plugin_statuses())
    }

    async fn action_list(
        &self,
        // Named so that zbus checks the body's signature: without any parameter
        // read from the message it checks nothing, and a call with extra arguments
        // was answered as if it had none (`InvalidArgs` now).
        #[zbus(header)] _hdr: zbus::message::Header<'_>,
    ) -> Result<String, BridgeError> {
        json(&self.daemon.action_specs())
    }

    async fn action_run(
        &self,
        profile: String,
        name: String,
        args: String,
    ) -> Result<String, BridgeError> {
        // JSON text ends here; an unknown action is named before bad arguments.
        let args = match crate::validate::action_args(&args) {
            Ok(args) => args,
            Err(e) => {
                self.daemon.action_exists(&name)?;
                return Err(e.into());
            }
        };
        json(&self.daemon.run_action(&profile, &name, args).await?)
    }

    async fn job_get(&self, id: String) -> Result<String, BridgeError> {
        json(&self.daemon.job_view(&id).await?)
    }

    async fn job_log(&self, id: String) -> Result<String, BridgeError> {
        json(&self.daemon.job_log(&id).await?)
    }

    async fn job_list(&self, profile: String) -> Result<String, BridgeError> {
        json(&self.daemon.job_list(&profile).await?)
    }

    async fn debug_triggers(
        &self,
        // Named so that zbus checks the body's signature: without any parameter
        // read from the message it checks nothing, and a call with extra arguments
        // was answered as if it had none (`InvalidArgs` now).
        #[zbus(header)] _hdr: zbus::message::Header<'_>,
    ) -> Result<String, BridgeError> {
        json(&self.daemon.trigger_points())
    }

    #[zbus(signal)]
    async fn plugin_signal(
        emitter: &SignalEmitter<'_>,
        plugin: &str,
        name: &str,
        profile: &str,
        data: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn progress_started(
        emitter: &SignalEmitter<'_>,
        id: &str,
        profile: &str,
        data: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn progress(
        emitter: &SignalEmitter<'_>,
        id: &str,
        profile: &str,
        data: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn progress_finished(
        emitter: &SignalEmitter<'_>,
        id: &str,
        profile: &str,
        data: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn progress_error(
        emitter: &SignalEmitter<'_>,
        id: &str,
        profile: &str,
        data: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn connection_state(
        emitter: &SignalEmitter<'_>,
        profile: &str,
        state: &str,
        jid: &str,
        reason: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn message_received(
        emitter: &SignalEmitter<'_>,
        profile: &str,
        message: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn message_updated(
        emitter: &SignalEmitter<'_>,
        profile: &str,
        message: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn presence_update(
        emitter: &SignalEmitter<'_>,
        profile: &str,
        jid: &str,
        show: &str,
        status: &str,
        priority: i32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn roster_changed(
        emitter: &SignalEmitter<'_>,
        profile: &str,
        jid: &str,
        subscription: &str,
        name: &str,
        groups: &[String],
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn subscription_request(
        emitter: &SignalEmitter<'_>,
        profile: &str,
        action: &str,
        jid: &str,
    ) -> zbus::Result<()>;
}

async fn emit(emitter: &SignalEmitter<'_>, ev: &Event) -> zbus::Result<()> {
    match ev {
        Event::ConnectionState {
            profile,
            state,
            jid,
            reason,
        } => Core::connection_state(emitter, profile, state.as_str(), jid, reason).await,
        Event::Message { profile, message } => {
            let m = serde_json::to_string(message).unwrap_or_default();
            Core::message_received(emitter, profile, &m).await
        }
        Event::MessageUpdated { profile, message } => {
            let m = serde_json::to_string(message).unwrap_or_default();
            Core::message_updated(emitter, profile, &m).await
        }
        Event::Presence { profile, presence } => {
            Core::presence_update(
                emitter,
                profile,
                &presence.jid,
                presence.show.as_str(),
                presence.status.as_deref().unwrap_or(""),
                i32::from(presence.priority),
            )
            .await
        }
        Event::Roster { profile, item } => {
            Core::roster_changed(
                emitter,
                profile,
                &item.jid,
                &item.subscription,
                item.name.as_deref().unwrap_or(""),
                &item.groups,
            )
            .await
        }
        Event::Subscription {
            profile,
            action,
            jid,
        } => Core::subscription_request(emitter, profile, action, jid).await,
        Event::Plugin {
            plugin,
            name,
            profile,
            data,
        } => Core::plugin_signal(emitter, plugin, name, profile, &data.to_string()).await,
        Event::Job {
            phase,
            id,
            profile,
            data,
        } => {
            let data = data.to_string();
            match phase {
                JobPhase::Started => Core::progress_started(emitter, id, profile, &data).await,
                JobPhase::Progress => Core::progress(emitter, id, profile, &data).await,
                JobPhase::Finished => Core::progress_finished(emitter, id, profile, &data).await,
                JobPhase::Error => Core::progress_error(emitter, id, profile, &data).await,
            }
        }
    }
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeStartError {
    #[error("D-Bus bus {bus}: {source}")]
    Bus { bus: String, source: zbus::Error },
    #[error("socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("another perchd is already serving {0}")]
    SocketInUse(String),
    #[error(transparent)]
    SocketDir(#[from] perch_client::socket::DirError),
}

/// The running bridge: its connections, and the socket file to remove at exit.
pub struct Bridge {
    conns: Conns,
    socket: Option<PathBuf>,
}

impl Bridge {
    /// Serves the bridge as configured and starts forwarding events as signals.
    pub async fn start(daemon: Arc<Daemon>) -> Result<Self, BridgeStartError> {
        let conns = Arc::new(Mutex::new(Vec::new()));
        let core = Core {
            daemon: daemon.clone(),
        };
        let bus = daemon.config().bridge.bus.clone();
        if bus != "none" {
            match serve_bus(&bus, core.clone()).await {
                Ok(c) => {
                    tracing::info!(bus = %bus, name = BUS_NAME, "serving the bridge on D-Bus");
                    if let Err(e) = daemon.frontends().watch_bus(&c).await {
                        tracing::warn!(error = %e, "cannot follow the frontends on the bus; they count as absent");
                    }
                    attach(&conns, c);
                }
                Err(e) if bus == "session" && !is_name_taken(&e) => {
                    tracing::warn!(error = %e, "no session bus: serving the peer-to-peer socket only");
                }
                Err(source) => return Err(BridgeStartError::Bus { bus, source }),
            }
        }
        let socket = daemon.config().socket_path();
        if let Some(path) = &socket {
            serve_socket(path, core, conns.clone()).await?;
            tracing::info!(socket = %path.display(), "serving the bridge on a peer-to-peer socket");
        }
        tokio::spawn(forward_events(daemon.subscribe(), conns.clone()));
        Ok(Self { conns, socket })
    }

    /// Removes the socket file.
    pub fn stop(&self) {
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn is_name_taken(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::NameTaken)
}

async fn serve_bus(bus: &str, core: Core) -> zbus::Result<Connection> {
    let builder = if bus == "session" {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            return Err(zbus::Error::Address(
                "DBUS_SESSION_BUS_ADDRESS is not set".into(),
            ));
        }
        Builder::session()
    } else {
        Builder::address(bus)
    };
    builder.name(BUS_NAME).serve_at(PATH, core).build().await
}

/// How long a new peer-to-peer client may take over the D-Bus handshake: one that
/// connects and says nothing must not hold a descriptor for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed `accept` (EMFILE, ENFILE, ENOBUFS…) the loop waits this long, doubling
/// up to [`ACCEPT_BACKOFF_MAX`], and logs once per episode: spinning on the error would
/// flood the log and starve the connections whose closing frees descriptors.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// An episode of accept errors ends after this long without one.
const ACCEPT_EPISODE_GAP: Duration = Duration::from_secs(2);

/// Serves the bridge on the peer-to-peer socket `path`.
///
/// Its directory is created private by perchd, or refused when someone else could have
/// made or changed it (`perch_client::socket::prepare_dir`); every client must run as
/// perchd's own uid (SO_PEERCRED); closed connections are dropped at once. See
/// `doc/security.rst` and `doc/reliability.rst`.
async fn serve_socket(path: &Path, core: Core, conns: Conns) -> Result<(), BridgeStartError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let io = |source| BridgeStartError::Socket {
        path: shown.clone(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    perch_client::socket::prepare_dir(dir, DirPolicy::for_socket(path))?;
    if path.symlink_metadata().is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BridgeStartError::SocketInUse(shown));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    tokio::spawn(accept_loop(listener, core, conns));
    Ok(())
}

/// A run of accept errors: logged when it starts and when it is over.
struct Episode {
    delay: Duration,
    failures: u64,
    last: tokio::time::Instant,
}

/// Accepts peer-to-peer clients until the daemon stops, backing off on errors.
///
/// Each accept is made holding a spare descriptor, handed to the new connection and
/// closed just before its handshake: zbus takes a descriptor of its own there (a pidfd
/// of the peer), and at the descriptor limit a client accepted without that room would
/// be dropped in its handshake instead of waiting in the backlog.
async fn accept_loop(listener: tokio::net::UnixListener, core: Core, conns: Conns) {
    use std::os::fd::AsFd;
    let me = crate::paths::effective_uid();
    let mut episode: Option<Episode> = None;
    loop {
        let accepted = match listener.as_fd().try_clone_to_owned() {
            Ok(spare) => listener.accept().await.map(|(sock, _)| (sock, spare)),
            Err(e) => Err(e),
        };
        match accepted {
            Ok((sock, spare)) => {
                if let Some(ep) = &episode
                    && ep.last.elapsed() >= ACCEPT_EPISODE_GAP
                {
                    tracing::info!(failures = ep.failures, "accepting bridge connections again");
                    episode = None;
                }
                admit(sock, spare, me, core.clone(), conns.clone());
            }
            Err(e) => {
                let ep = match &mut episode {
                    Some(ep) if ep.last.elapsed() < ACCEPT_EPISODE_GAP => {
                        ep.delay = (ep.delay * 2).min(ACCEPT_BACKOFF_MAX);
                        ep.failures += 1;
                        ep
                    }
                    _ => {
                        tracing::warn!(
                            error = %e,
                            "cannot accept bridge connections; retrying every 100 ms to 1 s, \
                             quiet until it recovers"
                        );
                        episode.insert(Episode {
                            delay: ACCEPT_BACKOFF_FIRST,
                            failures: 1,
                            last: tokio::time::Instant::now(),
                        })
                    }
                };
                let delay = ep.delay;
                tokio::time::sleep(delay).await;
                ep.last = tokio::time::Instant::now();
            }
        }
    }
}

/// Checks a new client's uid, then serves it until it leaves and forgets it at once.
///
/// Only perchd's own uid may talk to it, root included: root can act as the user when
/// it must (`runuser -u USER perch …`), and one rule with no exception is the easier
/// one to trust (`doc/security.rst`).
fn admit(
    sock: tokio::net::UnixStream,
    spare: std::os::fd::OwnedFd,
    me: u32,
    core: Core,
    conns: Conns,
) {
    match sock.peer_cred() {
        Ok(c) if c.uid() == me => {}
        Ok(c) => {
            tracing::warn!(
                uid = c.uid(),
                pid = c.pid().unwrap_or(0),
                "refused a peer-to-peer bridge connection from another user"
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a bridge client's credentials (SO_PEERCRED); refused");
            return;
        }
    }
    tokio::spawn(async move {
        let std = match sock.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "bridge socket");
                return;
            }
        };
        drop(spare);
        let frontends = core.daemon.frontends().clone();
        let handshake = Builder::unix_stream(std)
            .server(zbus::Guid::generate())
            .p2p()
            .serve_at(PATH, core)
            .build();
        let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a peer-to-peer bridge client failed to connect");
                return;
            }
            Err(_) => {
                tracing::debug!(
                    "a peer-to-peer bridge client did not finish its handshake in time"
                );
                return;
            }
        };
        let id = attach(&conns, conn.clone());
        let _counted = frontends.p2p_client();
        // Forgotten as soon as the client goes, so its descriptor is closed now rather
        // than when a signal first fails to reach it.
        conn.closed().await;
        lock(&conns).retain(|(i, _, _)| *i != id);
        tracing::trace!("a peer-to-peer bridge client left");
    });
}

fn lock(conns: &Conns) -> std::sync::MutexGuard<'_, Vec<(u64, Connection, SignalQueue)>> {
    conns
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn forward_events(mut rx: tokio::sync::broadcast::Receiver<Event>, conns: Conns) {
    use tokio::sync::broadcast::error::RecvError;
    use tokio::sync::mpsc::error::TrySendError;
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => Arc::new(ev),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "signals dropped: events came faster than they could be queued"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        // Never awaits a client: each has its own queue and task (see `attach`).
        let mut stalled = Vec::new();
        for (id, conn, queue) in lock(&conns).iter() {
            match queue.try_send(ev.clone()) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(_)) => stalled.push((*id, conn.clone())),
            }
        }
        for (id, conn) in stalled {
            tracing::warn!(
                queued = SIGNAL_QUEUE,
                "a bridge client stopped reading its signals; disconnected so the others are not held up"
            );
            lock(&conns).retain(|(i, _, _)| *i != id);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
            });
        }
    }
}
