//! The methods perchd implements, one named function each, grouped by domain.
//!
//! Every handler takes the bridge's context ([`Lib`]) and its arguments already
//! decoded, in Libervia's order (the table row that names it says their types:
//! `super::table`); it resolves the profile key, calls the daemon (or the params
//! store, or a plugin action) and shapes the answer the way Libervia 0.9 does
//! (`doc/libervia-compat.rst`). A method without a handler answers
//! `MethodNotRegistered` (`super::dispatch`).
//!
//! Handler modules use the modules below them and this one's helpers, never each
//! other (the order is checked: `super::layers`).

pub mod blocking;
pub mod blog;
pub mod bookmarks;
pub mod cache;
pub mod files;
pub mod identity;
pub mod messages;
pub mod misc;
pub mod muc;
pub mod params;
pub mod profiles;
pub mod pubsub;
pub mod roster;

use std::time::Duration;

use perch_actions::files::{Attachment, FileSend, FileSendArgs, Uploaded};
use serde_json::Value;

use crate::libervia::context::Lib;
use crate::libervia::errors::{self, LibError};
use crate::libervia::pubsub_json::items_result;
use crate::libervia::reply::{Answer, out};

/// The arguments of `psItemsGet` and `psCacheGet`: (service, node, max_items,
/// item_ids, sub_id, extra, profile_key).
pub type ItemsArgs = (String, String, i32, Vec<String>, String, String, String);

/// Runs typed plugin action `A` in process (`perch_actions`): no JSON on the way.
pub async fn typed<A: perch_actions::Action>(
    lib: &Lib,
    profile: &str,
    args: A::Args,
) -> Result<A::Output, LibError> {
    Ok(lib.daemon.action::<A>(profile, &args).await?)
}

/// `{service?, node}`: an empty service is the profile's PEP.
pub fn node_args(service: &str, node: &str) -> perch_actions::pubsub::NodeArgs {
    perch_actions::pubsub::NodeArgs {
        service: (!service.is_empty()).then(|| service.to_owned()),
        node: node.to_owned(),
    }
}

/// Runs a plugin action with JSON arguments built from Libervia's own (`extra`,
/// options): they are checked against the action's declaration as they are.
pub async fn action(lib: &Lib, profile: &str, name: &str, args: Value) -> Result<Value, LibError> {
    Ok(lib.daemon.run_action(profile, name, args).await?)
}

/// The profile's `Composition/Syntax` (markdown unless set).
pub async fn current_syntax(lib: &Lib, profile: &str) -> Result<String, LibError> {
    Ok(lib
        .params
        .get_sync(profile, "Composition", "Syntax", "value")
        .await?)
}

/// An items page from `pubsub_items_get` or `pubsub_cache_get` as Libervia's items
/// JSON; a node the cache does not hold is `NotFound`, as in 0.9.
pub async fn items_page(lib: &Lib, profile: &str, act: &str, node: &str, args: Value) -> Answer {
    let v = match action(lib, profile, act, args).await {
        Err(e) if e.body().contains("is not in the cache") => {
            return Err(LibError::exc(errors::NOT_FOUND, node, ""));
        }
        other => other?,
    };
    out(items_result(&v))
}

/// Uploads the files of `extra.attachments` (`{"path", "name"?}` each, as
/// libervia-cli's `message send -a` gives them) one after the other over XEP-0363,
/// waiting for each: what `messageSend` links, as 0.9's attachment plugin does.
pub async fn upload_attachments(
    lib: &Lib,
    profile: &str,
    extra: &Value,
) -> Result<Vec<Attachment>, LibError> {
    let Some(list) = extra.get("attachments").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut done = Vec::new();
    for a in list {
        let Some(path) = a["path"].as_str() else {
            continue;
        };
        let args = FileSendArgs {
            path: path.to_owned(),
            to: None,
            groupchat: false,
            name: a["name"].as_str().map(str::to_owned),
        };
        let t = typed::<FileSend>(lib, profile, args).await?;
        let up = wait_upload(lib, &t.job).await?;
        done.push(Attachment {
            url: up.url,
            name: up.name,
            size: Some(up.size),
            media_type: Some(up.media_type),
        });
    }
    Ok(done)
}

/// The result of upload job `job`, once it ended.
async fn wait_upload(lib: &Lib, job: &str) -> Result<Uploaded, LibError> {
    loop {
        let j = lib.daemon.job(job).await?;
        match j.state.as_str() {
            "running" => tokio::time::sleep(Duration::from_millis(100)).await,
            "finished" => {
                return serde_json::from_str(j.result.as_deref().unwrap_or_default()).map_err(
                    |e| LibError::exc(errors::INTERNAL, &format!("upload {job}: {e}"), ""),
                );
            }
            _ => {
                let why = j.error.unwrap_or_default();
                return Err(LibError::exc(
                    errors::DATA,
                    &format!("Can't upload file: {why}"),
                    "",
                ));
            }
        }
    }
}
