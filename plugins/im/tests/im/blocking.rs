//! XEP-0191: the list fetched at the session's start, pushes from our account kept in
//! step (and answered), our own block and unblock with the IQs the server sees, a
//! server without the protocol as a typed error.

use perch_plugin_api::HostError;
use perch_plugin_testing::{MockServer, xml};
use perch_plugins_im::xep_0191;
use serde_json::{Value, json};

/// A session with the blocking plugin, whose start fetched this `<blocklist/>`.
async fn server(blocklist: &str) -> MockServer {
    let s = MockServer::with_migrations(perch_plugins_im::migrations()).await;
    s.build(xep_0191::factory()).await;
    s.session_started().await;
    let fetch = s.next_iq().await;
    assert!(!fetch.iq.set && fetch.iq.to.is_none());
    assert_eq!(
        fetch.iq.payload,
        xml("<blocklist xmlns='urn:xmpp:blocking'/>")
    );
    fetch.result(blocklist);
    s
}

async fn stored(s: &MockServer) -> Vec<Vec<Option<String>>> {
    s.rows("SELECT jid FROM blocked_jid ORDER BY jid").await
}

fn changes(s: &MockServer) -> Vec<Value> {
    s.signals_named("blocking_changed")
}

#[tokio::test]
async fn the_list_is_fetched_at_the_start_and_pushes_keep_it_in_step() {
    let s = server(
        "<blocklist xmlns='urn:xmpp:blocking'>\
         <item jid='romeo@montague.net'/><item jid='iago@shakespeare.lit'/></blocklist>",
    )
    .await;
    s.eventually("the fetched list stored", |s| changes(s).len() == 1)
        .await;
    assert_eq!(
        changes(&s)[0],
        json!({"jids": ["iago@shakespeare.lit", "romeo@montague.net"]})
    );
    assert_eq!(
        s.action("blocking_list", json!({})).await.expect("listed"),
        json!(["iago@shakespeare.lit", "romeo@montague.net"])
    );

    // Another resource blocked someone: the server pushes it, we answer a result.
    let answer = s
        .receive_iq(
            "me@example.org",
            true,
            "<block xmlns='urn:xmpp:blocking'><item jid='spammer@example.net'/></block>",
        )
        .await
        .expect("claimed");
    assert_eq!(answer, Ok(None));
    assert_eq!(
        stored(&s).await,
        [
            [Some("iago@shakespeare.lit".to_owned())],
            [Some("romeo@montague.net".to_owned())],
            [Some("spammer@example.net".to_owned())]
        ]
    );
    assert_eq!(changes(&s).len(), 2);

    // The same push again changes nothing and says nothing.
    let again = s
        .receive_iq(
            "me@example.org",
            true,
            "<block xmlns='urn:xmpp:blocking'><item jid='spammer@example.net'/></block>",
        )
        .await
        .expect("claimed");
    assert_eq!(again, Ok(None));
    assert_eq!(changes(&s).len(), 2);

    let one = s
        .receive_iq(
            "me@example.org",
            true,
            "<unblock xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></unblock>",
        )
        .await
        .expect("claimed");
    assert_eq!(one, Ok(None));
    assert_eq!(
        changes(&s)[2],
        json!({"jids": ["iago@shakespeare.lit", "spammer@example.net"]})
    );

    // An unblock without items: everything.
    let all = s
        .receive_iq(
            "me@example.org",
            true,
            "<unblock xmlns='urn:xmpp:blocking'/>",
        )
        .await
        .expect("claimed");
    assert_eq!(all, Ok(None));
    assert!(stored(&s).await.is_empty());
    assert_eq!(changes(&s)[3], json!({"jids": []}));
    assert!(s.undeclared_signals().is_empty());
    assert!(s.features().contains(&"urn:xmpp:blocking".to_owned()));
}

