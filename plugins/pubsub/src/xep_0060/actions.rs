//! The pubsub actions: what frontends call (`ActionRun("pubsub_…", args)`).
//!
//! Each is declared (doc, parameters, argument and result types) in
//! `perch_actions::pubsub`. One function per operation, each a few lines: build the
//! request (`xml`), send it, read the reply. Errors from the service pass through
//! typed (`HostError::Stanza`).

use std::sync::Arc;

use perch_actions::pubsub::{
    self as actions, Affiliations, DefaultConfig, Fields, ItemsGetArgs, NodeAffiliations, NodeArgs,
    NodeConfig, NodeConfigSetArgs, NodeCreateArgs, NodeDeleteArgs, NodeDone, NodeList,
    NodeSubscriptions, OnlyServiceArgs, PublishArgs, Published, RetractArgs, Retracted,
    ServiceArgs, SubscribeArgs, Subscribed, Subscriptions, UnsubscribeArgs,
};
use perch_plugin_api::action::opt_jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::{Host, HostError, Serve};
use serde_json::{Value, json};

use super::{ItemsRequest, get_items, service_name, xml};
use crate::xep_0059::RsmRequest;

type Answer<T> = Result<T, HostError>;

fn bad(what: &str, why: impl std::fmt::Display) -> HostError {
    HostError::BadArgument(format!("{what}: {why}"))
}

/// A count argument (`max`, `index`), which must not be negative.
fn count(name: &str, v: Option<i64>) -> Result<Option<usize>, HostError> {
    v.map(|v| usize::try_from(v).map_err(|_| bad(name, format!("{v} is negative"))))
        .transpose()
}

/// The `service` argument: `None` for the profile's own account (PEP).
fn service(s: Option<&str>) -> Result<Option<Jid>, HostError> {
    opt_jid_arg("service", s)
}

/// Sends an IQ set about `node` to `to`; answers `{service, node}`.
async fn set_node(
    host: &dyn Host,
    profile: &str,
    to: Option<Jid>,
    node: String,
    payload: Element,
) -> Answer<NodeDone> {
    host.iq(profile, to.clone(), true, payload).await?;
    Ok(NodeDone {
        service: service_name(host, profile, to.as_ref()).await,
        node,
    })
}

/// The JID to subscribe: the `jid` argument, or the profile's own bare JID.
async fn subscriber(host: &dyn Host, profile: &str, jid: Option<String>) -> Answer<String> {
    if let Some(j) = jid {
        return Ok(j);
    }
    host.bound_jid(profile)
        .await
        .map(|j| j.to_bare().to_string())
        .ok_or_else(|| HostError::NotConnected(profile.to_owned()))
}

pub fn register(host: &Arc<dyn Host>) {
    register_node_actions(host);
    register_item_actions(host);
    register_subscription_actions(host);
}

/// Node management: create, delete, purge, configuration, lists, info.
fn register_node_actions(host: &Arc<dyn Host>) {
    host.serve(actions::NodeCreate, host.clone(), node_create);
    host.serve(actions::NodeDelete, host.clone(), node_delete);
    host.serve(actions::NodePurge, host.clone(), node_purge);
    host.serve(actions::NodeConfigGet, host.clone(), node_config_get);
    host.serve(actions::NodeConfigSet, host.clone(), node_config_set);
    host.serve(
        actions::NodeDefaultConfig,
        host.clone(),
        node_default_config,
    );
    host.serve(actions::NodeListGet, host.clone(), node_list);
    host.serve(actions::NodeInfo, host.clone(), node_info);
}

/// Items: publish, retract, get.
fn register_item_actions(host: &Arc<dyn Host>) {
    host.serve(actions::Publish, host.clone(), publish);
    host.serve(actions::Retract, host.clone(), retract);
    host.serve(actions::ItemsGet, host.clone(), items_get);
}

/// Subscriptions and affiliations, the profile's own and a node owner's.
fn register_subscription_actions(host: &Arc<dyn Host>) {
    host.serve(actions::Subscribe, host.clone(), subscribe);
    host.serve(actions::Unsubscribe, host.clone(), unsubscribe);
    host.serve(
        actions::SubscriptionsGet,
        host.clone(),
        |h, profile, a: ServiceArgs| async move {
            let (service, subscriptions) = own_list(&*h, &profile, a, "subscriptions").await?;
            Ok(Subscriptions {
                service,
                subscriptions,
            })
        },
    );
    host.serve(
        actions::AffiliationsGet,
        host.clone(),
        |h, profile, a: ServiceArgs| async move {
            let (service, affiliations) = own_list(&*h, &profile, a, "affiliations").await?;
            Ok(Affiliations {
                service,
                affiliations,
            })
        },
    );
    register_owner_lists(host);
}

