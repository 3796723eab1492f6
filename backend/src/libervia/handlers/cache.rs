//! Perch's pubsub cache in Libervia's terms: reading a cached node, synchronising,
//! purging, resetting and searching it.

use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::errors::{self, LibError};
use crate::libervia::pubsub_json::{items_args, json_arg, search_parsed, search_query, target};
use crate::libervia::reply::{Answer, out, unit};

use super::{ItemsArgs, action, items_page};

/// `psCacheGet`: as `psItemsGet`, from the cache only.
pub async fn get(
    lib: &Lib,
    (service, node, max, item_ids, _sub_id, extra, key): ItemsArgs,
) -> Answer {
    let p = lib.profile(&key).await?;
    let extra = json_arg("extra", &extra)?;
    let mut a = items_args(&service, &node, max, &item_ids, &extra)?;
    if let Some(o) = a.as_object_mut() {
        o.remove("all");
        o.remove("use_cache");
    }
    items_page(lib, &p, "pubsub_cache_get", &node, a).await
}

/// `psCacheSync(service, node, profile_key)`: as 0.9, the reply comes once the node
/// is synchronised, so that the frontend's next read finds it in the cache.
pub async fn sync(lib: &Lib, (service, node, key): (String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let v = action(lib, &p, "pubsub_cache_sync", target(&service, &node)).await?;
    if let Some(job) = v["job"].as_str() {
        wait_job(lib, job).await?;
    }
    unit()
}

/// `psCachePurge(query)`: the query's lists and dates, in Perch's terms.
pub async fn purge(lib: &Lib, query: String) -> Answer {
    let q = json_arg("query", &query)?;
    let mut a = json!({});
    for k in ["services", "nodes", "profiles", "types", "subtypes"] {
        if let Some(l) = q.get(k).filter(|l| l.is_array()) {
            a[k] = l.clone();
        }
    }
    for k in ["updated_before", "created_before"] {
        match q.get(k) {
            Some(Value::Number(n)) => a[k] = json!(n.to_string()),
            Some(Value::String(t)) => a[k] = json!(t),
            _ => {}
        }
    }
    action(lib, "", "pubsub_cache_purge", a).await?;
    unit()
}

/// `psCacheReset`.
pub async fn reset(lib: &Lib) -> Answer {
    action(lib, "", "pubsub_cache_reset", json!({})).await?;
    unit()
}

/// `psCacheSearch(query)`: the items as 0.9's search gives them.
pub async fn search(lib: &Lib, query: String) -> Answer {
    let q = json_arg("query", &query)?;
    let with_payload = q["with_payload"].as_bool().unwrap_or(false);
    let v = action(
        lib,
        "",
        "pubsub_cache_search",
        json!({"query": search_query(&q)?}),
    )
    .await?;
    let items: Vec<Value> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let mut o = match search_parsed(i) {
                Value::Object(o) => o,
                _ => serde_json::Map::new(),
            };
            o.insert("pubsub_service".into(), i["service"].clone());
            o.insert("pubsub_node".into(), i["node"].clone());
            o.insert("node_profile".into(), i["profile"].clone());
            if with_payload {
                o.insert("item_payload".into(), i["xml"].clone());
            }
            Value::Object(o)
        })
        .collect();
    out(Value::Array(items).to_string())
}

/// How long `psCacheSync` waits for its sync (the frontends' own timeout is 120 s).
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(110);

/// Waits until a job ends; its error, if it failed.
async fn wait_job(lib: &Lib, id: &str) -> Result<(), LibError> {
    let deadline = tokio::time::Instant::now() + SYNC_WAIT;
    loop {
        let j = lib.daemon.job(id).await?;
        match j.state.as_str() {
            "running" if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            "running" => {
                return Err(LibError::exc(
                    errors::TIMEOUT,
                    &format!("the sync (job {id}) is still running; perchd goes on with it"),
                    "",
                ));
            }
            "finished" => return Ok(()),
            _ => {
                return Err(LibError::internal(&format!(
                    "the sync (job {id}) failed: {}",
                    j.error.unwrap_or_default()
                )));
            }
        }
    }
}
