//! XEP-0092: Software Version — say what we are, and ask others.
//!
//! We do not announce the operating system: it tells a stranger what to attack and a
//! user gains nothing from it.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::{Action, disco};
use perch_plugin_api::action::{ActionSpec, Param, ParamType, typed};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::ns;
use perch_plugin_api::parsers::version::{VersionQuery, VersionResult};
use perch_plugin_api::{Host, HostError, Plugin, PluginError, PluginInfo};

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

impl Plugin for Version {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            import_name: IMPORT_NAME,
            name: "Software Version",
            description: "Answers software version queries; the version action asks another entity",
            dependencies: &[],
            recommendations: &["XEP-0030"],
        }
    }

    fn init(self: Arc<Self>, host: Arc<dyn Host>) -> BoxFuture<'static, Result<(), PluginError>> {
        async move {
            host.add_feature(IMPORT_NAME, ns::VERSION);
            host.add_iq_handler(
                IMPORT_NAME,
                false,
                "query",
                ns::VERSION,
                Arc::new(|_req| async { Ok(Some(our_version().into())) }.boxed()),
            );
            let h = host.clone();
            host.add_action(
                IMPORT_NAME,
                ActionSpec {
                    name: disco::Version::NAME,
                    plugin: String::new(),
                    doc: "Asks an entity which software it runs (name, version, OS when told)",
                    needs_session: true,
                    params: vec![Param::required("jid", ParamType::Jid, "the entity to ask")],
                },
                typed(disco::Version::handler(move |profile, args| {
                    let host = h.clone();
                    async move {
                        let jid = Jid::new(&args.jid)
                            .map_err(|e| HostError::BadArgument(format!("jid: {e}")))?;
                        let query: Element = VersionQuery.into();
                        let answer = host
                            .iq(&profile, Some(jid.clone()), false, query)
                            .await?
                            .ok_or_else(|| {
                                HostError::Xmpp(format!("{jid} answered without a version"))
                            })?;
                        let v = VersionResult::try_from(answer).map_err(|e| {
                            HostError::Xmpp(format!("{jid} answered an unreadable version: {e}"))
                        })?;
                        Ok(disco::SoftwareVersion {
                            jid: jid.to_string(),
                            name: v.name,
                            version: v.version,
                            os: v.os,
                        })
                    }
                })),
            );
            Ok(())
        }
        .boxed()
    }
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
