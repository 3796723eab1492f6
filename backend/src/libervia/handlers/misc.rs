//! Everything else: the bridge's own state (ready, version, features, menus, config,
//! namespaces), service discovery, entity data and identities, software version, ping.

use std::collections::HashMap;

use perch_actions::disco;
use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::reply::{Answer, Map, out, unit};

use super::typed;

type Identity = (String, String, String);
type Field = (Map, Vec<String>);
type DiscoInfos = (Vec<String>, Vec<Identity>, HashMap<String, Vec<Field>>);

/// The version frontends are told. They only show it, except the TUI, which turns
/// its debug mode on when it contains a `D`: so none here.
pub fn version() -> String {
    format!("0.9.0a0 (perchd {})", env!("CARGO_PKG_VERSION"))
}

/// `getReady`: perchd is ready once it serves the bridge.
pub async fn ready(_lib: &Lib) -> Answer {
    unit()
}

/// `getVersion`.
pub async fn get_version(_lib: &Lib) -> Answer {
    out(version())
}

/// `getFeatures`: the plugins that loaded, by import name.
pub async fn features(lib: &Lib, key: String) -> Answer {
    lib.profile(&key).await?;
    let mut features: HashMap<String, Map> = HashMap::new();
    for s in lib.daemon.plugin_statuses() {
        if s.reason.is_empty() {
            features.insert(s.import_name, Map::new());
        }
    }
    out(features)
}

/// `getEntitiesData(jids, keys, profile)`: nicknames of roster contacts that have a
/// name; no avatars yet. Empty `jids`: every known entity.
pub async fn entities_data(
    lib: &Lib,
    (jids, keys, key): (Vec<String>, Vec<String>, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let mut data = HashMap::<String, Map>::new();
    if keys.iter().any(|k| k == "nicknames")
        && let Ok(roster) = lib.daemon.roster(&p).await
    {
        for i in roster {
            if !jids.is_empty() && !jids.contains(&i.jid) {
                continue;
            }
            // Only names the user gave: the fallback comes with identityGet,
            // as 0.9's cache only holds what was asked for.
            let Some(nick) = i.name.filter(|n| !n.is_empty()) else {
                continue;
            };
            let mut m = Map::new();
            m.insert("nicknames".into(), json!([nick]).to_string());
            data.insert(i.jid, m);
        }
    }
    out(data)
}

/// `getEntityData`: nothing cached.
pub async fn entity_data(lib: &Lib, (_jid, _keys, key): (String, Vec<String>, String)) -> Answer {
    lib.profile(&key).await?;
    out(Map::new())
}

/// `menusGet`: the chat window's "Encryption" menu (`encryption_menu`).
pub async fn menus(lib: &Lib, (_lang, security): (String, i32)) -> Answer {
    out(crate::libervia::encryption_menu::menus(lib, security))
}

/// `getConfig`: no backend configuration is exposed.
pub async fn config(_lib: &Lib, (_section, _name): (String, String)) -> Answer {
    out(String::new())
}

/// `namespacesGet`: the short names frontends look up.
pub async fn namespaces(_lib: &Lib) -> Answer {
    let mut m = Map::new();
    for (k, v) in [
        ("pubsub", "http://jabber.org/protocol/pubsub"),
        ("microblog", "urn:xmpp:microblog:0"),
        ("pps", "urn:xmpp:pps:0"),
    ] {
        m.insert(k.into(), v.into());
    }
    out(m)
}

/// `discoInfos(jid, node, use_cache, profile_key)`.
pub async fn disco_info(
    lib: &Lib,
    (jid, node, use_cache, key): (String, String, bool, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let v = typed::<disco::DiscoInfo>(lib, &p, disco_args(jid, &node, use_cache)).await?;
    out(disco_infos(&v))
}

/// `discoItems(jid, node, use_cache, profile_key)`: (jid, node, name) triples.
pub async fn disco_items(
    lib: &Lib,
    (jid, node, use_cache, key): (String, String, bool, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let v = typed::<disco::DiscoItems>(lib, &p, disco_args(jid, &node, use_cache)).await?;
    let items: Vec<Identity> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (text(&i["jid"]), text(&i["node"]), text(&i["name"])))
        .collect();
    out(items)
}

/// `getSoftwareVersion` (plugin): (name, version, os).
pub async fn software_version(lib: &Lib, (jid, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let v = typed::<disco::Version>(lib, &p, disco::PingArgs { jid }).await?;
    out((v.name, v.version, v.os.unwrap_or_default()))
}

/// `ping` (plugin): the round trip in seconds.
pub async fn ping(lib: &Lib, (jid, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let v = typed::<disco::Ping>(lib, &p, disco::PingArgs { jid }).await?;
    out(v.rtt_ms / 1000.0)
}

/// `disco_info`/`disco_items` arguments: an empty node is none.
fn disco_args(jid: String, node: &str, use_cache: bool) -> disco::DiscoArgs {
    disco::DiscoArgs {
        jid,
        node: (!node.is_empty()).then(|| node.to_owned()),
        use_cache,
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// `discoInfos`: (features, identities (category, type, name), extensions
/// {FORM_TYPE: [({var}, values)]}) from the `disco_info` action's JSON.
fn disco_infos(v: &Value) -> DiscoInfos {
    let features = v["features"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| match f {
            Value::String(s) => s.clone(),
            other => text(&other["var"]),
        })
        .collect();
    let identities = v["identities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (text(&i["category"]), text(&i["type"]), text(&i["name"])))
        .collect();
    let mut extensions = HashMap::new();
    for x in v["extensions"].as_array().into_iter().flatten() {
        let fields = x["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["var"].as_str() != Some("FORM_TYPE"))
            .map(|f| {
                let mut attrs = Map::new();
                attrs.insert("var".into(), text(&f["var"]));
                let values = f["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                (attrs, values)
            })
            .collect();
        extensions.insert(text(&x["type"]), fields);
    }
    (features, identities, extensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disco_info_becomes_libervia_tuple() {
        let v = json!({
            "features": ["urn:xmpp:ping"],
            "identities": [{"category": "server", "type": "im", "name": "Prosody"}],
            "extensions": [{"type": "urn:x", "fields": [
                {"var": "FORM_TYPE", "values": ["urn:x"]},
                {"var": "a", "values": ["1", "2"]}]}],
        });
        let (features, identities, ext) = disco_infos(&v);
        assert_eq!(features, ["urn:xmpp:ping"]);
        assert_eq!(
            identities,
            [("server".into(), "im".into(), "Prosody".into())]
        );
        let fields = &ext["urn:x"];
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].0["var"], "a");
        assert_eq!(fields[0].1, ["1", "2"]);
    }
}
