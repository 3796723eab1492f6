//! Perch's end-to-end encryption: OMEMO (XEP-0384), versions 0.3 and 2.
//!
//! Why a crate of its own: encryption is the one domain whose code must depend on a
//! cryptography crate (`perch-omemo`, under `crypto/`), and keeping it apart keeps
//! the messaging plugins free of it. The plugin sees only `perch-plugin-api`,
//! `perch-codec`, `perch-actions` and the crypto crate (the layering test holds it
//! to that); everything it keeps (its identity, prekeys, the contacts' devices and
//! their trust, the sessions) lives in its own tables.

use perch_plugin_api::PluginFactory;

mod migrations;
pub use migrations::migrations;

pub mod xep_0384;

/// This crate's plugins (the host orders them).
pub fn builtin() -> Vec<PluginFactory> {
    vec![xep_0384::factory()]
}
