//! The methods of `org.libervia.Libervia.plugin` that perchd implements, each mapped
//! onto a Perch plugin action (`doc/libervia-compat.rst`).

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::{Value, json};
use zbus::message::Message;

use super::Lib;
use super::dispatch::{Answer, Map, OrderedMap, args, out, unit};
use super::errors::LibError;

pub async fn call(lib: &Lib, name: &str, msg: &Message) -> Answer {
    match name {
        "getSoftwareVersion" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "version", json!({"jid": jid})).await?;
            out((s(&v["name"]), s(&v["version"]), s(&v["os"])))
        }
        "ping" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "ping", json!({"jid": jid})).await?;
            out(v["rtt_ms"].as_f64().unwrap_or_default() / 1000.0)
        }
        "chatStateComposing" => {
            let (to, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            action(
                lib,
                &p,
                "chat_state_send",
                json!({"to": to, "state": "composing"}),
            )
            .await?;
            unit()
        }
        "mucGetRoomsJoined" => {
            let key: String = args(msg)?;
            lib.profile(&key).await?;
            type Room = (String, HashMap<String, Map>, String, String, Vec<String>);
            out(Vec::<Room>::new())
        }
        "identityGet" => {
            let (jid, _filter, _use_cache, key): (String, Vec<String>, bool, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let bare = super::core::bare(&jid);
            let from_roster = lib.daemon.roster(&p).await.ok().and_then(|r| {
                r.into_iter()
                    .find(|i| i.jid == bare)
                    .and_then(|i| i.name)
                    .filter(|n| !n.is_empty())
            });
            let nick = from_roster.unwrap_or_else(|| capitalised_local(&bare));
            // As 0.9: the data is also announced, for the frontends' entity cache.
            lib.emit(
                super::CORE_INTERFACE,
                "entityDataUpdated",
                &(bare.clone(), "nicknames", json!([nick]).to_string(), p),
            )
            .await;
            out(json!({"nicknames": [nick]}).to_string())
        }
        "psNodeCreate" => {
            let (service, node, options, key): (String, String, Map, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = target(&service, &node);
            if node.is_empty() {
                a.as_object_mut().map(|o| o.remove("node"));
            }
            if !options.is_empty() {
                a["config"] = json!(options);
            }
            let v = action(lib, &p, "pubsub_node_create", a).await?;
            out(s(&v["node"]))
        }
        "psNodeDelete" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            action(lib, &p, "pubsub_node_delete", target(&service, &node)).await?;
            unit()
        }
        "psNodeConfigurationGet" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "pubsub_node_config_get", target(&service, &node)).await?;
            out(config_values(&v["config"]))
        }
        "psItemSend" => {
            let (service, node, payload, item_id, extra, key): (
                String,
                String,
                String,
                String,
                String,
                String,
            ) = args(msg)?;
            let p = lib.profile(&key).await?;
            let extra = json_arg("extra", &extra)?;
            let mut a = target(&service, &node);
            a["payload"] = json!(payload);
            if !item_id.is_empty() {
                a["item_id"] = json!(item_id);
            }
            if let Some(o) = extra.get("publish_options").filter(|o| o.is_object()) {
                a["options"] = o.clone();
            }
            let v = action(lib, &p, "pubsub_publish", a).await?;
            out(s(&v["item_id"]))
        }
        "psItemRetract" => {
            let (service, node, item_id, notify, key): (String, String, String, bool, String) =
                args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = target(&service, &node);
            a["item_ids"] = json!([item_id]);
            a["notify"] = json!(notify);
            action(lib, &p, "pubsub_retract", a).await?;
            unit()
        }
        "psItemsGet" | "psCacheGet" => {
            let (service, node, max, item_ids, _sub_id, extra, key): (
                String,
                String,
                i32,
                Vec<String>,
                String,
                String,
                String,
            ) = args(msg)?;
            let p = lib.profile(&key).await?;
            let extra = json_arg("extra", &extra)?;
            let mut a = items_args(&service, &node, max, &item_ids, &extra)?;
            let name = if name == "psCacheGet" {
                "pubsub_cache_get"
            } else {
                "pubsub_items_get"
            };
            if name == "pubsub_cache_get"
                && let Some(o) = a.as_object_mut()
            {
                o.remove("all");
                o.remove("use_cache");
            }
            let v = match action(lib, &p, name, a).await {
                Err(e) if e.body().contains("is not in the cache") => {
                    return Err(LibError::exc(super::errors::NOT_FOUND, &node, ""));
                }
                other => other?,
            };
            out(items_result(&v))
        }
        "psSubscribe" => {
            let (service, node, _options, key): (String, String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "pubsub_subscribe", target(&service, &node)).await?;
            out(s(&v["subscription"]["subid"]))
        }
        "psUnsubscribe" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            action(lib, &p, "pubsub_unsubscribe", target(&service, &node)).await?;
            unit()
        }
        "psSubscriptionsGet" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = json!({});
            if !service.is_empty() {
                a["service"] = json!(service);
            }
            if !node.is_empty() {
                a["node"] = json!(node);
            }
            let v = action(lib, &p, "pubsub_subscriptions", a).await?;
            let list: Vec<Value> = v["subscriptions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let mut o = json!({
                        "service": v["service"],
                        "node": e["node"],
                        "subscriber": e["jid"],
                        "state": e["subscription"],
                    });
                    if let Some(id) = e["subid"].as_str() {
                        o["id"] = json!(id);
                    }
                    o
                })
                .collect();
            out(Value::Array(list).to_string())
        }
        "psCacheSync" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "pubsub_cache_sync", target(&service, &node)).await?;
            // As 0.9, the reply comes once the node is synchronised, so that the
            // frontend's next read finds it in the cache.
            if let Some(job) = v["job"].as_str() {
                wait_job(lib, job).await?;
            }
            unit()
        }
        "psCachePurge" => {
            let query: String = args(msg)?;
            let q = json_arg("query", &query)?;
            let mut a = json!({});
            for k in ["services", "nodes", "profiles", "types", "subtypes"] {
                if let Some(l) = q.get(k).filter(|l| l.is_array()) {
                    a[k] = l.clone();
                }
            }
            for k in ["updated_before", "created_before"] {
                match q.get(k) {
                    Some(Value::Number(n)) => a[k] = json!(n.to_string()),
                    Some(Value::String(t)) => a[k] = json!(t),
                    _ => {}
                }
            }
            action(lib, "", "pubsub_cache_purge", a).await?;
            unit()
        }
        "psCacheReset" => {
            action(lib, "", "pubsub_cache_reset", json!({})).await?;
            unit()
        }
        "psCacheSearch" => {
            let query: String = args(msg)?;
            let q = json_arg("query", &query)?;
            let with_payload = q["with_payload"].as_bool().unwrap_or(false);
            let v = action(
                lib,
                "",
                "pubsub_cache_search",
                json!({"query": search_query(&q)?}),
            )
            .await?;
            let items: Vec<Value> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let mut o = match search_parsed(i) {
                        Value::Object(o) => o,
                        _ => serde_json::Map::new(),
                    };
                    o.insert("pubsub_service".into(), i["service"].clone());
                    o.insert("pubsub_node".into(), i["node"].clone());
                    o.insert("node_profile".into(), i["profile"].clone());
                    if with_payload {
                        o.insert("item_payload".into(), i["xml"].clone());
                    }
                    Value::Object(o)
                })
                .collect();
            out(Value::Array(items).to_string())
        }
        "mbSend" => {
            let (service, node, data, key): (String, String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let d = json_arg("mb_data", &data)?;
            let mut post = json!({});
            for k in ["title", "content", "content_xhtml", "tags", "language"] {
                if let Some(v) = d.get(k).filter(|v| !v.is_null()) {
                    post[k] = v.clone();
                }
            }
            // Rich content is in the profile's composition syntax: published as
            // XHTML, with its text alongside (Atom wants a text content), as 0.9 does.
            if let Some(r) = d.get("content_rich").and_then(Value::as_str) {
                if post.get("content_xhtml").is_some() {
                    return Err(LibError::exc(
                        super::errors::DATA,
                        "Can't have xhtml and rich content at the same time",
                        "",
                    ));
                }
                let syntax = current_syntax(lib, &p).await?;
                let xhtml = super::syntax::convert(r, &syntax, "xhtml")?;
                if post.get("content").is_none() {
                    post["content"] = json!(super::syntax::convert(&xhtml, "xhtml", "text")?);
                }
                post["content_xhtml"] = json!(xhtml);
            } else if post.get("content").is_none()
                && let Some(x) = post.get("content_xhtml").and_then(Value::as_str)
            {
                post["content"] = json!(super::syntax::convert(x, "xhtml", "text")?);
            }
            if d["allow_comments"].as_bool() == Some(true) {
                post["comments"] = json!(true);
            }
            let mut a = target(&service, &node);
            if node.is_empty() {
                a.as_object_mut().map(|o| o.remove("node"));
            }
            if let Some(id) = post_item_id(&d) {
                a["item_id"] = json!(id);
            }
            a["post"] = post;
            let v = action(lib, &p, "blog_publish", a).await?;
            out(s(&v["item_id"]))
        }
        "syntaxGet" => {
            let name: String = args(msg)?;
            out(super::syntax::key(&name)?.to_owned())
        }
        "syntaxConvert" => {
            let (text, from, to, _safe, key): (String, String, String, bool, String) = args(msg)?;
            // Only "@CURRENT@" needs the profile (its Composition/Syntax).
            let resolve = async |s: String| -> Result<String, LibError> {
                if s == super::syntax::CURRENT {
                    let p = lib.profile(&key).await?;
                    current_syntax(lib, &p).await
                } else {
                    Ok(s)
                }
            };
            let from = resolve(from).await?;
            let to = resolve(to).await?;
            out(super::syntax::convert(&text, &from, &to)?)
        }
        "mbGet" => {
            let (service, node, max, item_ids, extra, key): (
                String,
                String,
                i32,
                Vec<String>,
                String,
                String,
            ) = args(msg)?;
            let p = lib.profile(&key).await?;
            let extra = json_arg("extra", &extra)?;
            let mut a = items_args(&service, &node, max, &item_ids, &extra)?;
            if let Some(o) = a.as_object_mut() {
                o.remove("all");
                if node.is_empty() {
                    o.remove("node");
                }
            }
            let v = action(lib, &p, "blog_get", a).await?;
            let (svc, nd) = (s(&v["service"]), s(&v["node"]));
            let items: Vec<Value> = v["posts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|post| mb_data(post, &svc, &nd))
                .collect();
            let mut r = json!({"service": svc, "node": nd, "uri": uri(&svc, &nd), "items": items});
            // 0.9 answers with an RSM block only when the call asked for a page.
            if rsm_asked(&extra) && !v["rsm"].is_null() {
                r["rsm"] = v["rsm"].clone();
            }
            out(r.to_string())
        }
        "psNodePurge" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            action(lib, &p, "pubsub_node_purge", target(&service, &node)).await?;
            unit()
        }
        "psNodeConfigurationSet" => {
            let (service, node, options, key): (String, String, Map, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = target(&service, &node);
            a["config"] = json!(options);
            action(lib, &p, "pubsub_node_config_set", a).await?;
            unit()
        }
        "psItemsRetract" => {
            let (service, node, ids, notify, key): (String, String, Vec<String>, bool, String) =
                args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = target(&service, &node);
            a["item_ids"] = json!(ids);
            a["notify"] = json!(notify);
            action(lib, &p, "pubsub_retract", a).await?;
            unit()
        }
        "psItemsSend" => {
            let (service, node, items, extra, key): (String, String, Vec<String>, String, String) =
                args(msg)?;
            let p = lib.profile(&key).await?;
            let extra = json_arg("extra", &extra)?;
            let mut ids = Vec::new();
            for payload in items {
                let mut a = target(&service, &node);
                a["payload"] = json!(payload);
                if let Some(o) = extra.get("publish_options").filter(|o| o.is_object()) {
                    a["options"] = o.clone();
                }
                let v = action(lib, &p, "pubsub_publish", a).await?;
                ids.push(s(&v["item_id"]));
            }
            out(ids)
        }
        "psAffiliationsGet" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = json!({});
            if !service.is_empty() {
                a["service"] = json!(service);
            }
            if !node.is_empty() {
                a["node"] = json!(node);
            }
            let v = action(lib, &p, "pubsub_affiliations", a).await?;
            out(pairs(&v["affiliations"], "node", "affiliation"))
        }
        "psNodeAffiliationsGet" | "psNodeSubscriptionsGet" => {
            let (service, node, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let (act, what, attr) = if name == "psNodeAffiliationsGet" {
                (
                    "pubsub_node_affiliations_get",
                    "affiliations",
                    "affiliation",
                )
            } else {
                (
                    "pubsub_node_subscriptions_get",
                    "subscriptions",
                    "subscription",
                )
            };
            let v = action(lib, &p, act, target(&service, &node)).await?;
            out(pairs(&v[what], "jid", attr))
        }
        "psNodeAffiliationsSet" | "psNodeSubscriptionsSet" => {
            let (service, node, entries, key): (String, String, Map, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let (act, what) = if name == "psNodeAffiliationsSet" {
                ("pubsub_node_affiliations_set", "affiliations")
            } else {
                ("pubsub_node_subscriptions_set", "subscriptions")
            };
            let mut a = target(&service, &node);
            a[what] = json!(entries);
            action(lib, &p, act, a).await?;
            unit()
        }
        "mbRetract" => {
            let (service, node, item_id, key): (String, String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut a = target(&service, &node);
            if node.is_empty() {
                a.as_object_mut().map(|o| o.remove("node"));
            }
            a["item_id"] = json!(item_id);
            action(lib, &p, "blog_retract", a).await?;
            unit()
        }
        other => Err(LibError::not_registered(other)),
    }
}

/// `[{k: …, v: …}]` → `{k: v}`.
fn pairs(list: &Value, k: &str, v: &str) -> Map {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|e| (s(&e[k]), s(&e[v])))
        .collect()
}

/// How long `psCacheSync` waits for its sync (the frontends' own timeout is 120 s).
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(110);

/// Waits until a job ends; its error, if it failed.
async fn wait_job(lib: &Lib, id: &str) -> Result<(), LibError> {
    let deadline = tokio::time::Instant::now() + SYNC_WAIT;
    loop {
        let j = lib.daemon.jobs.get(id).await?;
        match j.state.as_str() {
            "running" if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            "running" => {
                return Err(LibError::exc(
                    super::errors::TIMEOUT,
                    &format!("the sync (job {id}) is still running; perchd goes on with it"),
                    "",
                ));
            }
            "finished" => return Ok(()),
            _ => {
                return Err(LibError::internal(&format!(
                    "the sync (job {id}) failed: {}",
                    j.error.unwrap_or_default()
                )));
            }
        }
    }
}

/// `{service?, node}`: an empty service is the profile's own PEP.
fn target(service: &str, node: &str) -> Value {
    let mut a = json!({"node": node});
    if !service.is_empty() {
        a["service"] = json!(service);
    }
    a
}

fn json_arg(name: &str, text: &str) -> Result<Value, LibError> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| LibError::value(&format!("{name} is not JSON: {e}")))
}

