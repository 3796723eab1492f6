//! Messages: corrections (XEP-0308), chat states (XEP-0085), and the message
//! actions: reactions (XEP-0444), replies (XEP-0461), retraction (XEP-0424) and
//! moderation (XEP-0425).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action;
use crate::signals::signal;

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

// Message actions: reactions (XEP-0444), replies (XEP-0461), retraction (XEP-0424),
// moderation (XEP-0425). A message is named by its id in history (`id`, or its
// origin-id or, in a room, its stanza-id): the plugin puts on the wire the id the
// XEPs ask for (a chat: the origin-id; a room: the room's stanza-id).

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReactArgs {
    /// The contact or room of the conversation.
    pub to: String,
    /// The message reacted to.
    pub id: String,
    /// Our whole set of reactions to it (emojis); empty takes ours back.
    #[serde(default)]
    pub reactions: Vec<String>,
    /// A room's message.
    #[serde(default)]
    pub groupchat: bool,
}

action!(
    /// Sends our reactions to a message (XEP-0444); answers the reaction as stored
    /// (its target shows them in `extra.reactions`).
    MessageReact = "message_react", MessageReactArgs => Value,
    "Reacts to a message (XEP-0444): our whole set of emojis, replacing our earlier one (empty: none); history shows them in the message's extra.reactions",
    [
        req("to", Jid, "the contact or room of the conversation"),
        req("id", String, "the message's id (history's id, origin-id or stanza-id)"),
        opt("reactions", List, "our reactions (emojis); empty takes ours back").or("[]"),
        opt("groupchat", Boolean, "the message is a room's").or("false"),
    ],
    no_session
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReplyArgs {
    /// The contact or room of the conversation.
    pub to: String,
    /// The message replied to.
    pub id: String,
    /// Our reply's text.
    pub body: String,
    /// A room's message.
    #[serde(default)]
    pub groupchat: bool,
}

action!(
    /// Replies to a message (XEP-0461, its text quoted as a XEP-0428 fallback);
    /// answers the reply as stored (`extra.reply_to` = {id, to}).
    MessageReply = "message_reply", MessageReplyArgs => Value,
    "Replies to a message (XEP-0461): the reply names it and quotes it for old clients (XEP-0428 fallback); history keeps extra.reply_to",
    [
        req("to", Jid, "the contact or room of the conversation"),
        req("id", String, "the message's id (history's id, origin-id or stanza-id)"),
        req("body", String, "the reply's text"),
        opt("groupchat", Boolean, "the message is a room's").or("false"),
    ],
    no_session
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRetractArgs {
    /// The contact or room the message went to.
    pub to: String,
    /// Our message to retract.
    pub id: String,
    /// A message to a room.
    #[serde(default)]
    pub groupchat: bool,
}

action!(
    /// Retracts one of our messages (XEP-0424); answers the retraction as stored
    /// (the message's text is gone from history, `extra.retracted` set).
    MessageRetract = "message_retract", MessageRetractArgs => Value,
    "Retracts one of our messages (XEP-0424): receivers that know retraction remove it; history drops its text and sets extra.retracted",
    [
        req("to", Jid, "the contact or room the message went to"),
        req("id", String, "our message's id (history's id, origin-id or stanza-id)"),
        opt("groupchat", Boolean, "the message went to a room").or("false"),
    ],
    no_session
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MucModerateArgs {
    /// The room's bare JID.
    pub room: String,
    /// The message to take back for everyone.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

action!(
    /// Asks a room to retract an occupant's message for everyone (XEP-0425; we must
    /// be a moderator there). The room's retraction, when it comes, marks the
    /// message `extra.moderated` in history.
    MucModerate = "muc_moderate", MucModerateArgs => crate::Empty,
    "Asks a room to retract a message for everyone (XEP-0425, moderators only); history marks it extra.moderated when the room confirms",
    [
        req("room", Jid, "the room's bare JID (room@service)"),
        req("id", String, "the message's id (history's id, origin-id or stanza-id)"),
        opt("reason", String, "why"),
    ]
);

// Read state: chat markers (XEP-0333) and our read position shared with our other
// devices (XEP-0490).

/// A conversation's read state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unread {
    /// The conversation: a contact's or a room's bare JID.
    pub with: String,
    /// Incoming messages after the read position (and after our own newest).
    pub unread: u64,
    /// The history id of the last message read, when one was marked.
    pub last_read_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReadArgs {
    /// The conversation: a contact's or a room's bare JID.
    pub with: String,
    /// The message read up to (history's id, origin-id or stanza-id); default:
    /// the newest.
    #[serde(default)]
    pub id: Option<String>,
}

action!(
    /// Marks a conversation read up to a message: stored, a displayed marker sent to
    /// the contact (XEP-0333), our other devices told (XEP-0490); answers the
    /// conversation's read state.
    MessageRead = "message_read", MessageReadArgs => Unread,
    "Marks a conversation read up to a message (default: the newest): tells the contact (XEP-0333 displayed) and our other devices (XEP-0490)",
    [
        req("with", Jid, "the contact or room of the conversation"),
        opt("id", String, "the message read up to (history's id, origin-id or stanza-id); default: the newest"),
    ],
    no_session
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageUnreadArgs {
    /// One conversation; default: every one.
    #[serde(default)]
    pub with: Option<String>,
}

action!(
    /// Unread counts per conversation.
    MessageUnread = "message_unread", MessageUnreadArgs => Vec<Unread>,
    "Unread counts: per conversation, the incoming messages after our read position and our own newest message",
    [
        opt("with", Jid, "one conversation; default: every one"),
    ],
    no_session
);

signal!(
    /// A conversation's read position moved: marked read here, or on one of our other
    /// devices (XEP-0490).
    ReadChanged = "read_changed", Unread,
    "a conversation's read position moved (here or on another of our devices): {\"with\", \"unread\", \"last_read_id\"}"
);
