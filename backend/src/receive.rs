//! The receive pipeline: what a session hands up goes through the plugins' trigger
//! points, is stored, then signalled.
//!
//! Why here and not in the session: the session (`xmpp` layer) owns the stream and
//! must know neither plugins nor the daemon (lower layers never call upper ones,
//! `doc/architecture.rst`). It pushes [`Incoming`] items on an unbounded channel;
//! [`Inbox`] reads them in one task per session, in arrival order, and acknowledges
//! each to the server ([`crate::xmpp::session::Ack`]) only once it is handled — a
//! message once it is stored. IQ requests plugins claimed are answered through
//! [`PluginIqs`], in a task of their own: a handler may await an IQ of its own
//! session, which the session task must stay free to read.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, MessageStored, OutgoingPresence,
    PresenceReceived, PresenceSend, SessionEnded, SessionInfo, SessionStarted, StoredMessage,
};
use perch_plugin_api::{Direction, HandlerFault, MessageState};
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::{
    message::{Id, Message, MessageType},
    presence::Presence,
};

use crate::events::{Event, EventSender};
use crate::history::{History, NewMessage, Stored};
use crate::plugins::{Registry, report_fault};
use crate::xmpp::session::{Incoming, IncomingIq, IqAnswer, IqHandlers, Link, Upstream};
use crate::xmpp::stanzas::{self, PresenceUpdate};

/// How long the handlers of one trigger point may take on the inbox path. Past it
/// they are abandoned and the flow goes on without them: a hung plugin must not stop
/// the profile's messages, and the message it held is stored as it is. Generous on
/// purpose: a handler cut short may leave its own work undone (a cache not updated),
/// so only a handler that is stuck should ever reach it; a slow one is logged at
/// [`HANDLER_SLOW`].
const HANDLER_BUDGET: Duration = Duration::from_secs(60);

/// When a point's handlers are logged as slow (they go on).
const HANDLER_SLOW: Duration = Duration::from_secs(5);

/// How long storing a received message waits for a database server that cannot be
/// reached (restarting) before giving it up: meanwhile the inbox holds the messages
/// after it, and the server keeps them unacknowledged (XEP-0198).
const STORE_PATIENCE: Duration = Duration::from_secs(120);

/// Runs `P`'s handlers within [`HANDLER_BUDGET`]; past it, the flow proceeds.
pub async fn fire_bounded<P: perch_plugin_api::TriggerPoint>(
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

/// A presence of ours through `presence.send`: our availability (plugins add
/// capabilities) or a subscription request (a nickname, XEP-0172); `None` when a
/// handler stopped it.
pub async fn presence_through_triggers(
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
        tracing::debug!(profile, "presence stopped by a presence.send handler");
        None
    }
}

/// What a new session hands up to: the channel to its [`Inbox`] (read by
/// [`Inbox::spawn`] once the session is there) and the plugins' IQ handlers.
pub fn upstream(
    registry: Arc<Registry>,
    events: EventSender,
    profile: &str,
) -> (Upstream, mpsc::UnboundedReceiver<Incoming>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let iq = PluginIqs {
        registry,
        events,
        profile: profile.to_owned(),
    };
    (
        Upstream {
            inbox: tx,
            iq: Arc::new(iq),
        },
        rx,
    )
}

/// The IQ requests plugins claimed ([`Registry::iq_handler`]), for one profile's
/// session. A handler's panic is caught: logged, signalled as `handler_fault`, and
/// answered `internal-server-error`.
struct PluginIqs {
    registry: Arc<Registry>,
    events: EventSender,
    profile: String,
}

impl IqHandlers for PluginIqs {
    fn claim(&self, iq: &IncomingIq) -> Option<BoxFuture<'static, IqAnswer>> {
        let handler = self
            .registry
            .iq_handler(iq.set, iq.payload.name(), &iq.payload.ns())?;
        let name = format!("{{{}}}{}", iq.payload.ns(), iq.payload.name());
        let request = perch_plugin_api::IqRequest {
            profile: self.profile.clone(),
            from: iq.from.clone(),
            set: iq.set,
            payload: iq.payload.clone(),
        };
        let (events, profile) = (self.events.clone(), self.profile.clone());
        Some(
            async move {
            match std::panic::AssertUnwindSafe(handler(request))
                .catch_unwind()
                .await
            {
                Ok(answer) => answer,
                Err(panic) => {
                    tracing::error!(%profile, request = %name, "an IQ handler panicked; answered internal-server-error");
                    report_fault(
                        &events,
                        HandlerFault {
                            plugin: String::new(),
                            point: format!("IQ handler {name}"),
                            what: perch_plugin_api::trigger::panic_message(panic.as_ref()),
                        },
                    );
                    Err(stanzas::internal_error())
                }
            }
        }
        .boxed(),
        )
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
pub struct Inbox {
    pub profile: String,
    pub profile_id: i32,
    pub own: BareJid,
    pub history: History,
    pub events: EventSender,
    pub registry: Arc<Registry>,
    /// Back to the session: our presence to send, contacts' presences to track.
    pub link: Link,
}

impl Inbox {
    /// Reads the session's items in a task of its own until the session is gone.
    pub fn spawn(self, rx: mpsc::UnboundedReceiver<Incoming>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(rx))
    }

