//! Message actions end to end (issue 21, part 3): reactions (XEP-0444), replies
//! (XEP-0461), retraction (XEP-0424), `/me` (XEP-0245) between two perchd profiles
//! through the harness Prosody, in a chat and in a room, each checked in both
//! histories and again after perchd restarts; bad input (an action on an unknown
//! message, a retraction by someone else) ignored. Moderation (XEP-0425), which
//! Prosody 0.12 lacks, against the scripted server: the request on the wire and the
//! room's retraction applied.

use super::*;
use perch_tests::{FakeServer, MUC_DOMAIN, RawClient};
use serde_json::json;

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Waits until `profile`'s history with `with` has a message matching `pred`.
fn wait_message(
    perchd: &Perchd,
    profile: &str,
    with: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let mut last = Vec::new();
    let mut found = None;
    wait_until(DELIVERY, || {
        last = history(perchd, profile, &[with])?;
        found = last.iter().find(|m| pred(m)).cloned();
        Ok(found.is_some())
    })
    .with_context(|| {
        format!(
            "{profile}'s history with {with} never had {what}:\n{}",
            serde_json::to_string_pretty(&last).unwrap_or_default()
        )
    })?;
    found.ok_or_else(|| anyhow!("unreachable"))
}

/// The message `id` of `profile`'s history with `with`, as it is now.
fn by_id(perchd: &Perchd, profile: &str, with: &str, id: &str) -> Result<Value> {
    history(perchd, profile, &[with])?
        .into_iter()
        .find(|m| m["id"] == id)
        .ok_or_else(|| anyhow!("{profile} has no message {id} with {with}"))
}

fn bodies(perchd: &Perchd, profile: &str, with: &str) -> Result<Vec<String>> {
    Ok(history(perchd, profile, &[with])?
        .iter()
        .map(|m| s(&m["body"]))
        .collect())
}

#[test]
fn actions_in_a_chat_both_ways_and_after_a_restart() {
    let mut bed = Bed::start();
    chat_body(&mut bed).unwrap();
}

