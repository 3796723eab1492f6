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
//! channel, state over a watch channel) and hears from it through [`Event`]s. Two
//! tasks of its own stand beside it: the inbox (incoming stanzas through plugins,
//! then stored) and the outbox ([`outbox`]: queued messages out, in order, until
//! the server confirmed them).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::{
    ConnectionState, ContactPresence, Direction, MessageState, RosterItem, Show,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::{
    iq::Iq,
    message::{Id, Message, MessageType},
    presence::Presence,
    roster::Roster,
    stanza_error::StanzaError,
};
use tokio_xmpp::stanzastream::{
    Connection, Event as StreamEvent, StanzaStream, StreamEvent as Status,
};

use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, MessageStored, OutgoingPresence,
    PresenceReceived, PresenceSend, SessionEnded, SessionInfo, SessionStarted, StoredMessage,
};

use super::ack::{AckGate, Kind};
use super::connect::{self, ConnectError};
use super::limits;
use super::stanzas::{self, IqRequest, PresenceUpdate};
use crate::error::{Error, Result};
use crate::events::{Event, EventSender};
use crate::history::{History, NewMessage, Stored};
use crate::plugins::Registry;
use crate::profiles::Credentials;

mod outbox;

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
    registry: Arc<Registry>,
    /// Told when a message was queued.
    outbox: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Shared {
    roster: Mutex<BTreeMap<String, RosterItem>>,
    presences: Mutex<BTreeMap<String, ContactPresence>>,
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
        payload: Element,
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

/// Who waits for an IQ answer.
enum Waiter {
    Caller(Reply<Option<Element>>),
    RosterFetch,
}

struct PendingIq {
    to: Option<Jid>,
    deadline: Instant,
    waiter: Waiter,
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
        history: History,
        events: EventSender,
        registry: Arc<Registry>,
    ) -> Result<Self> {
        let tls = connect::tls_config(creds.ca_file.as_deref(), creds.insecure)
            .map_err(|e| Error::bad_argument("ca_file", e))?;
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (state_tx, state_rx) = watch::channel(StateInfo {
            state: ConnectionState::Connecting,
            bound_jid: None,
            error: None,
            generation: 0,
        });
        let priority = creds.priority;
        let shared = Arc::new(Shared::default());
        let handle = Self {
            profile: creds.profile.clone(),
            profile_id,
            jid: creds.jid.clone(),
            cmd: cmd_tx,
            state: state_rx,
            shared: shared.clone(),
            registry: registry.clone(),
            outbox: Arc::default(),
        };
        tokio::spawn(
            outbox::Outbox {
                profile: creds.profile.clone(),
                profile_id,
                own: creds.jid.clone(),
                history: history.clone(),
                events: events.clone(),
                cmd: handle.cmd.downgrade(),
                state: handle.state.clone(),
                wake: handle.outbox.clone(),
            }
            .run(),
        );
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let gate = Arc::new(AckGate::new());
        let inbox = Inbox {
            gate: gate.clone(),
            profile: creds.profile.clone(),
            profile_id,
            own: creds.jid.clone(),
            history: history.clone(),
            events: events.clone(),
            shared: shared.clone(),
            registry: registry.clone(),
            cmd: handle.cmd.downgrade(),
        };
        tokio::spawn(inbox.run(inbox_rx));
        let task = Task {
            self_cmd: handle.cmd.downgrade(),
            inbox: inbox_tx,
            registry,
            started: false,
            own: creds.jid.clone(),
            profile: creds.profile.clone(),
            creds: Arc::new(creds),
            tls,
            config,
            events,
            state: state_tx,
            shared,
            cmd_rx,
            pending: HashMap::new(),
            bound: None,
            negotiating: Arc::new(AtomicBool::new(false)),
            failed_handoffs: Arc::new(AtomicU32::new(0)),
            own_presence: (Show::Available, None, priority),
            next_id: 0,
            generation: 0,
            gate,
        };
        tokio::spawn(task.run());
        Ok(handle)
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

    /// Sets our own presence (kept and re-sent after reconnections).
    pub async fn set_presence(
        &self,
        show: Show,
        status: Option<String>,
        priority: i8,
    ) -> Result<()> {
        let presence = stanzas::own_presence(show, status.as_deref(), priority);
        let Some(presence) =
            own_presence_through_triggers(&self.registry, &self.profile, presence).await
        else {
            return Ok(());
        };
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
    pub async fn iq(
        &self,
        to: Option<Jid>,
        set: bool,
        payload: Element,
    ) -> Result<Option<Element>> {
        self.call(|reply| Command::Iq {
            to,
            set,
            payload,
            reply,
        })
        .await
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
    /// Incoming messages and presences, and session start/end, go through triggers
    /// and plugins in another task, in order: a handler may await an IQ of this very
    /// session, which would deadlock here.
    inbox: mpsc::UnboundedSender<Inbound>,
    registry: Arc<Registry>,
    /// `session.started` went out for the current stream.
    started: bool,
    own: BareJid,
    profile: String,
    creds: Arc<Credentials>,
    tls: Arc<rustls::ClientConfig>,
    config: SessionConfig,
    events: EventSender,
    state: watch::Sender<StateInfo>,
    shared: Arc<Shared>,
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
}

impl Task {
    fn reconnector(
        &self,
        status: mpsc::UnboundedSender<ConnStatus>,
    ) -> Box<dyn FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static> {
        let creds = self.creds.clone();
        let tls = self.tls.clone();
        let cfg = self.config.clone();
        let identity = connect::requested_jid(&creds, &cfg.resource);
        let negotiating = self.negotiating.clone();
        let failed_handoffs = self.failed_handoffs.clone();
        let profile = self.profile.clone();
        let gate = self.gate.clone();
        let mut first = true;
        Box::new(move |_location, slot| {
            let gate = gate.clone();
            let (creds, tls, cfg, identity, status, negotiating) = (
                creds.clone(),
                tls.clone(),
                cfg.clone(),
                identity.clone(),
                status.clone(),
                negotiating.clone(),
            );
            // The last connection we handed over never got bound nor resumed: its
            // negotiation failed. With Prosody this is a refused resumption after a
            // server restart, whose `<failed/>` (no `h`) xmpp-parsers 0.23 cannot
            // parse, so the worker would retry resuming forever. Offer the next
            // connection without stream management: the worker then drops its old
            // state and binds afresh.
            let without_sm = negotiating.swap(false, Ordering::SeqCst);
            let handoff_failures = if without_sm {
                tracing::info!(profile = %profile, "stream negotiation failed (refused resumption?); binding a fresh session without stream management");
                failed_handoffs.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                0
            };
            let profile = profile.clone();
            let budget = if std::mem::take(&mut first) {
                cfg.connect_attempts
            } else {
                cfg.reconnect_attempts
            };
            tokio::spawn(async move {
                // Connections that log in but then fail to bind, again and again, must
                // not make a tight loop: back off, and give up within the budget.
                if handoff_failures > 1 {
                    if budget != 0 && handoff_failures >= budget {
                        let _ = status.send(ConnStatus::Fatal(ConnectError::Protocol(
                            "the server keeps closing the stream before resource binding completes"
                                .into(),
                        )));
                        return;
                    }
                    tokio::time::sleep(connect::backoff(
                        handoff_failures - 1,
                        cfg.reconnect_max_delay,
                    ))
                    .await;
                }
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    let result = tokio::time::timeout(
                        cfg.connect_timeout,
                        connect::connect_once(
                            &creds,
                            identity.clone(),
                            tls.clone(),
                            connect::timeouts(),
                            cfg.limits,
                            gate.clone(),
                        ),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(ConnectError::Unreachable(format!(
                            "no answer within {} s",
                            cfg.connect_timeout.as_secs()
                        )))
                    });
                    let error = match result {
                        Ok(mut conn) => {
                            if without_sm {
                                conn.features.stream_management = None;
                            }
                            if creds.insecure {
                                tracing::warn!(
                                    profile = %profile,
                                    jid = %creds.jid,
                                    "TLS certificate verification disabled for this profile (insecure): \
                                     connected without checking the server's identity"
                                );
                            }
                            negotiating.store(true, Ordering::SeqCst);
                            // If the session is gone the slot is closed; nothing to do.
                            let _ = slot.send(conn);
                            return;
                        }
                        Err(e) => e,
                    };
                    if status.is_closed() {
                        return;
                    }
                    if error.is_fatal() || (budget != 0 && attempt >= budget) {
                        let _ = status.send(ConnStatus::Fatal(error));
                        return; // dropping the slot ends the stream worker
                    }
                    let delay = connect::backoff(attempt, cfg.reconnect_max_delay);
                    let _ = status.send(ConnStatus::Retrying { error, delay });
                    tokio::time::sleep(delay).await;
                    if status.is_closed() {
                        return;
                    }
                }
            });
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
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let exit = loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(ev) => self.on_stream_event(&stream, ev).await,
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
                    Some(c) => self.on_command(&stream, c).await,
                },
                _ = tick.tick() => self.expire_iqs(),
            }
        };
        self.fail_pending();
        if std::mem::take(&mut self.started) {
            let _ = self.inbox.send(Inbound::Ended);
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

    fn fail_pending(&mut self) {
        for (_, p) in self.pending.drain() {
            if let Waiter::Caller(tx) = p.waiter {
                let _ = tx.send(Err(Error::NotConnected(self.profile.clone())));
            }
        }
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
                Waiter::RosterFetch => self.roster_loaded(None),
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
        self.pending.insert(
            id,
            PendingIq {
                to,
                deadline: Instant::now() + self.config.iq_timeout,
                waiter,
            },
        );
        self.send(stream, Stanza::Iq(iq)).await;
    }

    async fn on_stream_event(&mut self, stream: &StanzaStream, ev: StreamEvent) {
        match ev {
            StreamEvent::Stream(Status::Reset { bound_jid, .. }) => {
                self.negotiating.store(false, Ordering::SeqCst);
                self.failed_handoffs.store(0, Ordering::SeqCst);
                tracing::info!(profile = %self.profile, jid = %bound_jid, "stream bound");
                self.generation += 1;
                if std::mem::take(&mut self.started) {
                    let _ = self.inbox.send(Inbound::Ended);
                }
                self.bound = Some(bound_jid);
                lock(&self.shared.presences).clear();
                // Roster first, then presence (RFC 6121 §2.2): contacts' presences
                // then arrive with a roster to put them in.
                let query: Element = Roster {
                    ver: None,
                    items: vec![],
                }
                .into();
                self.send_iq(stream, None, false, query, Waiter::RosterFetch)
                    .await;
                // Through `presence.send` in the inbox task (plugins add their
                // capabilities there): the session task never awaits plugin code.
                let (show, status, prio) = self.own_presence.clone();
                let p = stanzas::own_presence(show, status.as_deref(), prio);
                let _ = self.inbox.send(Inbound::OwnPresence(Box::new(p)));
            }
            StreamEvent::Stream(Status::Suspended) => {
                self.set_state(
                    ConnectionState::Connecting,
                    None,
                    "connection lost; reconnecting".into(),
                );
            }
            StreamEvent::Stream(Status::Resumed) => {
                self.negotiating.store(false, Ordering::SeqCst);
                self.failed_handoffs.store(0, Ordering::SeqCst);
                tracing::info!(profile = %self.profile, jid = %self.own, "stream resumed (XEP-0198)");
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
                if m.type_ == MessageType::Error {
                    let _ = self.inbox.send(Inbound::Bounce(Box::new(m), k));
                    return;
                }
                let _ = self
                    .inbox
                    .send(Inbound::Message(Box::new(m), self.bound.clone(), k));
            }
            StreamEvent::Stanza(Stanza::Presence(p)) => {
                let k = self.gate.claim(Kind::Presence, p.id.as_deref());
                if let Some(reason) = limits::refusal(&p.payloads) {
                    tracing::debug!(profile = %self.profile, from = ?p.from, reason, "refused presence dropped");
                    self.gate.done(k);
                    return;
                }
                let _ = self.inbox.send(Inbound::Presence(Box::new(p), k));
            }
        }
    }

    fn roster_loaded(&mut self, payload: Option<Element>) {
        match payload.map(Roster::try_from) {
            Some(Ok(roster)) => {
                let items: BTreeMap<String, RosterItem> = roster
                    .items
                    .iter()
                    .map(|i| {
                        let item = stanzas::roster_item(i);
                        (item.jid.clone(), item)
                    })
                    .collect();
                tracing::debug!(profile = %self.profile, items = items.len(), "roster fetched");
                *lock(&self.shared.roster) = items.clone();
                for item in items.into_values() {
                    self.emit(Event::Roster {
                        profile: self.profile.clone(),
                        item,
                    });
                }
            }
            Some(Err(e)) => {
                tracing::warn!(profile = %self.profile, error = %e, "unreadable roster")
            }
            None => tracing::warn!(profile = %self.profile, "roster fetch failed"),
        }
        self.set_state(ConnectionState::Connected, None, String::new());
        if !self.started {
            self.started = true;
            let jid = self
                .bound
                .as_ref()
                .map_or_else(|| self.own.to_string(), |j| j.to_string());
            let _ = self.inbox.send(Inbound::Started(jid));
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
            Waiter::RosterFetch => self.roster_loaded(answer.ok().flatten()),
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
                for i in &roster.items {
                    let item = stanzas::roster_item(i);
                    {
                        let mut r = lock(&self.shared.roster);
                        if item.subscription == "remove" {
                            r.remove(&item.jid);
                        } else {
                            r.insert(item.jid.clone(), item.clone());
                        }
                    }
                    self.emit(Event::Roster {
                        profile: self.profile.clone(),
                        item,
                    });
                }
                result(None)
            }
            IqRequest::Other => {
                if let Some(handler) =
                    self.registry
                        .iq_handler(!is_get, payload.name(), &payload.ns())
                {
                    self.answer_with_plugin(handler, from, id, payload, is_get);
                    return;
                }
                Iq::Error {
                    from: None,
                    to: from.clone(),
                    id: id.clone(),
                    error: stanzas::service_unavailable(),
                    payload: None,
                }
            }
        };
        self.send(stream, Stanza::Iq(answer)).await;
    }

    /// Runs a plugin's IQ handler in its own task and sends its answer through the
    /// command channel (the handler may itself await IQs of this session).
    fn answer_with_plugin(
        &self,
        handler: perch_plugin_api::IqHandler,
        from: Option<Jid>,
        id: String,
        payload: Element,
        is_get: bool,
    ) {
        let cmd = self.self_cmd.clone();
        let request = perch_plugin_api::IqRequest {
            profile: self.profile.clone(),
            from: from.clone(),
            set: !is_get,
            payload,
        };
        let (events, profile, name) = (
            self.events.clone(),
            self.profile.clone(),
            format!("{{{}}}{}", request.payload.ns(), request.payload.name()),
        );
        tokio::spawn(async move {
            use futures::FutureExt;
            let run = std::panic::AssertUnwindSafe(handler(request)).catch_unwind();
            let answer = match run.await {
                Ok(Ok(payload)) => Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload,
                },
                Ok(Err(error)) => Iq::Error {
                    from: None,
                    to: from,
                    id,
                    error,
                    payload: None,
                },
                Err(panic) => {
                    tracing::error!(%profile, request = %name, "an IQ handler panicked; answered internal-server-error");
                    crate::daemon::report_fault(
                        &events,
                        perch_plugin_api::HandlerFault {
                            plugin: String::new(),
                            point: format!("IQ handler {name}"),
                            what: perch_plugin_api::trigger::panic_message(panic.as_ref()),
                        },
                    );
                    Iq::Error {
                        from: None,
                        to: from,
                        id,
                        error: stanzas::internal_error(),
                        payload: None,
                    }
                }
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
                self.send_iq(stream, to, set, payload, Waiter::Caller(reply))
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

/// What the session task hands to its inbox task.
enum Inbound {
    /// With its wire index, for the acknowledgement once it is stored.
    Message(Box<Message>, Option<Jid>, u64),
    Presence(Box<Presence>, u64),
    /// A message sent back with an error (one of ours, bounced).
    Bounce(Box<Message>, u64),
    /// Our own availability, to send through `presence.send` (after a fresh bind).
    OwnPresence(Box<Presence>),
    /// The session is up, bound to this JID.
    Started(String),
    Ended,
}

/// How long the handlers of one trigger point may take on the inbox path. Past it
/// they are abandoned and the flow goes on without them: a hung plugin must not stop
/// the profile's messages, and the message it held is stored as it is. Generous on
/// purpose: a handler cut short may leave its own work undone (a cache not updated),
/// so only a handler that is stuck should ever reach it; a slow one is logged at
/// [`HANDLER_SLOW`].
const HANDLER_BUDGET: Duration = Duration::from_secs(60);

/// When a point's handlers are logged as slow (they go on).
const HANDLER_SLOW: Duration = Duration::from_secs(5);

/// Runs `P`'s handlers within [`HANDLER_BUDGET`]; past it, the flow proceeds.
async fn fire_bounded<P: perch_plugin_api::TriggerPoint>(
    registry: &Registry,
    profile: &str,
    args: &mut P::Args,
) -> perch_plugin_api::Outcome<P::Value> {
    let fire = registry.triggers.fire::<P>(args);
    tokio::pin!(fire);
    if let Ok(outcome) = tokio::time::timeout(HANDLER_SLOW, &mut fire).await {
        return outcome;
    }
    tracing::warn!(
        profile,
        point = P::NAME,
        slow_s = HANDLER_SLOW.as_secs(),
        "trigger handlers are slow; still waiting"
    );
    match tokio::time::timeout(HANDLER_BUDGET - HANDLER_SLOW, fire).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!(
                profile,
                point = P::NAME,
                budget_s = HANDLER_BUDGET.as_secs(),
                "trigger handlers ran past their time budget; abandoned, the flow goes on"
            );
            perch_plugin_api::Outcome::Proceed
        }
    }
}

/// Our availability through `presence.send` (plugins add capabilities); `None` when
/// a handler stopped it.
async fn own_presence_through_triggers(
    registry: &Registry,
    profile: &str,
    presence: Presence,
) -> Option<Presence> {
    let mut args = OutgoingPresence {
        profile: profile.to_owned(),
        presence,
    };
    if fire_bounded::<PresenceSend>(registry, profile, &mut args)
        .await
        .proceeds()
    {
        Some(args.presence)
    } else {
        tracing::debug!(profile, "own presence stopped by a presence.send handler");
        None
    }
}

/// Runs the triggers and plugin hooks for what comes in, in arrival order, then does
/// the core's part (store and signal a message, track a presence).
///
/// Its queue is unbounded on purpose: the session task must never wait for it (a
/// handler here may await an IQ of this very session, which the session task has to
/// read). What bounds it is the rate the server sends at; every handler runs within
/// [`HANDLER_BUDGET`], and a panic anywhere in one item is caught, logged and the
/// next item handled.
struct Inbox {
    profile: String,
    profile_id: i32,
    own: BareJid,
    history: History,
    events: EventSender,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    /// To send what plugins produced (our presence) through the session.
    cmd: mpsc::WeakSender<Command>,
    /// Told when an incoming stanza is handled (a message: stored).
    gate: Arc<AckGate>,
}

impl Inbox {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Inbound>) {
        use futures::FutureExt;
        while let Some(item) = rx.recv().await {
            let what = match &item {
                Inbound::Message(..) => "message",
                Inbound::Presence(..) => "presence",
                Inbound::Bounce(..) => "bounced message",
                Inbound::OwnPresence(_) => "own presence",
                Inbound::Started(_) => "session start",
                Inbound::Ended => "session end",
            };
            let handled = std::panic::AssertUnwindSafe(self.handle(item))
                .catch_unwind()
                .await;
            if let Err(payload) = handled {
                let panic = perch_plugin_api::trigger::panic_message(payload.as_ref());
                tracing::error!(profile = %self.profile, jid = %self.own, what, %panic, "handling an incoming item panicked; going on with the next");
            }
        }
    }

    async fn handle(&self, item: Inbound) {
        match item {
            Inbound::Message(m, bound, k) => {
                // Acknowledged to the server only once it is kept (or meant to be
                // dropped); a message whose storing failed is left to the server.
                if self.on_message(*m, bound).await {
                    self.gate.done(k);
                }
            }
            Inbound::Presence(p, k) => {
                self.on_presence(*p).await;
                self.gate.done(k);
            }
            Inbound::Bounce(m, k) => {
                if self.on_bounce(*m).await {
                    self.gate.done(k);
                }
            }
            Inbound::OwnPresence(p) => {
                if let Some(p) =
                    own_presence_through_triggers(&self.registry, &self.profile, *p).await
                    && let Some(cmd) = self.cmd.upgrade()
                {
                    let _ = cmd
                        .send(Command::Send {
                            stanza: Box::new(Stanza::Presence(p)),
                            reply: None,
                        })
                        .await;
                }
            }
            Inbound::Started(jid) => {
                let mut info = SessionInfo {
                    profile: self.profile.clone(),
                    jid,
                };
                fire_bounded::<SessionStarted>(&self.registry, &self.profile, &mut info).await;
                for p in self.registry.loaded() {
                    self.hook(
                        p.info().import_name,
                        p.session_started(self.profile.clone()),
                    )
                    .await;
                }
            }
            Inbound::Ended => {
                let mut info = SessionInfo {
                    profile: self.profile.clone(),
                    jid: self.own.to_string(),
                };
                fire_bounded::<SessionEnded>(&self.registry, &self.profile, &mut info).await;
                for p in self.registry.loaded() {
                    self.hook(p.info().import_name, p.session_ended(self.profile.clone()))
                        .await;
                }
            }
        }
    }

    /// A plugin's session hook, within the budget and with its panic caught.
    async fn hook(&self, plugin: &str, fut: futures::future::BoxFuture<'static, ()>) {
        use futures::FutureExt;
        let run = std::panic::AssertUnwindSafe(fut).catch_unwind();
        match tokio::time::timeout(HANDLER_BUDGET, run).await {
            Ok(Ok(())) => {}
            Ok(Err(payload)) => crate::daemon::report_fault(
                &self.events,
                perch_plugin_api::HandlerFault {
                    plugin: plugin.to_owned(),
                    point: "session hook".into(),
                    what: perch_plugin_api::trigger::panic_message(payload.as_ref()),
                },
            ),
            Err(_) => {
                tracing::error!(profile = %self.profile, plugin, "a session hook ran past its time budget; abandoned")
            }
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Handles an incoming message; `false` when it should have been kept and was
    /// not (its storing failed).
    async fn on_message(&self, m: Message, bound: Option<Jid>) -> bool {
        let mut args = IncomingMessage::live(self.profile.clone(), m);
        let outcome =
            fire_bounded::<MessageReceived>(&self.registry, &self.profile, &mut args).await;
        if !outcome.proceeds() {
            tracing::debug!(profile = %self.profile, ?outcome, "incoming message taken by a plugin");
            return true;
        }
        let IncomingMessage {
            message: m,
            source,
            direction,
            peer,
            ..
        } = args;
        let Some((mut record, stamped)) = self.record(&m, bound, direction, peer) else {
            return true;
        };
        if stamped {
            self.place_in_its_second(&mut record).await;
        }
        let from = record.from.clone();
        match self.history.store(self.profile_id, record).await {
            Ok(stored) => {
                let id = match stored {
                    Stored::New(message) => {
                        let id = message.id.clone();
                        self.emit(Event::Message {
                            profile: self.profile.clone(),
                            message,
                        });
                        id
                    }
                    Stored::Duplicate(message) => {
                        tracing::debug!(profile = %self.profile, %from, id = %message.id, ?source, "message seen before; not stored again");
                        message.id
                    }
                    Stored::Corrected {
                        correction,
                        corrected,
                    } => {
                        tracing::debug!(profile = %self.profile, %from, id = %corrected.id, "message corrected");
                        self.emit(Event::MessageUpdated {
                            profile: self.profile.clone(),
                            message: *corrected,
                        });
                        correction.id
                    }
                };
                let mut stored = StoredMessage {
                    profile: self.profile.clone(),
                    message: m,
                    id,
                    source,
                };
                fire_bounded::<MessageStored>(&self.registry, &self.profile, &mut stored).await;
                true
            }
            Err(e) => {
                // Nothing is signalled and no receipt goes out for what is not kept.
                tracing::error!(profile = %self.profile, jid = %self.own, %from, error = %e, "storing a received message failed; it is not signalled nor acknowledged");
                false
            }
        }
    }

    /// A delay stamp of whole seconds (Prosody's archive and offline storage give no
    /// fraction) says only "some time in that second". Catching up brings messages
    /// oldest first, each newer than what was stored before it in the conversation;
    /// filed at the second's start, one would land before messages of the same
    /// second that came live (measured in the outbox drill: an archived message
    /// listed before the live ones that preceded it). So within its second it goes
    /// after the newest message of the conversation.
    async fn place_in_its_second(&self, record: &mut NewMessage) {
        const SECOND: i64 = 1_000_000;
        if record.timestamp % SECOND != 0 {
            return;
        }
        match self.history.latest(self.profile_id, &record.peer).await {
            Ok(Some(last)) if last >= record.timestamp && last < record.timestamp + SECOND - 1 => {
                record.timestamp = last + 1;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(profile = %self.profile, error = %e, "reading the conversation's newest message failed; filed at its stamp");
            }
        }
    }

    /// What to store of an incoming message; `None` when it has no text.
    ///
    /// Direction: a message from our own account that is not a room's is one our
    /// other device sent (a carbon, or our archive); a plugin may say otherwise (a
    /// room's echo of our own message). Peer: the other side's bare JID; a room's,
    /// for group chat.
    ///
    /// With it: whether its timestamp is the sender's delay stamp (else the arrival
    /// time).
    fn record(
        &self,
        m: &Message,
        bound: Option<Jid>,
        direction: Option<Direction>,
        peer: Option<String>,
    ) -> Option<(NewMessage, bool)> {
        let body = stanzas::body(m)?;
        let from = m
            .from
            .clone()
            .unwrap_or_else(|| Jid::from(self.own.domain().to_owned()));
        let to = m.to.clone().or(bound);
        let groupchat = m.type_ == MessageType::Groupchat;
        let direction = direction.unwrap_or(if !groupchat && from.to_bare() == self.own {
            Direction::Out
        } else {
            Direction::In
        });
        let peer = peer.unwrap_or_else(|| match (direction, &to) {
            (Direction::Out, Some(to)) if !groupchat => to.to_bare().to_string(),
            _ => from.to_bare().to_string(),
        });
        // Whose archive ids count: the room's for its messages, else our account's.
        let by = if groupchat {
            from.to_bare().to_string()
        } else {
            self.own.to_string()
        };
        let now = crate::time::now_micros();
        let id = match &m.id {
            Some(Id(id)) if !id.is_empty() => id.clone(),
            _ => format!("{}{now}", crate::history::GENERATED_ID),
        };
        let (timestamp, stamped) = match stanzas::delay(m) {
            stanzas::Delay::None => (now, false),
            stanzas::Delay::Valid(t) if t <= now => (t, true),
            stanzas::Delay::Valid(t) => {
                tracing::info!(profile = %self.profile, %from, stamp = %crate::time::rfc3339(t), "a message stamped in the future is filed at its arrival time");
                (now, false)
            }
            stanzas::Delay::Invalid(stamp) => {
                tracing::info!(profile = %self.profile, %from, stamp = %crate::validate::excerpt(&stamp, 64), "a message with an unreadable or out-of-range delay stamp is filed at its arrival time");
                (now, false)
            }
        };
        let record = NewMessage {
            msg_id: id,
            timestamp,
            direction,
            peer,
            from: from.to_string(),
            to: to.map(|j| j.to_string()).unwrap_or_default(),
            kind: stanzas::message_type_name(&m.type_).to_owned(),
            body,
            // Ours, from another device or echoed by a room: the server has it.
            state: match direction {
                Direction::Out => MessageState::Acked,
                Direction::In => MessageState::Received,
            },
            origin_id: stanzas::origin_id(m),
            stanza_id: stanzas::stanza_id(m, &by).map(|id| (id, by)),
            replaces: stanzas::replace_id(m),
        };
        Some((record, stamped))
    }

    /// A message of ours sent back with an error: it is marked `failed` with the
    /// error, so the user learns it did not arrive. `false` when that could not be
    /// stored (the server keeps the bounce).
    async fn on_bounce(&self, m: Message) -> bool {
        let error = m
            .payloads
            .iter()
            .find(|p| p.name() == "error")
            .map(perch_plugin_api::StanzaError::from_element)
            .unwrap_or_else(|| perch_plugin_api::StanzaError::new("undefined-condition", None));
        let (Some(Id(id)), Some(from)) = (&m.id, &m.from) else {
            tracing::warn!(profile = %self.profile, from = ?m.from, %error, "an error message about nothing we sent");
            return true;
        };
        // Filed under the bare JID it went to, or (a room's private message) the
        // full one.
        let peers = [from.to_bare().to_string(), from.to_string()];
        match self
            .history
            .mark_failed(self.profile_id, &peers, id, &error)
            .await
        {
            Ok(Some(message)) => {
                tracing::info!(profile = %self.profile, %from, %id, %error, "a sent message came back with an error");
                self.emit(Event::MessageUpdated {
                    profile: self.profile.clone(),
                    message,
                });
                true
            }
            Ok(None) => {
                tracing::warn!(profile = %self.profile, %from, %id, %error, "an error message about nothing we sent");
                true
            }
            Err(e) => {
                tracing::error!(profile = %self.profile, %from, error = %e, "marking a bounced message failed");
                false
            }
        }
    }

    async fn on_presence(&self, p: Presence) {
        let mut args = IncomingPresence {
            profile: self.profile.clone(),
            presence: p,
        };
        let outcome =
            fire_bounded::<PresenceReceived>(&self.registry, &self.profile, &mut args).await;
        if !outcome.proceeds() {
            return;
        }
        match stanzas::read_presence(&args.presence) {
            PresenceUpdate::Contact(c) => {
                lock(&self.shared.presences).insert(c.jid.clone(), c.clone());
                self.emit(Event::Presence {
                    profile: self.profile.clone(),
                    presence: c,
                });
            }
            PresenceUpdate::Subscription(action, jid) => {
                tracing::info!(profile = %self.profile, %jid, action, "subscription presence");
                self.emit(Event::Subscription {
                    profile: self.profile.clone(),
                    action: action.to_owned(),
                    jid,
                });
            }
            PresenceUpdate::Ignore => {}
        }
    }
}
