//! The pubsub cache (`doc/pubsub_cache.rst`): what is cached, reading and searching it,
//! synchronising and dropping it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::pubsub::{NODE, NodeArgs, SERVICE, ServiceArgs};
use crate::{ActionInfo, Empty, JobStarted, NoArgs, action, info};

action!(
    /// The cached nodes of the profile (or one node): `{nodes: [...], analysers: [...]}`.
    Status = "pubsub_cache_status", ServiceArgs => Value,
    "The cached nodes of the profile (or one node): analysis, sync state and why, coherence, items",
    [SERVICE, opt("node", String, "only this node")]
);

/// Like `pubsub_items_get`, without `all` and `use_cache`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetArgs {
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
}

action!(
    /// Items from the cache only (a page as `pubsub_items_get` answers it).
    Get = "pubsub_cache_get", GetArgs => Value,
    "Items from the cache only (same parameters as pubsub_items_get); fails when the node is not cached",
    [
        SERVICE,
        NODE,
        opt("max", Integer, "the newest N items; with RSM: the page size"),
        opt("item_ids", List, "these items only"),
        opt(
            "before",
            String,
            "RSM: the page before this id (\"\": the last page)",
        ),
        opt("after", String, "RSM: the page after this id"),
        opt("index", Integer, "RSM: the page starting at this position"),
    ]
);

action!(
    /// (Re)synchronises a node now, as a job.
    Sync = "pubsub_cache_sync", NodeArgs => JobStarted,
    "(Re)synchronises a node now, even one no analyser selects, as a job (returns {\"job\": id})",
    [SERVICE, NODE]
);

/// Which cached items to delete; empty lists select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeArgs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtypes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// RFC 3339 time or Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    /// RFC 3339 time or Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_before: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    pub deleted: u64,
}

action!(
    /// Deletes cached items.
    Purge = "pubsub_cache_purge", PurgeArgs => Purged,
    "Deletes cached items by type, subtype, profile, service, node, created/updated before; the nodes they belonged to are synchronised again on their next read",
    [
        opt("types", List, "node types (blog, event, …)"),
        opt("subtypes", List, "node subtypes"),
        opt("profiles", List, "profile names"),
        opt("services", List, "services (bare JIDs for PEP)"),
        opt("nodes", List, "node names"),
        opt("created_before", String, "RFC 3339 time or Unix seconds"),
        opt("updated_before", String, "RFC 3339 time or Unix seconds"),
    ],
    no_session
);

action!(
    /// Drops the whole cache.
    Reset = "pubsub_cache_reset", NoArgs => Empty,
    "Drops the whole cache; it fills again as nodes are read",
    [],
    no_session
);

/// `query`: `{fts, profiles, services, nodes, types, subtypes, item_ids, filters,
/// order_by, limit, index, with_xml}` (`doc/pubsub_cache.rst`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchArgs {
    pub query: Map<String, Value>,
}

action!(
    /// Searches cached items: `{items: [{profile, service, node, item_id, parsed, …}]}`.
    Search = "pubsub_cache_search", SearchArgs => Value,
    "Searches cached items: full text, filters on parsed fields, order, limit (see doc/pubsub_cache.rst)",
    [req(
        "query",
        Object,
        "the search (fts, profiles, services, nodes, types, subtypes, item_ids, filters, order_by, limit, index, with_xml)",
    )],
    no_session
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![
        info::<Status>(),
        info::<Get>(),
        info::<Sync>(),
        info::<Purge>(),
        info::<Reset>(),
        info::<Search>(),
    ]
}