fn chat_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    // Announced: what works both ways; moderation is a room's feature, not ours.
    let disco = perchd.cli_json(&["info", "disco", "-p", "alice", &bound_jid(perchd, "bob")?])?;
    let features = disco["info"]["features"].to_string();
    for f in [
        "urn:xmpp:reactions:0",
        "urn:xmpp:reply:0",
        "urn:xmpp:message-retract:1",
    ] {
        ensure!(features.contains(f), "{f} not announced: {features}");
    }
    ensure!(
        !features.contains("urn:xmpp:message-moderate"),
        "{features}"
    );
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    send(perchd, "alice", BOB, "cake?")?;
    wait_for_incoming(perchd, "bob", "cake?")?;
    let a_id = s(&wait_message(perchd, "alice", BOB, "cake?", |m| m["body"] == "cake?")?["id"]);
    let b_id = s(&wait_message(perchd, "bob", ALICE, "cake?", |m| m["body"] == "cake?")?["id"]);

    // Bob reacts: both histories show it; alice's perchd signals the change.
    perchd.cli_json(&["message", "react", "-p", "bob", ALICE, &b_id, "👍", "🎉"])?;
    let both = json!({"👍": [BOB], "🎉": [BOB]});
    wait_message(perchd, "alice", BOB, "bob's reactions", |m| {
        m["id"] == a_id.as_str() && m["extra"]["reactions"] == both
    })?;
    wait_line(&rx, &mut seen, |v| {
        v["signal"] == "MessageUpdated"
            && v["profile"] == "alice"
            && v["message"]["id"] == a_id.as_str()
            && v["message"]["extra"]["reactions"] == both
    })?;
    ensure!(by_id(perchd, "bob", ALICE, &b_id)?["extra"]["reactions"] == both);
    // His new set replaces the old one; alice adds hers.
    perchd.cli_json(&["message", "react", "-p", "bob", ALICE, &b_id, "🎉"])?;
    wait_message(perchd, "alice", BOB, "bob's new set", |m| {
        m["id"] == a_id.as_str() && m["extra"]["reactions"] == json!({"🎉": [BOB]})
    })?;
    perchd.cli_json(&["message", "react", "-p", "alice", BOB, &a_id, "🎉"])?;
    let party = json!({"🎉": [BOB, ALICE]});
    wait_message(perchd, "bob", ALICE, "both reactions", |m| {
        m["id"] == b_id.as_str() && m["extra"]["reactions"] == party
    })?;
    wait_message(perchd, "alice", BOB, "both reactions", |m| {
        m["id"] == a_id.as_str() && m["extra"]["reactions"] == party
    })?;

    // Bob replies: the quote is for old clients only; reply_to names the message.
    let r = perchd.cli_json(&["message", "reply", "-p", "bob", ALICE, &b_id, "yes please"])?;
    ensure!(r["body"] == "yes please", "bob's reply as stored: {r}");
    ensure!(
        r["extra"]["reply_to"]["id"] == a_id.as_str(),
        "bob's reply: {r}"
    );
    let reply = wait_message(perchd, "alice", BOB, "the reply", |m| {
        m["direction"] == "in" && m["body"] == "yes please"
    })?;
    ensure!(
        reply["extra"]["reply_to"]["id"] == a_id.as_str()
            && s(&reply["extra"]["reply_to"]["to"]).starts_with(ALICE),
        "the reply alice got: {reply}"
    );

    // /me, flagged on both sides.
    send(perchd, "alice", BOB, "/me bakes")?;
    let me = wait_message(perchd, "bob", ALICE, "/me", |m| m["body"] == "/me bakes")?;
    ensure!(me["extra"]["me"] == true, "bob's /me: {me}");
    let me = wait_message(perchd, "alice", BOB, "/me", |m| m["body"] == "/me bakes")?;
    ensure!(me["extra"]["me"] == true, "alice's /me: {me}");
    let me_id = s(&me["id"]);

    // Alice retracts "cake?": its text goes on both sides.
    perchd.cli_json(&["message", "retract", "-p", "alice", BOB, &a_id])?;
    let gone = wait_message(perchd, "bob", ALICE, "the retraction", |m| {
        m["id"] == b_id.as_str() && m["body"] == "" && m["extra"]["retracted"]["by"] == ALICE
    })?;
    ensure!(
        gone["extra"]["retracted"]["timestamp"].is_string(),
        "{gone}"
    );
    let mine = by_id(perchd, "alice", BOB, &a_id)?;
    ensure!(
        mine["body"] == "" && mine["extra"]["retracted"]["by"] == ALICE,
        "{mine}"
    );
    // Not ours: refused before anything is sent.
    let their = s(&reply["id"]);
    perchd.cli_fails_with(
        &["message", "retract", "-p", "alice", BOB, &their],
        "BadArgument",
    )?;
    perchd.cli_fails_with(
        &["message", "react", "-p", "alice", BOB, "no-such-id", "👍"],
        "BadArgument",
    )?;

    // Through the server, from another resource of bob's: a retraction of alice's
    // message and a reaction to a message that does not exist. Both ignored and
    // logged; what follows them arrives.
    let mut raw = RawClient::connect(bed.prosody.port(), &bed.prosody.ca_file(), "bob", BOB_PW)?;
    raw.send(&format!(
        "<message to='{ALICE}' type='chat' id='x1'><body>retracted</body>\
         <retract xmlns='urn:xmpp:message-retract:1' id='{me_id}'/>\
         <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>\
         <store xmlns='urn:xmpp:hints'/></message>"
    ))?;
    raw.send(&format!(
        "<message to='{ALICE}' type='chat' id='x2'>\
         <reactions xmlns='urn:xmpp:reactions:0' id='no-such-id'><reaction>👎</reaction></reactions>\
         <store xmlns='urn:xmpp:hints'/></message>"
    ))?;
    raw.send(&format!(
        "<message to='{ALICE}' type='chat' id='x3'><body>after the noise</body></message>"
    ))?;
    wait_for_incoming(perchd, "alice", "after the noise")?;
    raw.close()?;
    let me = by_id(perchd, "alice", BOB, &me_id)?;
    ensure!(
        me["body"] == "/me bakes" && me["extra"].get("retracted").is_none(),
        "a retraction by someone else was applied: {me}"
    );
    let log = perchd.log_text()?;
    ensure!(
        log.matches("a message action was ignored").count() >= 2,
        "the ignored actions were not logged"
    );
    let expected = ["", "yes please", "/me bakes", "after the noise"];
    ensure!(bodies(perchd, "alice", BOB)? == expected);
    let _ = monitor.kill();
    let _ = monitor.wait();

    // perchd restarts: everything is still there, on both sides.
    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    ensure!(bodies(perchd, "alice", BOB)? == expected);
    let a = by_id(perchd, "alice", BOB, &a_id)?;
    ensure!(
        a["extra"]["reactions"] == party && a["extra"]["retracted"]["by"] == ALICE,
        "{a}"
    );
    let b = by_id(perchd, "bob", ALICE, &b_id)?;
    ensure!(b["body"] == "" && b["extra"]["reactions"] == party, "{b}");
    let reply = by_id(perchd, "alice", BOB, &their)?;
    ensure!(reply["extra"]["reply_to"]["id"] == a_id.as_str(), "{reply}");
    let bob_me = wait_message(perchd, "bob", ALICE, "/me", |m| m["body"] == "/me bakes")?;
    ensure!(bob_me["extra"]["me"] == true, "{bob_me}");
    Ok(())
}

