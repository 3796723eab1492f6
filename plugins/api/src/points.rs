//! The core's trigger points. Plugins add their own beside these (the pubsub plugin
//! declares its items-request and event points in its own module).
//!
//! Only the core fires the `message.*`, `presence.*` and `session.*` points: they are
//! declared by the backend ([`declare_core`]) before any plugin is built, and they do
//! not implement [`PluginPoint`]. `room.joined` lives here because two plugins share
//! it, but it is a plugin's point: the group chat plugin declares and fires it.
//!
//! Contracts (also in `doc/plugins.rst`):
//!
//! | point | fires | Stop / StopWith |
//! |---|---|---|
//! | `message.send` | before a message is sent; handlers may edit it | not sent (`StopWith(id)`: reported sent with that id) |
//! | `message.received` | an incoming message, before it is stored and signalled | dropped: not stored, no signal |
//! | `message.stored` | an incoming message is in the database (only then may a plugin tell its sender it arrived) | nothing (notification) |
//! | `presence.send` | our own availability presence is about to go out (initial, set, after reconnection); handlers may add elements; must not await this session | not sent |
//! | `presence.received` | an incoming presence, before the core reads it | ignored by the core |
//! | `session.started` | a session is up | nothing (notification) |
//! | `session.ended` | a session ended | nothing (notification) |
//! | `room.joined` | we are in a group chat room (joined or rejoined); fired by the group chat plugin | nothing (notification) |
//! | `room.occupants` | a plugin asks who is in a room we are in; the group chat plugin answers | `StopWith(occupants)`: the answer (`Proceed`: not a room we have) |

use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;

use crate::trigger::{PluginPoint, TriggerError, TriggerPoint, Triggers};

/// Arguments of `message.send`.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub profile: String,
    /// The stanza as it will be sent (its `id` is set; keep it).
    pub message: Message,
    /// Whom it is filed under in history; `None`: the recipient's bare JID. A group
    /// chat plugin sets an occupant's full JID for a private message.
    pub peer: Option<String>,
    /// The text history keeps, when it is not the stanza's body: an encryption
    /// plugin sends ciphertext with a fallback body and keeps the plaintext here.
    /// `None`: the stanza's body.
    pub history_body: Option<String>,
    /// Keys the stored message's `extra` starts with (`encryption`: the namespace
    /// it was encrypted with).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Why a handler that stopped the message refused it: the caller gets this
    /// error instead of `Cancelled` (an encryption plugin's `NotEncrypted`, which
    /// names why nothing was sent).
    pub refused: Option<crate::HostError>,
}

impl OutgoingMessage {
    /// A message about to be sent, nothing else said about it.
    pub fn new(profile: String, message: Message) -> Self {
        Self {
            profile,
            message,
            peer: None,
            history_body: None,
            extra: serde_json::Map::new(),
            refused: None,
        }
    }
}

/// `message.send`: a message is about to be sent.
#[derive(Debug)]
pub struct MessageSend;
impl TriggerPoint for MessageSend {
    const NAME: &'static str = "message.send";
    const DOC: &'static str = "a message is about to be sent; handlers may edit it. Stop: not sent \
                               (the caller gets an error); StopWith(id): reported as sent with that id";
    type Args = OutgoingMessage;
    type Value = String;
}

/// Arguments of `message.received`.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub profile: String,
    pub message: Message,
    /// How it reached us; a plugin that unwraps a carbon or an archive result sets it.
    pub source: crate::Source,
    /// Which way it went; `None`: the core decides (from our own account: out).
    /// A group chat plugin sets it for the room's echo of our own messages.
    pub direction: Option<crate::Direction>,
    /// Whom it is filed under; `None`: the core decides (the other side's bare JID).
    /// A group chat plugin sets an occupant's full JID for a private message.
    pub peer: Option<String>,
    /// Keys the stored message's `extra` starts with: an encryption plugin that
    /// replaced the body with the plaintext sets `encryption` (the namespace), or
    /// `decryption_error` when it could not decrypt.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl IncomingMessage {
    /// A live message, everything else left to the core.
    pub fn live(profile: String, message: Message) -> Self {
        Self {
            profile,
            message,
            source: crate::Source::Live,
            direction: None,
            peer: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// `message.received`: a message arrived.
#[derive(Debug)]
pub struct MessageReceived;
impl TriggerPoint for MessageReceived {
    const NAME: &'static str = "message.received";
    const DOC: &'static str = "a message arrived, before it is stored and signalled. Stop/StopWith: \
                               dropped (not stored, no signal)";
    type Args = IncomingMessage;
    type Value = ();
}

/// Arguments of `message.stored`.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub profile: String,
    /// The stanza, as `message.received` handlers left it.
    pub message: Message,
    /// Its id in history.
    pub id: String,
    /// How it reached us (only a live message is owed a receipt).
    pub source: crate::Source,
}

/// `message.stored`: an incoming message is stored.
#[derive(Debug)]
pub struct MessageStored;
impl TriggerPoint for MessageStored {
    const NAME: &'static str = "message.stored";
    const DOC: &'static str = "an incoming message is in the database; what acknowledges it to its \
                               sender (a delivery receipt) goes here, never before. Notification: \
                               stopping only skips later handlers";
    type Args = StoredMessage;
    type Value = ();
}

/// Arguments of `presence.send`.
#[derive(Debug, Clone)]
pub struct OutgoingPresence {
    pub profile: String,
    pub presence: Presence,
}

/// `presence.send`: our availability is about to be broadcast, or a subscription
/// request of ours is about to be sent (its type says which).
#[derive(Debug)]
pub struct PresenceSend;
impl TriggerPoint for PresenceSend {
    const NAME: &'static str = "presence.send";
    const DOC: &'static str = "our own availability presence is about to be sent (initial, changed, \
                               re-sent after a reconnection), or a subscription request of ours \
                               (type subscribe); handlers may add elements (entity capabilities, \
                               a nickname) and must not wait on this session. Stop: not sent";
    type Args = OutgoingPresence;
    type Value = ();
}

/// Arguments of `presence.received`.
#[derive(Debug, Clone)]
pub struct IncomingPresence {
    pub profile: String,
    pub presence: Presence,
}

/// `presence.received`: a presence arrived.
#[derive(Debug)]
pub struct PresenceReceived;
impl TriggerPoint for PresenceReceived {
    const NAME: &'static str = "presence.received";
    const DOC: &'static str = "a presence arrived, before the core reads it. Stop/StopWith: the core \
                               ignores it (no state change, no signal)";
    type Args = IncomingPresence;
    type Value = ();
}

/// Arguments of the session points.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub profile: String,
    /// The bound JID (started) or the account's JID (ended).
    pub jid: String,
}

