//! The pubsub actions: what frontends call (`ActionRun("pubsub_…", args)`).
//!
//! One function per operation, each a few lines: build the request (`xml`), send it,
//! read the reply. Errors from the service pass through typed (`HostError::Stanza`).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::{self as actions, Action};
use perch_plugin_api::action::{ActionResult, Call, Param, ParamType};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::{Host, HostError, action_fn};
use serde_json::{Map, Value, json};

use super::{ItemsRequest, done, get_items, node_of, p_node, p_service, service_name, spec, xml};
use crate::xep_0059::RsmRequest;

type Handler = fn(Arc<dyn Host>, Call) -> BoxFuture<'static, ActionResult>;

fn add(
    host: &Arc<dyn Host>,
    name: &'static str,
    doc: &'static str,
    params: Vec<Param>,
    f: Handler,
) {
    let h = host.clone();
    host.add_action(
        spec(name, doc, params),
        Arc::new(move |call| f(h.clone(), call)),
    );
}

/// An optional JSON object parameter.
fn object(name: &'static str, doc: &'static str) -> Param {
    Param::optional(name, ParamType::Object, doc)
}

fn bad(what: &str, why: impl std::fmt::Display) -> HostError {
    HostError::BadArgument(format!("{what}: {why}"))
}

fn usize_arg(call: &Call, name: &str) -> Result<Option<usize>, HostError> {
    call.args
        .i64(name)
        .map(|v| usize::try_from(v).map_err(|_| bad(name, format!("{v} is negative"))))
        .transpose()
}

/// Sends an IQ set about `node` to the call's service; answers `{service, node}`.
async fn set_node(host: &dyn Host, call: &Call, node: &str, payload: Element) -> ActionResult {
    let to = call.args.jid("service");
    host.iq(&call.profile, to.clone(), true, payload).await?;
    done(service_name(host, &call.profile, to.as_ref()).await, node)
}

/// The JID to subscribe: the `jid` argument, or the profile's own bare JID.
async fn subscriber(host: &dyn Host, call: &Call) -> Result<String, HostError> {
    if let Some(j) = call.args.str("jid") {
        return Ok(j.to_owned());
    }
    host.bound_jid(&call.profile)
        .await
        .map(|j| j.to_bare().to_string())
        .ok_or_else(|| HostError::NotConnected(call.profile.clone()))
}

pub fn register(host: &Arc<dyn Host>) {
    register_node_actions(host);
    register_item_actions(host);
    register_subscription_actions(host);
}

/// Node management: create, delete, purge, configuration, lists, info.
fn register_node_actions(host: &Arc<dyn Host>) {
    add(
        host,
        actions::pubsub::NodeCreate::NAME,
        "Creates a node (no node: an instant node named by the service), optionally configured",
        vec![
            p_service(),
            Param::optional("node", ParamType::String, "the node; none: an instant node"),
            object(
                "config",
                "node configuration: {\"pubsub#max_items\": \"max\", …}",
            ),
        ],
        node_create,
    );
    add(
        host,
        actions::pubsub::NodeDelete::NAME,
        "Deletes a node (owner), optionally redirecting its subscribers to another node's URI",
        vec![
            p_service(),
            p_node(),
            Param::optional(
                "redirect",
                ParamType::String,
                "xmpp: URI subscribers are sent to",
            ),
        ],
        node_delete,
    );
    add(
        host,
        actions::pubsub::NodePurge::NAME,
        "Removes every item of a node (owner)",
        vec![p_service(), p_node()],
        node_purge,
    );
    add(
        host,
        actions::pubsub::NodeConfigGet::NAME,
        "A node's configuration form (owner): {values: {var: value}, fields: [...]}",
        vec![p_service(), p_node()],
        node_config_get,
    );
    add(
        host,
        actions::pubsub::NodeConfigSet::NAME,
        "Changes a node's configuration (owner); only the given fields are sent",
        vec![
            p_service(),
            p_node(),
            Param::required(
                "config",
                ParamType::Object,
                "{\"pubsub#max_items\": \"100\", …}",
            ),
        ],
        node_config_set,
    );
    add(
        host,
        actions::pubsub::NodeDefaultConfig::NAME,
        "The configuration a new node gets on this service",
        vec![p_service()],
        node_default_config,
    );
    add(
        host,
        actions::pubsub::NodeListGet::NAME,
        "The nodes of a service (or the children of a collection node): disco#items",
        vec![
            p_service(),
            Param::optional("node", ParamType::String, "a collection node"),
        ],
        node_list,
    );
    add(
        host,
        actions::pubsub::NodeInfo::NAME,
        "A node's identity, features and meta-data (disco#info of the node)",
        vec![p_service(), p_node()],
        node_info,
    );
}