/// `perch --json muc ARGS…`
fn muc(perchd: &Perchd, args: &[&str]) -> Result<Value> {
    let mut all = vec!["muc"];
    all.extend_from_slice(args);
    perchd.cli_json(&all)
}

#[test]
fn actions_in_a_room_both_ways_and_after_a_restart() {
    let mut bed = Bed::start();
    room_body(&mut bed).unwrap();
}

fn room_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    bed.prosody.register("mallory", "mallory-secret")?;
    let perchd = &bed.perchd;
    let room = format!("actions@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    muc(perchd, &["join", "-p", "bob", room])?;
    muc(perchd, &["say", "-p", "alice", room, "hello room"])?;
    wait_for_incoming(perchd, "bob", "hello room")?;
    muc(perchd, &["say", "-p", "bob", room, "spam spam"])?;
    muc(perchd, &["say", "-p", "bob", room, "oops"])?;
    wait_for_incoming(perchd, "alice", "oops")?;
    // The room's ids, learnt by each side (ours from the room's echo).
    let with_sid =
        |body: &'static str| move |m: &Value| m["body"] == body && m["stanza_id"].is_string();
    let a_hello = wait_message(
        perchd,
        "alice",
        room,
        "hello's stanza-id",
        with_sid("hello room"),
    )?;
    let a_spam = wait_message(perchd, "alice", room, "spam", with_sid("spam spam"))?;
    let b_hello = wait_message(perchd, "bob", room, "hello", with_sid("hello room"))?;
    let b_spam = wait_message(
        perchd,
        "bob",
        room,
        "spam's stanza-id",
        with_sid("spam spam"),
    )?;
    let b_oops = wait_message(perchd, "bob", room, "oops's stanza-id", with_sid("oops"))?;
    ensure!(
        a_spam["stanza_id"] == b_spam["stanza_id"],
        "{a_spam} vs {b_spam}"
    );

    // Alice reacts to bob's message: by her history's id; the room's id goes out.
    let a_spam_id = s(&a_spam["id"]);
    perchd.cli_json(&[
        "message",
        "react",
        "-p",
        "alice",
        room,
        &a_spam_id,
        "👀",
        "--groupchat",
    ])?;
    let alice_occupant = format!("{room}/alice");
    wait_message(perchd, "bob", room, "alice's reaction", |m| {
        m["id"] == b_spam["id"] && m["extra"]["reactions"] == json!({"👀": [alice_occupant]})
    })?;
    let mine = by_id(perchd, "alice", room, &a_spam_id)?;
    ensure!(
        mine["extra"]["reactions"] == json!({"👀": [ALICE]}),
        "{mine}"
    );

    // Bob replies to alice's message.
    let b_hello_id = s(&b_hello["id"]);
    perchd.cli_json(&[
        "message",
        "reply",
        "-p",
        "bob",
        room,
        &b_hello_id,
        "hi!",
        "--groupchat",
    ])?;
    let reply = wait_message(perchd, "alice", room, "bob's reply", |m| m["body"] == "hi!")?;
    ensure!(
        reply["extra"]["reply_to"]["id"] == a_hello["stanza_id"],
        "the reply: {reply}; alice's message: {a_hello}"
    );

    // Bob retracts "oops": gone on both sides.
    perchd.cli_json(&[
        "message",
        "retract",
        "-p",
        "bob",
        room,
        &s(&b_oops["id"]),
        "--groupchat",
    ])?;
    let bob_occupant = format!("{room}/bob");
    let a_oops = wait_message(perchd, "alice", room, "the retraction", |m| {
        m["stanza_id"] == b_oops["stanza_id"]
            && m["body"] == ""
            && m["extra"]["retracted"]["by"] == bob_occupant.as_str()
    })?;
    let b = by_id(perchd, "bob", room, &s(&b_oops["id"]))?;
    ensure!(
        b["body"] == "" && b["extra"]["retracted"]["by"] == BOB,
        "{b}"
    );

    // Mallory, in the room through a raw client, retracts bob's message and forges
    // a moderation: occupants may do neither. What mallory says next arrives.
    let mut raw = RawClient::connect(
        bed.prosody.port(),
        &bed.prosody.ca_file(),
        "mallory",
        "mallory-secret",
    )?;
    raw.send(&format!(
        "<presence to='{room}/mallory'><x xmlns='http://jabber.org/protocol/muc'>\
         <history maxstanzas='0'/></x></presence>"
    ))?;
    raw.read_until("status code='110'", DELIVERY)?;
    let sid = s(&b_spam["stanza_id"]);
    raw.send(&format!(
        "<message to='{room}' type='groupchat' id='m1'>\
         <retract xmlns='urn:xmpp:message-retract:1' id='{sid}'/></message>"
    ))?;
    raw.send(&format!(
        "<message to='{room}' type='groupchat' id='m2'>\
         <retract xmlns='urn:xmpp:message-retract:1' id='{sid}'>\
         <moderated xmlns='urn:xmpp:message-moderate:1' by='{room}/mallory'/><reason>mine</reason>\
         </retract></message>"
    ))?;
    raw.send(&format!(
        "<message to='{room}' type='groupchat' id='m3'><body>mallory was here</body></message>"
    ))?;
    wait_for_incoming(perchd, "alice", "mallory was here")?;
    raw.close()?;
    let spam = by_id(perchd, "alice", room, &a_spam_id)?;
    ensure!(
        spam["body"] == "spam spam"
            && spam["extra"].get("retracted").is_none()
            && spam["extra"].get("moderated").is_none(),
        "mallory's forgeries were applied: {spam}"
    );

    // Asking Prosody 0.12's room to moderate: it has no XEP-0425, and says so.
    let out = perchd.cli(&[
        "muc", "moderate", "-p", "alice", room, &a_spam_id, "--reason", "spam",
    ])?;
    ensure!(!out.status.success(), "Prosody 0.12 moderated?");

    // perchd restarts: all of it is kept.
    let expected = ["hello room", "spam spam", "", "hi!", "mallory was here"];
    ensure!(bodies(&bed.perchd, "alice", room)? == expected);
    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    ensure!(bodies(perchd, "alice", room)? == expected);
    let spam = by_id(perchd, "alice", room, &a_spam_id)?;
    ensure!(
        spam["extra"]["reactions"] == json!({"👀": [ALICE]}),
        "{spam}"
    );
    let oops = by_id(perchd, "alice", room, &s(&a_oops["id"]))?;
    ensure!(
        oops["extra"]["retracted"]["by"] == bob_occupant.as_str(),
        "{oops}"
    );
    let reply = by_id(perchd, "alice", room, &s(&reply["id"]))?;
    ensure!(
        reply["extra"]["reply_to"]["id"] == a_hello["stanza_id"],
        "{reply}"
    );
    Ok(())
}

