//! One XMPP session: a task that owns the profile's stanza stream.
//!
//! Why this shape (measured; see `doc/architecture.rst`, "Why the session task is
//! shaped this way"): tokio-xmpp's `Client` can lose an IQ reply forever and retries
//! fatal errors without telling anyone. So one task owns a `StanzaStream` (never
//! split), keeps its own table of IQs in flight with deadlines, and builds connections
//! itself through a reconnector that classifies failures: a refused password or an
//! untrusted certificate ends the session with that error; a lost connection is retried
//! with exponential backoff; XEP-0198 resumption is done by the stream when the server
//! offers it.
//!
//! The rest of the daemon talks to the task through [`Session`] (commands over a
//! channel, state over a watch channel) and hears from it through [`Event`]s. What
//! comes in goes up ([`upstream`]): the layer above reads it in arrival order in a
//! task of its own (triggers, store, signal) and answers the IQ requests plugins
//! claimed; this layer never names it. The outbox ([`outbox`]: queued messages out,
//! in order, until the server confirmed them) is a task of the session's own.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::{ConnectionState, ContactPresence, RosterItem, Show};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::{
    iq::Iq, message::MessageType, presence::Presence, roster::Roster, stanza_error::StanzaError,
    stream_features::StreamFeatures,
};
use tokio_xmpp::stanzastream::{
    Connection, Event as StreamEvent, StanzaState, StanzaStream, StanzaToken, StreamEvent as Status,
};

use super::ack::{AckGate, Kind};
use super::connect::{self, ConnectError};
use super::csi::Csi;
use super::limits;
use super::stanzas::{self, IqRequest};
use crate::error::{Error, Result};
use crate::events::{Event, EventSender};
use crate::history::History;
use crate::profiles::Credentials;
use crate::roster::{RosterStore, StoredRoster};

mod outbox;
mod roster;
#[cfg(test)]
mod tests;
mod upstream;

pub use upstream::{Ack, Incoming, IncomingIq, IqAnswer, IqHandlers, Link, Upstream};

/// The pauses before an IQ answered with a `wait` error is sent again.
const WAIT_RETRIES: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(1500)];

/// Whether an IQ answered with `e` is sent again (see [`Session::iq`]).
fn retried(e: &perch_plugin_api::StanzaError) -> bool {
    e.kind == "wait"
        && matches!(
            e.condition.as_str(),
            "internal-server-error" | "resource-constraint"
        )
}

/// Session tunables (from `[xmpp]` in the config).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub resource: String,
    pub connect_attempts: u32,
    pub reconnect_attempts: u32,
    pub connect_timeout: Duration,
    pub reconnect_max_delay: Duration,
    pub iq_timeout: Duration,
    /// Depth and size limits on what the server sends.
    pub limits: limits::Limits,
    /// With Client State Indication on: whether a frontend is listening (the
    /// server is told we are inactive while none is).
    pub frontends: Option<watch::Receiver<bool>>,
    /// Connection attempts (TCP, TLS, SASL) made at once by all the sessions of
    /// the daemon: a restart with many profiles must not trip the server's limits.
    pub connect_slots: Arc<tokio::sync::Semaphore>,
}

/// What the rest of the daemon can see of a session at any time.
#[derive(Debug, Clone)]
pub struct StateInfo {
    pub state: ConnectionState,
    pub bound_jid: Option<String>,
    /// Why a disconnected session gave up.
    pub error: Option<ConnectError>,
    /// Counts fresh streams (binds without resumption): what was written to an
    /// earlier one and not confirmed may be lost.
    pub generation: u64,
}

