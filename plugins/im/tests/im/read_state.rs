//! The read-state plugin (XEP-0333 markers, XEP-0490 MDS, unread counts) against
//! the mock host: what goes on the wire when a conversation is marked read, and
//! what our other devices' positions do to the counts.

use perch_plugin_api::{Direction, HistoryMessage, HostError, MessageState};
use perch_plugin_testing::{ME, MockServer, xml};
use perch_plugins_im::xep_0490;
use serde_json::{Value, json};

const BOB: &str = "bob@example.org";
const MDS: &str = "urn:xmpp:mds:displayed:0";
const PUBSUB: &str = "http://jabber.org/protocol/pubsub";

fn stored(id: &str, direction: Direction, markable: bool) -> HistoryMessage {
    let mut extra = serde_json::Map::new();
    if markable {
        extra.insert("markable".into(), true.into());
    }
    HistoryMessage {
        id: id.into(),
        timestamp: String::new(),
        direction,
        peer: BOB.into(),
        from: format!("{BOB}/phone"),
        to: "me@example.org".into(),
        kind: "chat".into(),
        body: "cake?".into(),
        state: MessageState::Acked,
        origin_id: Some(format!("o-{id}")),
        stanza_id: Some(format!("s-{id}")),
        extra,
    }
}

async fn server() -> MockServer {
    let s = MockServer::with_migrations(perch_plugins_im::migrations()).await;
    s.build(xep_0490::factory()).await;
    s.set_connected(true);
    s
}

async fn unread(s: &MockServer) -> Value {
    s.action("message_unread", json!({})).await.expect("counts")
}

#[tokio::test]
async fn features_are_announced() {
    let s = server().await;
    let f = s.features();
    for ns in ["urn:xmpp:chat-markers:0", "urn:xmpp:mds:displayed:0+notify"] {
        assert!(f.iter().any(|x| x == ns), "{ns} missing: {f:?}");
    }
}

#[tokio::test]
async fn reading_marks_tells_the_contact_and_our_devices() {
    let s = server().await;
    s.store_message(stored("m1", Direction::In, true));
    s.store_message(stored("m2", Direction::In, true));
    assert_eq!(
        unread(&s).await,
        json!([{"with": BOB, "unread": 2, "last_read_id": null}])
    );
    s.script_iq("pubsub", PUBSUB, "");
    let r = s
        .action("message_read", json!({"with": BOB, "id": "m1"}))
        .await
        .expect("read");
    assert_eq!(r, json!({"with": BOB, "unread": 1, "last_read_id": "m1"}));
    let sent = s.next_sent().await;
    assert_eq!(sent.attr("to"), Some(BOB));
    assert_eq!(
        sent.get_child("displayed", "urn:xmpp:chat-markers:0"),
        Some(&xml(
            "<displayed xmlns='urn:xmpp:chat-markers:0' id='o-m1'/>"
        ))
    );
    let iq = s.iqs().pop().expect("the MDS publish");
    assert!(iq.set && iq.to.is_none(), "{iq:?}");
    let publish = iq.payload.get_child("publish", PUBSUB).expect("publish");
    assert_eq!(publish.attr("node"), Some(MDS));
    let item = publish.get_child("item", PUBSUB).expect("item");
    assert_eq!(item.attr("id"), Some(BOB));
    assert_eq!(
        item.get_child("displayed", MDS),
        Some(&xml("<displayed xmlns='urn:xmpp:mds:displayed:0'>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='me@example.org' id='s-m1'/></displayed>"))
    );
    // Default: the newest. Kept: the count reads the stored position.
    s.script_iq("pubsub", PUBSUB, "");
    let r = s
        .action("message_read", json!({"with": BOB}))
        .await
        .expect("read");
    assert_eq!(r, json!({"with": BOB, "unread": 0, "last_read_id": "m2"}));
    assert_eq!(
        unread(&s).await,
        json!([{"with": BOB, "unread": 0, "last_read_id": "m2"}])
    );
    assert_eq!(
        s.rows("SELECT peer, message_id FROM read_state").await,
        vec![vec![Some(BOB.to_owned()), Some("m2".to_owned())]]
    );
}

#[tokio::test]
async fn no_marker_for_ours_or_what_did_not_ask_and_unknown_ids_are_refused() {
    let s = server().await;
    s.store_message(stored("m1", Direction::In, false));
    s.store_message(stored("m2", Direction::Out, true));
    s.set_connected(false);
    let r = s
        .action("message_read", json!({"with": BOB, "id": "m1"}))
        .await
        .expect("read offline");
    assert_eq!(r["last_read_id"], "m1");
    s.action("message_read", json!({"with": BOB, "id": "m2"}))
        .await
        .expect("read ours");
    assert!(s.nothing_sent().await);
    assert!(s.iqs().is_empty(), "offline: nothing published");
    let r = s
        .action("message_read", json!({"with": BOB, "id": "nope"}))
        .await;
    assert!(matches!(r, Err(HostError::BadArgument(_))), "{r:?}");
    let r = s
        .action("message_read", json!({"with": "nobody@example.org"}))
        .await;
    assert!(matches!(r, Err(HostError::BadArgument(_))), "{r:?}");
}

fn notification(from: &str, id: &str) -> String {
    format!(
        "<message xmlns='jabber:client' from='{from}' to='{ME}'>\
         <event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:mds:displayed:0'><item id='{BOB}'>\
         <displayed xmlns='urn:xmpp:mds:displayed:0'>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='me@example.org' id='{id}'/></displayed>\
         </item></items></event></message>"
    )
}

#[tokio::test]
async fn our_other_devices_move_the_read_position_others_do_not() {
    let s = server().await;
    s.store_message(stored("m1", Direction::In, true));
    s.store_message(stored("m2", Direction::In, true));
    s.receive(&notification("mallory@example.org", "s-m2"))
        .await;
    s.receive(&notification("me@example.org", "s-m1")).await;
    for _ in 0..100 {
        if unread(&s).await[0]["unread"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Mallory's came first; give it time to do (wrongly) anything.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut counts = unread(&s).await;
    assert_eq!(
        counts,
        json!([{"with": BOB, "unread": 1, "last_read_id": "m1"}])
    );
    // At session start, the node's items: our position there is the newest.
    s.script_iq(
        "pubsub",
        PUBSUB,
        &format!(
            "<pubsub xmlns='{PUBSUB}'><items node='{MDS}'><item id='{BOB}'>\
             <displayed xmlns='{MDS}'><stanza-id xmlns='urn:xmpp:sid:0' by='me@example.org' id='s-m2'/>\
             </displayed></item></items></pubsub>"
        ),
    );
    s.session_started().await;
    for _ in 0..100 {
        counts = unread(&s).await;
        if counts[0]["unread"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        counts,
        json!([{"with": BOB, "unread": 0, "last_read_id": "m2"}])
    );
    // Nothing sent to anyone for positions learnt.
    assert!(s.nothing_sent().await);
}