/// Moderation, which the harness Prosody lacks, against the scripted server: the
/// request goes out as XEP-0425 writes it; the room's retraction with
/// `<moderated/>` removes the message's text and marks it; the same from an
/// occupant is ignored.
#[test]
fn moderation_against_a_scripted_room() {
    let server = FakeServer::start("alice").expect("starting the fake XMPP server");
    let perchd = Perchd::start().expect("starting perchd");
    let result = moderation_body(&server, &perchd);
    if result.is_err() {
        eprintln!(
            "--- fake server: error {:?}; the client sent:\n{}",
            server.error(),
            perch_tests::tail_lines(&server.received(), 40)
        );
    }
    result.unwrap();
}

fn moderation_body(server: &FakeServer, perchd: &Perchd) -> Result<()> {
    let ca = server.ca_file().display().to_string();
    perchd.cli_ok(&[
        "profile",
        "create",
        "alice",
        "--jid",
        ALICE,
        "--xmpp-password",
        "any",
        "--server",
        &server.server_arg(),
        "--ca-file",
        &ca,
    ])?;
    connect(perchd, "alice", ALICE)?;
    let full = server
        .bound_jid()
        .ok_or_else(|| anyhow!("connected, yet the fake server bound no session"))?;
    let room = "den@conference.localhost";
    let msg = |from: &str, id: &str, inner: &str| {
        format!("<message from='{from}' to='{full}' type='groupchat' id='{id}'>{inner}</message>")
    };
    server.send(msg(
        &format!("{room}/bob"),
        "b1",
        &format!("<body>buy now</body><stanza-id xmlns='urn:xmpp:sid:0' id='sid-1' by='{room}'/>"),
    ))?;
    wait_for_incoming(perchd, "alice", "buy now")?;
    let target = wait_message(perchd, "alice", room, "the spam", |m| {
        m["body"] == "buy now"
    })?;

    // The request: an IQ to the room naming the room's id for the message.
    let out = perchd.cli(&[
        "muc",
        "moderate",
        "-p",
        "alice",
        room,
        &s(&target["id"]),
        "--reason",
        "spam",
    ])?;
    ensure!(
        !out.status.success(),
        "the scripted server answers service-unavailable"
    );
    let sent = server.received();
    ensure!(
        sent.contains(&format!("to='{room}'"))
            && sent.contains("<moderate xmlns='urn:xmpp:message-moderate:1' id='sid-1'>")
            && sent.contains(
                "<retract xmlns='urn:xmpp:message-retract:1'></retract><reason>spam</reason></moderate>"
            ),
        "no moderation request on the wire:\n{}",
        perch_tests::tail_lines(&sent, 10)
    );

    // An occupant's forged moderation: ignored.
    let moderated = |by: &str| {
        format!(
            "<retract xmlns='urn:xmpp:message-retract:1' id='sid-1'>\
             <moderated xmlns='urn:xmpp:message-moderate:1' by='{by}'/><reason>spam</reason></retract>"
        )
    };
    server.send(msg(
        &format!("{room}/mallory"),
        "f1",
        &moderated(&format!("{room}/mallory")),
    ))?;
    // The room's own: applied.
    server.send(msg(room, "r1", &moderated(&format!("{room}/mod"))))?;
    let done = wait_message(perchd, "alice", room, "the moderation", |m| {
        m["id"] == target["id"] && m["body"] == ""
    })?;
    ensure!(
        done["extra"]["moderated"]["by"] == format!("{room}/mod").as_str()
            && done["extra"]["moderated"]["reason"] == "spam",
        "{done}"
    );
    ensure!(
        perchd.log_text()?.contains("a message action was ignored"),
        "the forged moderation was not logged"
    );
    ensure!(bodies(perchd, "alice", room)? == [""]);
    Ok(())
}

