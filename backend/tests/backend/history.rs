//! History and the outbox on a real SQLite file: one copy per message (archive ids,
//! origin ids), corrections that keep the original, the outbox's states and order.

use perch_backend::history::{History, NewMessage, Query, Stored};
use perch_plugin_api::{Direction, MessageState};

async fn setup() -> (tempfile::TempDir, History, i32) {
    let (dir, db, id) = super::db_with_alice().await;
    (dir, History::new(db), id)
}

fn incoming(id: &str, body: &str, t: i64) -> NewMessage {
    NewMessage {
        msg_id: id.into(),
        timestamp: t,
        direction: Direction::In,
        peer: "bob@example.org".into(),
        from: "bob@example.org/phone".into(),
        to: "alice@example.org/perch".into(),
        kind: "chat".into(),
        body: body.into(),
        state: MessageState::Received,
        origin_id: None,
        stanza_id: None,
        replaces: None,
        extra: Default::default(),
    }
}

fn outgoing(id: &str, body: &str, t: i64) -> NewMessage {
    NewMessage {
        direction: Direction::Out,
        from: "alice@example.org/perch".into(),
        to: "bob@example.org".into(),
        state: MessageState::Queued,
        origin_id: Some(id.into()),
        ..incoming(id, body, t)
    }
}

fn archived(mut m: NewMessage, id: &str) -> NewMessage {
    m.stanza_id = Some((id.into(), "alice@example.org".into()));
    m
}

async fn all(h: &History, profile: i32) -> Vec<(String, String)> {
    h.query(profile, &Query::default())
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.body))
        .collect()
}

#[tokio::test]
async fn a_message_seen_twice_is_stored_once() {
    let (_dir, h, p) = setup().await;
    // Live with its archive id, then again from the archive.
    let live = archived(incoming("m1", "hi", 1_000), "A1");
    assert!(matches!(
        h.store(p, live.clone()).await.unwrap(),
        Stored::New(_)
    ));
    assert!(matches!(
        h.store(p, live).await.unwrap(),
        Stored::Duplicate(_)
    ));
    // By the sender's origin-id, the archive id learnt late.
    let mut m2 = incoming("m2", "again", 2_000);
    m2.origin_id = Some("o2".into());
    h.store(p, m2.clone()).await.unwrap();
    let Stored::Duplicate(d) = h.store(p, archived(m2, "A2")).await.unwrap() else {
        panic!("not recognised by its origin-id")
    };
    assert_eq!(d.stanza_id.as_deref(), Some("A2"), "the archive id is kept");
    assert_eq!(
        h.last_archive_id(p, "alice@example.org")
            .await
            .unwrap()
            .as_deref(),
        Some("A2")
    );
    // The same origin-id from another conversation is another message.
    let mut other = incoming("m3", "other", 3_000);
    other.origin_id = Some("o2".into());
    other.peer = "carol@example.org".into();
    other.from = "carol@example.org/x".into();
    assert!(matches!(h.store(p, other).await.unwrap(), Stored::New(_)));
    assert_eq!(all(&h, p).await.len(), 3);
    // No origin-id (an old client, or a row from before Perch kept them): the same
    // id and text from the same sender is the same message; another text is not.
    h.store(p, incoming("legacy", "old", 4_000)).await.unwrap();
    let mut again = archived(incoming("legacy", "old", 4_000), "A4");
    again.origin_id = Some("o4".into());
    assert!(matches!(
        h.store(p, again).await.unwrap(),
        Stored::Duplicate(_)
    ));
    assert!(matches!(
        h.store(p, incoming("legacy", "new text", 5_000))
            .await
            .unwrap(),
        Stored::New(_)
    ));
    // Ids Perch made up say nothing.
    let made_up = format!("{}1", perch_backend::history::GENERATED_ID);
    h.store(p, incoming(&made_up, "same", 6_000)).await.unwrap();
    assert!(matches!(
        h.store(p, incoming(&made_up, "same", 6_001)).await.unwrap(),
        Stored::New(_)
    ));
}

