//! XEP-0059: Result Set Management, the plugin. The RSM types and the pager are XML
//! and logic without a host, so they live in `perch-codec` (re-exported here so that
//! `xep_0059::RsmRequest` keeps its meaning); what is left is the plugin that announces
//! the feature.

use std::sync::Arc;

use perch_plugin_api::{Host, Plugin, PluginFactory, PluginInfo};

pub use perch_codec::xep_0059::*;

pub const IMPORT_NAME: &str = "XEP-0059";

/// The plugin: RSM is a helper other plugins use; loading it announces the feature.
#[derive(Debug)]
pub struct Rsm;

impl Plugin for Rsm {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Result Set Management",
    description: "Pages of results (RSM), with a pager that detects services ignoring it",
    dependencies: &[],
    recommendations: &[],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(NS);
        Ok(Arc::new(Rsm) as Arc<dyn Plugin>)
    })
}
