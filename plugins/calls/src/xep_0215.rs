//! XEP-0215: External Service Discovery — the STUN and TURN servers our own server
//! offers, for the frontend's WebRTC stack (ICE needs them beyond the local network).
//!
//! Why its own plugin and an action: perchd carries no media, so it only asks; the
//! frontend that runs ICE calls `external_services` before it builds its peer
//! connection (`doc/calls.rst`). TURN credentials are handed to the frontend that
//! asked and never logged.

use std::sync::Arc;

use perch_actions::NoArgs;
use perch_actions::disco::ExternalServices as ExternalServicesAction;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::{Value, json};

pub const IMPORT_NAME: &str = "XEP-0215";
pub const NS: &str = "urn:xmpp:extdisco:2";

/// One service, as the bridge shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub kind: String,
    pub host: String,
    pub port: Option<u16>,
    pub transport: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Service {
    pub fn to_json(&self) -> Value {
        let mut v = json!({"type": self.kind, "host": self.host});
        for (k, val) in [
            ("transport", &self.transport),
            ("username", &self.username),
            ("password", &self.password),
        ] {
            if let Some(x) = val {
                v[k] = json!(x);
            }
        }
        if let Some(p) = self.port {
            v["port"] = json!(p);
        }
        v
    }
}

/// Reads `<services xmlns='urn:xmpp:extdisco:2'>`: the STUN and TURN entries (others,
/// and entries without a host, are skipped).
pub fn parse(services: &Element) -> Vec<Service> {
    services
        .children()
        .filter(|s| s.is("service", NS))
        .filter_map(|s| {
            let kind = s.attr("type")?;
            if !matches!(kind, "stun" | "stuns" | "turn" | "turns") {
                return None;
            }
            Some(Service {
                kind: kind.to_owned(),
                host: s.attr("host")?.to_owned(),
                port: s.attr("port").and_then(|p| p.parse().ok()),
                transport: s.attr("transport").map(str::to_owned),
                username: s.attr("username").map(str::to_owned),
                password: s.attr("password").map(str::to_owned),
            })
        })
        .collect()
}

#[derive(Debug)]
pub struct ExternalServices;

impl Plugin for ExternalServices {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "External Service Discovery",
    description: "The STUN/TURN servers our server offers, for calls",
    dependencies: &[],
    recommendations: &[],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.serve(ExternalServicesAction, host.clone(), external_services);
        Ok(Arc::new(ExternalServices) as Arc<dyn Plugin>)
    })
}

/// The `external_services` action.
async fn external_services(
    host: Arc<dyn Host>,
    profile: String,
    _: NoArgs,
) -> Result<Vec<Value>, HostError> {
    let domain: Option<Jid> = host
        .bound_jid(&profile)
        .await
        .and_then(|j| Jid::new(j.domain().as_str()).ok());
    let q = Element::builder("services", NS).build();
    match host.iq(&profile, domain, false, q).await {
        Ok(Some(s)) => {
            let list = parse(&s);
            tracing::debug!(%profile, count = list.len(), "external services");
            Ok(list.iter().map(Service::to_json).collect())
        }
        Ok(None) => Ok(Vec::new()),
        // A server without the service answers one of these.
        Err(HostError::Stanza(e))
            if matches!(
                e.condition.as_str(),
                "service-unavailable" | "feature-not-implemented" | "item-not-found"
            ) =>
        {
            tracing::debug!(%profile, condition = %e.condition, "no external services");
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0215 Example 2's answer (and an entry we skip).
    #[test]
    fn services_are_read() {
        let e: Element = "<services xmlns='urn:xmpp:extdisco:2'>\
            <service host='stun.shakespeare.lit' port='9998' transport='udp' type='stun'/>\
            <service expires='2026-12-02T18:00:00Z' host='turn.shakespeare.lit' password='jj929jkj5sadjfj93v3n' port='9999' restricted='1' transport='udp' type='turn' username='nb78932lkjlskjfdb7g8'/>\
            <service host='ftp.shakespeare.lit' port='20' transport='tcp' type='ftp'/>\
            </services>"
            .parse()
            .unwrap();
        let list = parse(&e);
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].to_json(),
            json!({"type": "stun", "host": "stun.shakespeare.lit", "port": 9998, "transport": "udp"})
        );
        assert_eq!(list[1].username.as_deref(), Some("nb78932lkjlskjfdb7g8"));
        assert_eq!(list[1].to_json()["password"], "jj929jkj5sadjfj93v3n");
    }
}