/// `session.started`: a profile's session is up.
#[derive(Debug)]
pub struct SessionStarted;
impl TriggerPoint for SessionStarted {
    const NAME: &'static str = "session.started";
    const DOC: &'static str = "a session is up (bound, roster fetched, presence sent); notification: \
                               stopping only skips later handlers";
    type Args = SessionInfo;
    type Value = ();
}

/// `session.ended`: a profile's session ended.
#[derive(Debug)]
pub struct SessionEnded;
impl TriggerPoint for SessionEnded {
    const NAME: &'static str = "session.ended";
    const DOC: &'static str = "a session ended (disconnected or given up); notification: stopping \
                               only skips later handlers";
    type Args = SessionInfo;
    type Value = ();
}

/// Arguments of `room.joined`.
#[derive(Debug, Clone)]
pub struct RoomJoined {
    pub profile: String,
    /// The room's bare JID.
    pub room: String,
    /// Our nick in it.
    pub nick: String,
    /// Whether the room keeps an archive (XEP-0313) we may catch up from.
    pub archived: bool,
    /// The newest id the room's archive gave a message stored before this join:
    /// where catching up starts (read before joining, since the history the room
    /// sends on join is stored first and would move the start past what it left
    /// out). `None`: nothing of this room's archive is stored yet.
    pub after: Option<String>,
}

/// `room.joined`: we are in a group chat room (XEP-0045), after a join or a rejoin.
#[derive(Debug)]
pub struct RoomJoinedPoint;
impl TriggerPoint for RoomJoinedPoint {
    const NAME: &'static str = "room.joined";
    const DOC: &'static str = "we joined a group chat room (or rejoined it after a reconnection); \
                               fired by the group chat plugin, heard by the archive plugin to \
                               catch up with the room. Notification: stopping only skips later \
                               handlers; handlers must not wait on this session";
    type Args = RoomJoined;
    type Value = ();
}
impl PluginPoint for RoomJoinedPoint {}

/// Arguments of `room.occupants`: which room is asked about.
#[derive(Debug, Clone)]
pub struct RoomQuery {
    pub profile: String,
    /// The room's bare JID.
    pub room: String,
}

/// One occupant of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOccupant {
    pub nick: String,
    /// Its real JID, when the room tells it (non-anonymous rooms, or to
    /// moderators).
    pub jid: Option<String>,
}

/// The answer to `room.occupants`: a room we have, as the group chat plugin knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOccupants {
    /// Our nick in it.
    pub nick: String,
    /// Whether we are in it now (not still joining, not thrown out).
    pub joined: bool,
    /// Every occupant, us included, in nick order.
    pub occupants: Vec<RoomOccupant>,
}

/// `room.occupants`: who is in a group chat room (XEP-0045) we are in.
#[derive(Debug)]
pub struct RoomOccupantsPoint;
impl TriggerPoint for RoomOccupantsPoint {
    const NAME: &'static str = "room.occupants";
    const DOC: &'static str = "asks who is in a group chat room we have (the encryption plugin \
                               encrypts to their real JIDs); the group chat plugin answers with \
                               StopWith(occupants). Proceed: not a room we have";
    type Args = RoomQuery;
    type Value = RoomOccupants;
}
/// Shared: owned and answered by the group chat plugin, fired by whoever asks.
impl PluginPoint for RoomOccupantsPoint {}

/// Declares the core's points as the core's, so no plugin can claim or fire them.
/// The backend calls it once, on the registry it alone holds.
pub fn declare_core(t: &Triggers) -> Result<(), TriggerError> {
    t.declare::<MessageSend>()?;
    t.declare::<PresenceSend>()?;
    t.declare::<MessageReceived>()?;
    t.declare::<MessageStored>()?;
    t.declare::<PresenceReceived>()?;
    t.declare::<SessionStarted>()?;
    t.declare::<SessionEnded>()
}