/// Handle to a running session.
#[derive(Clone)]
pub struct Session {
    pub profile: String,
    pub profile_id: i32,
    pub jid: BareJid,
    cmd: mpsc::Sender<Command>,
    state: watch::Receiver<StateInfo>,
    shared: Arc<Shared>,
    /// Told when a message was queued.
    outbox: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Shared {
    roster: Mutex<BTreeMap<String, RosterItem>>,
    /// The version of `roster` the server gave (RFC 6121 §2.6), if any.
    roster_ver: Mutex<Option<String>>,
    presences: Mutex<BTreeMap<String, ContactPresence>>,
}

/// Where a session keeps what it must not lose: the message history (its outbox)
/// and the roster, with the roster stored last time.
pub struct Stores {
    pub history: History,
    pub roster: RosterStore,
    pub stored_roster: StoredRoster,
}

type Reply<T> = oneshot::Sender<Result<T>>;

enum Command {
    /// Any stanza, as is (plugins, IQ answers of plugins).
    Send {
        stanza: Box<Stanza>,
        reply: Option<Reply<()>>,
    },
    Presence {
        presence: Box<Presence>,
        /// Remember it as our own presence (re-sent after reconnecting).
        own: Option<(Show, Option<String>, i8)>,
        reply: Reply<()>,
    },
    Iq {
        to: Option<Jid>,
        set: bool,
        /// Boxed, like the stanzas: a channel's memory is blocks of 32 commands,
        /// made as it is, whether or not anything is ever sent.
        payload: Box<Element>,
        reply: Reply<Option<Element>>,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

/// Progress reports of the reconnector to the session task.
enum ConnStatus {
    Retrying {
        error: ConnectError,
        delay: Duration,
    },
    Fatal(ConnectError),
}

/// XEP-0352's namespace.
const CSI_NS: &str = "urn:xmpp:csi:0";

/// `Some` when the frontends' presence changed; never ready without CSI, or once the
/// daemon dropped its side.
async fn frontends_changed(rx: &mut Option<watch::Receiver<bool>>) -> Option<()> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    if r.changed().await.is_err() {
        *rx = None;
        return std::future::pending().await;
    }
    Some(())
}

/// Ready at `deadline`; never without one. The session task sleeps until its next
/// IQ deadline rather than ticking: an idle session (no IQ in flight) is not woken
/// at all, which counts with a thousand of them in one daemon.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Who waits for an IQ answer.
enum Waiter {
    Caller(Reply<Option<Element>>),
    RosterFetch,
}

struct PendingIq {
    to: Option<Jid>,
    deadline: Instant,
    waiter: Waiter,
    /// Where the request is on its way out (queued, or written to a stream).
    token: StanzaToken,
    /// Written to a stream that was then lost: only a resumption can bring its
    /// answer (see [`Task::note_lost_iqs`]).
    lost: bool,
}

fn closed() -> Error {
    Error::Internal("the session task has stopped".into())
}

impl Session {
    /// Starts a session; it connects in the background (see [`Session::wait_ready`]).
    pub fn spawn(
        creds: Credentials,
        profile_id: i32,
        config: SessionConfig,
        stores: Stores,
        events: EventSender,
        upstream: Upstream,
    ) -> Result<Self> {
        let tls = connect::tls_config(creds.ca_file.as_deref(), creds.insecure)
            .map_err(|e| Error::bad_argument("ca_file", e))?;
        Ok(Self::spawn_over(
            connect::Transport::Tls(tls),
            creds,
            profile_id,
            config,
            stores,
            events,
            upstream,
        ))
    }

    /// [`Session::spawn`] with its connections made through `transport`.
    pub(crate) fn spawn_over(
        transport: connect::Transport,
        creds: Credentials,
        profile_id: i32,
        config: SessionConfig,
        stores: Stores,
        events: EventSender,
        upstream: Upstream,
    ) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (state_tx, state_rx) = watch::channel(StateInfo {
            state: ConnectionState::Connecting,
            bound_jid: None,
            error: None,
            generation: 0,
        });
        let priority = creds.priority;
        let Stores {
            history,
            roster: roster_store,
            stored_roster,
        } = stores;
        let shared = Arc::new(Shared {
            roster: Mutex::new(
                stored_roster
                    .items
                    .into_iter()
                    .map(|i| (i.jid.clone(), i))
                    .collect(),
            ),
            roster_ver: Mutex::new(stored_roster.ver),
            presences: Mutex::default(),
        });
        let roster_out = roster::spawn_writer(
            roster_store,
            profile_id,
            creds.profile.clone(),
            creds.jid.to_string(),
        );
        let handle = Self {
            profile: creds.profile.clone(),
            profile_id,
            jid: creds.jid.clone(),
            cmd: cmd_tx,
            state: state_rx,
            shared: shared.clone(),
            outbox: Arc::default(),
        };
        tokio::spawn(
            outbox::Outbox {
                profile: creds.profile.clone(),
                profile_id,
                own: creds.jid.clone(),
                history,
                events: events.clone(),
                cmd: handle.cmd.downgrade(),
                state: handle.state.clone(),
                wake: handle.outbox.clone(),
            }
            .run(),
        );
        let task = Task {
            self_cmd: handle.cmd.downgrade(),
            inbox: upstream.inbox,
            iq_handlers: upstream.iq,
            started: false,
            own: creds.jid.clone(),
            profile: creds.profile.clone(),
            creds: Arc::new(creds),
            transport,
            config,
            events,
            state: state_tx,
            shared,
            roster_out,
            cmd_rx,
            pending: HashMap::new(),
            bound: None,
            negotiating: Arc::new(AtomicBool::new(false)),
            failed_handoffs: Arc::new(AtomicU32::new(0)),
            own_presence: (Show::Available, None, priority),
            next_id: 0,
            generation: 0,
            gate: Arc::new(AckGate::new()),
            csi: Arc::default(),
            csi_offered: false,
        };
        tokio::spawn(task.run());
        handle
    }

    pub fn state(&self) -> StateInfo {
        self.state.borrow().clone()
    }

    /// Waits until the session is connected, or fails with why it could not be.
    pub async fn wait_ready(&self) -> Result<()> {
        let mut rx = self.state.clone();
        let info = rx
            .wait_for(|s| {
                s.state == ConnectionState::Connected || (s.state == ConnectionState::Disconnected)
            })
            .await
            .map_err(|_| closed())?
            .clone();
        match (info.state, info.error) {
            (ConnectionState::Connected, _) => Ok(()),
            (_, Some(e)) => Err(self.error_of(&e)),
            _ => Err(Error::NotConnected(self.profile.clone())),
        }
    }

