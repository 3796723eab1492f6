//! The pubsub cache's remembered answers stay within their byte budget whatever the
//! read pattern (issue 11: one answer was kept per distinct `max` until the node
//! changed, 1,000 reads with max 1…1,000 took perchd from 40 to 471 MB).
//!
//! Real parts: perchd's database (a SQLite file with every migration), the cache's
//! own `Cache::serve`, as the items request trigger calls it. The host is a small
//! stand-in: these reads need no session (the service is named, the nodes are
//! already synced), only the database and a profile id.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::action::ActionSpec;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::plugin::IqHandler;
use perch_plugin_api::{Host, HostError, JobHandle, PluginStore, PluginTriggers, Triggers};
use perch_plugins_pubsub::pubsub_cache::dao::{self, NewItem};
use perch_plugins_pubsub::pubsub_cache::service::Cache;
use perch_plugins_pubsub::pubsub_cache::{Analysers, Analysis, Settings, TABLES};
use perch_plugins_pubsub::xep_0059::RsmRequest;
use perch_plugins_pubsub::xep_0060::ItemsRequest;
use serde_json::Value;

struct TestHost {
    store: PluginStore,
    triggers: PluginTriggers,
    profile_id: i32,
}

impl Host for TestHost {
    fn plugin(&self) -> &'static str {
        "PUBSUB_CACHE"
    }
    fn triggers(&self) -> &PluginTriggers {
        &self.triggers
    }
    fn send(&self, profile: &str, _: Element) -> BoxFuture<'_, Result<(), HostError>> {
        let p = profile.to_owned();
        async move { Err(HostError::NotConnected(p)) }.boxed()
    }
    fn iq(
        &self,
        profile: &str,
        _: Option<Jid>,
        _: bool,
        _: Element,
    ) -> BoxFuture<'_, Result<Option<Element>, HostError>> {
        let p = profile.to_owned();
        async move { Err(HostError::NotConnected(p)) }.boxed()
    }
    fn profile_id(&self, _: &str) -> BoxFuture<'_, Result<i32, HostError>> {
        let id = self.profile_id;
        async move { Ok(id) }.boxed()
    }
    fn profile_name(&self, _: i32) -> BoxFuture<'_, Option<String>> {
        async { Some("bob".to_owned()) }.boxed()
    }
    fn bound_jid(&self, _: &str) -> BoxFuture<'_, Option<Jid>> {
        async { None }.boxed()
    }
    fn add_iq_handler(&self, _: bool, _: &str, _: &str, _: IqHandler) {}
    fn add_feature(&self, _: &str) {}
    fn features(&self) -> Vec<String> {
        Vec::new()
    }
    fn add_action(&self, _: ActionSpec, _: perch_plugin_api::action::ActionHandler) {}
    fn declare_signal(&self, _: &'static str, _: &'static str) {}
    fn emit(&self, _: &str, _: &str, _: Value) {}
    fn options(&self) -> Value {
        Value::Object(Default::default())
    }
    fn store(&self) -> &PluginStore {
        &self.store
    }
    fn set_message_extra(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Value,
    ) -> BoxFuture<'_, Result<bool, HostError>> {
        async { Ok(false) }.boxed()
    }
    fn send_message(
        &self,
        _: &str,
        _: perch_plugin_api::parsers::message::Message,
    ) -> BoxFuture<'_, Result<perch_plugin_api::HistoryMessage, HostError>> {
        async { Err(HostError::Internal("no messages in this test".into())) }.boxed()
    }
    fn last_archive_id(
        &self,
        _: &str,
        _: &str,
    ) -> BoxFuture<'_, Result<Option<String>, HostError>> {
        async { Ok(None) }.boxed()
    }
    fn start_job(
        &self,
        profile: &str,
        _: &str,
        _: &str,
    ) -> BoxFuture<'_, Result<JobHandle, HostError>> {
        let p = profile.to_owned();
        async move { Err(HostError::NotConnected(p)) }.boxed()
    }
}

const SERVICE: &str = "pubsub.example.org";
const ITEMS: usize = 600;
const PAYLOAD: usize = 500;

