//! The message-action plugins (XEP-0444, 0461, 0424, 0425) against the mock host:
//! what goes on the wire for a message the core's history has (a chat: its
//! origin-id; a room: the room's stanza-id), and the refusals for one it has not.

use perch_plugin_api::{Direction, HistoryMessage, HostError, MessageState};
use perch_plugin_testing::{MockServer, xml};
use perch_plugins_im::{xep_0424, xep_0425, xep_0444, xep_0461};
use serde_json::json;

fn stored(peer: &str, id: &str, direction: Direction, kind: &str) -> HistoryMessage {
    HistoryMessage {
        id: id.into(),
        timestamp: String::new(),
        direction,
        peer: peer.into(),
        from: format!("{peer}/phone"),
        to: "me@example.org".into(),
        kind: kind.into(),
        body: "cake?".into(),
        state: MessageState::Acked,
        origin_id: Some(format!("o-{id}")),
        stanza_id: Some(format!("s-{id}")),
        extra: serde_json::Map::new(),
    }
}

async fn server() -> MockServer {
    let s = MockServer::new().await;
    for f in [
        xep_0424::factory(),
        xep_0425::factory(),
        xep_0444::factory(),
        xep_0461::factory(),
    ] {
        s.build(f).await;
    }
    s
}

fn bad(r: &Result<serde_json::Value, HostError>) -> bool {
    matches!(r, Err(HostError::BadArgument(_)))
}

#[tokio::test]
async fn features_are_announced_but_moderation_which_is_the_rooms() {
    let s = server().await;
    let f = s.features();
    for ns in [
        "urn:xmpp:reactions:0",
        "urn:xmpp:reply:0",
        "urn:xmpp:message-retract:1",
    ] {
        assert!(f.iter().any(|x| x == ns), "{ns} missing: {f:?}");
    }
    assert!(!f.iter().any(|x| x.contains("message-moderate")), "{f:?}");
}

#[tokio::test]
async fn a_reaction_names_the_origin_id_in_a_chat_and_the_stanza_id_in_a_room() {
    let s = server().await;
    s.store_message(stored("bob@example.org", "m1", Direction::In, "chat"));
    s.store_message(stored(
        "room@muc.example.org",
        "g1",
        Direction::In,
        "groupchat",
    ));
    s.action(
        "message_react",
        json!({"to": "bob@example.org", "id": "m1", "reactions": ["👍"]}),
    )
    .await
    .expect("reacted");
    let sent = s.next_sent().await;
    assert_eq!(
        sent.get_child("reactions", "urn:xmpp:reactions:0"),
        Some(&xml(
            "<reactions xmlns='urn:xmpp:reactions:0' id='o-m1'><reaction>👍</reaction></reactions>"
        ))
    );
    s.action(
        "message_react",
        json!({"to": "room@muc.example.org", "id": "g1", "reactions": [], "groupchat": true}),
    )
    .await
    .expect("reacted");
    let sent = s.next_sent().await;
    assert_eq!(sent.attr("type"), Some("groupchat"));
    assert_eq!(
        sent.get_child("reactions", "urn:xmpp:reactions:0"),
        Some(&xml("<reactions xmlns='urn:xmpp:reactions:0' id='s-g1'/>"))
    );
    // A message we do not have, a blank reaction: refused, nothing sent.
    let r = s
        .action(
            "message_react",
            json!({"to": "bob@example.org", "id": "nope", "reactions": ["👍"]}),
        )
        .await;
    assert!(bad(&r), "{r:?}");
    let r = s
        .action(
            "message_react",
            json!({"to": "bob@example.org", "id": "m1", "reactions": [" "]}),
        )
        .await;
    assert!(bad(&r), "{r:?}");
    assert!(s.nothing_sent().await);
}

#[tokio::test]
async fn a_reply_quotes_its_message_and_names_its_author() {
    let s = server().await;
    s.store_message(stored("bob@example.org", "m1", Direction::In, "chat"));
    s.action(
        "message_reply",
        json!({"to": "bob@example.org", "id": "m1", "body": "yes"}),
    )
    .await
    .expect("replied");
    let sent = s.next_sent().await;
    assert_eq!(
        sent.get_child("body", "jabber:client").map(|b| b.text()),
        Some("> cake?\nyes".to_owned())
    );
    assert_eq!(
        sent.get_child("reply", "urn:xmpp:reply:0"),
        Some(&xml(
            "<reply xmlns='urn:xmpp:reply:0' id='o-m1' to='bob@example.org/phone'/>"
        ))
    );
    assert_eq!(
        sent.get_child("fallback", "urn:xmpp:fallback:0"),
        Some(&xml(
            "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='8'/></fallback>"
        ))
    );
    // One we do not have (older than our history): unquoted, by the id given.
    s.action(
        "message_reply",
        json!({"to": "bob@example.org", "id": "old", "body": "yes"}),
    )
    .await
    .expect("replied");
    let sent = s.next_sent().await;
    assert_eq!(
        sent.get_child("body", "jabber:client").map(|b| b.text()),
        Some("yes".to_owned())
    );
    assert!(sent.get_child("fallback", "urn:xmpp:fallback:0").is_none());
}

#[tokio::test]
async fn only_our_own_messages_are_retracted() {
    let s = server().await;
    s.store_message(stored("bob@example.org", "mine", Direction::Out, "chat"));
    s.store_message(stored("bob@example.org", "theirs", Direction::In, "chat"));
    let r = s
        .action(
            "message_retract",
            json!({"to": "bob@example.org", "id": "theirs"}),
        )
        .await;
    assert!(bad(&r), "{r:?}");
    assert!(s.nothing_sent().await);
    s.action(
        "message_retract",
        json!({"to": "bob@example.org", "id": "mine"}),
    )
    .await
    .expect("retracted");
    let sent = s.next_sent().await;
    assert_eq!(
        sent.get_child("retract", "urn:xmpp:message-retract:1"),
        Some(&xml(
            "<retract xmlns='urn:xmpp:message-retract:1' id='o-mine'/>"
        ))
    );
    assert!(sent.get_child("store", "urn:xmpp:hints").is_some());
}

#[tokio::test]
async fn moderation_is_an_iq_to_the_room_by_its_stanza_id() {
    let s = server().await;
    s.store_message(stored(
        "room@muc.example.org",
        "g1",
        Direction::In,
        "groupchat",
    ));
    let run = s.action(
        "muc_moderate",
        json!({"room": "room@muc.example.org", "id": "g1", "reason": "spam"}),
    );
    let answer = async {
        let iq = s.next_iq().await;
        assert!(iq.iq.set);
        assert_eq!(
            iq.iq.to.as_ref().map(ToString::to_string).as_deref(),
            Some("room@muc.example.org")
        );
        assert_eq!(
            iq.iq.payload,
            xml("<moderate xmlns='urn:xmpp:message-moderate:1' id='s-g1'>\
                 <retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate>")
        );
        iq.error("feature-not-implemented");
    };
    let (r, ()) = tokio::join!(run, answer);
    assert!(r.is_err(), "the room's error reaches the caller: {r:?}");
}