/// The item id of a post sent with `mbSend`: the one in mb_data, else (unless
/// `user_friendly_id` is false: then the service picks one) a readable one as 0.9
/// makes it, the title (else the text) as a URL-friendly slug plus `-` and a short
/// random suffix, e.g. `first-post-bL1B`.
fn post_item_id(d: &Value) -> Option<String> {
    if let Some(id) = d["id"].as_str().filter(|i| !i.is_empty()) {
        return Some(id.to_owned());
    }
    if d["user_friendly_id"].as_bool() == Some(false) {
        return None;
    }
    let base = ["title", "title_rich", "content", "content_rich"]
        .iter()
        .find_map(|k| d[*k].as_str().filter(|t| !t.is_empty()))
        .unwrap_or_default();
    Some(format!("{}-{}", slug(base), short_suffix()))
}

/// Longest slug 0.9 makes; longer ones lose whole words from the end.
const SLUG_MAX: usize = 60;

/// Text made URL-friendly as 0.9 does: accents dropped (é → e), anything but ASCII
/// letters, digits, `,` and `_` is a word break, lower case, words joined by `-`.
fn slug(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let ascii: String = text.nfd().filter(char::is_ascii).collect();
    let spaced: String = ascii
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ',' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let mut s = spaced.split_whitespace().collect::<Vec<_>>().join("-");
    while s.len() > SLUG_MAX {
        match s.rfind('-') {
            Some(i) => s.truncate(i),
            None => s.truncate(SLUG_MAX),
        }
    }
    s
}

