//! The pubsub cache (`doc/pubsub_cache.rst`): what is cached, reading and searching it,
//! synchronising and dropping it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::pubsub::{NodeArgs, ServiceArgs};
use crate::{ActionInfo, Empty, JobStarted, NoArgs, action, info};

action!(
    /// The cached nodes of the profile (or one node): `{nodes: [...], analysers: [...]}`.
    Status = "pubsub_cache_status", ServiceArgs => Value
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
    Get = "pubsub_cache_get", GetArgs => Value
);

action!(
    /// (Re)synchronises a node now, as a job.
    Sync = "pubsub_cache_sync", NodeArgs => JobStarted
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
    Purge = "pubsub_cache_purge", PurgeArgs => Purged
);

action!(
    /// Drops the whole cache.
    Reset = "pubsub_cache_reset", NoArgs => Empty
);

/// `query`: `{fts, profiles, services, nodes, types, subtypes, item_ids, filters,
/// order_by, limit, index, with_xml}` (`doc/pubsub_cache.rst`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchArgs {
    pub query: Map<String, Value>,
}

action!(
    /// Searches cached items: `{items: [{profile, service, node, item_id, parsed, …}]}`.
    Search = "pubsub_cache_search", SearchArgs => Value
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
