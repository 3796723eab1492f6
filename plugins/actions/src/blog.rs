//! Microblogging (XEP-0277): posts on a pubsub node, `urn:xmpp:microblog:0` by default.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decl::opt;
use crate::{ActionInfo, ParamDecl, ParamType, action, info};

const SERVICE: ParamDecl = crate::pubsub::SERVICE;
const NODE: ParamDecl = opt(
    "node",
    ParamType::String,
    "the node; default urn:xmpp:microblog:0",
);

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
    Publish = "blog_publish", PublishArgs => PostRef,
    "Publishes a post, or edits one (same item_id: its publication date is kept)",
    [
        SERVICE,
        NODE,
        opt("item_id", String, "the post's item id; default: a new one"),
        req(
            "post",
            Object,
            "{title, content, content_xhtml, tags, language, comments}",
        ),
    ]
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
    Get = "blog_get", GetArgs => Posts,
    "Gets posts (newest max, ids, an RSM page), through the pubsub cache",
    [
        SERVICE,
        NODE,
        opt("max", Integer, "the newest N posts (default 10)"),
        opt("item_ids", List, "these posts only"),
        opt("before", String, "RSM: the page before this id"),
        opt("after", String, "RSM: the page after this id"),
        opt("index", Integer, "RSM: the page starting here"),
        opt("use_cache", Boolean, "false: ask the service").or("true"),
    ]
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
    Retract = "blog_retract", RetractArgs => PostRef,
    "Deletes a post",
    [SERVICE, NODE, req("item_id", String, "the post's item id")]
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![info::<Publish>(), info::<Get>(), info::<Retract>()]
}