/// Four random letters or digits (0.9 uses four URL-safe base64 characters; leaving
/// out `-` and `_` keeps the slug's end unambiguous).
fn short_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let hex = perch_plugin_api::ids::random_hex(4);
    (0..4)
        .map(|i| {
            let b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_default();
            char::from(ALPHABET[usize::from(b) % ALPHABET.len()])
        })
        .collect()
}

/// A node configuration form as 0.9's `psNodeConfigurationGet` gives it: the fields in
/// the form's order, each as Python's `str()` of the field's first value once typed
/// (`True`/`False` for booleans, `None` for no value), `FORM_TYPE` left out.
fn config_values(form: &Value) -> OrderedMap {
    let fields = form["fields"].as_array().into_iter().flatten();
    OrderedMap(
        fields
            .filter_map(|f| {
                let var = f["var"].as_str().filter(|v| *v != "FORM_TYPE")?;
                let first = match &f["value"] {
                    Value::Array(l) => l.first().and_then(Value::as_str),
                    v => v.as_str(),
                };
                let text = match (f["type"].as_str(), first) {
                    (_, None) => "None".to_owned(),
                    (Some("boolean"), Some(b)) => {
                        if matches!(b.trim().to_ascii_lowercase().as_str(), "1" | "true") {
                            "True".to_owned()
                        } else {
                            "False".to_owned()
                        }
                    }
                    (_, Some(t)) => t.to_owned(),
                };
                Some((var.to_owned(), text))
            })
            .collect(),
    )
}

