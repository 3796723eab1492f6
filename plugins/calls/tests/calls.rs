//! The call plugin's state machines (Jingle sessions, JMI ringing) against a mock
//! host: the test is the peer, its server and the core; each test takes milliseconds.

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

#[path = "calls/jingle.rs"]
mod jingle;
#[path = "calls/jmi.rs"]
mod jmi;

use perch_codec::xep_0166::{Action, Jingle};
use perch_codec::xep_0167::sdp::{self, Role};
use perch_plugin_api::minidom::Element;
use perch_plugin_testing::MockServer;
use perch_plugins_calls::xep_0167;

/// A real offer and its answer (GStreamer's webrtcbin: audio and video).
pub const OFFER: &str = include_str!("../../codec/tests/fixtures/jingle/webrtcbin-1.22-offer.sdp");
pub const ANSWER: &str =
    include_str!("../../codec/tests/fixtures/jingle/webrtcbin-1.22-answer.sdp");

pub const BOB: &str = "bob@example.org/phone";
pub const NS_JINGLE: &str = "urn:xmpp:jingle:1";
pub const NS_JMI: &str = "urn:xmpp:jingle-message:0";

/// A session with the call plugin; every Jingle IQ we send is acknowledged, and
/// Bob's phone does Jingle RTP.
pub async fn server() -> MockServer {
    let s = MockServer::with_migrations(perch_plugins_calls::migrations()).await;
    s.build(xep_0167::factory()).await;
    s.script_iq_always("jingle", NS_JINGLE, "");
    s.script_iq_always(
        "query",
        "http://jabber.org/protocol/disco#info",
        "<query xmlns='http://jabber.org/protocol/disco#info'>\
         <feature var='urn:xmpp:jingle:1'/><feature var='urn:xmpp:jingle:apps:rtp:1'/></query>",
    );
    s
}

/// Bob's Jingle `action` for session `sid` (with `sdp`'s contents when given).
pub fn bob_jingle(action: Action, sid: &str, sdp_text: Option<(&str, Role)>) -> String {
    let mut j = Jingle::new(action, sid);
    if let Some((text, role)) = sdp_text {
        let c = sdp::to_jingle(text, role, Role::Initiator).expect("the fixture converts");
        j.contents = c.contents;
        j.group = c.group;
    }
    match action {
        Action::SessionInitiate => j.initiator = Some(BOB.into()),
        Action::SessionAccept => j.responder = Some(BOB.into()),
        _ => {}
    }
    String::from(&j.to_element())
}

/// The Jingle IQs we sent, as (to, action, sid, reason condition).
pub fn jingles_sent(s: &MockServer) -> Vec<(String, String, String, Option<String>)> {
    s.iqs()
        .iter()
        .filter(|q| q.set && q.payload.is("jingle", NS_JINGLE))
        .map(|q| {
            let p = &q.payload;
            let reason = p
                .get_child("reason", NS_JINGLE)
                .and_then(|r| r.children().next())
                .map(|c| c.name().to_owned());
            (
                q.to.as_ref().map(|j| j.to_string()).unwrap_or_default(),
                p.attr("action").unwrap_or_default().to_owned(),
                p.attr("sid").unwrap_or_default().to_owned(),
                reason,
            )
        })
        .collect()
}

/// The JMI element of a message we sent, with its recipient.
pub fn jmi_of(m: &Element) -> (String, Element) {
    assert!(m.is("message", "jabber:client"), "not a message: {m:?}");
    let to = m.attr("to").unwrap_or_default().to_owned();
    let jmi = m
        .children()
        .find(|c| c.ns() == NS_JMI)
        .cloned()
        .unwrap_or_else(|| panic!("no JMI element in {}", String::from(m)));
    (to, jmi)
}

/// The condition of a refused IQ.
pub fn condition(answer: perch_plugin_api::IqAnswer) -> String {
    let e = answer.expect_err("refused");
    perch_plugin_api::StanzaError::from_element(&Element::from(e)).condition
}

/// A call as `call_list` shows it: (direction, state, jmi).
pub async fn listed(s: &MockServer, sid: &str) -> (String, String, bool) {
    let list = s
        .action("call_list", serde_json::json!({}))
        .await
        .expect("list");
    let c = list
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| c["sid"] == sid)
        .unwrap_or_else(|| panic!("call {sid} not listed: {list}"))
        .clone();
    (
        c["direction"].as_str().unwrap_or_default().to_owned(),
        c["state"].as_str().unwrap_or_default().to_owned(),
        c["jmi"].as_bool().unwrap_or_default(),
    )
}
