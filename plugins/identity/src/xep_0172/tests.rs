//! XEP-0172 against the mock host, in literal XML: what we publish and send, what
//! we keep of what contacts publish or send, and what is refused.

use perch_plugin_api::jid::Jid;
use perch_plugin_api::parsers::presence::{Presence, Type as PresenceType};
use perch_plugin_api::points::{OutgoingPresence, PresenceSend};
use perch_plugin_testing::{MockServer, PROFILE};
use serde_json::json;

use super::*;

async fn server() -> MockServer {
    let s = MockServer::with_migrations(crate::migrations()).await;
    s.build(factory()).await;
    s
}

fn event(from: &str, item: &str) -> String {
    format!(
        "<message xmlns='jabber:client' from='{from}' to='me@example.org' type='headline'>\
         <event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='http://jabber.org/protocol/nick'>{item}</items></event></message>"
    )
}

#[tokio::test]
async fn ours_is_published_and_sent_with_subscription_requests() {
    let s = server().await;
    assert!(s.features().contains(&format!("{NS_NICK}+notify")));
    let (answer, sent) = tokio::join!(s.action("nick_set", json!({"nick": " Alice "})), async {
        let iq = s.next_iq().await;
        assert!(iq.iq.set && iq.iq.to.is_none());
        let sent = String::from(&iq.iq.payload);
        iq.result("");
        sent
    });
    assert!(
        sent.starts_with(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish \
             node='http://jabber.org/protocol/nick'><item id='current'>\
             <nick xmlns='http://jabber.org/protocol/nick'>Alice</nick></item></publish>"
        ),
        "{sent}"
    );
    assert!(sent.contains("pubsub#access_model"), "{sent}");
    let answer = answer.unwrap();
    assert_eq!(answer, json!({"jid": "me@example.org", "nick": "Alice"}));

    // A subscription request carries it; our availability does not.
    let mut sub = OutgoingPresence {
        profile: PROFILE.into(),
        presence: Presence::new(PresenceType::Subscribe)
            .with_to(Jid::new("bob@example.org").unwrap()),
    };
    assert!(s.fire::<PresenceSend>(&mut sub).await.proceeds());
    let nicks: Vec<String> = sub.presence.payloads.iter().map(String::from).collect();
    assert_eq!(
        nicks,
        ["<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>"]
    );
    let mut avail = OutgoingPresence {
        profile: PROFILE.into(),
        presence: Presence::new(PresenceType::None),
    };
    s.fire::<PresenceSend>(&mut avail).await;
    assert!(avail.presence.payloads.is_empty());

    // Bad input is a typed error, nothing published.
    let long = "x".repeat(MAX_CHARS + 1);
    let err = s
        .action("nick_set", json!({"nick": long}))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::BadArgument(_)), "{err:?}");
}

#[tokio::test]
async fn contacts_are_kept_from_notifications_and_requests() {
    let s = server().await;
    s.receive(&event(
        "bob@example.org",
        "<item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Bobby</nick></item>",
    ))
    .await;
    assert_eq!(
        s.signals_named("nick_changed"),
        [json!({"jid": "bob@example.org", "nick": "Bobby"})]
    );
    // The same again: no signal.
    s.receive(&event(
        "bob@example.org",
        "<item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Bobby</nick></item>",
    ))
    .await;
    assert_eq!(s.signals_named("nick_changed").len(), 1);
    // Kept: answered without asking the network.
    let got = s
        .action("nick_get", json!({"jid": "bob@example.org"}))
        .await;
    assert_eq!(
        got.unwrap(),
        json!({"jid": "bob@example.org", "nick": "Bobby"})
    );
    assert!(s.iqs().is_empty());

    // Not from the account itself (a resource, a service): ignored.
    for from in ["bob@example.org/phone", "pubsub.example.org"] {
        s.receive(&event(
            from,
            "<item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Evil</nick></item>",
        ))
        .await;
    }
    assert_eq!(s.signals_named("nick_changed").len(), 1);

    // Retracted: forgotten.
    s.receive(&event("bob@example.org", "<retract id='current'/>"))
        .await;
    assert_eq!(
        s.signals_named("nick_changed")[1],
        json!({"jid": "bob@example.org", "nick": null})
    );

    // A subscription request's nickname (XEP-0172 §4.2).
    s.receive_presence(
        "<presence xmlns='jabber:client' from='carol@example.org' type='subscribe'>\
         <nick xmlns='http://jabber.org/protocol/nick'>Carol</nick></presence>",
    )
    .await;
    assert_eq!(
        s.signals_named("nick_changed")[2],
        json!({"jid": "carol@example.org", "nick": "Carol"})
    );
}

#[tokio::test]
async fn an_unknown_nickname_is_fetched_from_pep() {
    let s = server().await;
    let (got, (asked, to)) = tokio::join!(
        s.action("nick_get", json!({"jid": "dave@example.org"})),
        async {
            let iq = s.next_iq().await;
            let asked = String::from(&iq.iq.payload);
            let to = iq.iq.to.as_ref().map(ToString::to_string);
            iq.result(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items \
                 node='http://jabber.org/protocol/nick'><item id='current'>\
                 <nick xmlns='http://jabber.org/protocol/nick'>Dave</nick></item></items></pubsub>",
            );
            (asked, to)
        }
    );
    assert_eq!(
        asked,
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items max_items='1' \
         node='http://jabber.org/protocol/nick'/></pubsub>"
    );
    assert_eq!(to.as_deref(), Some("dave@example.org"));
    assert_eq!(
        got.unwrap(),
        json!({"jid": "dave@example.org", "nick": "Dave"})
    );
    // No node: no nickname, not an error.
    let (got, ()) = tokio::join!(
        s.action("nick_get", json!({"jid": "erin@example.org"})),
        async { s.next_iq().await.error("item-not-found") }
    );
    assert_eq!(
        got.unwrap(),
        json!({"jid": "erin@example.org", "nick": null})
    );
}

#[test]
fn nicknames_are_cleaned() {
    assert_eq!(clean("  Al "), Ok(Some("Al".into())));
    assert_eq!(clean(" "), Ok(None));
    assert!(clean("a\u{7}b").is_err());
    assert_eq!(
        String::from(&element(Some("Al"))),
        "<nick xmlns='http://jabber.org/protocol/nick'>Al</nick>"
    );
}