/// The items request of `psItemsGet`/`psCacheGet`/`mbGet`: `max` -1 is no limit;
/// `rsm_max`/`rsm_before`/`rsm_after`/`rsm_index` (strings) in `extra` ask for an RSM
/// page; `use_cache: false` bypasses the cache.
fn items_args(
    service: &str,
    node: &str,
    max: i32,
    item_ids: &[String],
    extra: &Value,
) -> Result<Value, LibError> {
    let mut a = target(service, node);
    let num = |k: &str| -> Result<Option<i64>, LibError> {
        match &extra[k] {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_i64()),
            Value::String(t) => t
                .parse()
                .map(Some)
                .map_err(|_| LibError::value(&format!("{k} {t:?} is not a number"))),
            other => Err(LibError::value(&format!("{k} {other} is not a number"))),
        }
    };
    let rsm_max = num("rsm_max")?;
    let index = num("rsm_index")?;
    let before = extra["rsm_before"].as_str();
    let after = extra["rsm_after"].as_str();
    if !item_ids.is_empty() {
        a["item_ids"] = json!(item_ids);
    } else if before.is_some() || after.is_some() || index.is_some() {
        if let Some(b) = before {
            a["before"] = json!(b);
        }
        if let Some(x) = after {
            a["after"] = json!(x);
        }
        if let Some(i) = index {
            a["index"] = json!(i);
        }
        if let Some(m) = rsm_max.or((max >= 0).then_some(i64::from(max))) {
            a["max"] = json!(m);
        }
    } else if let Some(m) = rsm_max.or((max >= 0).then_some(i64::from(max))) {
        a["max"] = json!(m);
    } else {
        a["all"] = json!(true);
    }
    if extra["use_cache"].as_bool() == Some(false) {
        a["use_cache"] = json!(false);
    }
    Ok(a)
}