#[tokio::test]
async fn a_push_from_anyone_else_is_refused() {
    let s = server("<blocklist xmlns='urn:xmpp:blocking'/>").await;
    let answer = s
        .receive_iq(
            "mallory@evil.example",
            true,
            "<block xmlns='urn:xmpp:blocking'><item jid='me-friend@example.org'/></block>",
        )
        .await
        .expect("claimed");
    assert!(answer.is_err(), "{answer:?}");
    assert!(stored(&s).await.is_empty());
    assert!(changes(&s).is_empty());
}

#[tokio::test]
async fn blocking_sends_the_block_with_its_report_and_stores_it_on_the_result() {
    let s = server("<blocklist xmlns='urn:xmpp:blocking'/>").await;
    let server_side = async {
        let iq = s.next_iq().await;
        assert!(iq.iq.set && iq.iq.to.is_none());
        assert_eq!(
            iq.iq.payload,
            xml("<block xmlns='urn:xmpp:blocking'>\
                 <item jid='spam@bots.example'>\
                 <report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'/></item>\
                 </block>")
        );
        iq.result("");
    };
    let (done, ()) = tokio::join!(
        s.action(
            "blocking_block",
            json!({"jids": ["spam@bots.example"], "report": "spam"})
        ),
        server_side
    );
    assert_eq!(done.expect("blocked"), json!(["spam@bots.example"]));
    assert_eq!(stored(&s).await, [[Some("spam@bots.example".to_owned())]]);
    assert_eq!(changes(&s), [json!({"jids": ["spam@bots.example"]})]);

    // The server's push of our own block changes nothing more.
    s.receive_iq(
        "me@example.org",
        true,
        "<block xmlns='urn:xmpp:blocking'><item jid='spam@bots.example'/></block>",
    )
    .await
    .expect("claimed")
    .expect("answered with a result");
    assert_eq!(changes(&s).len(), 1);

    // Unblocking with no JIDs: every JID, an empty <unblock/>.
    let server_side = async {
        let iq = s.next_iq().await;
        assert_eq!(iq.iq.payload, xml("<unblock xmlns='urn:xmpp:blocking'/>"));
        iq.result("");
    };
    let (done, ()) = tokio::join!(s.action("blocking_unblock", json!({})), server_side);
    assert_eq!(done.expect("unblocked"), json!([]));
    assert!(stored(&s).await.is_empty());
    assert_eq!(changes(&s).len(), 2);
}

#[tokio::test]
async fn bad_jids_and_a_server_without_blocking_are_typed_errors() {
    let s = MockServer::with_migrations(perch_plugins_im::migrations()).await;
    s.build(xep_0191::factory()).await;
    s.session_started().await;
    s.next_iq().await.error("service-unavailable");

    let bad = s
        .action("blocking_block", json!({"jids": ["ok@x", "@nobody"]}))
        .await
        .expect_err("refused");
    assert!(
        matches!(&bad, HostError::InvalidJid { jid, .. } if jid == "@nobody"),
        "{bad:?}"
    );
    assert!(s.iqs().len() == 1, "nothing sent for a bad JID");

    s.script_iq_error("block", "urn:xmpp:blocking", "feature-not-implemented");
    let blocked = s
        .action("blocking_block", json!({"jids": ["b@x"]}))
        .await
        .expect_err("refused");
    assert!(
        matches!(&blocked, HostError::Stanza(e) if e.condition == "feature-not-implemented"
            && e.text.as_deref().unwrap_or("").contains("XEP-0191")),
        "{blocked:?}"
    );

    // What the server answered is remembered: listing says so too.
    let listed = s
        .action("blocking_list", json!({}))
        .await
        .expect_err("refused");
    let HostError::Stanza(e) = &listed else {
        panic!("{listed:?}")
    };
    assert_eq!(e.condition, "feature-not-implemented");
    assert!(
        e.text.as_deref().unwrap_or("").contains("XEP-0191"),
        "{e:?}"
    );

    assert!(changes(&s).is_empty());
}
