//! The room a Perch plugin lives in.
//!
//! Why a crate of its own: plugins must never reach into the backend's internals, and
//! Cargo forbids dependency cycles, so everything a plugin may see — the types the core
//! hands around (connection states, messages, roster items, presences), the
//! [`Plugin`] trait, the [`Host`] handle, triggers and actions — lives here, and the backend depends on this
//! crate, never the other way round.
//!
//! The types here are plain data with serde: they are what the bridge serialises to
//! frontends, so their field names are part of the bridge contract (`doc/bridge.rst`).

use serde::{Deserialize, Serialize};

pub mod action;
pub mod db;
pub mod plugin;
pub mod points;
pub mod signal;
pub mod store;
mod store_pg;
mod store_sqlx;
pub mod tasks;
pub mod testing;
pub mod trigger;

// Defined in the codec, which stands below this crate (it depends on no Perch crate):
// re-exported under the paths plugins have always used.
pub use perch_codec::{ids, stanza_error};

pub use action::Serve;
pub use perch_codec::StanzaError;
pub use plugin::{
    BuildResult, Host, HostError, IqAnswer, IqHandler, IqRequest, JobHandle, JobSink, Plugin,
    PluginError, PluginFactory, PluginInfo,
};
pub use signal::Signals;
pub use store::{
    CheckedQuery, CheckedSql, PluginStore, SqlxTransaction, StoreDenied, StoreTransaction,
};
pub use tokio_xmpp::jid;
pub use tokio_xmpp::minidom;
pub use tokio_xmpp::parsers;
pub use trigger::{
    Flow, HandlerFault, Outcome, PluginPoint, PluginTriggers, PointOwner, TriggerError,
    TriggerPoint, Triggers,
};

/// The connection state of one profile's XMPP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// No session, or a session that gave up (see the error beside it).
    Disconnected,
    /// Connecting for the first time, or reconnecting after a lost connection.
    Connecting,
    /// Bound, initial presence sent, roster fetched.
    Connected,
}

impl ConnectionState {
    /// The stable name used on the bridge.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
        }
    }
}

/// Availability as carried by `<presence/>` (RFC 6121 `<show/>`), plus the two
/// presence types a frontend cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Show {
    Available,
    Away,
    Xa,
    Dnd,
    Chat,
    Unavailable,
}

impl Show {
    /// The stable name used on the bridge.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Away => "away",
            Self::Xa => "xa",
            Self::Dnd => "dnd",
            Self::Chat => "chat",
            Self::Unavailable => "unavailable",
        }
    }

    /// Parses a bridge/CLI value; `""` means available.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "available" => Self::Available,
            "away" => Self::Away,
            "xa" => Self::Xa,
            "dnd" => Self::Dnd,
            "chat" => Self::Chat,
            "unavailable" => Self::Unavailable,
            _ => return None,
        })
    }
}

/// Which way a stored message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

/// One message of the history, as stored and as sent to frontends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// The stanza id (ours for sent messages, the sender's or a generated one else).
    pub id: String,
    /// RFC 3339 UTC with microseconds.
    pub timestamp: String,
    pub direction: Direction,
    /// The other side: a bare JID, a room's bare JID for group chat, an occupant's
    /// full JID for a private message in a room.
    pub peer: String,
    pub from: String,
    pub to: String,
    /// `chat`, `normal`, `headline`, `groupchat`.
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
    /// Where the message is on its way (see [`MessageState`]).
    #[serde(default)]
    pub state: MessageState,
    /// The sender's own id for it (XEP-0359 `<origin-id/>`), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    /// The id an archive gave it (XEP-0359 `<stanza-id/>`: our account's archive,
    /// or the room's for group chat), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza_id: Option<String>,
    /// What plugins noted about the message (`delivered`, `edits`, …); `{}` when
    /// nothing.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How a conversation stands against our read position: what the core counts for
/// the read-state plugin (the history is the core's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationCount {
    /// The conversation (a contact's or a room's bare JID, as history files it).
    pub with: String,
    /// Incoming messages newer than both the read position and our newest message.
    pub unread: u64,
    /// The newest listed message of the conversation, if any.
    pub newest: Option<HistoryMessage>,
}

/// Where a stored message is on its way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    /// Came to us (live, from an archive, or as a carbon of another device's).
    #[default]
    Received,
    /// In the outbox: stored, not yet handed to the server (the profile is offline,
    /// or it is next in line).
    Queued,
    /// Written to the stream; the server has not confirmed it yet.
    Sent,
    /// The server confirmed it has it (it answered a later request on the same stream).
    Acked,
    /// Taken out of the outbox by the user before it went out.
    Cancelled,
    /// The server or the recipient sent it back with an error (in `extra.error`:
    /// `{"condition", "text"}`).
    Failed,
}

impl MessageState {
    /// The stable name used on the bridge and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Acked => "acked",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => Self::Received,
            "queued" => Self::Queued,
            "sent" => Self::Sent,
            "acked" => Self::Acked,
            "cancelled" => Self::Cancelled,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// How an incoming message reached us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Live, addressed to this session.
    #[default]
    Live,
    /// A copy of what another device of the account sent or received (XEP-0280).
    Carbon,
    /// Fetched from an archive (XEP-0313): nothing is owed to its sender (no receipt).
    Archive,
}

/// One roster entry (RFC 6121).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterItem {
    pub jid: String,
    pub name: Option<String>,
    /// `none`, `to`, `from`, `both` (`remove` only in change notifications).
    pub subscription: String,
    /// A subscription request of ours is pending.
    pub ask: bool,
    pub groups: Vec<String>,
}

/// The last presence seen from one full JID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPresence {
    pub jid: String,
    pub show: Show,
    pub status: Option<String>,
    pub priority: i8,
}