/// The parsed data of a cached item as 0.9's cache search gives it: a blog post as
/// mb_data (what `mbGet` gives), anything else as Perch parsed it.
fn search_parsed(item: &Value) -> Value {
    let (service, node) = (s(&item["service"]), s(&item["node"]));
    let blog = item["type"].as_str() == Some("blog") || node.starts_with("urn:xmpp:microblog:0");
    match &item["parsed"] {
        Value::Object(p) if blog => {
            let mut post = p.clone();
            post.insert("item_id".into(), item["item_id"].clone());
            mb_data(&Value::Object(post), &service, &node)
        }
        other => other.clone(),
    }
}

/// Whether `extra` asks for an RSM page (any `rsm_*` key).
fn rsm_asked(extra: &Value) -> bool {
    ["rsm_max", "rsm_before", "rsm_after", "rsm_index"]
        .iter()
        .any(|k| !extra[*k].is_null())
}

/// A node's XMPP URI as 0.9 writes it (RFC 5122 form; the node percent-encoded).
fn uri(service: &str, node: &str) -> String {
    format!("xmpp:{service}?;node={}", quote_plus(node))
}

/// An item's XMPP URI as 0.9 writes it: the JID encoded too, its `@` kept.
fn item_uri(service: &str, node: &str, item: &str) -> String {
    format!(
        "xmpp:{}?;node={};item={}",
        quote_plus(service).replace("%40", "@"),
        quote_plus(node),
        quote_plus(item)
    )
}

