//! Microblogging (XEP-0277): posts on a pubsub node, `urn:xmpp:microblog:0` by default.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ActionInfo, action, info};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The post to edit; default: a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// `{title, content, content_xhtml, tags, language, comments}`.
    pub post: Map<String, Value>,
}

/// Which post, where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostRef {
    pub service: String,
    pub node: String,
    pub item_id: String,
}

action!(
    /// Publishes a post, or edits one (same item_id: its publication date is kept).
    Publish = "blog_publish", PublishArgs => PostRef
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The newest N posts (default 10).
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
    /// false: ask the service.
    #[serde(default = "crate::yes")]
    pub use_cache: bool,
}

impl Default for GetArgs {
    fn default() -> Self {
        Self {
            service: None,
            node: None,
            max: None,
            item_ids: Vec::new(),
            before: None,
            after: None,
            index: None,
            use_cache: true,
        }
    }
}

/// `posts`: newest first, `[{item_id, title, content, published, updated, author, …}]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Posts {
    pub service: String,
    pub node: String,
    pub posts: Vec<Value>,
    pub rsm: Value,
    pub source: Value,
}

action!(
    /// Gets posts (newest max, ids, an RSM page), through the pubsub cache.
    Get = "blog_get", GetArgs => Posts
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetractArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub item_id: String,
}

action!(
    /// Deletes a post.
    Retract = "blog_retract", RetractArgs => PostRef
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![info::<Publish>(), info::<Get>(), info::<Retract>()]
}