/// Items: publish, retract, get.
fn register_item_actions(host: &Arc<dyn Host>) {
    add(
        host,
        actions::pubsub::Publish::NAME,
        "Publishes an item (same id: replaces it); publish-options are preconditions",
        vec![
            p_service(),
            p_node(),
            Param::optional(
                "item_id",
                ParamType::String,
                "the item id; none: the service picks one",
            ),
            Param::required(
                "payload",
                ParamType::String,
                "the item's payload: one XML element with its namespace",
            ),
            object(
                "options",
                "publish-options: {\"pubsub#access_model\": \"open\", …}",
            ),
        ],
        publish,
    );
    add(
        host,
        actions::pubsub::Retract::NAME,
        "Retracts items from a node",
        vec![
            p_service(),
            p_node(),
            Param::required(
                "item_ids",
                ParamType::List,
                "the ids of the items to retract",
            ),
            Param::optional("notify", ParamType::Boolean, "notify subscribers")
                .with_default(json!(true)),
        ],
        retract,
    );
    add(
        host,
        actions::pubsub::ItemsGet::NAME,
        "Gets items: the newest max, given ids, one RSM page (before/after/index), or all",
        vec![
            p_service(),
            p_node(),
            Param::optional(
                "max",
                ParamType::Integer,
                "the newest N items; with RSM or all: the page size or bound",
            ),
            Param::optional("item_ids", ParamType::List, "these items only"),
            Param::optional(
                "before",
                ParamType::String,
                "RSM: the page before this id (\"\": the last page)",
            ),
            Param::optional("after", ParamType::String, "RSM: the page after this id"),
            Param::optional(
                "index",
                ParamType::Integer,
                "RSM: the page starting at this position",
            ),
            Param::optional("all", ParamType::Boolean, "every item of the node, paged")
                .with_default(json!(false)),
            Param::optional(
                "use_cache",
                ParamType::Boolean,
                "false: never answered from a cache",
            )
            .with_default(json!(true)),
        ],
        items_get,
    );
}

/// Subscriptions and affiliations, the profile's own and a node owner's.
fn register_subscription_actions(host: &Arc<dyn Host>) {
    add(
        host,
        actions::pubsub::Subscribe::NAME,
        "Subscribes to a node (default: with the profile's bare JID), optionally with options",
        vec![
            p_service(),
            p_node(),
            Param::optional(
                "jid",
                ParamType::Jid,
                "the subscriber; default: the profile's bare JID",
            ),
            object(
                "options",
                "subscription options: {\"pubsub#deliver\": true, …}",
            ),
        ],
        subscribe,
    );
    add(
        host,
        actions::pubsub::Unsubscribe::NAME,
        "Unsubscribes from a node",
        vec![
            p_service(),
            p_node(),
            Param::optional(
                "jid",
                ParamType::Jid,
                "the subscriber; default: the profile's bare JID",
            ),
            Param::optional(
                "subid",
                ParamType::String,
                "the subscription id, when there are several",
            ),
        ],
        unsubscribe,
    );
    register_own_lists(host);
    register_owner_lists(host);
}

/// The profile's own subscriptions and affiliations.
fn register_own_lists(host: &Arc<dyn Host>) {
    for (name, doc, what) in [
        (
            actions::pubsub::SubscriptionsGet::NAME,
            "The profile's subscriptions on a service (or one node)",
            "subscriptions",
        ),
        (
            actions::pubsub::AffiliationsGet::NAME,
            "The profile's affiliations on a service (or one node)",
            "affiliations",
        ),
    ] {
        let params = vec![
            p_service(),
            Param::optional("node", ParamType::String, "only this node"),
        ];
        host.add_action(
            spec(name, doc, params),
            action_fn(host.clone(), move |h, call| own_list(h, call, what)),
        );
    }
}