/// Python's `urllib.parse.quote_plus` on UTF-8: ASCII letters, digits and `_.-~` as
/// they are, a space as `+`, every other byte as `%XX` (upper-case hex).
fn quote_plus(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn attr_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A Perch items page as Libervia's `psItemsGet` result: items as XML strings in the
/// pubsub namespace, in the service's order.
fn items_result(v: &Value) -> String {
    let (svc, node) = (s(&v["service"]), s(&v["node"]));
    let items: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let publisher = i["publisher"]
                .as_str()
                .map(|p| format!(" publisher='{}'", attr_escape(p)))
                .unwrap_or_default();
            format!(
                "<item xmlns='http://jabber.org/protocol/pubsub' id='{}'{publisher}>{}</item>",
                attr_escape(&s(&i["id"])),
                s(&i["payload"])
            )
        })
        .collect();
    let mut r = json!({"service": svc, "node": node, "uri": uri(&svc, &node), "items": items});
    if !v["rsm"].is_null() {
        r["rsm"] = v["rsm"].clone();
        r["complete"] = v["complete"].clone();
    }
    r.to_string()
}

/// A Perch post as Libervia's mb_data.
fn mb_data(post: &Value, service: &str, node: &str) -> Value {
    let id = s(&post["item_id"]);
    let epoch = |k: &str| {
        post[k]
            .as_str()
            .and_then(crate::time::parse)
            .map(|m| m / 1_000_000)
    };
    let mut d = json!({
        "service": service,
        "node": node,
        "id": id,
        "uri": item_uri(service, node, &id),
        "extra": {},
        "comments": [],
        "author_jid_verified": false,
    });
    for k in ["title", "content", "content_xhtml", "language", "tags"] {
        if !post[k].is_null() {
            d[k] = post[k].clone();
        }
    }
    if let Some(x) = d["content_xhtml"].as_str() {
        d["content_xhtml"] = json!(without_xhtml_xmlns(x));
    }
    if let Some(a) = post["id"].as_str() {
        d["atom_id"] = json!(a);
    }
    if let Some(n) = post["author"]["name"].as_str() {
        d["author"] = json!(n);
    }
    if let Some(j) = post["author"]["jid"].as_str() {
        d["author_jid"] = json!(j);
    }
    for k in ["published", "updated"] {
        if let Some(t) = epoch(k) {
            d[k] = json!(t);
        }
    }
    if let Some(c) = post["comments"].as_array() {
        d["comments"] = json!(
            c.iter()
                .map(|c| json!({"uri": c["uri"], "service": c["service"], "node": c["node"]}))
                .collect::<Vec<_>>()
        );
    }
    d
}

/// XHTML content as Libervia's frontends get it: the root `<div>` without its
/// namespace declaration (0.9 sends `<div><p>…`; what Perch parsed from the Atom entry
/// carries `xmlns='http://www.w3.org/1999/xhtml'`, the same element for an XML reader
/// but a different string for a frontend that compares or embeds it).
fn without_xhtml_xmlns(x: &str) -> String {
    for q in ['\'', '"'] {
        let decl = format!(" xmlns={q}http://www.w3.org/1999/xhtml{q}");
        if let Some(rest) = x.strip_prefix("<div")
            && let Some(after) = rest.strip_prefix(decl.as_str())
        {
            return format!("<div{after}");
        }
    }
    x.to_owned()
}