#[tokio::test]
async fn in_a_room_only_the_same_occupant_origin_id_counts() {
    let (_dir, h, p) = setup().await;
    let room = |from: &str, id: &str| NewMessage {
        peer: "room@muc.example.org".into(),
        from: format!("room@muc.example.org/{from}"),
        kind: "groupchat".into(),
        origin_id: Some("same".into()),
        ..incoming(id, from, 1_000)
    };
    h.store(p, room("bob", "r1")).await.unwrap();
    assert!(
        matches!(
            h.store(p, room("mallory", "r2")).await.unwrap(),
            Stored::New(_)
        ),
        "another occupant's message hidden by a reused origin-id"
    );
    assert!(matches!(
        h.store(p, room("bob", "r1")).await.unwrap(),
        Stored::Duplicate(_)
    ));
}

#[tokio::test]
async fn corrections_replace_the_text_and_keep_the_original() {
    let (_dir, h, p) = setup().await;
    h.store(p, incoming("m1", "helo", 1_000)).await.unwrap();
    let mut fix = incoming("m2", "hello", 2_000);
    fix.replaces = Some("m1".into());
    let Stored::Corrected { corrected, .. } = h.store(p, fix).await.unwrap() else {
        panic!("not applied")
    };
    assert_eq!(corrected.body, "hello");
    assert_eq!(corrected.extra["edits"][0]["body"], "helo");
    // A correction of the correction corrects the original.
    let mut again = incoming("m3", "hello!", 3_000);
    again.replaces = Some("m2".into());
    h.store(p, again).await.unwrap();
    assert_eq!(all(&h, p).await, [("m1".to_owned(), "hello!".to_owned())]);
    // From someone else: a message of its own, the original untouched.
    let mut forged = incoming("m4", "pwned", 4_000);
    forged.replaces = Some("m1".into());
    forged.from = "bob@evil.example/x".into();
    assert!(matches!(h.store(p, forged).await.unwrap(), Stored::New(_)));
    let listed = all(&h, p).await;
    assert_eq!(listed[0].1, "hello!");
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn the_outbox_keeps_order_and_states() {
    let (_dir, h, p) = setup().await;
    for i in 0..3 {
        let id = format!("o{i}");
        h.enqueue(
            p,
            outgoing(&id, &format!("#{i}"), 1_000 + i),
            format!("<message id='{id}'/>"),
        )
        .await
        .unwrap();
    }
    let queued: Vec<String> = h
        .outbox(p)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(queued, ["o0", "o1", "o2"]);
    // The same id twice is refused: it would be the same message.
    let e = h
        .enqueue(p, outgoing("o1", "dup", 5_000), String::new())
        .await
        .unwrap_err();
    assert_eq!(e.name(), "BadArgument");

    let batch = h.claim_outbox(p, 2).await.unwrap();
    assert_eq!(
        batch.iter().map(|e| e.msg_id.as_str()).collect::<Vec<_>>(),
        ["o0", "o1"]
    );
    assert_eq!(batch[0].stanza, "<message id='o0'/>");
    // Written to the stream: too late to cancel.
    assert_eq!(h.cancel(p, "o0").await.unwrap_err().name(), "BadArgument");
    let cancelled = h.cancel(p, "o2").await.unwrap();
    assert_eq!(cancelled.state, MessageState::Cancelled);
    assert_eq!(
        h.cancel(p, "nope").await.unwrap_err().name(),
        "UnknownMessage"
    );
    // Not confirmed: the same batch comes again.
    let again = h.claim_outbox(p, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    let done = h
        .confirm_sent(&again.iter().map(|e| e.row).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(done.iter().all(|m| m.state == MessageState::Acked));
    assert!(h.outbox(p).await.unwrap().is_empty());
}
