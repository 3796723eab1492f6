//! XEP-0092: Software Version — say what we are, and ask others.
//!
//! We do not announce the operating system: it tells a stranger what to attack and a
//! user gains nothing from it.

use std::sync::Arc;

use futures::FutureExt;
use perch_actions::disco::{self as actions, PingArgs, SoftwareVersion};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::ns;
use perch_plugin_api::parsers::version::{VersionQuery, VersionResult};
use perch_plugin_api::{BuildResult, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};

pub const IMPORT_NAME: &str = "XEP-0092";

#[derive(Debug)]
pub struct Version;

/// Our answer to a version query.
pub fn our_version() -> VersionResult {
    VersionResult {
        name: "Perch".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        os: None,
    }
}

impl Plugin for Version {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Software Version",
    description: "Answers software version queries; the version action asks another entity",
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
    host.add_feature(ns::VERSION);
    host.add_iq_handler(
        false,
        "query",
        ns::VERSION,
        Arc::new(|_req| async { Ok(Some(our_version().into())) }.boxed()),
    );
    host.serve(actions::Version, host.clone(), version);
    Ok(Arc::new(Version))
}

/// The `version` action.
async fn version(
    host: Arc<dyn Host>,
    profile: String,
    args: PingArgs,
) -> Result<SoftwareVersion, HostError> {
    let jid = jid_arg("jid", &args.jid)?;
    let query: Element = VersionQuery.into();
    let answer = host
        .iq(&profile, Some(jid.clone()), false, query)
        .await?
        .ok_or_else(|| HostError::Xmpp(format!("{jid} answered without a version")))?;
    let v = VersionResult::try_from(answer)
        .map_err(|e| HostError::Xmpp(format!("{jid} answered an unreadable version: {e}")))?;
    Ok(SoftwareVersion {
        jid: jid.to_string(),
        name: v.name,
        version: v.version,
        os: v.os,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_round_trips_as_xml() {
        let e: Element = our_version().into();
        let xml = String::from(&e);
        assert!(xml.contains("<name>Perch</name>"), "{xml}");
        assert!(!xml.contains("<os>"), "{xml}");
        let back = VersionResult::try_from(e).expect("parses");
        assert_eq!(back.version, env!("CARGO_PKG_VERSION"));
    }
}
