//! Messages: corrections (XEP-0308) and chat states (XEP-0085).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCorrectArgs {
    /// The contact or room the message went to.
    pub to: String,
    /// The id of the message to correct.
    pub id: String,
    /// The corrected text.
    pub body: String,
    /// The message went to a room.
    #[serde(default)]
    pub groupchat: bool,
}

action!(
    /// Corrects one of our messages; answers the correction as stored (a history entry).
    MessageCorrect = "message_correct", MessageCorrectArgs => Value,
    "Corrects one of our messages: sends the new text, which replaces the old one in history (kept in extra.edits)",
    [
        req("to", Jid, "the contact or room the message went to"),
        req("id", String, "the id of the message to correct"),
        req("body", String, "the corrected text"),
        opt("groupchat", Boolean, "the message went to a room").or("false"),
    ],
    no_session
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatState {
    /// The contact.
    pub to: String,
    /// active, composing, paused, inactive or gone.
    pub state: String,
}

action!(
    /// Tells a contact our chat state; answers what was sent.
    ChatStateSend = "chat_state_send", ChatState => ChatState,
    "Tells a contact our chat state (composing, paused, active, inactive, gone)",
    [
        req("to", Jid, "the contact"),
        req("state", String, "active, composing, paused, inactive or gone"),
    ]
);
