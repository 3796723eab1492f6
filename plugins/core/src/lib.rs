//! Perch's basic plugins: what every session needs, whatever else it does (service
//! discovery, entity capabilities, software version, ping).
//!
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`
//! and `perch-codec`: nothing here may reach into the backend. The other built-in
//! plugins live in crates by domain (`perch-plugins-im`, `perch-plugins-pubsub`,
//! `perch-plugins-calls`), so that Cargo enforces which plugin code uses which. The
//! backend (the composition root) links them all in, each through its `builtin`.

use perch_plugin_api::PluginFactory;

pub mod xep_0030;
pub mod xep_0092;
pub mod xep_0115;
pub mod xep_0199;

/// This crate's plugins, in no particular order (the host orders them).
pub fn builtin() -> Vec<PluginFactory> {
    vec![
        xep_0030::factory(),
        xep_0092::factory(),
        xep_0115::factory(),
        xep_0199::factory(),
    ]
}