/// Libervia's cache search query in Perch's terms (same keys where they agree;
/// `order-by` and `parsed` renamed; Libervia's SQL operators mapped onto Perch's).
fn search_query(q: &Value) -> Result<Value, LibError> {
    let mut out = json!({});
    if let Some(f) = q["fts"].as_str() {
        out["fts"] = json!(f);
    }
    for k in ["profiles", "services", "nodes", "types", "subtypes"] {
        if let Some(l) = q[k].as_array() {
            let l: Vec<&Value> = l.iter().filter(|v| v.as_str() != Some("")).collect();
            out[k] = json!(l);
        }
    }
    for k in ["limit", "index"] {
        if let Some(n) = q[k].as_u64() {
            out[k] = json!(n);
        }
    }
    if q["with_payload"].as_bool() == Some(true) {
        out["with_xml"] = json!(true);
    }
    let mut order = Vec::new();
    for o in q["order-by"].as_array().into_iter().flatten() {
        let desc = o["direction"].as_str() == Some("desc");
        if let Some(p) = o.get("path") {
            order.push(json!({"key": "path", "path": p, "desc": desc}));
        } else {
            order.push(json!({"key": s(&o["order"]), "desc": desc}));
        }
    }
    if !order.is_empty() {
        out["order_by"] = json!(order);
    }
    let mut filters = Vec::new();
    for f in q["parsed"].as_array().into_iter().flatten() {
        let op = match s(&f["op"]).as_str() {
            "==" | "eq" => "eq".to_owned(),
            "!=" | "ne" => "ne".to_owned(),
            ">" | "gt" => "gt".to_owned(),
            ">=" | "ge" | "gte" => "gte".to_owned(),
            "<" | "lt" => "lt".to_owned(),
            "<=" | "le" | "lte" => "lte".to_owned(),
            "idisjoint" => "idisjoint".to_owned(),
            other => other.to_owned(),
        };
        filters.push(json!({"path": f["path"], "op": op, "value": f["value"]}));
    }
    if !filters.is_empty() {
        out["filters"] = json!(filters);
    }
    Ok(out)
}

/// The profile's `Composition/Syntax` (markdown unless set).
async fn current_syntax(lib: &Lib, profile: &str) -> Result<String, LibError> {
    Ok(lib
        .params
        .get_sync(profile, "Composition", "Syntax", "value")
        .await?)
}

