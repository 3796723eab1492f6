//! How the message-action plugins (XEP-0444, 0461, 0424, 0425) name the message
//! they act on. Not a plugin: the small part they share.
//!
//! Why a lookup: frontends know a message by its history entry, while the XEPs
//! name it by the sender's origin-id in a chat and by the room's stanza-id in a
//! room. The plugin asks the core for the stored message (`Host::message`; the
//! history is the core's, not a plugin's) and puts the right one on the wire.

use perch_plugin_api::jid::Jid;
use perch_plugin_api::parsers::message::{Message, MessageType};
use perch_plugin_api::{HistoryMessage, Host, HostError};

/// A message to `to`, of a room (`groupchat`) or a chat.
pub fn new(to: Jid, groupchat: bool) -> Message {
    let kind = if groupchat {
        MessageType::Groupchat
    } else {
        MessageType::Chat
    };
    Message::new_with_type(kind, Some(to))
}

/// The id the XEPs name `m` by: in a room the room's stanza-id, in a chat the
/// sender's origin-id; failing those, its id.
pub fn wire_id(m: &HistoryMessage, groupchat: bool) -> String {
    let preferred = if groupchat {
        m.stanza_id.clone().or_else(|| m.origin_id.clone())
    } else {
        m.origin_id.clone()
    };
    preferred.unwrap_or_else(|| m.id.clone())
}

/// The stored message `id` of the conversation with `to` (its bare JID).
pub async fn find(
    host: &dyn Host,
    profile: &str,
    to: &Jid,
    id: &str,
) -> Result<Option<HistoryMessage>, HostError> {
    if id.is_empty() {
        return Err(HostError::BadArgument("id: empty".into()));
    }
    host.message(profile, &to.to_bare().to_string(), id).await
}

/// Like [`find`], but a message we do not have is the caller's error.
pub async fn require(
    host: &dyn Host,
    profile: &str,
    to: &Jid,
    id: &str,
) -> Result<HistoryMessage, HostError> {
    find(host, profile, to, id).await?.ok_or_else(|| {
        HostError::BadArgument(format!(
            "id: no message {id:?} in the conversation with {}",
            to.to_bare()
        ))
    })
}

/// A stored message, as an action answers it.
pub fn answer(m: HistoryMessage) -> Result<serde_json::Value, HostError> {
    serde_json::to_value(m).map_err(|e| HostError::Internal(format!("serialising: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(origin: Option<&str>, stanza: Option<&str>) -> HistoryMessage {
        HistoryMessage {
            id: "local".into(),
            timestamp: String::new(),
            direction: perch_plugin_api::Direction::Out,
            peer: "b@x".into(),
            from: "a@x/r".into(),
            to: "b@x".into(),
            kind: "chat".into(),
            body: "hi".into(),
            state: perch_plugin_api::MessageState::Acked,
            origin_id: origin.map(str::to_owned),
            stanza_id: stanza.map(str::to_owned),
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn rooms_use_the_stanza_id_chats_the_origin_id() {
        let m = stored(Some("o1"), Some("s1"));
        assert_eq!(wire_id(&m, true), "s1");
        assert_eq!(wire_id(&m, false), "o1");
        assert_eq!(wire_id(&stored(None, None), false), "local");
        assert_eq!(wire_id(&stored(Some("o1"), None), true), "o1");
    }
}
