//! perchd, the Perch XMPP client backend.
//!
//! Layers, from the bottom (see `doc/architecture.rst`): storage (`db`, `profiles`,
//! `history`, `secret`), XMPP sessions (`xmpp`), the daemon core that composes them
//! (`daemon`), and the D-Bus bridge that serves frontends (`bridge`). Lower layers
//! never call upper ones: sessions publish [`events::Event`]s, the bridge listens.

pub mod bridge;
pub mod certs;
pub mod config;
pub mod daemon;
pub mod db;
pub mod error;
pub mod events;
pub mod history;
pub mod host;
pub mod jobs;
pub mod libervia;
pub mod libervia_params;
pub mod logging;
pub mod memory;
pub mod paths;
pub mod plugins;
pub mod profiles;
pub mod run;
pub mod secret;
#[cfg(test)]
mod testing;
pub mod time;
pub mod validate;
pub mod xmpp;