/// A node's subscriptions and affiliations, read and changed by its owner.
fn register_owner_lists(host: &Arc<dyn Host>) {
    for (what, get_name, set_name, get_doc, set_doc, set_param) in [
        (
            "subscriptions",
            actions::pubsub::NodeSubscriptionsGet::NAME,
            actions::pubsub::NodeSubscriptionsSet::NAME,
            "A node's subscriptions (owner)",
            "Changes subscriptions of a node (owner): {jid: subscribed|none|pending|unconfigured}",
            "{\"bob@example.org\": \"subscribed\" or \"none\"}",
        ),
        (
            "affiliations",
            actions::pubsub::NodeAffiliationsGet::NAME,
            actions::pubsub::NodeAffiliationsSet::NAME,
            "A node's affiliations (owner)",
            "Changes affiliations of a node (owner): {jid: owner|publisher|publish-only|member|none|outcast}",
            "{\"bob@example.org\": \"publisher\"}",
        ),
    ] {
        host.add_action(
            spec(get_name, get_doc, vec![p_service(), p_node()]),
            action_fn(host.clone(), move |h, call| owner_list_get(h, call, what)),
        );
        let params = vec![
            p_service(),
            p_node(),
            Param::required(what, ParamType::Object, set_param),
        ];
        host.add_action(
            spec(set_name, set_doc, params),
            action_fn(host.clone(), move |h, call| owner_list_set(h, call, what)),
        );
    }
}

/// `pubsub_subscriptions`, `pubsub_affiliations`.
async fn own_list(host: Arc<dyn Host>, call: Call, what: &'static str) -> ActionResult {
    let to = call.args.jid("service");
    let reply = host
        .iq(
            &call.profile,
            to.clone(),
            false,
            xml::mine(what, call.args.str("node")),
        )
        .await?;
    let service = service_name(&*host, &call.profile, to.as_ref()).await;
    Ok(json!({"service": service, what: xml::parse_list(reply.as_ref(), what)}))
}

/// `pubsub_node_subscriptions_get`, `pubsub_node_affiliations_get`.
async fn owner_list_get(host: Arc<dyn Host>, call: Call, what: &'static str) -> ActionResult {
    let node = node_of(&call)?;
    let to = call.args.jid("service");
    let reply = host
        .iq(
            &call.profile,
            to.clone(),
            false,
            xml::owner_list(what, &node, None),
        )
        .await?;
    let service = service_name(&*host, &call.profile, to.as_ref()).await;
    Ok(json!({"service": service, "node": node, what: xml::parse_list(reply.as_ref(), what)}))
}

/// `pubsub_node_subscriptions_set`, `pubsub_node_affiliations_set`.
async fn owner_list_set(host: Arc<dyn Host>, call: Call, what: &'static str) -> ActionResult {
    let node = node_of(&call)?;
    let entries: Map<String, Value> = call.args.object(what).cloned().unwrap_or_default();
    if entries.is_empty() {
        return Err(bad(what, "nothing to change"));
    }
    set_node(
        &*host,
        &call,
        &node,
        xml::owner_list(what, &node, Some(&entries)),
    )
    .await
}

/// `pubsub_node_create`.
fn node_create(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = call.args.str("node");
        let payload = xml::create(node, call.args.object("config"));
        let to = call.args.jid("service");
        let reply = host.iq(&call.profile, to.clone(), true, payload).await?;
        let node = xml::created_node(reply.as_ref())
            .or(node.map(str::to_owned))
            .ok_or_else(|| xml::malformed("create reply", "no node name"))?;
        done(
            service_name(&*host, &call.profile, to.as_ref()).await,
            &node,
        )
    }
    .boxed()
}

/// `pubsub_node_delete`.
fn node_delete(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        set_node(
            &*host,
            &call,
            &node,
            xml::delete(&node, call.args.str("redirect")),
        )
        .await
    }
    .boxed()
}

/// `pubsub_node_purge`.
fn node_purge(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        set_node(&*host, &call, &node, xml::purge(&node)).await
    }
    .boxed()
}

/// `pubsub_node_config_get`.
fn node_config_get(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let to = call.args.jid("service");
        let reply = host
            .iq(&call.profile, to.clone(), false, xml::configure_get(&node))
            .await?;
        let form = xml::config_form(reply.as_ref())
            .ok_or_else(|| xml::malformed("configure reply", "no form"))?;
        let service = service_name(&*host, &call.profile, to.as_ref()).await;
        Ok(json!({"service": service, "node": node, "config": form}))
    }
    .boxed()
}

/// `pubsub_node_config_set`.
fn node_config_set(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let config = call.args.object("config").cloned().unwrap_or_default();
        set_node(&*host, &call, &node, xml::configure_set(&node, &config)).await
    }
    .boxed()
}

/// `pubsub_node_default_config`.
fn node_default_config(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let to = call.args.jid("service");
        let reply = host
            .iq(&call.profile, to.clone(), false, xml::default_get())
            .await?;
        let form = xml::config_form(reply.as_ref())
            .ok_or_else(|| xml::malformed("default reply", "no form"))?;
        let service = service_name(&*host, &call.profile, to.as_ref()).await;
        Ok(json!({"service": service, "config": form}))
    }
    .boxed()
}