/// A node's subscriptions and affiliations, read and changed by its owner.
fn register_owner_lists(host: &Arc<dyn Host>) {
    host.serve(
        actions::NodeSubscriptionsGet,
        host.clone(),
        |h, profile, a: NodeArgs| async move {
            let (service, node, subscriptions) =
                owner_list_get(&*h, &profile, a, "subscriptions").await?;
            Ok(NodeSubscriptions {
                service,
                node,
                subscriptions,
            })
        },
    );
    host.serve(
        actions::NodeAffiliationsGet,
        host.clone(),
        |h, profile, a: NodeArgs| async move {
            let (service, node, affiliations) =
                owner_list_get(&*h, &profile, a, "affiliations").await?;
            Ok(NodeAffiliations {
                service,
                node,
                affiliations,
            })
        },
    );
    host.serve(actions::NodeSubscriptionsSet, host.clone(), |h, profile, a| {
        let target = NodeArgs {
            service: a.service,
            node: a.node,
        };
        async move { owner_list_set(&*h, &profile, target, "subscriptions", a.subscriptions).await }
    });
    host.serve(actions::NodeAffiliationsSet, host.clone(), |h, profile, a| {
        let target = NodeArgs {
            service: a.service,
            node: a.node,
        };
        async move { owner_list_set(&*h, &profile, target, "affiliations", a.affiliations).await }
    });
}

/// `pubsub_subscriptions`, `pubsub_affiliations`: the service and the list.
async fn own_list(
    host: &dyn Host,
    profile: &str,
    a: ServiceArgs,
    what: &str,
) -> Answer<(String, Value)> {
    let to = service(a.service.as_deref())?;
    let reply = host
        .iq(
            profile,
            to.clone(),
            false,
            xml::mine(what, a.node.as_deref()),
        )
        .await?;
    let service = service_name(host, profile, to.as_ref()).await;
    Ok((service, json!(xml::parse_list(reply.as_ref(), what))))
}

/// `pubsub_node_subscriptions_get`, `pubsub_node_affiliations_get`: the service, the
/// node and the list.
async fn owner_list_get(
    host: &dyn Host,
    profile: &str,
    a: NodeArgs,
    what: &str,
) -> Answer<(String, String, Value)> {
    let to = service(a.service.as_deref())?;
    let reply = host
        .iq(
            profile,
            to.clone(),
            false,
            xml::owner_list(what, &a.node, None),
        )
        .await?;
    let service = service_name(host, profile, to.as_ref()).await;
    let list = json!(xml::parse_list(reply.as_ref(), what));
    Ok((service, a.node, list))
}

/// `pubsub_node_subscriptions_set`, `pubsub_node_affiliations_set`.
async fn owner_list_set(
    host: &dyn Host,
    profile: &str,
    a: NodeArgs,
    what: &str,
    entries: Fields,
) -> Answer<NodeDone> {
    if entries.is_empty() {
        return Err(bad(what, "nothing to change"));
    }
    let to = service(a.service.as_deref())?;
    let payload = xml::owner_list(what, &a.node, Some(&entries));
    set_node(host, profile, to, a.node, payload).await
}

/// `pubsub_node_create`.
async fn node_create(host: Arc<dyn Host>, profile: String, a: NodeCreateArgs) -> Answer<NodeDone> {
    let payload = xml::create(a.node.as_deref(), a.config.as_ref());
    let to = service(a.service.as_deref())?;
    let reply = host.iq(&profile, to.clone(), true, payload).await?;
    let node = xml::created_node(reply.as_ref())
        .or(a.node)
        .ok_or_else(|| xml::malformed("create reply", "no node name"))?;
    Ok(NodeDone {
        service: service_name(&*host, &profile, to.as_ref()).await,
        node,
    })
}

/// `pubsub_node_delete`.
async fn node_delete(host: Arc<dyn Host>, profile: String, a: NodeDeleteArgs) -> Answer<NodeDone> {
    let to = service(a.service.as_deref())?;
    let payload = xml::delete(&a.node, a.redirect.as_deref());
    set_node(&*host, &profile, to, a.node, payload).await
}

/// `pubsub_node_purge`.
async fn node_purge(host: Arc<dyn Host>, profile: String, a: NodeArgs) -> Answer<NodeDone> {
    let to = service(a.service.as_deref())?;
    let payload = xml::purge(&a.node);
    set_node(&*host, &profile, to, a.node, payload).await
}

/// `pubsub_node_config_get`.
async fn node_config_get(host: Arc<dyn Host>, profile: String, a: NodeArgs) -> Answer<NodeConfig> {
    let to = service(a.service.as_deref())?;
    let reply = host
        .iq(&profile, to.clone(), false, xml::configure_get(&a.node))
        .await?;
    let config = xml::config_form(reply.as_ref())
        .ok_or_else(|| xml::malformed("configure reply", "no form"))?;
    Ok(NodeConfig {
        service: service_name(&*host, &profile, to.as_ref()).await,
        node: a.node,
        config,
    })
}

/// `pubsub_node_config_set`.
async fn node_config_set(
    host: Arc<dyn Host>,
    profile: String,
    a: NodeConfigSetArgs,
) -> Answer<NodeDone> {
    let to = service(a.service.as_deref())?;
    let payload = xml::configure_set(&a.node, &a.config);
    set_node(&*host, &profile, to, a.node, payload).await
}

