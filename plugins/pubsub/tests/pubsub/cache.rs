//! The pubsub cache: a sync pages through the node with RSM and marks it completed;
//! notifications keep it coherent; a refused subscription leaves the node served
//! by the service, not the cache.

use std::sync::Arc;

use perch_plugin_api::Outcome;
use perch_plugin_api::jid::Jid;
use perch_plugin_testing::{MockServer, PendingIq, xml};
use perch_plugins_pubsub::xep_0060::{ItemsRequest, ItemsRequested};
use perch_plugins_pubsub::{pubsub_cache, xep_0059, xep_0060};
use serde_json::json;

const SERVICE: &str = "pubsub.example.org";
const NODE: &str = "news";
const NS: &str = "http://jabber.org/protocol/pubsub";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";

/// The three pubsub plugins, syncing pages of two items; the service publishes no
/// XEP-0460 hints (no node metadata).
async fn server() -> MockServer {
    let s = MockServer::with_migrations(perch_plugins_pubsub::migrations()).await;
    s.set_options(pubsub_cache::IMPORT_NAME, json!({"page_size": 2}));
    s.build(xep_0059::factory()).await;
    s.build(xep_0060::factory()).await;
    s.build(pubsub_cache::factory(Arc::default())).await;
    s.script_iq_error(
        "query",
        "http://jabber.org/protocol/disco#info",
        "item-not-found",
    );
    s
}

/// Asks for a forced sync of the node.
async fn sync(s: &MockServer) {
    let job = s
        .action(
            "pubsub_cache_sync",
            json!({"service": SERVICE, "node": NODE}),
        )
        .await
        .expect("sync started");
    assert!(job["job"].is_string());
}

/// Checks the next IQ is our subscription to the node.
async fn subscription(s: &MockServer) -> PendingIq {
    let q = s.next_iq().await;
    assert!(q.iq.set);
    assert_eq!(
        q.iq.to.as_ref().map(Jid::to_string).as_deref(),
        Some(SERVICE)
    );
    let sub =
        q.iq.payload
            .get_child("subscribe", NS)
            .expect("a subscribe");
    assert_eq!(
        (sub.attr("node"), sub.attr("jid")),
        (Some(NODE), Some("me@example.org"))
    );
    q
}

/// Checks the next IQ asks for a page of `max` after `after`; returns it.
async fn page_request(s: &MockServer, max: &str, after: Option<&str>) -> PendingIq {
    let q = s.next_iq().await;
    assert!(!q.iq.set);
    let items =
        q.iq.payload
            .get_child("items", NS)
            .expect("an items request");
    assert_eq!(items.attr("node"), Some(NODE));
    let set = q.iq.payload.get_child("set", NS_RSM).expect("RSM");
    assert_eq!(
        set.get_child("max", NS_RSM).map(|m| m.text()).as_deref(),
        Some(max)
    );
    assert_eq!(
        set.get_child("after", NS_RSM).map(|a| a.text()).as_deref(),
        after
    );
    q
}

fn item(id: &str) -> String {
    format!("<item id='{id}'><entry xmlns='urn:example:news'>story {id}</entry></item>")
}

/// An items answer with these ids and RSM `first`/`last`/`count`.
fn page(ids: &[&str], count: usize) -> String {
    let items: String = ids.iter().map(|i| item(i)).collect();
    format!(
        "<pubsub xmlns='{NS}'><items node='{NODE}'>{items}</items>\
         <set xmlns='{NS_RSM}'><first>{}</first><last>{}</last><count>{count}</count></set></pubsub>",
        ids[0],
        ids[ids.len() - 1]
    )
}