    /// The bridge error for a connection failure of this session.
    pub fn error_of(&self, e: &ConnectError) -> Error {
        let domain = self.jid.domain().to_string();
        match e {
            ConnectError::Auth(reason) => Error::AuthenticationFailed {
                jid: self.jid.to_string(),
                reason: reason.clone(),
            },
            ConnectError::Certificate(reason) => Error::CertificateNotTrusted {
                domain,
                reason: reason.clone(),
            },
            ConnectError::Unreachable(reason) => Error::ServerUnreachable {
                domain,
                reason: reason.clone(),
            },
            ConnectError::Protocol(reason) => Error::Xmpp(format!("{domain}: {reason}")),
        }
    }

    pub fn is_running(&self) -> bool {
        !self.cmd.is_closed()
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| self.not_connected())?;
        rx.await.map_err(|_| self.not_connected())?
    }

    fn not_connected(&self) -> Error {
        Error::NotConnected(self.profile.clone())
    }

    /// A message was queued: the outbox task sends it when the stream is up.
    pub fn wake_outbox(&self) {
        self.outbox.notify_one();
    }

    /// Sends any stanza as is.
    pub async fn send_stanza(&self, stanza: Stanza) -> Result<()> {
        self.call(|reply| Command::Send {
            stanza: Box::new(stanza),
            reply: Some(reply),
        })
        .await
    }

    /// The full JID the session is bound to, when connected.
    pub fn bound_jid(&self) -> Option<Jid> {
        let st = self.state.borrow();
        st.bound_jid.as_deref().and_then(|j| Jid::new(j).ok())
    }

    /// What the reader of this session's [`Incoming`] items may do back to it.
    pub fn link(&self) -> Link {
        Link {
            cmd: self.cmd.downgrade(),
            shared: self.shared.clone(),
        }
    }

    /// Sends our own presence, `presence` (built from the others and through
    /// `presence.send` already); they are kept and sent again, as a stanza from
    /// [`stanzas::own_presence`], after each fresh bind.
    pub async fn set_own_presence(
        &self,
        presence: Presence,
        show: Show,
        status: Option<String>,
        priority: i8,
    ) -> Result<()> {
        self.call(|reply| Command::Presence {
            presence: Box::new(presence),
            own: Some((show, status, priority)),
            reply,
        })
        .await
    }

    /// Sends a presence that is not our availability (subscriptions).
    pub async fn send_presence(&self, presence: Presence) -> Result<()> {
        self.call(|reply| Command::Presence {
            presence: Box::new(presence),
            own: None,
            reply,
        })
        .await
    }

    /// Sends an IQ and waits for its answer (bounded by `xmpp.iq_timeout`).
    ///
    /// An error of type `wait` means, by RFC 6120 §8.3.2, "temporary, retry after
    /// waiting", and nothing was done. When the server itself failed or lacked
    /// resources ([`retried`]), the request is sent again after [`WAIT_RETRIES`]'
    /// pauses before the error is given up. ejabberd answers so when two of its
    /// database transactions deadlock (two nodes created at once, one by the user and
    /// one by a plugin publishing on PEP at session start). Other waits (a remote
    /// server's timeout, an occupant gone) would only come back later, after as long.
    pub async fn iq(
        &self,
        to: Option<Jid>,
        set: bool,
        payload: Element,
    ) -> Result<Option<Element>> {
        let mut pauses = WAIT_RETRIES.iter();
        loop {
            let answer = self
                .call(|reply| Command::Iq {
                    to: to.clone(),
                    set,
                    payload: Box::new(payload.clone()),
                    reply,
                })
                .await;
            match (&answer, pauses.next()) {
                (Err(Error::Stanza(e)), Some(pause)) if retried(e) => {
                    tracing::debug!(error = %e, ?pause, "temporary IQ error, sending again");
                    tokio::time::sleep(*pause).await;
                }
                _ => return answer,
            }
        }
    }

    pub fn roster(&self) -> Vec<RosterItem> {
        lock(&self.shared.roster).values().cloned().collect()
    }

    pub fn presences(&self) -> Vec<ContactPresence> {
        lock(&self.shared.presences).values().cloned().collect()
    }

