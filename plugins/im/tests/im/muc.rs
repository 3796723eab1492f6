//! XEP-0045: a join completes on our own presence, a refused join leaves nothing,
//! being thrown out forgets the room, the room's echo of our message is ours, the
//! occupants keep the status codes of our joining presence.

use perch_plugin_api::points::RoomJoined;
use perch_plugin_api::{Direction, HostError, Outcome};
use perch_plugin_testing::{MockServer, xml};
use perch_plugins_im::xep_0045;
use serde_json::json;

const ROOM: &str = "room@conf.example.org";
const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// A session with the group chat plugin; the account has no bookmarks (and takes
/// any publish), the room keeps an archive.
async fn server() -> MockServer {
    let s = MockServer::with_migrations(perch_plugins_im::migrations()).await;
    s.build(xep_0045::factory()).await;
    s.script_iq_always("pubsub", NS_PUBSUB, "");
    s.script_iq_always(
        "query",
        NS_DISCO_INFO,
        "<query xmlns='http://jabber.org/protocol/disco#info'>\
         <identity category='conference' type='text'/>\
         <feature var='http://jabber.org/protocol/muc'/><feature var='urn:xmpp:mam:2'/></query>",
    );
    s
}

fn occupant(nick: &str, kind: &str, inner: &str) -> String {
    format!(
        "<presence xmlns='jabber:client' from='{ROOM}/{nick}' to='me@example.org/perch' {kind}>\
         <x xmlns='http://jabber.org/protocol/muc#user'>{inner}</x></presence>"
    )
}

/// Runs `muc_join` as alice while the room answers with `answers` once our presence
/// is out; returns the action's result and the presence we sent.
async fn join(
    s: &MockServer,
    answers: &[String],
) -> (
    Result<serde_json::Value, HostError>,
    perch_plugin_api::minidom::Element,
) {
    let room = async {
        let sent = s.next_sent().await;
        for a in answers {
            s.receive_presence(a).await;
        }
        sent
    };
    tokio::join!(
        s.action("muc_join", json!({"room": ROOM, "nick": "alice"})),
        room
    )
}

async fn stored_rooms(s: &MockServer) -> Vec<Vec<Option<String>>> {
    s.rows("SELECT room, nick FROM muc_room").await
}

fn own_presence() -> String {
    occupant(
        "alice",
        "",
        "<item affiliation='member' role='participant'/><status code='110'/>",
    )
}

#[tokio::test]
async fn a_join_completes_on_our_own_presence() {
    let s = server().await;
    let bob = occupant("bob", "", "<item affiliation='owner' role='moderator'/>");
    let (res, sent) = join(&s, &[bob, own_presence()]).await;
    assert_eq!(
        sent,
        xml(&format!(
            "<presence xmlns='jabber:client' to='{ROOM}/alice'>\
             <x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
    );
    assert_eq!(
        res.expect("joined"),
        json!({"room": ROOM, "nick": "alice", "created": false, "archived": true,
               "subject": null, "occupants": 2})
    );
    assert_eq!(
        stored_rooms(&s).await,
        [[Some(ROOM.to_owned()), Some("alice".to_owned())]]
    );
    assert_eq!(
        s.signals_named(xep_0045::signal::ROOM_JOINED),
        [json!({"room": ROOM, "nick": "alice", "created": false, "archived": true})]
    );
    let occupants = s.signals_named(xep_0045::signal::OCCUPANT);
    assert_eq!(occupants.len(), 1);
    assert_eq!(occupants[0]["occupant"]["nick"], "bob");
    // The room's features were asked, then its bookmark published with autojoin.
    let iqs = s.iqs();
    assert!(iqs.iter().any(|q| !q.set
        && q.payload.is("query", NS_DISCO_INFO)
        && q.to.as_ref().map(|j| j.to_string()) == Some(ROOM.to_owned())));
    let publish = iqs
        .iter()
        .filter(|q| q.set && q.to.is_none())
        .find_map(|q| q.payload.get_child("publish", NS_PUBSUB))
        .expect("the bookmark published");
    assert_eq!(publish.attr("node"), Some("urn:xmpp:bookmarks:1"));
    let item = publish.get_child("item", NS_PUBSUB).expect("an item");
    assert_eq!(item.attr("id"), Some(ROOM));
    let conference = item
        .get_child("conference", "urn:xmpp:bookmarks:1")
        .expect("a conference");
    assert!(matches!(conference.attr("autojoin"), Some("true" | "1")));
    assert!(s.undeclared_signals().is_empty());
}

#[tokio::test]
async fn a_join_fires_room_joined_with_where_catching_up_starts() {
    let s = server().await;
    s.set_last_archive_id(ROOM, "A41");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<RoomJoined>::new()));
    // Another plugin (the archive) listening on the group chat plugin's point.
    let heard = seen.clone();
    s.build(perch_plugin_api::PluginFactory::new(
        perch_plugin_api::PluginInfo {
            import_name: "LISTENER",
            name: "listener",
            description: "",
            dependencies: &[],
            recommendations: &[],
            tables: &[],
            signals_as: None,
        },
        move |host| async move {
            let heard = heard.clone();
            host.triggers()
                .add::<perch_plugin_api::points::RoomJoinedPoint, _>(0, move |args| {
                    heard.lock().expect("lock").push(args.clone());
                    Box::pin(async { perch_plugin_api::Flow::Continue })
                })?;
            Ok(std::sync::Arc::new(Quiet) as std::sync::Arc<dyn perch_plugin_api::Plugin>)
        },
    ))
    .await;
    let (res, sent) = join(&s, &[own_presence()]).await;
    res.expect("joined");
    // Archived messages of the room are stored: no join history, the archive gives it.
    assert_eq!(
        sent,
        xml(&format!(
            "<presence xmlns='jabber:client' to='{ROOM}/alice'>\
             <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
        ))
    );
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (
            seen[0].room.as_str(),
            seen[0].nick.as_str(),
            seen[0].archived
        ),
        (ROOM, "alice", true)
    );
    assert_eq!(seen[0].after.as_deref(), Some("A41"));
}

