//! XMPP sessions: one task per connected profile, owning its stanza stream.

pub mod ack;
pub mod connect;
pub mod limits;
pub mod quickack;
pub mod session;
pub mod stanzas;
