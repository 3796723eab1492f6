//! Perch's built-in plugins.
//!
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`:
//! nothing here may reach into the backend. The backend (the composition root) links
//! them in through [`builtin`].

use std::sync::Arc;

use perch_plugin_api::Plugin;

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
pub fn builtin() -> Vec<Arc<dyn Plugin>> {
    let cache = Arc::new(pubsub_cache::PubsubCache::default());
    let analysers = cache.analysers();
    vec![
        Arc::new(xep_0030::Disco::default()),
        Arc::new(xep_0045::Muc::default()),
        cache,
        Arc::new(xep_0059::Rsm),
        Arc::new(xep_0060::PubSub),
        Arc::new(xep_0092::Version),
        Arc::new(xep_0115::Caps),
        Arc::new(xep_0184::Receipts),
        Arc::new(xep_0199::Ping),
        Arc::new(xep_0167::Calls::default()),
        Arc::new(xep_0215::ExternalServices),
        Arc::new(xep_0277::Microblog::new(analysers)),
        Arc::new(xep_0085::ChatStates),
        Arc::new(xep_0280::Carbons::default()),
        Arc::new(xep_0308::Correction),
        Arc::new(xep_0313::Archive::default()),
        Arc::new(xep_0359::StanzaIds),
    ]
}