    /// Sends unavailable presence, closes the stream and ends the task.
    pub async fn disconnect(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .cmd
            .send(Command::Disconnect { reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the task's loop ended.
enum Exit {
    Disconnect(oneshot::Sender<()>),
    Fatal(ConnectError),
    Dropped,
    StreamEnded,
}

struct Task {
    /// To send ourselves commands (plugins' IQ answers) without keeping the channel
    /// open after every handle is gone.
    self_cmd: mpsc::WeakSender<Command>,
    /// Incoming messages and presences, and session start/end, go up to a task of
    /// the layer above, in order: a plugin there may await an IQ of this very
    /// session, which would deadlock here.
    inbox: mpsc::UnboundedSender<Incoming>,
    /// Who answers the IQ requests the session does not (plugins, above).
    iq_handlers: Arc<dyn IqHandlers>,
    /// `session.started` went out for the current stream.
    started: bool,
    own: BareJid,
    profile: String,
    creds: Arc<Credentials>,
    transport: connect::Transport,
    config: SessionConfig,
    events: EventSender,
    state: watch::Sender<StateInfo>,
    shared: Arc<Shared>,
    /// Roster changes to store, in order (see [`roster`]).
    roster_out: mpsc::UnboundedSender<roster::Op>,
    cmd_rx: mpsc::Receiver<Command>,
    pending: HashMap<String, PendingIq>,
    bound: Option<Jid>,
    /// A connection was handed to the stream worker and is not bound/resumed yet.
    negotiating: Arc<AtomicBool>,
    /// Handed-over connections in a row whose negotiation failed.
    failed_handoffs: Arc<AtomicU32>,
    own_presence: (Show, Option<String>, i8),
    next_id: u64,
    /// Fresh streams so far (see [`StateInfo::generation`]).
    generation: u64,
    /// What of the incoming stanzas is handled, for honest XEP-0198 acks.
    gate: Arc<AckGate>,
    /// The Client State Indication owed to the server (`csi.rs`).
    csi: Arc<Csi>,
    /// The server offered CSI on the current stream.
    csi_offered: bool,
}

/// What one round of connection attempts needs (see [`Task::reconnector`]).
#[derive(Clone)]
struct Dialer {
    creds: Arc<Credentials>,
    transport: connect::Transport,
    cfg: SessionConfig,
    identity: Jid,
    status: mpsc::UnboundedSender<ConnStatus>,
    negotiating: Arc<AtomicBool>,
    profile: String,
    gate: Arc<AckGate>,
    csi: Arc<Csi>,
}

impl Dialer {
    /// Connects within `budget` attempts (`0`: no end) and hands the connection to
    /// the stream worker through `slot`, or reports why not. `handoff_failures`:
    /// connections in a row that logged in but failed to bind.
    async fn dial(
        self,
        slot: oneshot::Sender<Connection>,
        without_sm: bool,
        handoff_failures: u32,
        budget: u32,
    ) {
        // Connections that log in but then fail to bind, again and again, must
        // not make a tight loop: back off, and give up within the budget.
        if handoff_failures > 1 {
            if budget != 0 && handoff_failures >= budget {
                let _ = self.status.send(ConnStatus::Fatal(ConnectError::Protocol(
                    "the server keeps closing the stream before resource binding completes".into(),
                )));
                return;
            }
            tokio::time::sleep(connect::backoff(
                handoff_failures - 1,
                self.cfg.reconnect_max_delay,
            ))
            .await;
        }
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let error = match self.attempt().await {
                Ok(mut conn) => {
                    if without_sm {
                        conn.features.stream_management = None;
                    }
                    if self.creds.insecure {
                        tracing::warn!(
                            profile = %self.profile,
                            jid = %self.creds.jid,
                            "TLS certificate verification disabled for this profile (insecure): \
                             connected without checking the server's identity"
                        );
                    }
                    self.negotiating.store(true, Ordering::SeqCst);
                    // If the session is gone the slot is closed; nothing to do.
                    let _ = slot.send(conn);
                    return;
                }
                Err(e) => e,
            };
            if self.status.is_closed() {
                return;
            }
            if error.is_fatal() || (budget != 0 && attempt >= budget) {
                let _ = self.status.send(ConnStatus::Fatal(error));
                return; // dropping the slot ends the stream worker
            }
            let delay = connect::backoff(attempt, self.cfg.reconnect_max_delay);
            let _ = self.status.send(ConnStatus::Retrying { error, delay });
            tokio::time::sleep(delay).await;
            if self.status.is_closed() {
                return;
            }
        }
    }

    /// One attempt, bounded by `xmpp.connect_timeout` once it has one of the
    /// daemon's connection slots (`xmpp.connect_concurrency`).
    async fn attempt(&self) -> std::result::Result<Connection, ConnectError> {
        let _slot = self
            .cfg
            .connect_slots
            .acquire()
            .await
            .map_err(|_| ConnectError::Unreachable("perchd is stopping".into()))?;
        tokio::time::timeout(
            self.cfg.connect_timeout,
            connect::connect_once(
                &self.creds,
                self.identity.clone(),
                &self.transport,
                connect::timeouts(),
                self.cfg.limits,
                self.gate.clone(),
                self.csi.clone(),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Unreachable(format!(
                "no answer within {} s",
                self.cfg.connect_timeout.as_secs()
            )))
        })
    }
}

impl Task {
    fn reconnector(
        &self,
        status: mpsc::UnboundedSender<ConnStatus>,
    ) -> Box<dyn FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static> {
        let dialer = Dialer {
            identity: connect::requested_jid(&self.creds, &self.config.resource),
            creds: self.creds.clone(),
            transport: self.transport.clone(),
            cfg: self.config.clone(),
            status,
            negotiating: self.negotiating.clone(),
            profile: self.profile.clone(),
            gate: self.gate.clone(),
            csi: self.csi.clone(),
        };
        let failed_handoffs = self.failed_handoffs.clone();
        let mut first = true;
        Box::new(move |_location, slot| {
            // The last connection we handed over never got bound nor resumed: its
            // negotiation failed. With Prosody this is a refused resumption after a
            // server restart, whose `<failed/>` (no `h`) xmpp-parsers 0.23 cannot
            // parse, so the worker would retry resuming forever. Offer the next
            // connection without stream management: the worker then drops its old
            // state and binds afresh.
            let without_sm = dialer.negotiating.swap(false, Ordering::SeqCst);
            let handoff_failures = if without_sm {
                tracing::info!(profile = %dialer.profile, "stream negotiation failed (refused resumption?); binding a fresh session without stream management");
                failed_handoffs.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                0
            };
            let budget = if std::mem::take(&mut first) {
                dialer.cfg.connect_attempts
            } else {
                dialer.cfg.reconnect_attempts
            };
            tokio::spawn(
                dialer
                    .clone()
                    .dial(slot, without_sm, handoff_failures, budget),
            );
        })
    }

    fn set_state(&self, state: ConnectionState, error: Option<ConnectError>, reason: String) {
        let bound = if state == ConnectionState::Connected {
            self.bound.as_ref().map(|j| j.to_string())
        } else {
            None
        };
        let changed = {
            let cur = self.state.borrow();
            cur.state != state || cur.bound_jid != bound || !reason.is_empty()
        };
        self.state.send_replace(StateInfo {
            state,
            bound_jid: bound.clone(),
            error,
            generation: self.generation,
        });
        if changed {
            tracing::info!(profile = %self.profile, jid = %self.own, state = state.as_str(), %reason, "connection state");
            self.emit(Event::ConnectionState {
                profile: self.profile.clone(),
                state,
                jid: bound.unwrap_or_else(|| self.own.to_string()),
                reason,
            });
        }
    }

    fn emit(&self, e: Event) {
        // No receiver (no frontend yet) is fine.
        let _ = self.events.send(e);
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!(
            "perch-{}-{}",
            perch_plugin_api::ids::random_hex(6),
            self.next_id
        )
    }

    async fn run(mut self) {
        self.set_state(ConnectionState::Connecting, None, "connecting".into());
        let (status_tx, mut status_rx) = mpsc::unbounded_channel();
        let mut stream = StanzaStream::new(self.reconnector(status_tx), 64);
        // The handlers' futures are boxed, made when there is something to handle:
        // inline, their largest state would be part of this task's, which each idle
        // session keeps (doc/performance.rst, "Where each profile's memory goes").
        let exit = loop {
            let expiry = self.next_expiry();
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(ev) => Box::pin(self.on_stream_event(&stream, ev)).await,
                    // The reconnector reports a fatal error before it gives up, which
                    // ends the stream: both may be ready at once, the error wins.
                    None => {
                        let mut exit = Exit::StreamEnded;
                        while let Ok(st) = status_rx.try_recv() {
                            if let ConnStatus::Fatal(e) = st {
                                exit = Exit::Fatal(e);
                            }
                        }
                        break exit;
                    }
                },
                Some(st) = status_rx.recv() => match st {
                    ConnStatus::Retrying { error, delay } => self.set_state(
                        ConnectionState::Connecting,
                        None,
                        format!("{error}; retrying in {} s", delay.as_secs()),
                    ),
                    ConnStatus::Fatal(e) => break Exit::Fatal(e),
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break Exit::Dropped,
                    Some(Command::Disconnect { reply }) => break Exit::Disconnect(reply),
                    Some(c) => Box::pin(self.on_command(&stream, c)).await,
                },
                () = until(expiry) => self.expire_iqs(),
                Some(()) = frontends_changed(&mut self.config.frontends) => {
                    self.client_state();
                }
            }
        };
        Box::pin(self.end(stream, exit)).await;
    }

