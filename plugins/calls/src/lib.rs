//! Perch's call plugins: Jingle RTP sessions (XEP-0167, with XEP-0166 sessions,
//! XEP-0176 transport, XEP-0320 fingerprints and XEP-0353 ringing, whose elements are
//! in `perch-codec`) and the STUN/TURN services calls use (XEP-0215).
//!
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`
//! and `perch-codec`.

use perch_plugin_api::PluginFactory;

mod migrations;
pub use migrations::migrations;

pub mod xep_0167;
pub mod xep_0215;

/// This crate's plugins, in no particular order (the host orders them).
pub fn builtin() -> Vec<PluginFactory> {
    vec![xep_0167::factory(), xep_0215::factory()]
}
