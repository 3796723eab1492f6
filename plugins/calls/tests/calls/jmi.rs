//! XEP-0353 ringing: a proposal accepted (proceed, then the caller's initiate), a
//! proposal retracted, our own proposal retracted, and the tie-break when two
//! proposals cross.

use perch_codec::xep_0166::Action;
use perch_codec::xep_0167::sdp::Role;
use perch_plugin_api::Outcome;
use perch_plugin_testing::{MockServer, xml};
use serde_json::json;

use super::{BOB, NS_JMI, OFFER, bob_jingle, jmi_of, server};

const BOB_BARE: &str = "bob@example.org";

fn from_bob(inner: &str) -> String {
    format!(
        "<message xmlns='jabber:client' from='{BOB}' to='me@example.org/perch' type='chat'>{inner}</message>"
    )
}

fn propose(sid: &str) -> String {
    from_bob(&format!(
        "<propose xmlns='{NS_JMI}' id='{sid}'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
    ))
}

/// Bob proposes `sid`: the message is the plugin's (not a chat message), the
/// frontends ring, Bob hears ringing.
async fn proposed(s: &MockServer, sid: &str) {
    let (outcome, _) = s.receive(&propose(sid)).await;
    assert!(!outcome.proceeds(), "a JMI message is no chat message");
    assert_eq!(
        s.signals_named("call_proposed"),
        [json!({"sid": sid, "peer": BOB, "media": ["audio"]})]
    );
    let (to, ringing) = jmi_of(&s.next_sent().await);
    assert_eq!(to, BOB);
    assert_eq!(
        ringing,
        xml(&format!("<ringing xmlns='{NS_JMI}' id='{sid}'/>"))
    );
}

#[tokio::test]
async fn a_proposal_accepted_then_initiated() {
    let s = server().await;
    proposed(&s, "j1").await;
    s.eventually("ringing", |s| {
        s.signals_named("call_state")
            .contains(&json!({"sid": "j1", "state": "ringing"}))
    })
    .await;
    let r = s.action("call_answer", json!({"sid": "j1"})).await;
    assert_eq!(r.expect("proceeded"), json!({"proceeded": true}));
    // Proceed to Bob, accept to our own account (our other devices stop ringing).
    let (to, proceed) = jmi_of(&s.next_sent().await);
    assert_eq!(
        (to.as_str(), proceed),
        (BOB, xml(&format!("<proceed xmlns='{NS_JMI}' id='j1'/>")))
    );
    let (to, accept) = jmi_of(&s.next_sent().await);
    assert_eq!(
        (to.as_str(), accept),
        (
            "me@example.org",
            xml(&format!("<accept xmlns='{NS_JMI}' id='j1'/>"))
        )
    );
    // Bob's session-initiate with the same id is this call's offer.
    let initiate = bob_jingle(
        Action::SessionInitiate,
        "j1",
        Some((OFFER, Role::Initiator)),
    );
    s.receive_iq(BOB, true, &initiate)
        .await
        .expect("claimed")
        .expect("taken");
    let incoming = s.signals_named("call_incoming");
    assert_eq!(incoming.len(), 1);
    assert_eq!(
        (&incoming[0]["sid"], &incoming[0]["jmi"]),
        (&json!("j1"), &json!(true))
    );
}

#[tokio::test]
async fn a_proposal_retracted() {
    let s = server().await;
    proposed(&s, "j2").await;
    let (outcome, _) = s
        .receive(&from_bob(&format!(
            "<retract xmlns='{NS_JMI}' id='j2'><reason xmlns='urn:xmpp:jingle:1'><cancel/></reason></retract>"
        )))
        .await;
    assert!(!outcome.proceeds());
    assert_eq!(
        s.signals_named("call_ended"),
        [json!({"sid": "j2", "reason": "cancel"})]
    );
    // Too late to answer.
    assert!(s.action("call_answer", json!({"sid": "j2"})).await.is_err());
}

#[tokio::test]
async fn an_archived_proposal_does_not_ring() {
    let s = server().await;
    let delayed = from_bob(&format!(
        "<propose xmlns='{NS_JMI}' id='old'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>\
         <delay xmlns='urn:xmpp:delay' stamp='2026-12-01T10:00:00Z'/>"
    ));
    let (outcome, _) = s.receive(&delayed).await;
    assert!(!outcome.proceeds());
    assert!(s.signals_named("call_proposed").is_empty());
    assert!(s.sent().is_empty());
}