    /// The loop ended: callers, the layer above and the server are told.
    async fn end(mut self, stream: StanzaStream, exit: Exit) {
        self.fail_pending();
        if std::mem::take(&mut self.started) {
            let _ = self.inbox.send(Incoming::Ended);
        }
        match exit {
            Exit::Disconnect(reply) => {
                if self.state.borrow().state == ConnectionState::Connected {
                    let off = stanzas::own_presence(Show::Unavailable, None, 0);
                    let _ = stream.send(Box::new(Stanza::Presence(off))).await;
                }
                // Bounded: a dead server must not hold up a shutdown.
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
                self.set_state(ConnectionState::Disconnected, None, String::new());
                let _ = reply.send(());
            }
            Exit::Fatal(e) => {
                drop(stream);
                tracing::warn!(profile = %self.profile, jid = %self.own, error = %e, "giving up connecting");
                let reason = format!("{}: {e}", error_name(&e));
                self.set_state(ConnectionState::Disconnected, Some(e), reason);
            }
            Exit::Dropped => {
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
                self.set_state(ConnectionState::Disconnected, None, String::new());
            }
            Exit::StreamEnded => {
                self.set_state(
                    ConnectionState::Disconnected,
                    Some(ConnectError::Unreachable("the stream ended".into())),
                    "the stream ended".into(),
                );
            }
        }
        lock(&self.shared.presences).clear();
    }

