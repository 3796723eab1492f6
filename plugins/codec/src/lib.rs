//! The stanza XML Perch writes itself, in the manner of xmpp-parsers: element types
//! with their readers and builders, the SDP ⇄ Jingle conversion, and the minidom
//! helpers they share.
//!
//! Why a crate of its own: this code has no host, no database and no plugin in it,
//! only XML in and XML (or SDP, or JSON) out. Several plugin crates read the same
//! elements (the MUC bookmarks are pubsub items; calls use Jingle, ICE-UDP, DTLS and
//! JMI together), and a frontend converts SDP with the very code perchd uses; none of
//! them should have to link a plugin for it. It depends on `perch-plugin-api` only for
//! the re-exported minidom/jid/xmpp-parsers and the shared error types
//! (`StanzaError`, `HostError`) and ids its readers return. Modules are named after
//! their XEP, as the plugins are.

pub mod dom;
pub mod xep_0004;
pub mod xep_0045;
pub mod xep_0059;
pub mod xep_0060;
pub mod xep_0166;
pub mod xep_0167;
pub mod xep_0176;
pub mod xep_0320;
pub mod xep_0353;
