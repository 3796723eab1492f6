//! XEP-0030: Service Discovery — what we announce, and what others offer.
//!
//! Answers disco#info with our identity and the features every loaded plugin added
//! (so a disabled plugin is not announced), and disco#items with nothing. Lookups of
//! other entities are cached per session: features do not change under a session in
//! practice, and many plugins ask the same entity the same question. The cache of a
//! profile is dropped when its session ends. `disco_walk` is a job: it lists an
//! entity's items and asks each for its info, reporting progress item by item.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::JobStarted;
use perch_actions::disco::{self as actions, DiscoArgs, PingArgs};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity,
};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::{BuildResult, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::{Value, json};

pub const IMPORT_NAME: &str = "XEP-0030";
/// Our identity: (category, type, lang, name).
pub const IDENTITY: (&str, &str, &str, &str) = ("client", "pc", "en", "Perch");

type Key = (String, String, String, bool);

pub struct Disco {
    /// (profile, jid, node, items?) → answer as JSON.
    cache: Mutex<HashMap<Key, Value>>,
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for Disco {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disco").finish_non_exhaustive()
    }
}

/// Our own disco#info answer.
pub fn our_info(node: Option<String>, features: Vec<String>) -> DiscoInfoResult {
    DiscoInfoResult {
        node,
        identities: vec![Identity::new(
            IDENTITY.0, IDENTITY.1, IDENTITY.2, IDENTITY.3,
        )],
        features: features.into_iter().collect(),
        extensions: vec![],
    }
}

pub fn info_json(jid: &Jid, r: &DiscoInfoResult) -> Value {
    json!({
        "jid": jid.to_string(),
        "node": r.node,
        "identities": r.identities.iter().map(|i| json!({
            "category": i.category, "type": i.type_, "name": i.name, "lang": i.lang,
        })).collect::<Vec<_>>(),
        "features": r.features,
        "extensions": r.extensions.iter().map(|x| json!({
            "type": x.form_type(),
            "fields": x.fields.iter().map(|f| json!({"var": f.var, "values": f.values})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn items_json(jid: &Jid, r: &DiscoItemsResult) -> Value {
    json!({
        "jid": jid.to_string(),
        "node": r.node,
        "items": r.items.iter().map(|i| json!({
            "jid": i.jid.to_string(), "node": i.node, "name": i.name,
        })).collect::<Vec<_>>(),
    })
}

impl Disco {
    /// disco#info of `jid` (`node`), from the cache when allowed.
    pub async fn info(
        &self,
        profile: &str,
        jid: &Jid,
        node: Option<String>,
        use_cache: bool,
    ) -> Result<Value, HostError> {
        self.lookup(profile, jid, node, use_cache, false).await
    }

    pub async fn items(
        &self,
        profile: &str,
        jid: &Jid,
        node: Option<String>,
        use_cache: bool,
    ) -> Result<Value, HostError> {
        self.lookup(profile, jid, node, use_cache, true).await
    }

    async fn lookup(
        &self,
        profile: &str,
        jid: &Jid,
        node: Option<String>,
        use_cache: bool,
        items: bool,
    ) -> Result<Value, HostError> {
        let key = (
            profile.to_owned(),
            jid.to_string(),
            node.clone().unwrap_or_default(),
            items,
        );
        if use_cache
            && let Some(v) = self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
        {
            let mut v = v.clone();
            v["cached"] = json!(true);
            return Ok(v);
        }
        let host = &self.host;
        let query: Element = if items {
            DiscoItemsQuery { node, rsm: None }.into()
        } else {
            DiscoInfoQuery { node }.into()
        };
        let answer = host
            .iq(profile, Some(jid.clone()), false, query)
            .await?
            .ok_or_else(|| HostError::Xmpp(format!("{jid} answered disco with nothing")))?;
        let value = if items {
            let r = DiscoItemsResult::try_from(answer)
                .map_err(|e| HostError::Xmpp(format!("{jid}: unreadable disco#items: {e}")))?;
            items_json(jid, &r)
        } else {
            let r = DiscoInfoResult::try_from(answer)
                .map_err(|e| HostError::Xmpp(format!("{jid}: unreadable disco#info: {e}")))?;
            info_json(jid, &r)
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value.clone());
        let mut v = value;
        v["cached"] = json!(false);
        Ok(v)
    }

    async fn walk(
        self: Arc<Self>,
        profile: String,
        args: PingArgs,
    ) -> Result<JobStarted, HostError> {
        let host = self.host.clone();
        let jid = jid_arg("jid", &args.jid)?;
        let job = host
            .start_job(&profile, "disco_walk", &format!("discovering {jid}"))
            .await?;
        let id = job.id().to_owned();
        let me = self.clone();
        tokio::spawn(async move {
            let items = match me.items(&profile, &jid, None, false).await {
                Ok(v) => v,
                Err(e) => return job.fail(&format!("disco#items of {jid}: {e}")).await,
            };
            let list: Vec<Value> = items["items"].as_array().cloned().unwrap_or_default();
            let total = list.len();
            job.progress(
                &format!("{total} items to ask"),
                Some(0.0),
                json!({"items": total}),
            )
            .await;
            let mut found = Vec::new();
            for (n, item) in list.iter().enumerate() {
                let Some(item_jid) = item["jid"].as_str().and_then(|j| Jid::new(j).ok()) else {
                    continue;
                };
                let node = item["node"].as_str().map(str::to_owned);
                let info = match me.info(&profile, &item_jid, node, false).await {
                    Ok(v) => v,
                    Err(e) => json!({"jid": item_jid.to_string(), "error": e.to_string()}),
                };
                let percent = (n + 1) as f64 * 100.0 / total as f64;
                job.progress(
                    &format!("asked {} ({}/{total})", item_jid, n + 1),
                    Some(percent),
                    json!({"jid": item_jid.to_string()}),
                )
                .await;
                found.push(info);
            }
            job.finish(json!({"jid": jid.to_string(), "items": found}))
                .await;
        });
        Ok(JobStarted { job: id })
    }
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Service Discovery",
    description: "Announces our identity and features; asks other entities for theirs, with a per-session cache",
    dependencies: &[],
    recommendations: &[],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    host.add_feature(ns::DISCO_INFO);
    host.add_feature(ns::DISCO_ITEMS);
    let h = host.clone();
    host.add_iq_handler(
        false,
        "query",
        ns::DISCO_INFO,
        Arc::new(move |req| {
            let features = h.features();
            async move {
                let node = DiscoInfoQuery::try_from(req.payload)
                    .ok()
                    .and_then(|q| q.node);
                Ok(Some(our_info(node, features).into()))
            }
            .boxed()
        }),
    );
    host.add_iq_handler(
        false,
        "query",
        ns::DISCO_ITEMS,
        Arc::new(|req| {
            async move {
                let node = DiscoItemsQuery::try_from(req.payload)
                    .ok()
                    .and_then(|q| q.node);
                Ok(Some(
                    DiscoItemsResult {
                        node,
                        items: vec![],
                        rsm: None,
                    }
                    .into(),
                ))
            }
            .boxed()
        }),
    );
    let me = Arc::new(Disco {
        cache: Mutex::default(),
        host: host.clone(),
    });
    host.serve(
        actions::DiscoInfo,
        me.clone(),
        |me, profile, args| async move { me.lookup_call(&profile, args, false).await },
    );
    host.serve(
        actions::DiscoItems,
        me.clone(),
        |me, profile, args| async move { me.lookup_call(&profile, args, true).await },
    );
    host.serve(actions::DiscoWalk, me.clone(), Disco::walk);
    Ok(me)
}

impl Disco {
    /// The `disco_info` and `disco_items` actions.
    async fn lookup_call(
        &self,
        profile: &str,
        args: DiscoArgs,
        items: bool,
    ) -> Result<Value, HostError> {
        let jid = jid_arg("jid", &args.jid)?;
        self.lookup(profile, &jid, args.node, args.use_cache, items)
            .await
    }
}

impl Plugin for Disco {
    fn session_ended(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|k, _| k.0 != profile);
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_info_lists_identity_and_features() {
        let e: Element = our_info(
            Some("n".into()),
            vec![ns::PING.into(), ns::DISCO_INFO.into()],
        )
        .into();
        let xml = String::from(&e);
        assert!(xml.contains("category='client'"), "{xml}");
        assert!(xml.contains("urn:xmpp:ping"), "{xml}");
        let back = DiscoInfoResult::try_from(e).expect("parses");
        assert_eq!(back.node.as_deref(), Some("n"));
    }

    #[test]
    fn server_answers_become_json() {
        let e: Element = "<query xmlns='http://jabber.org/protocol/disco#items'><item jid='pubsub.example.org' name='PubSub'/><item jid='example.org' node='n1'/></query>"
            .parse()
            .expect("xml");
        let r = DiscoItemsResult::try_from(e).expect("items");
        let v = items_json(&Jid::new("example.org").expect("jid"), &r);
        assert_eq!(v["items"][0]["jid"], "pubsub.example.org");
        assert_eq!(v["items"][1]["node"], "n1");
        let e: Element = "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im' name='Prosody'/><feature var='urn:xmpp:ping'/></query>"
            .parse()
            .expect("xml");
        let r = DiscoInfoResult::try_from(e).expect("info");
        let v = info_json(&Jid::new("example.org").expect("jid"), &r);
        assert_eq!(v["identities"][0]["category"], "server");
        assert_eq!(v["features"][0], "urn:xmpp:ping");
    }
}
