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
    MessageCorrect = "message_correct", MessageCorrectArgs => Value
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
    ChatStateSend = "chat_state_send", ChatState => ChatState
);