/// (sync_state, coherent, subscribed, sync_error) of the node, once it is out of
/// `in_progress`.
async fn node_state(s: &MockServer) -> Vec<Option<String>> {
    for _ in 0..2000 {
        let rows = s
            .rows("SELECT sync_state, coherent, subscribed, sync_error FROM pubsub_node")
            .await;
        if let Some(r) = rows.into_iter().next()
            && !matches!(r[0].as_deref(), Some("in_progress" | "none"))
        {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("the sync never ended");
}

async fn cached_ids(s: &MockServer) -> Vec<String> {
    s.rows("SELECT item_id FROM pubsub_item ORDER BY seq")
        .await
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

fn newest(n: usize) -> ItemsRequest {
    ItemsRequest {
        profile: perch_plugin_testing::PROFILE.into(),
        service: Some(Jid::new(SERVICE).expect("jid")),
        node: NODE.into(),
        max_items: Some(n),
        item_ids: Vec::new(),
        rsm: None,
        all: false,
        use_cache: true,
    }
}

async fn synced() -> MockServer {
    let s = server().await;
    sync(&s).await;
    subscription(&s).await.result(&format!(
        "<pubsub xmlns='{NS}'><subscription node='{NODE}' jid='me@example.org' subscription='subscribed'/></pubsub>"
    ));
    page_request(&s, "2", None)
        .await
        .result(&page(&["a", "b"], 3));
    page_request(&s, "2", Some("b"))
        .await
        .result(&page(&["c"], 3));
    s
}

#[tokio::test]
async fn a_sync_pages_with_rsm_and_completes() {
    let s = synced().await;
    assert_eq!(
        node_state(&s).await,
        [
            Some("completed".into()),
            Some("1".into()),
            Some("1".into()),
            None
        ]
    );
    assert_eq!(cached_ids(&s).await, ["a", "b", "c"]);
    let asked = s.iqs().len();

    // Now served from the database: the service is not asked.
    let outcome = s.fire::<ItemsRequested>(&mut newest(2)).await;
    let Outcome::Replaced { by, value } = outcome else {
        panic!("not served from the cache: {outcome:?}");
    };
    assert_eq!(by, pubsub_cache::IMPORT_NAME);
    assert_eq!(value.source, "cache");
    let mut ids: Vec<&str> = value.items.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["b", "c"]);
    let payload = value.items[0].payload.as_deref().expect("a payload");
    assert_eq!(
        xml(payload).name(),
        "entry",
        "the payload is kept as received"
    );
    assert_eq!(s.iqs().len(), asked);
}

#[tokio::test]
async fn notifications_keep_the_cache_coherent() {
    let s = synced().await;
    node_state(&s).await;
    let event = |inner: &str| {
        format!(
            "<message xmlns='jabber:client' from='{SERVICE}' to='me@example.org/perch'>\
             <event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='{NODE}'>{inner}</items></event></message>"
        )
    };
    s.receive(&event(&item("d"))).await;
    assert_eq!(cached_ids(&s).await, ["a", "b", "c", "d"]);
    s.receive(&event("<retract id='b'/>")).await;
    assert_eq!(cached_ids(&s).await, ["a", "c", "d"]);
    // A republished item is updated in place.
    s.receive(&event(
        "<item id='a'><entry xmlns='urn:example:news'>story a, corrected</entry></item>",
    ))
    .await;
    let data = s
        .rows("SELECT data FROM pubsub_item WHERE item_id = 'a'")
        .await;
    assert!(
        data[0][0].as_deref().expect("data").contains("corrected"),
        "{data:?}"
    );
    assert_eq!(
        node_state(&s).await[..2],
        [Some("completed".into()), Some("1".into())]
    );
    // Still served from the cache, with what the notifications said.
    let Outcome::Replaced { value, .. } = s.fire::<ItemsRequested>(&mut newest(10)).await else {
        panic!("not served from the cache");
    };
    let mut ids: Vec<&str> = value.items.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "c", "d"]);
}

#[tokio::test]
async fn a_refused_subscription_is_not_served_from_the_cache() {
    let s = server().await;
    sync(&s).await;
    subscription(&s).await.error("forbidden");
    let state = node_state(&s).await;
    assert_eq!(
        state[..3],
        [Some("error".into()), Some("0".into()), Some("0".into())]
    );
    assert!(
        state[3]
            .as_deref()
            .is_some_and(|e| e.starts_with("subscription refused")),
        "{state:?}"
    );
    assert!(cached_ids(&s).await.is_empty());
    // No page was asked, and a read goes to the service.
    assert!(
        !s.iqs()
            .iter()
            .any(|q| q.payload.get_child("items", NS).is_some())
    );
    assert_eq!(
        s.fire::<ItemsRequested>(&mut newest(2)).await,
        Outcome::Proceed
    );
}