/// Libervia 0.9's `messageReactionsSet` and `messageRetract` on perchd's Libervia
/// bridge (called as its frontends would, through `libervia-cli debug bridge
/// method`; 0.9's CLI has no command for them), by the uid `historyGet` gives.
#[test]
fn libervia_bridge_reactions_and_retraction() {
    let prosody = Prosody::start().unwrap();
    let perchd = perch_tests::libervia::perchd_with_libervia().unwrap();
    libervia_body(&prosody, &perchd)
        .map_err(|e| anyhow!("{e:#}\n{}", perchd.diagnostics()))
        .unwrap();
}

fn libervia_body(prosody: &Prosody, perchd: &Perchd) -> Result<()> {
    let cli = perch_tests::libervia::perch_frontend(perchd)?;
    perchd.create_profile(prosody, "test", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "test", ALICE)?;
    connect(perchd, "bob", BOB)?;
    send(perchd, "test", BOB, "cake?")?;
    wait_for_incoming(perchd, "bob", "cake?")?;
    let a_id = s(&wait_message(perchd, "test", BOB, "cake?", |m| m["body"] == "cake?")?["id"]);
    let b_id = s(&wait_message(perchd, "bob", ALICE, "cake?", |m| m["body"] == "cake?")?["id"]);
    let method = |name: &str, args: &[&str]| -> Result<perch_tests::libervia::CliOut> {
        let mut v = vec!["debug", "bridge", "method", name];
        v.extend_from_slice(args);
        v.extend(["-p", "bob"]);
        cli.cli(&v)
    };
    let out = method(
        "messageReactionsSet",
        &[&format!("{b_id:?}"), "\"bob\"", "[\"👍\"]"],
    )?;
    ensure!(out.success(), "messageReactionsSet: {}", out.describe());
    wait_message(perchd, "test", BOB, "bob's reaction", |m| {
        m["id"] == a_id.as_str() && m["extra"]["reactions"] == json!({"👍": [BOB]})
    })?;
    let out = method("messageRetract", &[&format!("{a_id:?}"), "\"test\""])?;
    ensure!(out.success(), "messageRetract: {}", out.describe());
    wait_message(perchd, "bob", ALICE, "the retraction", |m| {
        m["id"] == b_id.as_str() && m["body"] == "" && m["extra"]["retracted"]["by"] == ALICE
    })?;
    let out = method("messageRetract", &["\"no-such-uid\"", "\"test\""])?;
    ensure!(
        !out.success() && out.stderr.contains("NotFound"),
        "an unknown uid: {}",
        out.describe()
    );
    Ok(())
}

