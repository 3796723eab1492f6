//! The proxy of `org.perch.Perch1`: one Rust method per D-Bus method, one signal type
//! per signal, with the exact signatures perchd serves (`backend/src/bridge.rs`,
//! documented in `doc/bridge.rst`).
//!
//! Methods return [`crate::Result`], so a daemon error arrives as a typed
//! [`crate::ErrorName`]. The JSON strings some methods return are left as strings: their
//! shapes are documented in `doc/bridge.rst` and each frontend reads what it needs.
//! The attribute values must be literals; a unit test checks that they are
//! [`crate::BUS_NAME`], [`crate::PATH`] and [`crate::INTERFACE`].

use std::collections::HashMap;

use crate::Result;

#[zbus::proxy(
    interface = "org.perch.Perch1",
    default_service = "org.perch.Perch",
    default_path = "/org/perch/Perch"
)]
pub trait Perch1 {
    /// perchd's version.
    fn version(&self) -> Result<String>;

    /// Creates a profile; `options`: `server`, `ca_file`, `insecure`, `autoconnect`.
    fn profile_create(
        &self,
        name: &str,
        jid: &str,
        password: &str,
        options: &HashMap<String, String>,
    ) -> Result<()>;

    /// Every profile, as a JSON array.
    fn profile_list(&self) -> Result<String>;

    /// One profile, as a JSON object.
    fn profile_get(&self, name: &str) -> Result<String>;

    fn profile_delete(&self, name: &str) -> Result<()>;

    fn profile_set_default(&self, name: &str) -> Result<()>;

    fn profile_set_password(&self, name: &str, password: &str) -> Result<()>;

    fn profile_set_autoconnect(&self, name: &str, autoconnect: bool) -> Result<()>;

    /// Connects a profile; returns once the session is up.
    fn connect(&self, profile: &str) -> Result<()>;

    fn disconnect(&self, profile: &str) -> Result<()>;

    /// The connection state of every profile, as a JSON array.
    fn status(&self) -> Result<String>;

    /// Sends a message (`kind`: chat, normal, headline or groupchat); returns its id.
    /// The message is stored and queued first: it goes out now when the profile is
    /// connected, else when it connects (see `message_outbox`).
    fn message_send(&self, profile: &str, to: &str, body: &str, kind: &str) -> Result<String>;

    /// The messages not yet confirmed by the server, oldest first, as a JSON array.
    fn message_outbox(&self, profile: &str) -> Result<String>;

    /// Takes a queued message out of the outbox; returns it (state `cancelled`).
    fn message_cancel(&self, profile: &str, id: &str) -> Result<String>;

    /// History as a JSON array; `filters`: `with`, `limit`, `after`, `before`.
    fn history_get(&self, profile: &str, filters: &HashMap<String, String>) -> Result<String>;

    fn roster_get(&self, profile: &str) -> Result<String>;

    fn roster_add(&self, profile: &str, jid: &str, name: &str, groups: &[String]) -> Result<()>;

    fn roster_remove(&self, profile: &str, jid: &str) -> Result<()>;

    /// `action`: subscribe, unsubscribe, subscribed, unsubscribed.
    fn subscription(&self, profile: &str, action: &str, jid: &str) -> Result<()>;

    fn presence_set(&self, profile: &str, show: &str, status: &str, priority: i32) -> Result<()>;

    fn presence_get(&self, profile: &str) -> Result<String>;

    fn plugin_list(&self) -> Result<String>;

    fn action_list(&self) -> Result<String>;

    /// Runs a plugin action with JSON `args`; returns its JSON result.
    fn action_run(&self, profile: &str, name: &str, args: &str) -> Result<String>;

    fn job_get(&self, id: &str) -> Result<String>;

    fn job_log(&self, id: &str) -> Result<String>;

    fn job_list(&self, profile: &str) -> Result<String>;

    fn debug_triggers(&self) -> Result<String>;

    #[zbus(signal)]
    fn plugin_signal(
        &self,
        plugin: &str,
        name: &str,
        profile: &str,
        data: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    fn progress_started(&self, id: &str, profile: &str, data: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn progress(&self, id: &str, profile: &str, data: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn progress_finished(&self, id: &str, profile: &str, data: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn progress_error(&self, id: &str, profile: &str, data: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn connection_state(
        &self,
        profile: &str,
        state: &str,
        jid: &str,
        reason: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    fn message_received(&self, profile: &str, message: &str) -> zbus::Result<()>;

    /// A stored message changed: its outbox state, its text (a correction), or
    /// what a message action did to it (reactions, a retraction, a moderation).
    #[zbus(signal)]
    fn message_updated(&self, profile: &str, message: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn presence_update(
        &self,
        profile: &str,
        jid: &str,
        show: &str,
        status: &str,
        priority: i32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    fn roster_changed(
        &self,
        profile: &str,
        jid: &str,
        subscription: &str,
        name: &str,
        groups: Vec<String>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    fn subscription_request(&self, profile: &str, action: &str, jid: &str) -> zbus::Result<()>;
}
