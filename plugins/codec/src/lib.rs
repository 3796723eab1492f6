//! The stanza XML Perch writes itself, in the manner of xmpp-parsers: element types
//! with their readers and builders, the SDP ⇄ Jingle conversion, and the minidom
//! helpers they share.
//!
//! Why a crate of its own: this code has no host, no database and no plugin in it,
//! only XML in and XML (or SDP, or JSON) out. Several plugin crates read the same
//! elements (the MUC bookmarks are pubsub items; calls use Jingle, ICE-UDP, DTLS and
//! JMI together), and a frontend converts SDP with the very code perchd uses; none of
//! them should have to link a plugin for it. Modules are named after their XEP, as the
//! plugins are.
//!
//! Why it depends on no other Perch crate: as xmpp-parsers stands below tokio-xmpp,
//! this crate stands below the plugin API. It reads XML with xmpp-parsers' own
//! minidom (the very versions tokio-xmpp re-exports, so elements pass between them
//! unconverted) and owns the few shared types its readers return — [`StanzaError`],
//! [`ReplyError`], the random [`ids`] — which `perch-plugin-api` re-exports under
//! their old paths. A frontend that converts SDP thus links no plugin API, and the
//! API can hand the codec's types around without a dependency cycle.

pub use xmpp_parsers as parsers;
pub use xmpp_parsers::{jid, minidom};

pub use error::ReplyError;
pub use stanza_error::StanzaError;

pub mod dom;
mod error;
pub mod ids;
pub mod stanza_error;
pub mod xep_0004;
pub mod xep_0045;
pub mod xep_0059;
pub mod xep_0060;
pub mod xep_0071;
pub mod xep_0166;
pub mod xep_0167;
pub mod xep_0176;
pub mod xep_0320;
pub mod xep_0333;
pub mod xep_0353;
pub mod xep_0424;
pub mod xep_0425;
pub mod xep_0428;
pub mod xep_0444;
pub mod xep_0461;
pub mod xep_0490;