/// Our proposal to Bob (bare JID, stored hint); returns its id.
async fn we_propose(s: &MockServer) -> String {
    let started = s
        .action(
            "call_start",
            json!({"peer": BOB_BARE, "sdp": OFFER, "jmi": true}),
        )
        .await
        .expect("proposed");
    let sid = started["sid"].as_str().expect("sid").to_owned();
    let sent = s.next_sent().await;
    assert!(
        sent.get_child("store", "urn:xmpp:hints").is_some(),
        "a proposal is kept for offline devices"
    );
    let (to, propose) = jmi_of(&sent);
    assert_eq!(to, BOB_BARE);
    assert_eq!(
        propose,
        xml(&format!(
            "<propose xmlns='{NS_JMI}' id='{sid}'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/></propose>"
        ))
    );
    sid
}

#[tokio::test]
async fn our_proposal_retracted_by_hanging_up() {
    let s = server().await;
    let sid = we_propose(&s).await;
    s.action("call_end", json!({"sid": sid, "reason": "cancel"}))
        .await
        .expect("ended");
    let (to, retract) = jmi_of(&s.next_sent().await);
    assert_eq!(to, BOB_BARE);
    assert_eq!(retract.name(), "retract");
    assert_eq!(retract.attr("id"), Some(sid.as_str()));
    assert_eq!(
        s.signals_named("call_ended"),
        [json!({"sid": sid, "reason": "cancel"})]
    );
}

/// Crossed proposals, theirs with the lower id: ours is retracted with
/// `<tie-break/>`, theirs rings.
#[tokio::test]
async fn tie_break_lost() {
    let s = server().await;
    let ours = we_propose(&s).await;
    // Our ids are hex: "0" sorts first.
    let (outcome, _) = s.receive(&propose("0")).await;
    assert_ne!(outcome, Outcome::Proceed);
    assert_eq!(
        s.signals_named("call_proposed"),
        [json!({"sid": "0", "peer": BOB, "media": ["audio"]})]
    );
    // Both go out from tasks of their own, in either order.
    let mut sent = vec![jmi_of(&s.next_sent().await), jmi_of(&s.next_sent().await)];
    sent.sort_by(|a, b| a.1.name().cmp(b.1.name()));
    let [(to_retract, retract), (to_ringing, ringing)] = <[_; 2]>::try_from(sent).expect("two");
    assert_eq!((to_retract.as_str(), retract.name()), (BOB_BARE, "retract"));
    assert_eq!(retract.attr("id"), Some(ours.as_str()));
    assert!(retract.get_child("tie-break", NS_JMI).is_some());
    assert_eq!(to_ringing, BOB);
    assert_eq!(ringing, xml(&format!("<ringing xmlns='{NS_JMI}' id='0'/>")));
    assert_eq!(
        s.signals_named("call_ended"),
        [json!({"sid": ours, "reason": "tie-break", "text": "Tie-Break"})]
    );
    assert_eq!(
        super::listed(&s, &ours).await,
        ("outgoing".into(), "ended".into(), true)
    );
}

/// Crossed proposals, ours with the lower id: theirs is rejected with
/// `<tie-break/>` and does not ring; ours goes on.
#[tokio::test]
async fn tie_break_won() {
    let s = server().await;
    let ours = we_propose(&s).await;
    let (outcome, _) = s.receive(&propose("zzzz")).await;
    assert!(!outcome.proceeds());
    assert!(s.signals_named("call_proposed").is_empty());
    let (to, reject) = jmi_of(&s.next_sent().await);
    assert_eq!((to.as_str(), reject.name()), (BOB, "reject"));
    assert_eq!(reject.attr("id"), Some("zzzz"));
    assert!(reject.get_child("tie-break", NS_JMI).is_some());
    assert!(s.signals_named("call_ended").is_empty());
    assert_eq!(
        super::listed(&s, &ours).await,
        ("outgoing".into(), "proposed".into(), true)
    );
}
