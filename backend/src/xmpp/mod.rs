//! XMPP sessions: one task per connected profile, owning its stanza stream.
//!
//! This layer knows the storage below it and nothing above: what a session
//! receives goes up through [`session::Upstream`] (a channel and a trait the layer
//! above implements), never by naming the plugins or the daemon.

pub mod ack;
pub mod connect;
pub mod csi;
pub mod limits;
pub mod quickack;
pub mod session;
pub mod srv;
pub mod stanzas;
