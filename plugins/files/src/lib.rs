//! Perch's file plugins: HTTP File Upload (XEP-0363) and out-of-band links
//! (XEP-0066) as attachments, with downloads on request.
//!
//! Why a crate of its own, not a module of `perch-plugins-im`: these are the only
//! plugins that speak HTTP. The HTTP client (hyper, over tokio-rustls) stays out of
//! every other plugin crate, so the messaging plugins build and test without it, and
//! the crate graph shows where HTTP is (`tests/src/layering.rs` checks it stays
//! here). Like every plugin crate it sees only `perch-plugin-api` and `perch-codec`.

use perch_plugin_api::PluginFactory;

pub mod http;
pub mod transfer;
pub mod xep_0066;
pub mod xep_0363;

/// This crate's plugins, in no particular order (the host orders them).
pub fn builtin() -> Vec<PluginFactory> {
    vec![xep_0066::factory(), xep_0363::factory()]
}