/// A slixmpp client (Debian's python3-slixmpp) running `tests/scripts/SCRIPT`, by
/// default as carol talking with alice: what it prints, line by line, and its stdin
/// to tell it what to do next.
pub(crate) struct Slixmpp {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Slixmpp {
    /// Registers carol on the bed's Prosody and starts the script with its usual
    /// arguments (`JID PASSWORD PORT CA_FILE PEER`), then `extra`.
    pub(crate) fn start(bed: &Bed, script: &str, extra: &[&str]) -> Result<Self> {
        bed.prosody.register("carol", CAROL_PW)?;
        Self::start_as(bed, script, ("carol@localhost/slix", CAROL_PW), extra)
    }

    /// Starts the script logged in as `jid` (a full JID) with `password`, talking
    /// with alice.
    pub(crate) fn start_as(
        bed: &Bed,
        script: &str,
        (jid, password): (&str, &str),
        extra: &[&str],
    ) -> Result<Self> {
        use std::io::BufRead;
        let python = messaging::python()?;
        let script = format!("{}/scripts/{script}", perch_tests::manifest_dir());
        let mut child = std::process::Command::new(&python)
            .arg(script)
            .args([
                jid,
                password,
                &bed.prosody.port().to_string(),
                &bed.prosody.ca_file().display().to_string(),
                ALICE,
            ])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting slixmpp")?;
        let stdout = child.stdout.take().context("slixmpp's stdout")?;
        Ok(Self {
            child,
            lines: std::io::BufReader::new(stdout).lines(),
        })
    }

