//! Perch's identity plugins: who a contact is, as other clients show it.
//!
//! - `xep_0084`: avatars, published and fetched over PEP, with the XEP-0153 hash in
//!   our presence and contacts' (for clients that only have vcard-temp avatars);
//! - `xep_0054`: the vCard (vcard-temp), read and changed, and the avatar of
//!   contacts whose client publishes it only there;
//! - `xep_0172`: nicknames, ours published over PEP and sent with our subscription
//!   requests, contacts' received and kept.
//!
//! Why a crate of its own: none of this is messaging, and avatars are files kept
//! under perchd's data directory (`Host::files_dir`), with a table naming them.
//! Each module is one plugin, named after its XEP, and sees only `perch-plugin-api`,
//! `perch-actions` and `perch-codec`.

use perch_plugin_api::PluginFactory;

pub mod image;
mod migrations;
pub mod store;
pub mod xep_0054;
pub mod xep_0084;
pub mod xep_0172;

pub use migrations::migrations;

/// This crate's plugins, in no particular order (the host orders them).
pub fn builtin() -> Vec<PluginFactory> {
    vec![
        xep_0054::factory(),
        xep_0084::factory(),
        xep_0172::factory(),
    ]
}
