//! The blog (XEP-0277 through Perch's blog actions) and the composition syntaxes
//! its rich content is written in.

use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::errors::{self, LibError};
use crate::libervia::pubsub_json::{
    items_args, json_arg, mb_data, post_item_id, rsm_asked, s, target, uri,
};
use crate::libervia::reply::{Answer, out, unit};
use crate::libervia::syntax;

use super::{action, current_syntax};

/// `mbSend(service, node, mb_data, profile_key)`: the post's item id.
pub async fn send(
    lib: &Lib,
    (service, node, data, key): (String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let d = json_arg("mb_data", &data)?;
    let mut post = json!({});
    for k in ["title", "content", "content_xhtml", "tags", "language"] {
        if let Some(v) = d.get(k).filter(|v| !v.is_null()) {
            post[k] = v.clone();
        }
    }
    add_rich_content(lib, &p, &d, &mut post).await?;
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

/// Rich content is in the profile's composition syntax: published as XHTML, with
/// its text alongside (Atom wants a text content), as 0.9 does.
async fn add_rich_content(
    lib: &Lib,
    profile: &str,
    d: &Value,
    post: &mut Value,
) -> Result<(), LibError> {
    if let Some(r) = d.get("content_rich").and_then(Value::as_str) {
        if post.get("content_xhtml").is_some() {
            return Err(LibError::exc(
                errors::DATA,
                "Can't have xhtml and rich content at the same time",
                "",
            ));
        }
        let current = current_syntax(lib, profile).await?;
        let xhtml = syntax::convert(r, &current, "xhtml")?;
        if post.get("content").is_none() {
            post["content"] = json!(syntax::convert(&xhtml, "xhtml", "text")?);
        }
        post["content_xhtml"] = json!(xhtml);
    } else if post.get("content").is_none()
        && let Some(x) = post.get("content_xhtml").and_then(Value::as_str)
    {
        post["content"] = json!(syntax::convert(x, "xhtml", "text")?);
    }
    Ok(())
}

/// `mbGet(service, node, max_items, item_ids, extra, profile_key)`: mb_data items,
/// with an RSM block only when the call asked for a page (as 0.9).
pub async fn get(
    lib: &Lib,
    (service, node, max, item_ids, extra, key): (String, String, i32, Vec<String>, String, String),
) -> Answer {
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
    if rsm_asked(&extra) && !v["rsm"].is_null() {
        r["rsm"] = v["rsm"].clone();
    }
    out(r.to_string())
}

/// `mbRetract(service, node, item_id, profile_key)`.
pub async fn retract(
    lib: &Lib,
    (service, node, item_id, key): (String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let mut a = target(&service, &node);
    if node.is_empty() {
        a.as_object_mut().map(|o| o.remove("node"));
    }
    a["item_id"] = json!(item_id);
    action(lib, &p, "blog_retract", a).await?;
    unit()
}

/// `syntaxGet(name)`: the syntax's canonical key.
pub async fn syntax_get(_lib: &Lib, name: String) -> Answer {
    out(syntax::key(&name)?.to_owned())
}

/// `syntaxConvert(text, from, to, safe, profile_key)`; only `@CURRENT@` needs the
/// profile (its `Composition/Syntax`).
pub async fn syntax_convert(
    lib: &Lib,
    (text, from, to, _safe, key): (String, String, String, bool, String),
) -> Answer {
    let resolve = async |name: String| -> Result<String, LibError> {
        if name == syntax::CURRENT {
            let p = lib.profile(&key).await?;
            current_syntax(lib, &p).await
        } else {
            Ok(name)
        }
    };
    let from = resolve(from).await?;
    let to = resolve(to).await?;
    out(syntax::convert(&text, &from, &to)?)
}
