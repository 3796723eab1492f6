//! Publish-subscribe (XEP-0060): nodes, items, subscriptions and affiliations.
//!
//! `service` is always optional: without it, the profile's own account (PEP).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decl::{opt, req};
use crate::{ActionInfo, ParamDecl, ParamType, action, info};

/// `service`: optional, the profile's own account (PEP) when not given.
pub(crate) const SERVICE: ParamDecl = opt(
    "service",
    ParamType::Jid,
    "the pubsub service; default: the profile's own account (PEP)",
);
/// `node`, required.
pub(crate) const NODE: ParamDecl = req("node", ParamType::String, "the node");
const ONLY_NODE: ParamDecl = opt("node", ParamType::String, "only this node");
const SUBSCRIBER: ParamDecl = opt(
    "jid",
    ParamType::Jid,
    "the subscriber; default: the profile's bare JID",
);

/// A JSON object of form values or options: `{"pubsub#max_items": "max", …}`.
pub type Fields = Map<String, Value>;

/// A service, and a node of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
}

/// A service, and maybe a node of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A service only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlyServiceArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// What was done, where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDone {
    pub service: String,
    pub node: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeCreateArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// None: an instant node, named by the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Fields>,
}

action!(
    /// Creates a node; answers its name (the service's, for an instant node).
    NodeCreate = "pubsub_node_create", NodeCreateArgs => NodeDone,
    "Creates a node (no node: an instant node named by the service), optionally configured",
    [
        SERVICE,
        opt("node", String, "the node; none: an instant node"),
        opt(
            "config",
            Object,
            "node configuration: {\"pubsub#max_items\": \"max\", …}",
        ),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDeleteArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    /// An xmpp: URI subscribers are sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
}

action!(
    /// Deletes a node (owner).
    NodeDelete = "pubsub_node_delete", NodeDeleteArgs => NodeDone,
    "Deletes a node (owner), optionally redirecting its subscribers to another node's URI",
    [
        SERVICE,
        NODE,
        opt("redirect", String, "xmpp: URI subscribers are sent to"),
    ]
);

action!(
    /// Removes every item of a node (owner).
    NodePurge = "pubsub_node_purge", NodeArgs => NodeDone,
    "Removes every item of a node (owner)",
    [SERVICE, NODE]
);

/// A configuration form: `{values: {var: value}, fields: [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub service: String,
    pub node: String,
    pub config: Value,
}

action!(
    /// A node's configuration form (owner).
    NodeConfigGet = "pubsub_node_config_get", NodeArgs => NodeConfig,
    "A node's configuration form (owner): {values: {var: value}, fields: [...]}",
    [SERVICE, NODE]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeConfigSetArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    pub config: Fields,
}

