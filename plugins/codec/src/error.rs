//! The error of a reader fed a reply it cannot use.
//!
//! Why the codec's own type: it knows no host, so it cannot return the plugin API's
//! `HostError`; the API converts this one into it (`From`), so a plugin's `?` is
//! unchanged.

use crate::StanzaError;

/// Another entity's reply that a reader could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The reply does not have the expected shape.
    #[error("{0}")]
    Malformed(String),
    /// The request itself is refused with a stanza error (an RSM id a page emulation
    /// did not find, …).
    #[error("{0}")]
    Stanza(StanzaError),
}
