//! XEP-0199: XMPP Ping — answer pings, and ping others as an action.
//!
//! The action measures the round trip of an IQ through the whole path (our server, the
//! other entity, back), which is what a user means by "is it there, how fast".

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::{Action, disco};
use perch_plugin_api::action::{ActionSpec, Param, ParamType, typed};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::ns;
use perch_plugin_api::{Host, HostError, Plugin, PluginError, PluginInfo};

pub const IMPORT_NAME: &str = "XEP-0199";

#[derive(Debug)]
pub struct Ping;

impl Plugin for Ping {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            import_name: IMPORT_NAME,
            name: "XMPP Ping",
            description: "Answers pings; the ping action measures the round trip to an entity",
            dependencies: &[],
            recommendations: &["XEP-0030"],
        }
    }

    fn init(self: Arc<Self>, host: Arc<dyn Host>) -> BoxFuture<'static, Result<(), PluginError>> {
        async move {
            host.add_feature(IMPORT_NAME, ns::PING);
            host.add_iq_handler(
                IMPORT_NAME,
                false,
                "ping",
                ns::PING,
                Arc::new(|_req| async { Ok(None) }.boxed()),
            );
            let h = host.clone();
            host.add_action(
                IMPORT_NAME,
                ActionSpec {
                    name: disco::Ping::NAME,
                    plugin: String::new(),
                    doc: "Pings an entity (a server, a contact's full JID) and reports the round trip",
                    needs_session: true,
                    params: vec![Param::required("jid", ParamType::Jid, "the entity to ping")],
                },
                typed(disco::Ping::handler(move |profile, args| {
                    let host = h.clone();
                    async move {
                        let jid = Jid::new(&args.jid)
                            .map_err(|e| HostError::BadArgument(format!("jid: {e}")))?;
                        let payload = Element::builder("ping", ns::PING).build();
                        let start = Instant::now();
                        host.iq(&profile, Some(jid.clone()), false, payload).await?;
                        let rtt_ms = start.elapsed().as_secs_f64() * 1000.0;
                        Ok(disco::Pong {
                            jid: jid.to_string(),
                            rtt_ms,
                        })
                    }
                })),
            );
            Ok(())
        }
        .boxed()
    }
}
