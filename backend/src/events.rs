//! What happens in sessions, as the rest of the daemon hears it.
//!
//! Sessions know nothing of D-Bus: they publish [`Event`]s on a broadcast channel and
//! the bridge turns them into signals. This keeps the dependency direction one way and
//! lets later plugins listen too.

use perch_plugin_api::{ConnectionState, ContactPresence, HistoryMessage, RosterItem};

#[derive(Debug, Clone)]
pub enum Event {
    ConnectionState {
        profile: String,
        state: ConnectionState,
        jid: String,
        reason: String,
    },
    /// A message stored in history (either direction).
    Message {
        profile: String,
        message: HistoryMessage,
    },
    /// A stored message changed: its outbox state, its text (a correction), or
    /// what a message action did to it (reactions, a retraction, a moderation).
    MessageUpdated {
        profile: String,
        message: HistoryMessage,
    },
    Presence {
        profile: String,
        presence: ContactPresence,
    },
    Roster {
        profile: String,
        item: RosterItem,
    },
    Subscription {
        profile: String,
        action: String,
        jid: String,
    },
    /// A signal a plugin declared and emitted.
    Plugin {
        plugin: String,
        name: String,
        profile: String,
        data: serde_json::Value,
    },
    /// A job started, progressed, finished or failed.
    Job {
        phase: JobPhase,
        id: String,
        profile: String,
        data: serde_json::Value,
    },
}

/// Which progress signal a job event becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    Started,
    Progress,
    Finished,
    Error,
}

impl Event {
    pub fn profile(&self) -> &str {
        match self {
            Self::ConnectionState { profile, .. }
            | Self::Message { profile, .. }
            | Self::MessageUpdated { profile, .. }
            | Self::Presence { profile, .. }
            | Self::Roster { profile, .. }
            | Self::Subscription { profile, .. }
            | Self::Plugin { profile, .. }
            | Self::Job { profile, .. } => profile,
        }
    }
}

pub type EventSender = tokio::sync::broadcast::Sender<Event>;
