//! perchd, the Perch XMPP client backend.
//!
//! Layers, from the bottom (see `doc/architecture.rst`, "Inside perch-backend"):
//! storage (`db`, `profiles`, `history`, `jobs`, `secret`), XMPP sessions (`xmpp`),
//! the plugin registry (`plugins`), the receive pipeline (`receive`), the daemon
//! core (`daemon`), the plugins' host (`host`), the D-Bus bridges (`bridge`,
//! `libervia`), and `run`, which composes them. Lower layers never name upper ones
//! (`tests/backend/layers.rs` checks it): sessions hand what they receive up through
//! a channel and publish [`events::Event`]s, the bridges listen.

pub mod admin;
pub mod bridge;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod db;
pub mod error;
pub mod events;
pub mod frontends;
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
pub mod receive;
pub mod roster;
pub mod run;
pub mod secret;
#[cfg(test)]
mod testing;
pub mod time;
pub mod validate;
pub mod xmpp;
