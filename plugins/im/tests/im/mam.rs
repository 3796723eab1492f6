//! XEP-0313 catch-up: pages oldest first after the newest stored archive id, stops
//! when the archive says complete, takes only results of its own queries from the
//! archive it asked.

use perch_plugin_api::points::{RoomJoined, RoomJoinedPoint};
use perch_plugin_api::{Outcome, Source};
use perch_plugin_testing::{MockServer, PendingIq, xml};
use perch_plugins_im::{xep_0045, xep_0313};

const ACCOUNT: &str = "me@example.org";
const ROOM: &str = "room@conf.example.org";
const NS_MAM: &str = "urn:xmpp:mam:2";

async fn server() -> MockServer {
    let s = MockServer::with_migrations(perch_plugins_im::migrations()).await;
    // The group chat plugin declares `room.joined`, which the archive hears.
    s.build(xep_0045::factory()).await;
    s.build(xep_0313::factory()).await;
    // The group chat plugin reads the bookmarks at session start: there are none.
    s.script_iq_always("pubsub", "http://jabber.org/protocol/pubsub", "");
    s
}

/// The query id of a catch-up query, after checking the query is `<query/>` with
/// exactly this RSM set (XML of `<set/>`'s children).
fn query_id(q: &PendingIq, rsm: &str) -> String {
    assert!(q.iq.set, "a MAM query is a set");
    let id = q.iq.payload.attr("queryid").expect("a query id").to_owned();
    assert_eq!(
        q.iq.payload,
        xml(&format!(
            "<query xmlns='{NS_MAM}' queryid='{id}'>\
             <set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query>"
        ))
    );
    id
}

fn fin(complete: bool, last: &str) -> String {
    format!(
        "<fin xmlns='{NS_MAM}' complete='{complete}'>\
         <set xmlns='http://jabber.org/protocol/rsm'><last>{last}</last></set></fin>"
    )
}

/// A result of query `qid` (from `from`, none when empty) holding archived message
/// `id` with `body`.
fn result(from: &str, qid: &str, id: &str, body: &str) -> String {
    let from = if from.is_empty() {
        String::new()
    } else {
        format!("from='{from}'")
    };
    format!(
        "<message xmlns='jabber:client' {from} to='me@example.org/perch'>\
         <result xmlns='{NS_MAM}' queryid='{qid}' id='{id}'>\
         <forwarded xmlns='urn:xmpp:forward:0'>\
         <delay xmlns='urn:xmpp:delay' stamp='2026-12-01T10:00:00Z'/>\
         <message xmlns='jabber:client' from='bob@example.org/phone' to='me@example.org' type='chat'>\
         <body>{body}</body></message></forwarded></result></message>"
    )
}

/// The MAM queries sent so far (the group chat plugin asks for bookmarks too).
fn queries(s: &MockServer) -> usize {
    s.iqs()
        .iter()
        .filter(|q| q.payload.is("query", NS_MAM))
        .count()
}

/// Lets spawned tasks run to their end (a catch-up that would ask again does so at
/// once: its answer is already there).
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}

#[tokio::test]
async fn catch_up_pages_oldest_first_after_the_newest_stored_id() {
    let s = server().await;
    s.set_last_archive_id(ACCOUNT, "A10");
    s.session_started().await;

    let q1 = s.next_iq().await;
    assert_eq!(q1.iq.to, None, "our own account's archive");
    let qid = query_id(&q1, "<max>100</max><after>A10</after>");
    let (outcome, got) = s.receive(&result("", &qid, "A11", "first")).await;
    assert_eq!(outcome, Outcome::Proceed);
    assert_eq!(got.source, Source::Archive);
    assert_eq!(
        got.message.from.as_ref().map(|j| j.to_string()).as_deref(),
        Some("bob@example.org/phone")
    );
    assert_eq!(got.message.bodies[""], "first");
    let sid = got
        .message
        .payloads
        .iter()
        .find(|p| p.is("stanza-id", "urn:xmpp:sid:0"))
        .expect("the archive's id");
    assert_eq!(
        (sid.attr("by"), sid.attr("id")),
        (Some(ACCOUNT), Some("A11"))
    );
    q1.result(&fin(false, "A11"));

    // The next page starts after the last one's end; complete ends the catch-up.
    let q2 = s.next_iq().await;
    let qid2 = query_id(&q2, "<max>100</max><after>A11</after>");
    assert_ne!(qid, qid2, "one query id per page");
    let (_, got) = s.receive(&result(ACCOUNT, &qid2, "A12", "second")).await;
    assert_eq!(
        got.source,
        Source::Archive,
        "from our bare JID: our archive"
    );
    q2.result(&fin(true, "A12"));
    settle().await;
    assert_eq!(queries(&s), 2, "asked again after complete");
}