/// `pubsub_node_list`.
fn node_list(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let to = call.args.jid("service");
        let reply = host
            .iq(
                &call.profile,
                to.clone(),
                false,
                xml::disco_items(call.args.str("node")),
            )
            .await?;
        let service = service_name(&*host, &call.profile, to.as_ref()).await;
        Ok(json!({"service": service, "nodes": xml::parse_disco_items(reply.as_ref())}))
    }
    .boxed()
}

/// `pubsub_node_info`.
fn node_info(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let to = call.args.jid("service");
        let reply = host
            .iq(
                &call.profile,
                to.clone(),
                false,
                xml::disco_info(Some(&node)),
            )
            .await?;
        let mut info = xml::parse_disco_info(reply.as_ref());
        info["service"] = json!(service_name(&*host, &call.profile, to.as_ref()).await);
        info["node"] = json!(node);
        Ok(info)
    }
    .boxed()
}

/// `pubsub_publish`.
fn publish(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let payload = xml::parse_payload(call.args.str("payload").unwrap_or_default())
            .map_err(|e| bad("payload", e))?;
        let id = call.args.str("item_id");
        let to = call.args.jid("service");
        let reply = host
            .iq(
                &call.profile,
                to.clone(),
                true,
                xml::publish(&node, id, payload, call.args.object("options")),
            )
            .await?;
        let item_id = xml::published_id(reply.as_ref()).or(id.map(str::to_owned));
        let service = service_name(&*host, &call.profile, to.as_ref()).await;
        Ok(json!({"service": service, "node": node, "item_id": item_id}))
    }
    .boxed()
}

/// `pubsub_retract`.
fn retract(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let ids = call.args.list("item_ids");
        if ids.is_empty() {
            return Err(bad("item_ids", "no item id given"));
        }
        let to = call.args.jid("service");
        let notify = call.args.bool("notify").unwrap_or(true);
        host.iq(
            &call.profile,
            to.clone(),
            true,
            xml::retract(&node, &ids, notify),
        )
        .await?;
        let service = service_name(&*host, &call.profile, to.as_ref()).await;
        Ok(json!({"service": service, "node": node, "retracted": ids}))
    }
    .boxed()
}

/// `pubsub_items_get`.
fn items_get(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let max = usize_arg(&call, "max")?;
        let index = usize_arg(&call, "index")?;
        let (before, after) = (call.args.str("before"), call.args.str("after"));
        let rsm = (before.is_some() || after.is_some() || index.is_some()).then(|| RsmRequest {
            max: Some(max.unwrap_or(20)),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
            index,
        });
        if [before.is_some(), after.is_some(), index.is_some()]
            .iter()
            .filter(|x| **x)
            .count()
            > 1
        {
            return Err(bad("before/after/index", "give at most one of them"));
        }
        let item_ids = call.args.list("item_ids");
        let all = call.args.bool("all").unwrap_or(false);
        if all && (rsm.is_some() || !item_ids.is_empty()) {
            return Err(bad(
                "all",
                "cannot be combined with item_ids, before, after or index",
            ));
        }
        let req = ItemsRequest {
            profile: call.profile.clone(),
            service: call.args.jid("service"),
            node,
            max_items: if rsm.is_some() { None } else { max },
            item_ids,
            rsm,
            all,
            use_cache: call.args.bool("use_cache").unwrap_or(true),
        };
        let page = get_items(&*host, req).await?;
        serde_json::to_value(page).map_err(|e| HostError::Internal(e.to_string()))
    }
    .boxed()
}

/// `pubsub_subscribe`.
fn subscribe(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let to = call.args.jid("service");
        let jid = subscriber(&*host, &call).await?;
        let reply = host
            .iq(
                &call.profile,
                to.clone(),
                true,
                xml::subscribe(&node, &jid, call.args.object("options")),
            )
            .await?;
        let sub = xml::parse_subscription(reply.as_ref())
            .unwrap_or_else(|| json!({"node": node, "jid": jid, "subscription": "subscribed"}));
        let service = service_name(&*host, &call.profile, to.as_ref()).await;
        Ok(json!({"service": service, "node": node, "subscription": sub}))
    }
    .boxed()
}

/// `pubsub_unsubscribe`.
fn unsubscribe(host: Arc<dyn Host>, call: Call) -> BoxFuture<'static, ActionResult> {
    async move {
        let node = node_of(&call)?;
        let jid = subscriber(&*host, &call).await?;
        set_node(
            &*host,
            &call,
            &node,
            xml::unsubscribe(&node, &jid, call.args.str("subid")),
        )
        .await
    }
    .boxed()
}