    /// Tells the server whether a frontend is listening (XEP-0352), when CSI is on
    /// and the state changed: the stream wrapper writes the nonza (`csi.rs`).
    fn client_state(&self) {
        let Some(frontends) = &self.config.frontends else {
            return;
        };
        let inactive = !*frontends.borrow();
        if self.csi.want_inactive(inactive) {
            tracing::debug!(profile = %self.profile, jid = %self.own, inactive, "client state indication");
        }
    }

    fn fail_pending(&mut self) {
        for (_, p) in self.pending.drain() {
            if let Waiter::Caller(tx) = p.waiter {
                let _ = tx.send(Err(Error::NotConnected(self.profile.clone())));
            }
        }
    }

    /// When the first IQ in flight times out; `None` with none in flight.
    fn next_expiry(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    fn expire_iqs(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            let to =
                p.to.as_ref()
                    .map_or_else(|| self.own.to_string(), |j| j.to_string());
            tracing::debug!(profile = %self.profile, %id, %to, "IQ timed out");
            match p.waiter {
                Waiter::Caller(tx) => {
                    let _ = tx.send(Err(Error::Timeout(format!(
                        "{to} did not answer within {} s",
                        self.config.iq_timeout.as_secs()
                    ))));
                }
                Waiter::RosterFetch => {
                    self.roster_loaded(roster::Answer::Failed("no answer in time".into()));
                }
            }
        }
    }

    async fn send(&self, stream: &StanzaStream, stanza: Stanza) {
        stream.send(Box::new(stanza)).await;
    }

    async fn send_iq(
        &mut self,
        stream: &StanzaStream,
        to: Option<Jid>,
        set: bool,
        payload: Element,
        waiter: Waiter,
    ) {
        let id = self.new_id();
        let mut iq = if set {
            Iq::Set {
                from: None,
                to: None,
                id: id.clone(),
                payload,
            }
        } else {
            Iq::Get {
                from: None,
                to: None,
                id: id.clone(),
                payload,
            }
        };
        *iq.to_mut() = to.clone();
        let token = stream.send(Box::new(Stanza::Iq(iq))).await;
        self.pending.insert(
            id,
            PendingIq {
                to,
                deadline: Instant::now() + self.config.iq_timeout,
                waiter,
                token,
                lost: false,
            },
        );
    }

    /// The stream was lost: the requests written to it are answered only if it is
    /// resumed (the library sends again what the server did not acknowledge, and
    /// the server what we did not). Those still queued go out on the next stream.
    /// (One written to the next stream before this runs would be taken for lost:
    /// reconnecting takes network round trips, this does not wait for any.)
    fn note_lost_iqs(&mut self) {
        for p in self.pending.values_mut() {
            if !matches!(p.token.state(), StanzaState::Queued) {
                p.lost = true;
            }
        }
    }

