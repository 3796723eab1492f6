//! Perch's publish-subscribe plugins: result set management, pubsub itself, the
//! pubsub cache (items kept in the database, searchable) and the microblog on top.
//!
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`
//! and `perch-codec` (where the pubsub and RSM elements are).

use std::sync::Arc;

use perch_plugin_api::PluginFactory;

mod migrations;
pub use migrations::migrations;

pub mod pubsub_cache;
pub mod xep_0059;
pub mod xep_0060;
pub mod xep_0277;

/// This crate's plugins, in no particular order (the host orders them). The pubsub
/// cache's analysers are handed to the plugins that register one.
pub fn builtin() -> Vec<PluginFactory> {
    let analysers = Arc::new(pubsub_cache::Analysers::default());
    vec![
        pubsub_cache::factory(analysers.clone()),
        xep_0059::factory(),
        xep_0060::factory(),
        xep_0277::factory(analysers),
    ]
}
