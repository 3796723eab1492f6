//! History and the outbox on a real SQLite file: one copy per message (archive ids,
//! origin ids), corrections that keep the original, the outbox's states and order.

use perch_backend::history::{Apply, History, NewMessage, Query, Stored};
use perch_plugin_api::{Direction, MessageState};

async fn setup() -> (tempfile::TempDir, History, i32) {
    let (dir, db, id) = super::db_with_alice().await;
    (dir, History::new(db), id)
}

pub(crate) fn incoming(id: &str, body: &str, t: i64) -> NewMessage {
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
        apply: None,
    }
}

pub(crate) fn outgoing(id: &str, body: &str, t: i64) -> NewMessage {
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

/// A message action `id` from `m`'s sender, applying `apply`.
fn action(m: NewMessage, id: &str, apply: Apply) -> NewMessage {
    NewMessage {
        msg_id: id.into(),
        body: String::new(),
        origin_id: Some(id.into()),
        apply: Some(apply),
        ..m
    }
}

fn react(id: &str, reactions: &[&str]) -> Apply {
    Apply::React {
        id: id.into(),
        reactions: reactions.iter().map(|r| (*r).to_owned()).collect(),
    }
}

async fn extra(h: &History, profile: i32, id: &str) -> serde_json::Value {
    let all = h.query(profile, &Query::default()).await.unwrap();
    let m = all
        .into_iter()
        .find(|m| m.id == id)
        .expect("the message is listed");
    serde_json::Value::Object(m.extra)
}

#[tokio::test]
async fn reactions_replace_the_senders_set_and_are_folded() {
    let (_dir, h, p) = setup().await;
    h.store(p, incoming("m1", "hello", 1_000)).await.unwrap();
    let (_, target) = h
        .enqueue(
            p,
            action(outgoing("r1", "", 2_000), "r1", react("m1", &["👍"])),
            "<x/>".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(target.expect("the target").extra),
        serde_json::json!({"reactions": {"👍": ["alice@example.org"]}})
    );
    h.store(
        p,
        action(incoming("r2", "", 3_000), "r2", react("m1", &["👍", "🎉"])),
    )
    .await
    .unwrap();
    let stored = h
        .store(
            p,
            action(incoming("r3", "", 4_000), "r3", react("m1", &["🎉"])),
        )
        .await
        .unwrap();
    assert!(matches!(stored, Stored::Applied { .. }), "{stored:?}");
    // The first set again (from the archive, say): recognised, not applied again.
    let again = h
        .store(
            p,
            action(incoming("r2", "", 3_000), "r2", react("m1", &["👍", "🎉"])),
        )
        .await
        .unwrap();
    assert!(matches!(again, Stored::Duplicate(_)), "{again:?}");
    assert_eq!(
        extra(&h, p, "m1").await,
        serde_json::json!({"reactions": {"👍": ["alice@example.org"], "🎉": ["bob@example.org"]}})
    );
    assert_eq!(all(&h, p).await, [("m1".to_owned(), "hello".to_owned())]);
}

#[tokio::test]
async fn an_action_on_an_unknown_message_is_ignored_and_nothing_stored() {
    let (_dir, h, p) = setup().await;
    h.store(p, incoming("m1", "hello", 1_000)).await.unwrap();
    let stored = h
        .store(
            p,
            action(incoming("r1", "", 2_000), "r1", react("nope", &["👍"])),
        )
        .await
        .unwrap();
    assert!(matches!(stored, Stored::Ignored(_)), "{stored:?}");
    let retract = Apply::Retract { id: "nope".into() };
    let stored = h
        .store(p, action(incoming("x1", "", 2_000), "x1", retract))
        .await
        .unwrap();
    assert!(matches!(stored, Stored::Ignored(_)), "{stored:?}");
    // Ours: refused to the caller.
    assert!(
        h.enqueue(
            p,
            action(outgoing("r2", "", 3_000), "r2", react("nope", &["👍"])),
            "<x/>".into()
        )
        .await
        .is_err()
    );
    assert_eq!(all(&h, p).await, [("m1".to_owned(), "hello".to_owned())]);
    assert_eq!(extra(&h, p, "m1").await, serde_json::json!({}));
}

#[tokio::test]
async fn only_the_sender_retracts_and_the_earlier_texts_go_too() {
    let (_dir, h, p) = setup().await;
    h.enqueue(p, outgoing("mine", "my text", 1_000), "<x/>".into())
        .await
        .unwrap();
    h.store(p, incoming("theirs", "first", 2_000))
        .await
        .unwrap();
    let fix = NewMessage {
        replaces: Some("theirs".into()),
        ..incoming("fix", "second", 3_000)
    };
    h.store(p, fix).await.unwrap();
    // Bob may not retract our message.
    let stored = h
        .store(
            p,
            action(
                incoming("x1", "", 4_000),
                "x1",
                Apply::Retract { id: "mine".into() },
            ),
        )
        .await
        .unwrap();
    assert!(matches!(stored, Stored::Ignored(_)), "{stored:?}");
    // His own, yes.
    let stored = h
        .store(
            p,
            action(
                incoming("x2", "", 5_000),
                "x2",
                Apply::Retract {
                    id: "theirs".into(),
                },
            ),
        )
        .await
        .unwrap();
    assert!(matches!(stored, Stored::Applied { .. }), "{stored:?}");
    assert_eq!(
        all(&h, p).await,
        [
            ("mine".to_owned(), "my text".to_owned()),
            ("theirs".to_owned(), String::new())
        ]
    );
    let e = extra(&h, p, "theirs").await;
    assert_eq!(e["retracted"]["by"], "bob@example.org");
    assert!(e.get("edits").is_none(), "{e}");
}

#[tokio::test]
async fn only_the_room_moderates_by_stanza_id() {
    let (_dir, h, p) = setup().await;
    let room = |from: &str, id: &str| NewMessage {
        peer: "room@muc.example.org".into(),
        from: from.into(),
        kind: "groupchat".into(),
        stanza_id: Some((format!("s-{id}"), "room@muc.example.org".into())),
        ..incoming(id, "spam", 1_000)
    };
    h.store(p, room("room@muc.example.org/bob", "m1"))
        .await
        .unwrap();
    let moderate = || Apply::Moderate {
        id: "s-m1".into(),
        by: Some("room@muc.example.org/mod".into()),
        reason: Some("spam".into()),
    };
    let forged = action(room("room@muc.example.org/mallory", "x1"), "x1", moderate());
    let stored = h.store(p, forged).await.unwrap();
    assert!(matches!(stored, Stored::Ignored(_)), "{stored:?}");
    let by_room = action(room("room@muc.example.org", "x2"), "x2", moderate());
    let stored = h.store(p, by_room).await.unwrap();
    assert!(matches!(stored, Stored::Applied { .. }), "{stored:?}");
    assert_eq!(all(&h, p).await, [("m1".to_owned(), String::new())]);
    let e = extra(&h, p, "m1").await;
    assert_eq!(e["moderated"]["by"], "room@muc.example.org/mod");
    assert_eq!(e["moderated"]["reason"], "spam");
}

#[tokio::test]
async fn displayed_markers_name_who_saw_it_and_unknown_ids_are_ignored() {
    let (_dir, h, p) = setup().await;
    h.enqueue(p, outgoing("mine", "cake?", 1_000), "<x/>".into())
        .await
        .unwrap();
    let seen = |id: &str| Apply::Displayed { id: id.into() };
    for _ in 0..2 {
        // Twice (live, then from the archive): once in the list.
        let stored = h
            .store(p, action(incoming("d1", "", 2_000), "d1", seen("mine")))
            .await
            .unwrap();
        assert!(
            matches!(stored, Stored::Applied { .. } | Stored::Duplicate(_)),
            "{stored:?}"
        );
    }
    let stored = h
        .store(p, action(incoming("d2", "", 3_000), "d2", seen("nope")))
        .await
        .unwrap();
    assert!(matches!(stored, Stored::Ignored(_)), "{stored:?}");
    assert_eq!(
        extra(&h, p, "mine").await,
        serde_json::json!({"displayed": {"by": ["bob@example.org"]}})
    );
    assert_eq!(all(&h, p).await, [("mine".to_owned(), "cake?".to_owned())]);
}

#[tokio::test]
async fn unread_counts_after_the_read_position_and_our_own_newest() {
    use std::collections::BTreeMap;
    let (_dir, h, p) = setup().await;
    let count = |read: BTreeMap<String, String>| {
        let h = h.clone();
        async move {
            let c = h.unread(p, Some("bob@example.org"), &read).await.unwrap();
            (c[0].unread, c[0].newest.as_ref().map(|m| m.id.clone()))
        }
    };
    assert_eq!(count(BTreeMap::new()).await, (0, None));
    h.store(p, archived(incoming("m1", "one", 1_000), "s1"))
        .await
        .unwrap();
    h.store(p, incoming("m2", "two", 2_000)).await.unwrap();
    h.store(p, incoming("m3", "three", 3_000)).await.unwrap();
    assert_eq!(count(BTreeMap::new()).await, (3, Some("m3".into())));
    let bob = |id: &str| BTreeMap::from([("bob@example.org".to_owned(), id.to_owned())]);
    assert_eq!(count(bob("m2")).await.0, 1);
    // By the archive's id, as another device names it.
    assert_eq!(count(bob("s1")).await.0, 2);
    // Corrections and actions are not messages of their own.
    h.store(
        p,
        action(
            incoming("r1", "", 4_000),
            "r1",
            Apply::Displayed { id: "m3".into() },
        ),
    )
    .await
    .unwrap();
    assert_eq!(count(bob("m2")).await.0, 1);
    // Our own message reads the conversation; what comes after counts.
    h.enqueue(p, outgoing("o1", "ok", 5_000), "<x/>".into())
        .await
        .unwrap();
    assert_eq!(count(BTreeMap::new()).await.0, 0);
    h.store(p, incoming("m4", "four", 6_000)).await.unwrap();
    assert_eq!(count(bob("m1")).await, (1, Some("m4".into())));
    // Every conversation, without `with`.
    let every = h.unread(p, None, &BTreeMap::new()).await.unwrap();
    assert_eq!(every.len(), 1);
    assert_eq!(every[0].with, "bob@example.org");
}
