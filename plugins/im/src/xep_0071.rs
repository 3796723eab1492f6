//! XEP-0071: XHTML-IM — announced, since Perch keeps the formatted text.
//!
//! The core reads a message's `<html/>` with its other content (the daemon's
//! `xmpp/stanzas.rs`), filtered to XEP-0071's recommended profile
//! (`perch_codec::xep_0071`: frontends may render it as HTML), into the stored
//! message's `extra`: `xhtml` for the body without a language, `xhtml_<lang>` for the
//! others, as Libervia 0.9 names them. The plain body stays the text; a frontend that
//! shows no formatting loses nothing. Sending XHTML is the frontend's choice, through
//! the bridge (Libervia's `messageSend` `extra.xhtml`). This plugin announces the
//! feature: with it disabled, contacts are not told we read XHTML.

use std::sync::Arc;

use perch_codec::xep_0071::NS;
use perch_plugin_api::{BuildResult, Host, Plugin, PluginFactory, PluginInfo};

pub const IMPORT_NAME: &str = "XEP-0071";

#[derive(Debug)]
pub struct Xhtml;

impl Plugin for Xhtml {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "XHTML-IM",
    description: "Announces that the formatted text of messages is kept (filtered to XHTML-IM)",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    host.add_feature(NS);
    Ok(Arc::new(Xhtml))
}