    /// A fresh stream (not resumed): the answers to requests written to a lost one
    /// will never come. Their callers hear it now rather than at their deadline
    /// (the outbox then sends its batch again at once). A roster fetch is simply
    /// dropped: the fresh stream fetches the roster anew.
    fn fail_lost_iqs(&mut self) {
        let lost: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.lost)
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            if let Some(PendingIq {
                waiter: Waiter::Caller(tx),
                ..
            }) = self.pending.remove(&id)
            {
                tracing::debug!(profile = %self.profile, %id, "IQ lost with its stream");
                let _ = tx.send(Err(Error::NotConnected(self.profile.clone())));
            }
        }
    }

    /// A fresh stream is bound: the roster first, then our presence.
    async fn on_bound(&mut self, stream: &StanzaStream, bound_jid: Jid, features: &StreamFeatures) {
        self.csi_offered = features.others.iter().any(|f| f.is("csi", CSI_NS));
        self.csi.arm(self.csi_offered);
        self.client_state();
        self.negotiating.store(false, Ordering::SeqCst);
        self.failed_handoffs.store(0, Ordering::SeqCst);
        tracing::info!(profile = %self.profile, jid = %bound_jid, "stream bound");
        self.generation += 1;
        self.fail_lost_iqs();
        if std::mem::take(&mut self.started) {
            let _ = self.inbox.send(Incoming::Ended);
        }
        self.bound = Some(bound_jid);
        lock(&self.shared.presences).clear();
        // Roster first, then presence (RFC 6121 §2.2): contacts' presences
        // then arrive with a roster to put them in.
        let versioning = roster::versioning(features);
        let ver = lock(&self.shared.roster_ver).clone();
        let query = roster::query(versioning, ver.as_deref());
        if versioning {
            let ver = ver.unwrap_or_default();
            tracing::info!(profile = %self.profile, "roster get versioning=true ver={ver:?}");
        } else {
            tracing::info!(profile = %self.profile, "roster get versioning=false");
        }
        self.send_iq(stream, None, false, query, Waiter::RosterFetch)
            .await;
        // Through `presence.send` in the inbox task (plugins add their
        // capabilities there): the session task never awaits plugin code.
        let (show, status, prio) = self.own_presence.clone();
        let p = stanzas::own_presence(show, status.as_deref(), prio);
        let _ = self.inbox.send(Incoming::OwnPresence(Box::new(p)));
    }

    async fn on_stream_event(&mut self, stream: &StanzaStream, ev: StreamEvent) {
        match ev {
            StreamEvent::Stream(Status::Reset {
                bound_jid,
                features,
            }) => self.on_bound(stream, bound_jid, &features).await,
            StreamEvent::Stream(Status::Suspended) => {
                self.note_lost_iqs();
                self.set_state(
                    ConnectionState::Connecting,
                    None,
                    "connection lost; reconnecting".into(),
                );
            }
            StreamEvent::Stream(Status::Resumed) => {
                for p in self.pending.values_mut() {
                    p.lost = false;
                }
                self.negotiating.store(false, Ordering::SeqCst);
                self.failed_handoffs.store(0, Ordering::SeqCst);
                tracing::info!(profile = %self.profile, jid = %self.own, "stream resumed (XEP-0198)");
                self.csi.arm(self.csi_offered);
                self.client_state();
                self.set_state(ConnectionState::Connected, None, "resumed".into());
            }
            StreamEvent::Stanza(Stanza::Iq(iq)) => {
                let k = self.gate.claim(Kind::Iq, Some(iq.id()));
                self.on_iq(stream, iq).await;
                self.gate.done(k);
            }
            StreamEvent::Stanza(Stanza::Message(m)) => {
                let k = self
                    .gate
                    .claim(Kind::Message, m.id.as_ref().map(|i| i.0.as_str()));
                // Refused by the XML limits (and logged there with its sender).
                if let Some(reason) = limits::refusal(&m.payloads) {
                    tracing::debug!(profile = %self.profile, from = ?m.from, reason, "refused message dropped");
                    self.gate.done(k);
                    return;
                }
                let ack = Ack::new(self.gate.clone(), k);
                let message = Box::new(m);
                let _ = self.inbox.send(if message.type_ == MessageType::Error {
                    Incoming::Bounce { message, ack }
                } else {
                    Incoming::Message {
                        message,
                        bound: self.bound.clone(),
                        ack,
                    }
                });
            }
            StreamEvent::Stanza(Stanza::Presence(p)) => {
                let k = self.gate.claim(Kind::Presence, p.id.as_deref());
                if let Some(reason) = limits::refusal(&p.payloads) {
                    tracing::debug!(profile = %self.profile, from = ?p.from, reason, "refused presence dropped");
                    self.gate.done(k);
                    return;
                }
                let _ = self.inbox.send(Incoming::Presence {
                    presence: Box::new(p),
                    ack: Ack::new(self.gate.clone(), k),
                });
            }
        }
    }

    fn roster_loaded(&mut self, answer: roster::Answer) {
        match answer {
            roster::Answer::Full(roster) => {
                let items: BTreeMap<String, RosterItem> = roster
                    .items
                    .iter()
                    .map(|i| {
                        let item = stanzas::roster_item(i);
                        (item.jid.clone(), item)
                    })
                    .collect();
                tracing::debug!(profile = %self.profile, items = items.len(), ver = ?roster.ver, "roster fetched");
                *lock(&self.shared.roster) = items.clone();
                lock(&self.shared.roster_ver).clone_from(&roster.ver);
                let _ = self.roster_out.send(roster::Op::Replace(StoredRoster {
                    ver: roster.ver,
                    account: self.own.to_string(),
                    items: items.values().cloned().collect(),
                }));
                self.emit_roster(items.into_values());
            }
            roster::Answer::Current => {
                let items: Vec<RosterItem> = lock(&self.shared.roster).values().cloned().collect();
                tracing::info!(profile = %self.profile, items = items.len(), "the stored roster is current (roster versioning)");
                self.emit_roster(items);
            }
            roster::Answer::Failed(e) => {
                tracing::warn!(profile = %self.profile, error = %e, "roster fetch failed");
            }
        }
        self.set_state(ConnectionState::Connected, None, String::new());
        if !self.started {
            self.started = true;
            let jid = self
                .bound
                .as_ref()
                .map_or_else(|| self.own.to_string(), |j| j.to_string());
            let _ = self.inbox.send(Incoming::Started(jid));
        }
    }

    fn emit_roster(&self, items: impl IntoIterator<Item = RosterItem>) {
        for item in items {
            self.emit(Event::Roster {
                profile: self.profile.clone(),
                item,
            });
        }
    }

    /// A roster push: kept, stored with the version it carries, and signalled.
    fn roster_pushed(&mut self, pushed: Roster) {
        for i in &pushed.items {
            let item = stanzas::roster_item(i);
            {
                let mut r = lock(&self.shared.roster);
                if item.subscription == "remove" {
                    r.remove(&item.jid);
                } else {
                    r.insert(item.jid.clone(), item.clone());
                }
            }
            lock(&self.shared.roster_ver).clone_from(&pushed.ver);
            let _ = self.roster_out.send(roster::Op::Push {
                item: Box::new(item.clone()),
                ver: pushed.ver.clone(),
            });
            self.emit(Event::Roster {
                profile: self.profile.clone(),
                item,
            });
        }
    }

    async fn on_iq(&mut self, stream: &StanzaStream, iq: Iq) {
        // Refused by the XML limits: a request gets policy-violation, an answer fails
        // its waiter.
        let iq = match limits::check_iq(iq) {
            limits::IqCheck::Pass(iq) => iq,
            limits::IqCheck::Answer(answer) => {
                return self.send(stream, Stanza::Iq(answer)).await;
            }
            limits::IqCheck::Fail { from, id, error } => {
                return self.on_iq_answer(from, id, Err(error));
            }
        };
        match iq {
            Iq::Result {
                from, id, payload, ..
            } => self.on_iq_answer(from, id, Ok(payload)),
            Iq::Error {
                from, id, error, ..
            } => self.on_iq_answer(from, id, Err(error)),
            Iq::Get {
                from, id, payload, ..
            } => self.on_iq_request(stream, from, id, payload, true).await,
            Iq::Set {
                from, id, payload, ..
            } => self.on_iq_request(stream, from, id, payload, false).await,
        }
    }

    fn on_iq_answer(
        &mut self,
        from: Option<Jid>,
        id: String,
        answer: std::result::Result<Option<Element>, StanzaError>,
    ) {
        let Some(p) = self.pending.get(&id) else {
            tracing::debug!(profile = %self.profile, %id, "IQ answer nobody waits for");
            return;
        };
        if !stanzas::reply_matches(from.as_ref(), p.to.as_ref(), &self.own) {
            tracing::warn!(profile = %self.profile, %id, from = ?from, "IQ answer from the wrong entity ignored");
            return;
        }
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        match p.waiter {
            Waiter::Caller(tx) => {
                let _ = tx.send(answer.map_err(|e| Error::Stanza((&e).into())));
            }
            Waiter::RosterFetch => {
                self.roster_loaded(roster::Answer::of(
                    answer.map_err(|e| format!("{:?}", e.defined_condition)),
                ));
            }
        }
    }

    async fn on_iq_request(
        &mut self,
        stream: &StanzaStream,
        from: Option<Jid>,
        id: String,
        payload: Element,
        is_get: bool,
    ) {
        let from_self = from.as_ref().is_none_or(|f| f.to_bare() == self.own);
        let result = |payload: Option<Element>| Iq::Result {
            from: None,
            to: from.clone(),
            id: id.clone(),
            payload,
        };
        let answer = match stanzas::classify_request(&payload, is_get, from_self) {
            IqRequest::RosterPush(roster) => {
                self.roster_pushed(roster);
                result(None)
            }
            IqRequest::Other => {
                let iq = IncomingIq {
                    from: from.clone(),
                    set: !is_get,
                    payload,
                };
                match self.iq_handlers.claim(&iq) {
                    Some(answer) => return self.answer_later(answer, from, id),
                    None => Iq::Error {
                        from: None,
                        to: from.clone(),
                        id: id.clone(),
                        error: stanzas::service_unavailable(),
                        payload: None,
                    },
                }
            }
        };
        self.send(stream, Stanza::Iq(answer)).await;
    }

    /// Awaits a claimed IQ's answer in a task of its own and sends it through the
    /// command channel: its handler may itself await IQs of this session.
    fn answer_later(&self, answer: BoxFuture<'static, IqAnswer>, from: Option<Jid>, id: String) {
        let cmd = self.self_cmd.clone();
        tokio::spawn(async move {
            let answer = match answer.await {
                Ok(payload) => Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload,
                },
                Err(error) => Iq::Error {
                    from: None,
                    to: from,
                    id,
                    error,
                    payload: None,
                },
            };
            if let Some(cmd) = cmd.upgrade() {
                let _ = cmd
                    .send(Command::Send {
                        stanza: Box::new(Stanza::Iq(answer)),
                        reply: None,
                    })
                    .await;
            }
        });
    }

    async fn on_command(&mut self, stream: &StanzaStream, cmd: Command) {
        match cmd {
            Command::Presence {
                presence,
                own,
                reply,
            } => {
                // Our own availability has been through `presence.send` already,
                // in the caller's task.
                if let Some(own) = own {
                    self.own_presence = own;
                }
                self.send(stream, Stanza::Presence(*presence)).await;
                let _ = reply.send(Ok(()));
            }
            Command::Iq {
                to,
                set,
                payload,
                reply,
            } => {
                self.send_iq(stream, to, set, *payload, Waiter::Caller(reply))
                    .await;
            }
            Command::Send { stanza, reply } => {
                self.send(stream, *stanza).await;
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            Command::Disconnect { .. } => unreachable!("handled by the loop"),
        }
    }
}

/// The stable name of a connection failure, as on the bridge.
pub fn error_name(e: &ConnectError) -> &'static str {
    match e {
        ConnectError::Auth(_) => "AuthenticationFailed",
        ConnectError::Certificate(_) => "CertificateNotTrusted",
        ConnectError::Unreachable(_) => "ServerUnreachable",
        ConnectError::Protocol(_) => "Xmpp",
    }
}