/// Runs a plugin action with JSON arguments.
pub async fn action(lib: &Lib, profile: &str, name: &str, args: Value) -> Result<Value, LibError> {
    Ok(lib.daemon.run_action(profile, name, args).await?)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// `alice@example.org` → `Alice`: Libervia's last-resort nickname.
fn capitalised_local(bare: &str) -> String {
    let local = bare.split_once('@').map_or(bare, |(l, _)| l);
    let mut c = local.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhtml_content_loses_only_the_root_namespace_declaration() {
        assert_eq!(
            without_xhtml_xmlns(
                "<div xmlns='http://www.w3.org/1999/xhtml'><p>Hello <em>world</em></p></div>"
            ),
            "<div><p>Hello <em>world</em></p></div>"
        );
        assert_eq!(
            without_xhtml_xmlns("<div xmlns=\"http://www.w3.org/1999/xhtml\" class=\"x\"/>"),
            "<div class=\"x\"/>"
        );
        // Anything else is left as it is.
        assert_eq!(without_xhtml_xmlns("<div><p/></div>"), "<div><p/></div>");
        assert_eq!(
            without_xhtml_xmlns("<div xmlns='urn:other'/>"),
            "<div xmlns='urn:other'/>"
        );
    }

    #[test]
    fn items_requests_translate_libervia_limits_and_rsm() {
        let none = json!({});
        assert_eq!(
            items_args("", "n", -1, &[], &none).unwrap(),
            json!({"node": "n", "all": true})
        );
        assert_eq!(
            items_args("pubsub.example.org", "n", 10, &[], &none).unwrap(),
            json!({"service": "pubsub.example.org", "node": "n", "max": 10})
        );
        let rsm = json!({"rsm_max": "5", "rsm_before": "", "use_cache": false});
        assert_eq!(
            items_args("", "n", -1, &[], &rsm).unwrap(),
            json!({"node": "n", "before": "", "max": 5, "use_cache": false})
        );
        assert_eq!(
            items_args("", "n", 10, &["a".into()], &none).unwrap(),
            json!({"node": "n", "item_ids": ["a"]})
        );
        let bad = json!({"rsm_max": "many"});
        assert!(items_args("", "n", -1, &[], &bad).is_err());
    }

    #[test]
    fn cache_search_queries_translate_to_perch_terms() {
        let q = json!({
            "fts": "hello", "types": ["blog", ""], "limit": 5,
            "order-by": [{"order": "creation", "direction": "desc"},
                         {"path": ["title"], "direction": "asc"}],
            "parsed": [{"path": ["author", "name"], "op": "==", "value": "alice"},
                       {"path": ["n"], "op": "<=", "value": 3}],
            "with_payload": true,
        });
        assert_eq!(
            search_query(&q).unwrap(),
            json!({
                "fts": "hello", "types": ["blog"], "limit": 5, "with_xml": true,
                "order_by": [{"key": "creation", "desc": true},
                             {"key": "path", "path": ["title"], "desc": false}],
                "filters": [{"path": ["author", "name"], "op": "eq", "value": "alice"},
                            {"path": ["n"], "op": "lte", "value": 3}],
            })
        );
    }

    #[test]
    fn pages_become_libervia_items_json_with_xml_strings() {
        let page = json!({
            "service": "alice@example.org", "node": "n",
            "items": [{"id": "it'1", "payload": "<x xmlns='urn:x'/>"}],
        });
        let v: Value = serde_json::from_str(&items_result(&page)).unwrap();
        assert_eq!(
            v,
            json!({
                "service": "alice@example.org", "node": "n",
                "uri": "xmpp:alice@example.org?;node=n",
                "items": ["<item xmlns='http://jabber.org/protocol/pubsub' id='it&apos;1'><x xmlns='urn:x'/></item>"],
            })
        );
    }

    #[test]
    fn config_forms_become_python_str_values_in_form_order() {
        let form = json!({"fields": [
            {"var": "FORM_TYPE", "type": "hidden", "value": "x"},
            {"var": "title", "type": "text-single", "value": null},
            {"var": "max_items", "type": "text-single", "value": "20"},
            {"var": "persist_items", "type": "boolean", "value": "1"},
            {"var": "notify_delete", "type": "boolean", "value": "false"},
            {"var": "owners", "type": "jid-multi", "value": ["a@b", "c@d"]},
            {"var": "empty", "type": "list-multi", "value": []},
        ]});
        let pairs = |l: &[(&str, &str)]| {
            OrderedMap(l.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect())
        };
        assert_eq!(
            config_values(&form),
            pairs(&[
                ("title", "None"),
                ("max_items", "20"),
                ("persist_items", "True"),
                ("notify_delete", "False"),
                ("owners", "a@b"),
                ("empty", "None"),
            ])
        );
    }

    #[test]
    fn readable_item_ids_as_libervia_makes_them() {
        assert_eq!(slug("First post"), "first-post");
        assert_eq!(slug("  Été à la mer, 2026!  "), "ete-a-la-mer,-2026");
        assert_eq!(slug(&"word ".repeat(30)).len(), 59);
        let id = post_item_id(&json!({"title": "First post"})).unwrap();
        let suffix = id.strip_prefix("first-post-").unwrap();
        assert!(suffix.len() == 4 && suffix.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            post_item_id(&json!({"id": "mine", "title": "x"})).unwrap(),
            "mine"
        );
        assert_eq!(
            post_item_id(&json!({"title": "x", "user_friendly_id": false})),
            None
        );
        let from_text = post_item_id(&json!({"content": "Hello *world*"})).unwrap();
        assert!(from_text.starts_with("hello-world-"));
    }

    #[test]
    fn uris_are_percent_encoded_as_libervia_does() {
        assert_eq!(
            uri("alice@localhost", "urn:xmpp:microblog:0"),
            "xmpp:alice@localhost?;node=urn%3Axmpp%3Amicroblog%3A0"
        );
        assert_eq!(
            item_uri("alice@localhost/r", "a b", "x;y"),
            "xmpp:alice@localhost%2Fr?;node=a+b;item=x%3By"
        );
        assert!(rsm_asked(&json!({"rsm_max": "5"})));
        assert!(!rsm_asked(&json!({"use_cache": false})));
    }

    #[test]
    fn posts_become_mb_data() {
        let post = json!({
            "item_id": "first", "id": "xmpp:a@b?;node=urn:xmpp:microblog:0;item=first",
            "title": "T", "content": "C", "published": "2026-01-01T00:00:00Z",
            "author": {"name": "alice", "jid": "a@b"}, "tags": ["x"],
        });
        let d = mb_data(&post, "a@b", "urn:xmpp:microblog:0");
        assert_eq!(d["id"], "first");
        assert_eq!(d["atom_id"], post["id"]);
        assert_eq!(d["published"], 1_767_225_600);
        assert_eq!(d["author"], "alice");
        assert_eq!(d["author_jid"], "a@b");
        assert_eq!(d["tags"], json!(["x"]));
        assert_eq!(d["comments"], json!([]));
    }

    #[test]
    fn fallback_nickname_is_the_capitalised_local_part() {
        assert_eq!(capitalised_local("alice@example.org"), "Alice");
        assert_eq!(capitalised_local("example.org"), "Example.org");
    }
}
