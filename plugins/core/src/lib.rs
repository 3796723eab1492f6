//! Perch's built-in plugins.
//!
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`:
//! nothing here may reach into the backend. The backend (the composition root) links
//! them in through [`builtin`].

use std::sync::Arc;

use perch_plugin_api::PluginFactory;

mod dom;
pub mod pubsub_cache;
pub mod xep_0004;
pub mod xep_0030;
pub mod xep_0045;
pub mod xep_0059;
pub mod xep_0060;
pub mod xep_0085;
pub mod xep_0092;
pub mod xep_0115;
pub mod xep_0166;
pub mod xep_0167;
pub mod xep_0176;
pub mod xep_0184;
pub mod xep_0199;
pub mod xep_0215;
pub mod xep_0277;
pub mod xep_0280;
pub mod xep_0308;
pub mod xep_0313;
pub mod xep_0320;
pub mod xep_0353;
pub mod xep_0359;

/// Every built-in plugin, in no particular order (the host orders them). The pubsub
/// cache's analysers are handed to the plugins that register one.
pub fn builtin() -> Vec<PluginFactory> {
    let analysers = Arc::new(pubsub_cache::Analysers::default());
    vec![
        xep_0030::factory(),
        xep_0045::factory(),
        pubsub_cache::factory(analysers.clone()),
        xep_0059::factory(),
        xep_0060::factory(),
        xep_0092::factory(),
        xep_0115::factory(),
        xep_0184::factory(),
        xep_0199::factory(),
        xep_0167::factory(),
        xep_0215::factory(),
        xep_0277::factory(analysers),
        xep_0085::factory(),
        xep_0280::factory(),
        xep_0308::factory(),
        xep_0313::factory(),
        xep_0359::factory(),
    ]
}