    /// Writes `line` to its stdin.
    pub(crate) fn say(&mut self, line: &str) -> Result<()> {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().context("slixmpp's stdin")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Its next line ("" at its end).
    pub(crate) fn line(&mut self) -> Result<String> {
        Ok(self.lines.next().transpose()?.unwrap_or_default())
    }

    /// Its next line is `what`.
    pub(crate) fn expect(&mut self, what: &str) -> Result<()> {
        let line = self.line()?;
        ensure!(line == what, "slixmpp said {line:?}, expected {what:?}");
        Ok(())
    }

    /// Waits for its end (killing it first when `outcome` failed): `outcome` with
    /// its stderr, else its exit status.
    pub(crate) fn finish(mut self, outcome: Result<()>) -> Result<()> {
        if outcome.is_err() {
            let _ = self.child.kill();
        }
        let out = self.child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        outcome.with_context(|| format!("slixmpp's stderr:\n{stderr}"))?;
        ensure!(out.status.success(), "slixmpp failed: {stderr}");
        Ok(())
    }
}

/// A third-party client (slixmpp, `tests/scripts/message_actions.py`) and perchd
/// react, reply and retract to each other: each reads what the other wrote.
#[test]
fn with_a_third_party_client() {
    let bed = Bed::start();
    third_party_body(&bed).unwrap();
}

fn third_party_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let mut slix = Slixmpp::start(bed, "message_actions.py", &[])?;
    let perchd = &bed.perchd;
    let carol = "carol@localhost";
    let outcome = (|| -> Result<()> {
        slix.expect("sent")?;
        let hello = wait_message(perchd, "alice", carol, "slixmpp's message", |m| {
            m["body"] == "hello from slixmpp"
        })?;
        let id = s(&hello["id"]);
        perchd.cli_json(&["message", "react", "-p", "alice", carol, &id, "👍"])?;
        let reply =
            perchd.cli_json(&["message", "reply", "-p", "alice", carol, &id, "hi slixmpp"])?;
        send(perchd, "alice", carol, "oops")?;
        let oops = wait_message(perchd, "alice", carol, "oops", |m| m["body"] == "oops")?;
        perchd.cli_json(&["message", "retract", "-p", "alice", carol, &s(&oops["id"])])?;
        let mut got: Vec<String> = Vec::new();
        for _ in 0..3 {
            got.push(slix.line()?);
        }
        got.sort();
        ensure!(
            got == ["got reaction", "got reply", "got retraction"],
            "slixmpp read: {got:?}"
        );
        slix.expect("done")?;
        // What slixmpp sent, as perchd stored it.
        let reply_id = s(&reply["id"]);
        wait_message(perchd, "alice", carol, "slixmpp's reaction", |m| {
            m["id"] == reply_id.as_str() && m["extra"]["reactions"] == json!({"🎉": [carol]})
        })?;
        let answer = wait_message(perchd, "alice", carol, "slixmpp's reply", |m| {
            m["body"] == "hi perch"
        })?;
        ensure!(
            answer["extra"]["reply_to"]["id"] == reply_id.as_str(),
            "{answer}"
        );
        wait_message(perchd, "alice", carol, "slixmpp's retraction", |m| {
            m["id"] == id.as_str() && m["body"] == "" && m["extra"]["retracted"]["by"] == carol
        })?;
        Ok(())
    })();
    slix.finish(outcome)
}
