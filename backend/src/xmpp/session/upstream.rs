//! What a session hands to the layer above it, and what that layer may do back.
//!
//! Why: the session task owns the stream and nothing else. What comes in goes
//! through the plugins' trigger points and is stored by the daemon's core
//! (`crate::receive`), which sits above this layer; the session must not name it
//! (lower layers never call upper ones), and must never await it (a handler may
//! await an IQ of this very session, which only the session task can read). So the
//! session pushes [`Incoming`] items on an unbounded channel the layer above reads
//! in arrival order, asks an [`IqHandlers`] it was given whether an IQ request is
//! claimed (a synchronous lookup; the answer is computed in a task of its own), and
//! gives the reader a [`Link`] to send back what it produced.

use std::sync::Arc;

use futures::future::BoxFuture;
use perch_plugin_api::ContactPresence;
use perch_plugin_api::jid::Jid;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::{message::Message, presence::Presence, stanza_error::StanzaError};

use super::{Command, Shared, lock};
use crate::xmpp::ack::AckGate;

/// An incoming stanza or a change of the session, in the order they happened.
pub enum Incoming {
    /// A message, with the full JID the session was bound to when it came.
    Message {
        message: Box<Message>,
        bound: Option<Jid>,
        ack: Ack,
    },
    Presence {
        presence: Box<Presence>,
        ack: Ack,
    },
    /// A message sent back with an error (one of ours, bounced).
    Bounce {
        message: Box<Message>,
        ack: Ack,
    },
    /// Our own availability, to send through `presence.send` and then
    /// [`Link::send`] (after a fresh bind).
    OwnPresence(Box<Presence>),
    /// The session is up, bound to this JID.
    Started(String),
    /// The session's stream is gone (a fresh bind follows, or the end).
    Ended,
}

impl Incoming {
    /// What it is, for logs.
    pub fn what(&self) -> &'static str {
        match self {
            Incoming::Message { .. } => "message",
            Incoming::Presence { .. } => "presence",
            Incoming::Bounce { .. } => "bounced message",
            Incoming::OwnPresence(_) => "own presence",
            Incoming::Started(_) => "session start",
            Incoming::Ended => "session end",
        }
    }
}

/// The XEP-0198 acknowledgement of one incoming stanza (`xmpp/ack.rs`): the server
/// hears it was received only once [`Ack::handled`] is called — for a message,
/// once it is stored. Dropped without that, the stanza stays the server's.
pub struct Ack {
    gate: Arc<AckGate>,
    index: u64,
}

impl Ack {
    pub(super) fn new(gate: Arc<AckGate>, index: u64) -> Self {
        Self { gate, index }
    }

    /// The stanza is handled: it may count towards the `h` the server is sent.
    pub fn handled(self) {
        self.gate.done(self.index);
    }
}

/// An IQ request the session does not answer itself.
pub struct IncomingIq {
    pub from: Option<Jid>,
    /// `set` (else `get`).
    pub set: bool,
    pub payload: Element,
}

/// The answer to an [`IncomingIq`]: a payload for a `result`, or an `error`.
pub type IqAnswer = Result<Option<Element>, StanzaError>;

/// Who answers the IQ requests the session does not handle itself.
pub trait IqHandlers: Send + Sync + 'static {
    /// The answer of whoever claims `iq`, as a future the session runs in a task of
    /// its own and that must not panic; `None` when nobody does (the session
    /// answers `service-unavailable`). Called from the session task: a lookup, it
    /// must not block.
    fn claim(&self, iq: &IncomingIq) -> Option<BoxFuture<'static, IqAnswer>>;
}

/// What the session needs of the layer above, given at [`super::Session::spawn`].
pub struct Upstream {
    /// Unbounded on purpose: the session task must never wait for its reader.
    pub inbox: mpsc::UnboundedSender<Incoming>,
    pub iq: Arc<dyn IqHandlers>,
}

/// What the reader of a session's [`Incoming`] items may do back to it. Holds the
/// session weakly: the session ends when its last [`super::Session`] handle is gone.
#[derive(Clone)]
pub struct Link {
    pub(super) cmd: mpsc::WeakSender<Command>,
    pub(super) shared: Arc<Shared>,
}

impl Link {
    /// Sends a stanza on the session's stream, if it still runs (no reply awaited).
    pub async fn send(&self, stanza: Stanza) {
        if let Some(cmd) = self.cmd.upgrade() {
            let _ = cmd
                .send(Command::Send {
                    stanza: Box::new(stanza),
                    reply: None,
                })
                .await;
        }
    }

    /// A contact's presence, as [`super::Session::presences`] lists it.
    pub fn track_presence(&self, c: ContactPresence) {
        lock(&self.shared.presences).insert(c.jid.clone(), c);
    }
}