action!(
    /// Changes a node's configuration (owner); only the given fields are sent.
    NodeConfigSet = "pubsub_node_config_set", NodeConfigSetArgs => NodeDone,
    "Changes a node's configuration (owner); only the given fields are sent",
    [
        SERVICE,
        NODE,
        req("config", Object, "{\"pubsub#max_items\": \"100\", …}"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DefaultConfig {
    pub service: String,
    pub config: Value,
}

action!(
    /// The configuration a new node gets on this service.
    NodeDefaultConfig = "pubsub_node_default_config", OnlyServiceArgs => DefaultConfig,
    "The configuration a new node gets on this service",
    [SERVICE]
);

/// `nodes`: `[{jid, node, name}]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeList {
    pub service: String,
    pub nodes: Value,
}

action!(
    /// The nodes of a service (or the children of a collection node).
    NodeListGet = "pubsub_node_list", ServiceArgs => NodeList,
    "The nodes of a service (or the children of a collection node): disco#items",
    [SERVICE, opt("node", String, "a collection node")]
);

action!(
    /// A node's identities, features and meta-data: `{service, node, identities,
    /// features, meta, …}`.
    NodeInfo = "pubsub_node_info", NodeArgs => Value,
    "A node's identity, features and meta-data (disco#info of the node)",
    [SERVICE, NODE]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    /// None: the service picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// One XML element with its namespace.
    pub payload: String,
    /// publish-options, as preconditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Fields>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub service: String,
    pub node: String,
    pub item_id: Option<String>,
}

action!(
    /// Publishes an item (same id: replaces it).
    Publish = "pubsub_publish", PublishArgs => Published,
    "Publishes an item (same id: replaces it); publish-options are preconditions",
    [
        SERVICE,
        NODE,
        opt("item_id", String, "the item id; none: the service picks one"),
        req(
            "payload",
            String,
            "the item's payload: one XML element with its namespace",
        ),
        opt(
            "options",
            Object,
            "publish-options: {\"pubsub#access_model\": \"open\", …}",
        ),
    ]
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetractArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    pub item_ids: Vec<String>,
    /// Notify subscribers (default).
    #[serde(default = "crate::yes")]
    pub notify: bool,
}

impl Default for RetractArgs {
    fn default() -> Self {
        Self {
            service: None,
            node: String::new(),
            item_ids: Vec::new(),
            notify: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retracted {
    pub service: String,
    pub node: String,
    pub retracted: Vec<String>,
}

action!(
    /// Retracts items from a node.
    Retract = "pubsub_retract", RetractArgs => Retracted,
    "Retracts items from a node",
    [
        SERVICE,
        NODE,
        req("item_ids", List, "the ids of the items to retract"),
        opt("notify", Boolean, "notify subscribers").or("true"),
    ]
);

/// Which items: the newest `max`, given ids, one RSM page (before/after/index), or all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsGetArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    #[serde(default)]
    pub all: bool,
    /// false: never answered from a cache.
    #[serde(default = "crate::yes")]
    pub use_cache: bool,
}

impl Default for ItemsGetArgs {
    fn default() -> Self {
        Self {
            service: None,
            node: String::new(),
            max: None,
            item_ids: Vec::new(),
            before: None,
            after: None,
            index: None,
            all: false,
            use_cache: true,
        }
    }
}

action!(
    /// Gets items: `{service, node, items: [{id, payload, publisher?}], rsm, source}`.
    ItemsGet = "pubsub_items_get", ItemsGetArgs => Value,
    "Gets items: the newest max, given ids, one RSM page (before/after/index), or all",
    [
        SERVICE,
        NODE,
        opt(
            "max",
            Integer,
            "the newest N items; with RSM or all: the page size or bound",
        ),
        opt("item_ids", List, "these items only"),
        opt(
            "before",
            String,
            "RSM: the page before this id (\"\": the last page)",
        ),
        opt("after", String, "RSM: the page after this id"),
        opt("index", Integer, "RSM: the page starting at this position"),
        opt("all", Boolean, "every item of the node, paged").or("false"),
        opt("use_cache", Boolean, "false: never answered from a cache").or("true"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    /// The subscriber; default: the profile's bare JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Fields>,
}

/// `subscription`: `{node, jid, subscription, subid?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub service: String,
    pub node: String,
    pub subscription: Value,
}

action!(
    /// Subscribes to a node.
    Subscribe = "pubsub_subscribe", SubscribeArgs => Subscribed,
    "Subscribes to a node (default: with the profile's bare JID), optionally with options",
    [
        SERVICE,
        NODE,
        SUBSCRIBER,
        opt(
            "options",
            Object,
            "subscription options: {\"pubsub#deliver\": true, …}",
        ),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subid: Option<String>,
}

action!(
    /// Unsubscribes from a node.
    Unsubscribe = "pubsub_unsubscribe", UnsubscribeArgs => NodeDone,
    "Unsubscribes from a node",
    [
        SERVICE,
        NODE,
        SUBSCRIBER,
        opt("subid", String, "the subscription id, when there are several"),
    ]
);

/// `subscriptions`: `[{node, jid, subscription, subid?}]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscriptions {
    pub service: String,
    pub subscriptions: Value,
}

action!(
    /// The profile's subscriptions on a service (or one node).
    SubscriptionsGet = "pubsub_subscriptions", ServiceArgs => Subscriptions,
    "The profile's subscriptions on a service (or one node)",
    [SERVICE, ONLY_NODE]
);

/// `affiliations`: `[{node, affiliation}]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Affiliations {
    pub service: String,
    pub affiliations: Value,
}

action!(
    /// The profile's affiliations on a service (or one node).
    AffiliationsGet = "pubsub_affiliations", ServiceArgs => Affiliations,
    "The profile's affiliations on a service (or one node)",
    [SERVICE, ONLY_NODE]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSubscriptions {
    pub service: String,
    pub node: String,
    pub subscriptions: Value,
}

action!(
    /// A node's subscriptions (owner).
    NodeSubscriptionsGet = "pubsub_node_subscriptions_get", NodeArgs => NodeSubscriptions,
    "A node's subscriptions (owner)",
    [SERVICE, NODE]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSubscriptionsSetArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    /// `{jid: subscribed|none|pending|unconfigured}`.
    pub subscriptions: Fields,
}

action!(
    /// Changes subscriptions of a node (owner).
    NodeSubscriptionsSet = "pubsub_node_subscriptions_set", NodeSubscriptionsSetArgs => NodeDone,
    "Changes subscriptions of a node (owner): {jid: subscribed|none|pending|unconfigured}",
    [
        SERVICE,
        NODE,
        req(
            "subscriptions",
            Object,
            "{\"bob@example.org\": \"subscribed\" or \"none\"}",
        ),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeAffiliations {
    pub service: String,
    pub node: String,
    pub affiliations: Value,
}

action!(
    /// A node's affiliations (owner).
    NodeAffiliationsGet = "pubsub_node_affiliations_get", NodeArgs => NodeAffiliations,
    "A node's affiliations (owner)",
    [SERVICE, NODE]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeAffiliationsSetArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub node: String,
    /// `{jid: owner|publisher|publish-only|member|none|outcast}`.
    pub affiliations: Fields,
}

action!(
    /// Changes affiliations of a node (owner).
    NodeAffiliationsSet = "pubsub_node_affiliations_set", NodeAffiliationsSetArgs => NodeDone,
    "Changes affiliations of a node (owner): {jid: owner|publisher|publish-only|member|none|outcast}",
    [
        SERVICE,
        NODE,
        req("affiliations", Object, "{\"bob@example.org\": \"publisher\"}"),
    ]
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![
        info::<NodeCreate>(),
        info::<NodeDelete>(),
        info::<NodePurge>(),
        info::<NodeConfigGet>(),
        info::<NodeConfigSet>(),
        info::<NodeDefaultConfig>(),
        info::<NodeListGet>(),
        info::<NodeInfo>(),
        info::<Publish>(),
        info::<Retract>(),
        info::<ItemsGet>(),
        info::<Subscribe>(),
        info::<Unsubscribe>(),
        info::<SubscriptionsGet>(),
        info::<AffiliationsGet>(),
        info::<NodeSubscriptionsGet>(),
        info::<NodeSubscriptionsSet>(),
        info::<NodeAffiliationsGet>(),
        info::<NodeAffiliationsSet>(),
    ]
}
