//! Perch's messaging plugins: group chat (with its bookmarks), chat states, receipts,
//! carbons, corrections, the message archive, stanza ids, blocking, and the message
//! actions (reactions, replies, retraction, moderation).
//!
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`
//! and `perch-codec`. The MUC bookmarks are pubsub items, but they need only the
//! pubsub elements (in the codec), not the pubsub plugin: this crate does not depend
//! on `perch-plugins-pubsub`.

use perch_plugin_api::PluginFactory;

mod migrations;
pub use migrations::migrations;

pub mod xep_0045;
pub mod xep_0071;
pub mod xep_0085;
pub mod xep_0184;
pub mod xep_0191;
pub mod xep_0280;
pub mod xep_0308;
pub mod xep_0313;
pub mod xep_0359;
pub mod xep_0424;
pub mod xep_0425;
pub mod xep_0444;
pub mod xep_0461;
pub mod xep_0490;

mod message_ref;

/// This crate's plugins, in no particular order (the host orders them).
pub fn builtin() -> Vec<PluginFactory> {
    vec![
        xep_0045::factory(),
        xep_0071::factory(),
        xep_0184::factory(),
        xep_0085::factory(),
        xep_0280::factory(),
        xep_0308::factory(),
        xep_0313::factory(),
        xep_0359::factory(),
        xep_0191::factory(),
        xep_0424::factory(),
        xep_0425::factory(),
        xep_0444::factory(),
        xep_0461::factory(),
        xep_0490::factory(),
    ]
}