#[tokio::test]
async fn a_new_profile_fetches_the_recent_window() {
    let s = server().await;
    s.session_started().await;
    let q = s.next_iq().await;
    query_id(&q, "<max>50</max><before/>");
    // The window is one page, complete or not.
    q.result(&fin(false, "A3"));
    settle().await;
    assert_eq!(queries(&s), 1);
}

#[tokio::test]
async fn a_forgotten_id_starts_over_with_the_window() {
    let s = server().await;
    s.set_last_archive_id(ACCOUNT, "gone");
    s.session_started().await;
    let q = s.next_iq().await;
    query_id(&q, "<max>100</max><after>gone</after>");
    q.error("item-not-found");
    let q = s.next_iq().await;
    query_id(&q, "<max>50</max><before/>");
    q.result(&fin(true, "A1"));
}

#[tokio::test]
async fn only_our_queries_answered_by_the_archive_asked_are_taken() {
    let s = server().await;
    s.set_last_archive_id(ACCOUNT, "A10");
    s.session_started().await;
    let q = s.next_iq().await;
    let qid = query_id(&q, "<max>100</max><after>A10</after>");
    // Not our query: dropped, whoever sends it.
    let (outcome, _) = s.receive(&result("", "forged", "X1", "spoof")).await;
    assert!(!outcome.proceeds());
    // Our query id, another archive: dropped.
    for from in ["mallory@example.org", ROOM, "me@example.org/other"] {
        let (outcome, got) = s.receive(&result(from, &qid, "X2", "spoof")).await;
        assert!(!outcome.proceeds(), "a result from {from} was taken");
        assert_eq!(got.source, Source::Live);
    }
    // A plain message is none of the archive's business.
    let (outcome, got) = s
        .receive("<message xmlns='jabber:client' from='bob@example.org/phone' type='chat'><body>hi</body></message>")
        .await;
    assert_eq!((outcome, got.source), (Outcome::Proceed, Source::Live));
    q.result(&fin(true, "A10"));
}

#[tokio::test]
async fn a_joined_room_is_caught_up_from_its_own_archive() {
    let s = server().await;
    let mut joined = RoomJoined {
        profile: perch_plugin_testing::PROFILE.into(),
        room: ROOM.into(),
        nick: "alice".into(),
        archived: true,
        after: Some("R5".into()),
    };
    assert_eq!(
        s.fire::<RoomJoinedPoint>(&mut joined).await,
        Outcome::Proceed
    );
    let q = s.next_iq().await;
    assert_eq!(
        q.iq.to.as_ref().map(|j| j.to_string()).as_deref(),
        Some(ROOM)
    );
    let qid = query_id(&q, "<max>100</max><after>R5</after>");
    let (outcome, got) = s.receive(&result(ROOM, &qid, "R6", "in the room")).await;
    assert_eq!((outcome, got.source), (Outcome::Proceed, Source::Archive));
    // An occupant is not the room's archive; nor is our account's.
    for from in [&format!("{ROOM}/bob") as &str, ACCOUNT, ""] {
        let (outcome, _) = s.receive(&result(from, &qid, "R7", "spoof")).await;
        assert!(
            !outcome.proceeds(),
            "a room's result from {from:?} was taken"
        );
    }
    q.result(&fin(true, "R6"));
    // A room without an archive is not asked.
    let mut plain = RoomJoined {
        archived: false,
        room: "plain@conf.example.org".into(),
        ..joined
    };
    s.fire::<RoomJoinedPoint>(&mut plain).await;
    settle().await;
    assert_eq!(queries(&s), 1);
}