/// `pubsub_node_default_config`.
async fn node_default_config(
    host: Arc<dyn Host>,
    profile: String,
    a: OnlyServiceArgs,
) -> Answer<DefaultConfig> {
    let to = service(a.service.as_deref())?;
    let reply = host
        .iq(&profile, to.clone(), false, xml::default_get())
        .await?;
    let config = xml::config_form(reply.as_ref())
        .ok_or_else(|| xml::malformed("default reply", "no form"))?;
    Ok(DefaultConfig {
        service: service_name(&*host, &profile, to.as_ref()).await,
        config,
    })
}

/// `pubsub_node_list`.
async fn node_list(host: Arc<dyn Host>, profile: String, a: ServiceArgs) -> Answer<NodeList> {
    let to = service(a.service.as_deref())?;
    let reply = host
        .iq(
            &profile,
            to.clone(),
            false,
            xml::disco_items(a.node.as_deref()),
        )
        .await?;
    Ok(NodeList {
        service: service_name(&*host, &profile, to.as_ref()).await,
        nodes: json!(xml::parse_disco_items(reply.as_ref())),
    })
}

/// `pubsub_node_info`.
async fn node_info(host: Arc<dyn Host>, profile: String, a: NodeArgs) -> Answer<Value> {
    let to = service(a.service.as_deref())?;
    let reply = host
        .iq(&profile, to.clone(), false, xml::disco_info(Some(&a.node)))
        .await?;
    let mut info = xml::parse_disco_info(reply.as_ref());
    info["service"] = json!(service_name(&*host, &profile, to.as_ref()).await);
    info["node"] = json!(a.node);
    Ok(info)
}

/// `pubsub_publish`.
async fn publish(host: Arc<dyn Host>, profile: String, a: PublishArgs) -> Answer<Published> {
    let payload = xml::parse_payload(&a.payload).map_err(|e| bad("payload", e))?;
    let to = service(a.service.as_deref())?;
    let request = xml::publish(&a.node, a.item_id.as_deref(), payload, a.options.as_ref());
    let reply = host.iq(&profile, to.clone(), true, request).await?;
    Ok(Published {
        item_id: xml::published_id(reply.as_ref()).or(a.item_id),
        service: service_name(&*host, &profile, to.as_ref()).await,
        node: a.node,
    })
}

/// `pubsub_retract`.
async fn retract(host: Arc<dyn Host>, profile: String, a: RetractArgs) -> Answer<Retracted> {
    if a.item_ids.is_empty() {
        return Err(bad("item_ids", "no item id given"));
    }
    let to = service(a.service.as_deref())?;
    host.iq(
        &profile,
        to.clone(),
        true,
        xml::retract(&a.node, &a.item_ids, a.notify),
    )
    .await?;
    Ok(Retracted {
        service: service_name(&*host, &profile, to.as_ref()).await,
        node: a.node,
        retracted: a.item_ids,
    })
}

/// `pubsub_items_get`.
async fn items_get(host: Arc<dyn Host>, profile: String, a: ItemsGetArgs) -> Answer<Value> {
    let max = count("max", a.max)?;
    let index = count("index", a.index)?;
    let (before, after) = (a.before, a.after);
    if [before.is_some(), after.is_some(), index.is_some()]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        return Err(bad("before/after/index", "give at most one of them"));
    }
    let rsm = (before.is_some() || after.is_some() || index.is_some()).then(|| RsmRequest {
        max: Some(max.unwrap_or(20)),
        before,
        after,
        index,
    });
    if a.all && (rsm.is_some() || !a.item_ids.is_empty()) {
        return Err(bad(
            "all",
            "cannot be combined with item_ids, before, after or index",
        ));
    }
    let req = ItemsRequest {
        profile,
        service: service(a.service.as_deref())?,
        node: a.node,
        max_items: if rsm.is_some() { None } else { max },
        item_ids: a.item_ids,
        rsm,
        all: a.all,
        use_cache: a.use_cache,
    };
    let page = get_items(&*host, req).await?;
    serde_json::to_value(page).map_err(|e| HostError::Internal(e.to_string()))
}

/// `pubsub_subscribe`.
async fn subscribe(host: Arc<dyn Host>, profile: String, a: SubscribeArgs) -> Answer<Subscribed> {
    let to = service(a.service.as_deref())?;
    let jid = subscriber(&*host, &profile, a.jid).await?;
    let reply = host
        .iq(
            &profile,
            to.clone(),
            true,
            xml::subscribe(&a.node, &jid, a.options.as_ref()),
        )
        .await?;
    let subscription = xml::parse_subscription(reply.as_ref())
        .unwrap_or_else(|| json!({"node": a.node, "jid": jid, "subscription": "subscribed"}));
    Ok(Subscribed {
        service: service_name(&*host, &profile, to.as_ref()).await,
        node: a.node,
        subscription,
    })
}

/// `pubsub_unsubscribe`.
async fn unsubscribe(host: Arc<dyn Host>, profile: String, a: UnsubscribeArgs) -> Answer<NodeDone> {
    let to = service(a.service.as_deref())?;
    let jid = subscriber(&*host, &profile, a.jid).await?;
    let payload = xml::unsubscribe(&a.node, &jid, a.subid.as_deref());
    set_node(&*host, &profile, to, a.node, payload).await
}
