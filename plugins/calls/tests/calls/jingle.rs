//! Jingle sessions without JMI: initiate → accept → terminate; an incoming call
//! declined; out-of-order and unknown sessions refused.

use perch_codec::xep_0166::Action;
use perch_codec::xep_0167::sdp::Role;
use serde_json::json;

use super::{ANSWER, BOB, OFFER, bob_jingle, jingles_sent, server};

#[tokio::test]
async fn initiate_accept_terminate() {
    let s = server().await;
    let started = s
        .action("call_start", json!({"peer": BOB, "sdp": OFFER}))
        .await
        .expect("started");
    let sid = started["sid"].as_str().expect("a sid").to_owned();
    assert_eq!(started["peer"], BOB);
    // disco#info of the peer, then session-initiate to it.
    assert_eq!(
        jingles_sent(&s),
        [(BOB.into(), "session-initiate".into(), sid.clone(), None)]
    );
    let initiate = s
        .iqs()
        .into_iter()
        .find(|q| q.payload.attr("action") == Some("session-initiate"))
        .expect("initiate");
    assert_eq!(
        initiate.payload.attr("initiator"),
        Some(perch_plugin_testing::ME)
    );
    assert_eq!(
        initiate
            .payload
            .children()
            .filter(|c| c.name() == "content")
            .count(),
        2,
        "audio and video"
    );
    assert_eq!(
        super::listed(&s, &sid).await,
        ("outgoing".into(), "pending".into(), false)
    );

    // Bob accepts: the answer reaches the frontend as SDP, the call is active.
    let accept = bob_jingle(Action::SessionAccept, &sid, Some((ANSWER, Role::Responder)));
    let answer = s.receive_iq(BOB, true, &accept).await.expect("claimed");
    assert_eq!(answer.expect("acknowledged"), None);
    let setup = s.signals_named("call_setup");
    assert_eq!(setup.len(), 1);
    assert_eq!(setup[0]["sid"], sid.as_str());
    assert!(setup[0]["sdp"].as_str().expect("sdp").contains("m=audio"));
    assert_eq!(
        s.signals_named("call_state").last(),
        Some(&json!({"sid": sid, "state": "active"}))
    );

    // We hang up: session-terminate with success, the call ends and is stored.
    s.action("call_end", json!({"sid": sid}))
        .await
        .expect("ended");
    assert_eq!(
        jingles_sent(&s).last(),
        Some(&(
            BOB.into(),
            "session-terminate".into(),
            sid.clone(),
            Some("success".into())
        ))
    );
    assert_eq!(
        s.signals_named("call_ended"),
        [json!({"sid": sid, "reason": "success"})]
    );
    let pid = s.profile_id();
    let mut rows = Vec::new();
    for _ in 0..500 {
        rows = s
            .rows(&format!(
                "SELECT sid, json_extract(data, '$.state') FROM call WHERE profile_id = {pid}"
            ))
            .await;
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(rows, [[Some(sid.clone()), Some("ended".into())]]);
    assert_eq!(
        super::listed(&s, &sid).await,
        ("outgoing".into(), "ended".into(), false)
    );
    // Ending it again is refused.
    assert!(s.action("call_end", json!({"sid": sid})).await.is_err());
}

#[tokio::test]
async fn an_incoming_call_declined() {
    let s = server().await;
    let initiate = bob_jingle(
        Action::SessionInitiate,
        "in1",
        Some((OFFER, Role::Initiator)),
    );
    let answer = s.receive_iq(BOB, true, &initiate).await.expect("claimed");
    assert_eq!(answer.expect("acknowledged"), None);
    let incoming = s.signals_named("call_incoming");
    assert_eq!(incoming.len(), 1);
    assert_eq!(
        (
            &incoming[0]["sid"],
            &incoming[0]["peer"],
            &incoming[0]["media"],
            &incoming[0]["jmi"]
        ),
        (
            &json!("in1"),
            &json!(BOB),
            &json!(["audio", "video"]),
            &json!(false)
        )
    );
    s.action("call_decline", json!({"sid": "in1"}))
        .await
        .expect("declined");
    assert_eq!(
        jingles_sent(&s),
        [(
            BOB.into(),
            "session-terminate".into(),
            "in1".into(),
            Some("decline".into())
        )]
    );
    assert_eq!(
        s.signals_named("call_ended"),
        [json!({"sid": "in1", "reason": "decline"})]
    );
}

#[tokio::test]
async fn out_of_order_and_unknown_sessions_are_refused() {
    let s = server().await;
    // A session-accept for no session of ours.
    let stray = bob_jingle(
        Action::SessionAccept,
        "nope",
        Some((ANSWER, Role::Responder)),
    );
    let refused = s.receive_iq(BOB, true, &stray).await.expect("claimed");
    assert_eq!(super::condition(refused), "item-not-found");
    // Bob's own call: he cannot accept it himself.
    let initiate = bob_jingle(
        Action::SessionInitiate,
        "in2",
        Some((OFFER, Role::Initiator)),
    );
    s.receive_iq(BOB, true, &initiate)
        .await
        .expect("claimed")
        .expect("taken");
    let accept = bob_jingle(
        Action::SessionAccept,
        "in2",
        Some((ANSWER, Role::Responder)),
    );
    let refused = s.receive_iq(BOB, true, &accept).await.expect("claimed");
    assert_eq!(super::condition(refused), "unexpected-request");
    // Someone else cannot touch Bob's session.
    let terminate = bob_jingle(Action::SessionTerminate, "in2", None);
    let refused = s
        .receive_iq("mallory@example.org/x", true, &terminate)
        .await
        .expect("claimed");
    assert_eq!(super::condition(refused), "item-not-found");
    assert!(s.signals_named("call_ended").is_empty());
}