/// A node synced whole: `ITEMS` items of about `PAYLOAD` bytes.
async fn synced_node(db: &PluginStore, profile_id: i32, name: &str) {
    let node = dao::node_ensure(db, profile_id, SERVICE, name)
        .await
        .unwrap();
    let analysis = Analysis {
        to_sync: true,
        ..Analysis::default()
    };
    dao::set_analysis(db, node.id, &analysis).await.unwrap();
    let generation = dao::sync_started(db, node.id, false).await.unwrap();
    let items = (0..ITEMS)
        .map(|i| NewItem {
            item_id: format!("i{i:04}"),
            publisher: None,
            data: format!(
                "<entry xmlns='urn:t'>{i:04} {}</entry>",
                "w".repeat(PAYLOAD - 30)
            ),
            parsed: None,
            text: format!("item {i}"),
        })
        .collect();
    dao::store_items(db, node.id, generation, items, true)
        .await
        .unwrap();
    dao::sync_completed(db, node.id, generation).await.unwrap();
}

fn request(node: &str, max: Option<usize>) -> ItemsRequest {
    ItemsRequest {
        profile: "bob".into(),
        service: Some(Jid::new(SERVICE).unwrap()),
        node: node.into(),
        max_items: max,
        item_ids: Vec::new(),
        rsm: None,
        all: false,
        use_cache: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_answers_stay_within_the_byte_budget_whatever_the_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (db, profile_id) = super::db_with_profile(dir.path(), "bob", "bob@example.org").await;
    let store = PluginStore::new(db, "PUBSUB_CACHE", TABLES);
    let nodes = ["n0", "n1", "n2"];
    for n in nodes {
        synced_node(&store, profile_id, n).await;
    }
    let budget = 256 * 1024;
    let settings = Settings {
        memory_budget: budget,
        ..Settings::default()
    };
    let host = Arc::new(TestHost {
        store,
        triggers: PluginTriggers::new(Arc::new(Triggers::new()), "PUBSUB_CACHE"),
        profile_id,
    });
    let cache = Arc::new(Cache::new(host, Arc::new(Analysers::default()), settings));
    let check = |what: &str| {
        let (bytes, entries) = cache.remembered();
        assert!(
            bytes <= budget,
            "{what}: {bytes} bytes remembered in {entries} entries, budget {budget}"
        );
    };

    // The cache is used at all: the node's row is remembered at the first read, a
    // 20-item answer at the second, counted at no less than its payloads.
    let page = cache.serve(&request("n0", Some(20))).await.unwrap();
    assert_eq!((page.items.len(), page.source.as_str()), (20, "cache"));
    assert_eq!(cache.remembered().1, 1, "the node's row");
    assert_eq!(cache.serve(&request("n0", Some(20))).await.unwrap(), page);
    let (bytes, entries) = cache.remembered();
    assert_eq!(entries, 2, "the node's row and the answer");
    assert!(bytes >= 20 * PAYLOAD, "{bytes} bytes counted for 20 items");
    // Answered again from memory, the same.
    assert_eq!(cache.serve(&request("n0", Some(20))).await.unwrap(), page);

    // Every max from 1 to 1,000, on each node.
    for node in nodes {
        for max in 1..=1_000 {
            let page = cache.serve(&request(node, Some(max))).await.unwrap();
            assert_eq!(page.items.len(), max.min(ITEMS), "{node} max {max}");
            check(&format!("{node} max {max}"));
        }
    }
    // Random RSM pages, item ids, and plain reads mixed (a fixed xorshift sequence).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        usize::try_from(x % n as u64).unwrap()
    };
    for k in 0..2_000 {
        let node = nodes[next(nodes.len())];
        let mut req = request(node, None);
        match k % 3 {
            0 => {
                req.rsm = Some(RsmRequest {
                    max: Some(1 + next(200)),
                    index: Some(next(ITEMS)),
                    ..RsmRequest::default()
                })
            }
            1 => {
                req.item_ids = (0..1 + next(50))
                    .map(|_| format!("i{:04}", next(ITEMS)))
                    .collect()
            }
            _ => req.max_items = Some(1 + next(ITEMS)),
        }
        let page = cache.serve(&req).await.unwrap();
        assert_eq!(page.source, "cache");
        check(&format!("read {k}"));
    }
    // The small answers of the hot node are still served from memory after all that.
    assert!(cache.remembered().1 > 0);
}
