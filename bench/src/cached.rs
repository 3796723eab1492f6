//! The cached read end to end, shared by the default run and `--engines`: alice's
//! node of 100 blog items on the harness Prosody, synced into bob's cache, then the
//! same 20-item read over D-Bus from the cache and with the cache bypassed.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use perch_client::Action;
use perch_client::actions::pubsub;
use serde_json::{Value, json};

use crate::drill::action;
use crate::{ms, percentiles};

/// The cache's configuration of the benches: every node named `bench…` synced.
pub const ANALYSER: &str = r#"
[[plugins.options.PUBSUB_CACHE.analysers]]
name = "bench"
type = "bench"
node_prefix = "bench"
to_sync = true
"#;

/// `pubsub_items_get` of `node` on `service`, the newest `max`.
pub fn items(service: &str, node: &str, max: i64) -> pubsub::ItemsGetArgs {
    pubsub::ItemsGetArgs {
        service: Some(service.into()),
        node: node.into(),
        max: Some(max),
        ..Default::default()
    }
}

pub fn publish(service: &str, node: &str, id: String, payload: String) -> pubsub::PublishArgs {
    pubsub::PublishArgs {
        service: Some(service.into()),
        node: node.into(),
        item_id: Some(id),
        payload,
        options: None,
    }
}

/// Alice's node with 100 items.
pub async fn fill_node(conn: &zbus::Connection, s: &str, node: &str) -> Result<()> {
    let mut config = serde_json::Map::new();
    config.insert("pubsub#max_items".into(), json!("1000"));
    let create = pubsub::NodeCreateArgs {
        service: Some(s.into()),
        node: Some(node.into()),
        config: Some(config),
    };
    action::<pubsub::NodeCreate>(conn, "alice", &create).await?;
    for i in 0..100 {
        let p = publish(s, node, format!("i{i:03}"), crate::payload(i));
        action::<pubsub::Publish>(conn, "alice", &p).await?;
    }
    Ok(())
}

/// Reads until bob's read of the node is served from the cache (5 s at most).
pub async fn wait_for_cache(conn: &zbus::Connection, read: &pubsub::ItemsGetArgs) -> Result<()> {
    let mut first = Value::Null;
    for _ in 0..50 {
        first = action::<pubsub::ItemsGet>(conn, "bob", read).await?;
        if first["source"] == "cache" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if first["source"] != "cache" {
        return Err(anyhow!("the node was never served from the cache: {first}"));
    }
    Ok(())
}

/// The same 20-item read, from the cache and with the cache bypassed.
/// Bob's `pubsub_items_get` with these arguments (JSON, serialised once by the
/// caller): how long the D-Bus round trip took (the frontend's JSON parsing is not
/// perchd's time), and the page.
pub async fn timed_read(conn: &zbus::Connection, args: &str) -> Result<(Duration, Value)> {
    let start = Instant::now();
    let reply = conn
        .call_method(
            Some(perch_tests::BUS_NAME),
            "/org/perch/Perch",
            Some("org.perch.Perch1"),
            "ActionRun",
            &("bob", pubsub::ItemsGet::NAME, args),
        )
        .await?;
    let took = start.elapsed();
    let page: Value = serde_json::from_str(&reply.body().deserialize::<String>()?)?;
    Ok((took, page))
}

pub async fn cached_reads(
    conn: &zbus::Connection,
    s: &str,
    node: &str,
    reads: usize,
) -> Result<()> {
    for (label, use_cache) in [("from the cache", true), ("cache bypassed", false)] {
        let mut samples = Vec::new();
        // Serialised once: the loop times the D-Bus round trip and perchd's work.
        let args = serde_json::to_string(&pubsub::ItemsGetArgs {
            use_cache,
            ..items(s, node, 20)
        })?;
        let n = if use_cache { reads } else { reads.min(500) };
        for _ in 0..n {
            let (took, page) = timed_read(conn, &args).await?;
            samples.push(took);
            if page["items"].as_array().map(Vec::len) != Some(20) {
                return Err(anyhow!("read {label}: {page}"));
            }
        }
        let (p50, p95) = percentiles(&mut samples);
        println!(
            "20-item read over D-Bus, {label}: p50 {} p95 {}",
            ms(p50),
            ms(p95)
        );
    }

    Ok(())
}