struct Quiet;
impl perch_plugin_api::Plugin for Quiet {}

#[tokio::test]
async fn a_nick_conflict_fails_the_join_and_leaves_nothing() {
    let s = server().await;
    let conflict = format!(
        "<presence xmlns='jabber:client' from='{ROOM}/alice' type='error'>\
         <x xmlns='http://jabber.org/protocol/muc'/>\
         <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    );
    let (res, _) = join(&s, &[conflict]).await;
    match res {
        Err(HostError::Stanza(e)) => assert_eq!(e.condition, "conflict"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(stored_rooms(&s).await.is_empty());
    assert!(s.signals_named(xep_0045::signal::ROOM_JOINED).is_empty());
    assert_eq!(
        s.action("muc_list", json!({})).await.expect("list"),
        json!([])
    );
}

/// Kicked, banned, destroyed: the room is forgotten (row, memory), the frontends
/// told why, and the room's later messages are not taken for ours.
#[tokio::test]
async fn thrown_out_forgets_the_room() {
    let cases = [
        (
            "kicked",
            "<item affiliation='none' role='none'><reason>spam</reason></item>\
             <status code='307'/><status code='110'/>",
        ),
        (
            "banned",
            "<item affiliation='outcast' role='none'/><status code='301'/><status code='110'/>",
        ),
        (
            "destroyed",
            "<item affiliation='none' role='none'/>\
             <destroy jid='new@conf.example.org'><reason>moved</reason></destroy><status code='110'/>",
        ),
    ];
    for (reason, inner) in cases {
        let s = server().await;
        join(&s, &[own_presence()]).await.0.expect("joined");
        let out = s
            .receive_presence(&occupant("alice", "type='unavailable'", inner))
            .await;
        assert!(
            !out.proceeds(),
            "{reason}: the core must not read a room's presence"
        );
        let left = s.signals_named(xep_0045::signal::ROOM_LEFT);
        assert_eq!(left.len(), 1, "{reason}");
        assert_eq!(left[0]["reason"], reason);
        assert_eq!(left[0]["room"], ROOM);
        if reason == "destroyed" {
            assert_eq!(left[0]["alternate"], "new@conf.example.org");
        }
        assert!(stored_rooms(&s).await.is_empty(), "{reason}: row kept");
        let (_, echo) = s
            .receive(&format!(
                "<message xmlns='jabber:client' from='{ROOM}/alice' type='groupchat'><body>hi</body></message>"
            ))
            .await;
        assert_eq!(echo.direction, None, "{reason}: the room is still known");
    }
}

#[tokio::test]
async fn the_rooms_echo_of_our_message_is_ours() {
    let s = server().await;
    join(&s, &[own_presence()]).await.0.expect("joined");
    let (outcome, echo) = s
        .receive(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/alice' type='groupchat' id='m1'>\
             <body>hello</body></message>"
        ))
        .await;
    assert_eq!(outcome, Outcome::Proceed);
    assert_eq!(echo.direction, Some(Direction::Out));
    let (outcome, theirs) = s
        .receive(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/bob' type='groupchat'><body>yo</body></message>"
        ))
        .await;
    assert_eq!(outcome, Outcome::Proceed);
    assert_eq!((theirs.direction, theirs.peer), (None, None));
    // A subject change is no message: remembered, signalled, dropped.
    let (outcome, _) = s
        .receive(&format!(
            "<message xmlns='jabber:client' from='{ROOM}/bob' type='groupchat'><subject>Plans</subject></message>"
        ))
        .await;
    assert!(!outcome.proceeds());
    assert_eq!(
        s.signals_named(xep_0045::signal::SUBJECT),
        [json!({"room": ROOM, "subject": "Plans", "by": "bob"})]
    );
}

/// `muc_occupants` gives the status codes of our own presence as the room let us in
/// (what Libervia's bridge names as the room's statuses); a later presence of ours
/// (a new show) does not change them.
#[tokio::test]
async fn occupants_keep_the_codes_of_our_joining_presence() {
    let s = server().await;
    let joining = occupant(
        "alice",
        "",
        "<item affiliation='member' role='participant'/><status code='110'/>\
         <status code='170'/><status code='100'/>",
    );
    join(&s, &[joining]).await.0.expect("joined");
    s.receive_presence(&own_presence()).await;
    let o = s
        .action("muc_occupants", json!({"room": ROOM}))
        .await
        .expect("occupants");
    assert_eq!(o["codes"], json!([100, 110, 170]));
    assert_eq!(o["occupants"][0]["nick"], "alice");
}

/// XEP-0410: a room silent for `self_ping_s` gets a ping to our own occupant JID;
/// an answer keeps us in, `not-acceptable` (the room no longer has us) has us join
/// again, with our nick.
#[tokio::test]
async fn a_silent_room_is_pinged_and_joined_again_when_it_lost_us() {
    let s = server().await;
    s.set_options(xep_0045::IMPORT_NAME, json!({"self_ping_s": 0.3}));
    s.session_started().await;
    let (res, _) = join(&s, &[own_presence()]).await;
    res.expect("joined");

    let ping = s.next_iq().await;
    assert!(ping.iq.payload.is("ping", "urn:xmpp:ping"), "{:?}", ping.iq);
    assert_eq!(
        ping.iq.to.as_ref().map(ToString::to_string).as_deref(),
        Some("room@conf.example.org/alice")
    );
    ping.result("");
    let ping = s.next_iq().await;
    assert!(
        s.nothing_sent().await,
        "a room that answered was joined again"
    );
    ping.error("not-acceptable");

    let rejoin = s.next_sent().await;
    assert_eq!(
        rejoin.attr("to"),
        Some("room@conf.example.org/alice"),
        "{rejoin:?}"
    );
    s.receive_presence(&own_presence()).await;
    s.eventually("the room joined again", |s| {
        s.signals_named(xep_0045::signal::ROOM_JOINED).len() == 2
    })
    .await;
}

/// XEP-0249: an invitation is sent with the room's password; one received is
/// filed under the inviter, kept in `extra.invitation` and signalled.
#[tokio::test]
async fn invitations_carry_the_password_both_ways() {
    let s = server().await;
    let (res, _) = join(&s, &[own_presence()]).await;
    res.expect("joined");
    let sent = s
        .action(
            "muc_invite",
            json!({"room": ROOM, "jid": "bob@example.org/phone", "reason": "come"}),
        )
        .await
        .expect("invited");
    assert_eq!(sent, json!({"room": ROOM, "jid": "bob@example.org"}));
    let invitation = s.next_sent().await;
    let x = invitation
        .get_child("x", "jabber:x:conference")
        .expect("a direct invitation");
    assert_eq!(x.attr("jid"), Some(ROOM));
    assert_eq!(x.attr("reason"), Some("come"));
    assert_eq!(invitation.attr("to"), Some("bob@example.org"));

    let (outcome, args) = s
        .receive(
            "<message xmlns='jabber:client' from='carol@example.org/pc' to='me@example.org/perch'>\
             <x xmlns='jabber:x:conference' jid='other@conf.example.org' password='pw'/></message>",
        )
        .await;
    assert_eq!(outcome, Outcome::Proceed);
    assert_eq!(
        args.message.bodies.values().next().map(String::as_str),
        Some("Invitation to other@conf.example.org")
    );
    assert!(
        s.features().iter().any(|f| f == "jabber:x:conference"),
        "{:?}",
        s.features()
    );
}
