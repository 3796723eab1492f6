//! Plugin signals, typed: what a plugin tells frontends unasked
//! (`PluginSignal(plugin, name, profile, json)` on the bridge).
//!
//! Why here, like actions: a signal has two sides too, the plugin that emits it and
//! the frontends that read it. Declared once as a [`Signal`] (a unit type naming it,
//! with the doc it is declared to the host with, and a serde struct for its payload),
//! the plugin builds the payload as that struct and a reader parses it into the same
//! one. The wire format is the struct's JSON.
//!
//! Declared so far: the instant-messaging plugins' signals (here) and the calls'
//! (`crate::calls`). The others (MUC, pubsub events) still build their JSON by hand
//! and are described in `doc/plugins.rst`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One signal: its name, what it says, and its payload.
pub trait Signal {
    /// The signal's name: `chat_state`, …
    const NAME: &'static str;
    /// What it tells, as declared to the host.
    const DOC: &'static str;
    /// Its payload, the JSON object the signal carries.
    type Payload: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// Declares a signal: a unit type implementing [`Signal`].
macro_rules! signal {
    ($(#[$doc:meta])* $ty:ident = $name:literal, $payload:ty, $text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $ty;

        impl $crate::Signal for $ty {
            const NAME: &'static str = $name;
            const DOC: &'static str = $text;
            type Payload = $payload;
        }
    };
}
pub(crate) use signal;

/// A contact's chat state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    /// The contact's full JID.
    pub from: String,
    /// active, composing, paused, inactive or gone.
    pub state: String,
}

signal!(
    /// A contact's chat state arrived (XEP-0085).
    ChatState = "chat_state", ContactState,
    "a contact's chat state: {\"from\": full JID, \"state\": active|composing|paused|inactive|gone}"
);

/// A delivery receipt for one of our messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The id of our message.
    pub id: String,
    /// Who confirmed it: a full JID (empty when the receipt had no sender).
    pub from: String,
}

signal!(
    /// A contact confirmed the delivery of one of our messages (XEP-0184).
    MessageDelivered = "message_delivered", Delivery,
    "a contact confirmed delivery: {\"id\": message id, \"from\": full JID}"
);

/// A finished catch-up of an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    /// Whose archive: our account's bare JID, or a room's.
    pub archive: String,
    /// How many pages it took.
    pub pages: u32,
}

signal!(
    /// A catch-up of an archive went to its end (XEP-0313).
    CatchUpDone = "catch_up_done", CatchUp,
    "a catch-up of an archive (ours or a room's) went to its end: {archive, pages}"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_are_the_documented_json() {
        let p = ContactState {
            from: "b@x/r".into(),
            state: "composing".into(),
        };
        assert_eq!(
            serde_json::to_value(p).expect("serialises"),
            json!({"from": "b@x/r", "state": "composing"})
        );
        let back: CatchUp =
            serde_json::from_value(json!({"archive": "r@muc.x", "pages": 2})).expect("parses");
        assert_eq!(back.pages, 2);
        assert_eq!(MessageDelivered::NAME, "message_delivered");
    }
}
