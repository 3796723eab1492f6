//! Pubsub nodes, items, subscriptions and affiliations, each mapped onto a Perch
//! pubsub action (`doc/libervia-compat.rst`); an empty service is the profile's PEP.

use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::pubsub_json::{config_values, items_args, json_arg, pairs, s, target};
use crate::libervia::reply::{Answer, Map, out, unit};

use super::{ItemsArgs, action, items_page};

/// `(service, node, profile_key)`, the arguments of many calls.
type NodeArgs = (String, String, String);

/// `psNodeCreate(service, node, options, profile_key)`: the node's name (the
/// service's choice when `node` is empty).
pub async fn node_create(
    lib: &Lib,
    (service, node, options, key): (String, String, Map, String),
) -> Answer {
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

/// `psNodeDelete`.
pub async fn node_delete(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    action(lib, &p, "pubsub_node_delete", target(&service, &node)).await?;
    unit()
}

/// `psNodePurge`.
pub async fn node_purge(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    action(lib, &p, "pubsub_node_purge", target(&service, &node)).await?;
    unit()
}

/// `psNodeConfigurationGet`: the form's values in its order.
pub async fn node_config_get(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    let v = action(lib, &p, "pubsub_node_config_get", target(&service, &node)).await?;
    out(config_values(&v["config"]))
}

/// `psNodeConfigurationSet(service, node, options, profile_key)`.
pub async fn node_config_set(
    lib: &Lib,
    (service, node, options, key): (String, String, Map, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let mut a = target(&service, &node);
    a["config"] = json!(options);
    action(lib, &p, "pubsub_node_config_set", a).await?;
    unit()
}

/// `psItemSend(service, node, payload, item_id, extra, profile_key)`: the item's id.
pub async fn item_send(
    lib: &Lib,
    (service, node, payload, item_id, extra, key): (String, String, String, String, String, String),
) -> Answer {
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

/// `psItemsSend(service, node, items, extra, profile_key)`: one publish per item,
/// their ids in order.
pub async fn items_send(
    lib: &Lib,
    (service, node, items, extra, key): (String, String, Vec<String>, String, String),
) -> Answer {
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

/// `psItemRetract(service, node, item_id, notify, profile_key)`.
pub async fn item_retract(
    lib: &Lib,
    (service, node, item_id, notify, key): (String, String, String, bool, String),
) -> Answer {
    retract(lib, &service, &node, vec![item_id], notify, &key).await
}

/// `psItemsRetract(service, node, item_ids, notify, profile_key)`.
pub async fn items_retract(
    lib: &Lib,
    (service, node, ids, notify, key): (String, String, Vec<String>, bool, String),
) -> Answer {
    retract(lib, &service, &node, ids, notify, &key).await
}

async fn retract(
    lib: &Lib,
    service: &str,
    node: &str,
    ids: Vec<String>,
    notify: bool,
    key: &str,
) -> Answer {
    let p = lib.profile(key).await?;
    let mut a = target(service, node);
    a["item_ids"] = json!(ids);
    a["notify"] = json!(notify);
    action(lib, &p, "pubsub_retract", a).await?;
    unit()
}

/// `psItemsGet`: Libervia's items JSON, the items as XML strings.
pub async fn items_get(
    lib: &Lib,
    (service, node, max, item_ids, _sub_id, extra, key): ItemsArgs,
) -> Answer {
    let p = lib.profile(&key).await?;
    let extra = json_arg("extra", &extra)?;
    let a = items_args(&service, &node, max, &item_ids, &extra)?;
    items_page(lib, &p, "pubsub_items_get", &node, a).await
}

/// `psSubscribe(service, node, options, profile_key)`: the subscription id.
pub async fn subscribe(
    lib: &Lib,
    (service, node, _options, key): (String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let v = action(lib, &p, "pubsub_subscribe", target(&service, &node)).await?;
    out(s(&v["subscription"]["subid"]))
}

/// `psUnsubscribe`.
pub async fn unsubscribe(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    action(lib, &p, "pubsub_unsubscribe", target(&service, &node)).await?;
    unit()
}

/// `{service?, node?}` for the listing calls: empty ones are left out.
fn scope(service: &str, node: &str) -> Value {
    let mut a = json!({});
    if !service.is_empty() {
        a["service"] = json!(service);
    }
    if !node.is_empty() {
        a["node"] = json!(node);
    }
    a
}

/// `psSubscriptionsGet`: our subscriptions as JSON, in 0.9's keys.
pub async fn subscriptions_get(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    let v = action(lib, &p, "pubsub_subscriptions", scope(&service, &node)).await?;
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

/// `psAffiliationsGet`: our affiliations, by node.
pub async fn affiliations_get(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    let v = action(lib, &p, "pubsub_affiliations", scope(&service, &node)).await?;
    out(pairs(&v["affiliations"], "node", "affiliation"))
}

/// `psNodeAffiliationsGet`: a node's affiliations, by JID (node owners).
pub async fn node_affiliations_get(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    let act = "pubsub_node_affiliations_get";
    let v = action(lib, &p, act, target(&service, &node)).await?;
    out(pairs(&v["affiliations"], "jid", "affiliation"))
}

/// `psNodeSubscriptionsGet`: a node's subscriptions, by JID (node owners).
pub async fn node_subscriptions_get(lib: &Lib, (service, node, key): NodeArgs) -> Answer {
    let p = lib.profile(&key).await?;
    let act = "pubsub_node_subscriptions_get";
    let v = action(lib, &p, act, target(&service, &node)).await?;
    out(pairs(&v["subscriptions"], "jid", "subscription"))
}

/// `(service, node, {jid: value}, profile_key)`.
type NodeEntries = (String, String, Map, String);

/// `psNodeAffiliationsSet`.
pub async fn node_affiliations_set(lib: &Lib, args: NodeEntries) -> Answer {
    node_entries_set(lib, args, "pubsub_node_affiliations_set", "affiliations").await
}

/// `psNodeSubscriptionsSet`.
pub async fn node_subscriptions_set(lib: &Lib, args: NodeEntries) -> Answer {
    node_entries_set(lib, args, "pubsub_node_subscriptions_set", "subscriptions").await
}

async fn node_entries_set(
    lib: &Lib,
    (service, node, entries, key): NodeEntries,
    act: &str,
    what: &str,
) -> Answer {
    let p = lib.profile(&key).await?;
    let mut a = target(&service, &node);
    a[what] = json!(entries);
    action(lib, &p, act, a).await?;
    unit()
}