    async fn run(self, mut rx: mpsc::UnboundedReceiver<Incoming>) {
        while let Some(item) = rx.recv().await {
            let what = item.what();
            // Boxed: an idle inbox, waiting for the next item, keeps only this loop.
            let handled = std::panic::AssertUnwindSafe(Box::pin(self.handle(item)))
                .catch_unwind()
                .await;
            if let Err(payload) = handled {
                let panic = perch_plugin_api::trigger::panic_message(payload.as_ref());
                tracing::error!(profile = %self.profile, jid = %self.own, what, %panic, "handling an incoming item panicked; going on with the next");
            }
        }
    }

    async fn handle(&self, item: Incoming) {
        match item {
            Incoming::Message {
                message,
                bound,
                ack,
            } => {
                // Acknowledged to the server only once it is kept (or meant to be
                // dropped); a message whose storing failed is left to the server.
                if self.on_message(*message, bound).await {
                    ack.handled();
                }
            }
            Incoming::Presence { presence, ack } => {
                self.on_presence(*presence).await;
                ack.handled();
            }
            Incoming::Bounce { message, ack } => {
                if self.on_bounce(*message).await {
                    ack.handled();
                }
            }
            Incoming::OwnPresence(p) => {
                if let Some(p) = presence_through_triggers(&self.registry, &self.profile, *p).await
                {
                    self.link.send(Stanza::Presence(p)).await;
                }
            }
            Incoming::Started(jid) => self.session_started(jid).await,
            Incoming::Ended => self.session_ended().await,
        }
    }

    async fn session_started(&self, jid: String) {
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

    async fn session_ended(&self) {
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

    /// A plugin's session hook, within the budget and with its panic caught.
    async fn hook(&self, plugin: &str, fut: BoxFuture<'static, ()>) {
        let run = std::panic::AssertUnwindSafe(fut).catch_unwind();
        match tokio::time::timeout(HANDLER_BUDGET, run).await {
            Ok(Ok(())) => {}
            Ok(Err(payload)) => report_fault(
                &self.events,
                HandlerFault {
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
            extra,
            ..
        } = args;
        let Some((mut record, stamped)) = self.record(&m, bound, direction, peer) else {
            return true;
        };
        record.extra.extend(extra);
        if stamped {
            self.place_in_its_second(&mut record).await;
        }
        let from = record.from.clone();
        let stored = self
            .history
            .store_waiting(self.profile_id, record, STORE_PATIENCE)
            .await;
        match stored {
            Ok(Stored::Ignored(why)) => {
                // Bad input from the network: kept out, and the server may forget it.
                tracing::info!(profile = %self.profile, %from, %why, "a message action was ignored");
                true
            }
            Ok(stored) => {
                let id = self.signal_stored(stored, &from, &source);
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

    /// Signals what storing a received message did; its id in the history.
    fn signal_stored(&self, stored: Stored, from: &str, source: &impl std::fmt::Debug) -> String {
        match stored {
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
            Stored::Applied { action, target } => {
                tracing::debug!(profile = %self.profile, %from, id = %target.id, "message action applied");
                self.emit(Event::MessageUpdated {
                    profile: self.profile.clone(),
                    message: *target,
                });
                action.id
            }
            Stored::Ignored(_) => String::new(),
        }
    }

    /// A delay stamp of whole seconds (Prosody's archive and offline storage give no
    /// fraction) says only "some time in that second". Catching up brings messages
    /// oldest first, each newer than what was stored before it in the conversation;
    /// filed at the second's start, one would land before messages of the same
    /// second that came live (measured in the outbox drill: an archived message
    /// listed before the live ones that preceded it). So within its second it goes
    /// after the newest message of the conversation filed in that second. Not after
    /// the newest of all: messages sent after it may come live while the catch-up
    /// runs (the outbox drill again, once the sender re-sent at once after
    /// reconnecting), and it would then stay at the second's start, before the
    /// live messages of its own second.
    async fn place_in_its_second(&self, record: &mut NewMessage) {
        const SECOND: i64 = 1_000_000;
        if record.timestamp % SECOND != 0 {
            return;
        }
        let second = record.timestamp..record.timestamp + SECOND - 1;
        match self
            .history
            .latest(self.profile_id, &record.peer, second)
            .await
        {
            Ok(Some(last)) => {
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
        let content = stanzas::content(m)?;
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
        let (timestamp, stamped) = self.timestamp(m, &from, now);
        let record = NewMessage {
            msg_id: id,
            timestamp,
            direction,
            peer,
            from: from.to_string(),
            to: to.map(|j| j.to_string()).unwrap_or_default(),
            kind: stanzas::message_type_name(&m.type_).to_owned(),
            body: content.body,
            // Ours, from another device or echoed by a room: the server has it.
            state: match direction {
                Direction::Out => MessageState::Acked,
                Direction::In => MessageState::Received,
            },
            origin_id: stanzas::origin_id(m),
            stanza_id: stanzas::stanza_id(m, &by).map(|id| (id, by)),
            replaces: stanzas::replace_id(m),
            extra: content.extra,
            apply: content.apply,
        };
        Some((record, stamped))
    }

    /// When a message is filed: its delay stamp when it has a valid one not in the
    /// future (then `true`), else `now`, its arrival.
    fn timestamp(&self, m: &Message, from: &Jid, now: i64) -> (i64, bool) {
        match stanzas::delay(m) {
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
        }
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
                self.link.track_presence(c.clone());
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
