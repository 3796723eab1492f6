//! XEP-0199: XMPP Ping — answer pings, and ping others as an action.
//!
//! The action measures the round trip of an IQ through the whole path (our server, the
//! other entity, back), which is what a user means by "is it there, how fast".

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use perch_actions::disco::{Ping as PingAction, PingArgs, Pong};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::ns;
use perch_plugin_api::{BuildResult, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};

pub const IMPORT_NAME: &str = "XEP-0199";

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "XMPP Ping",
    description: "Answers pings; the ping action measures the round trip to an entity",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

#[derive(Debug)]
pub struct Ping;

impl Plugin for Ping {}

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    host.add_feature(ns::PING);
    host.add_iq_handler(
        false,
        "ping",
        ns::PING,
        Arc::new(|_req| async { Ok(None) }.boxed()),
    );
    host.serve(PingAction, host.clone(), ping);
    Ok(Arc::new(Ping))
}

/// The `ping` action.
async fn ping(host: Arc<dyn Host>, profile: String, args: PingArgs) -> Result<Pong, HostError> {
    let jid = jid_arg("jid", &args.jid)?;
    let payload = Element::builder("ping", ns::PING).build();
    let start = Instant::now();
    host.iq(&profile, Some(jid.clone()), false, payload).await?;
    let rtt = start.elapsed().as_secs_f64() * 1000.0;
    Ok(Pong {
        jid: jid.to_string(),
        rtt_ms: rtt,
    })
}
