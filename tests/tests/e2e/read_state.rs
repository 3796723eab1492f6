//! Read state end to end (issue 21, part 5), through the harness Prosody: bob reads
//! alice's message and alice's copy shows it displayed (XEP-0333); unread counts
//! before and after, our own message resetting them; a second device of bob's
//! account (a second profile on the same JID) follows the read position over PEP
//! (XEP-0490); all of it survives a perchd restart. Bad input: a displayed marker
//! for an unknown id is ignored and logged.

use super::*;
use perch_tests::RawClient;
use serde_json::json;

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn unread(perchd: &Perchd, profile: &str, with: &str) -> Result<Value> {
    let all = perchd.cli_json(&["message", "unread", "-p", profile, with])?;
    all.as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| anyhow!("`message unread -p {profile} {with}`: {all}"))
}

/// Waits until `profile`'s unread count with `with` is `n`.
fn wait_unread(perchd: &Perchd, profile: &str, with: &str, n: u64) -> Result<Value> {
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        last = unread(perchd, profile, with)?;
        Ok(last["unread"] == n)
    })
    .with_context(|| format!("{profile}'s unread count with {with} never was {n}: {last}"))?;
    Ok(last)
}

/// The message of `profile`'s history with `with` whose body is `body`.
fn with_body(perchd: &Perchd, profile: &str, with: &str, body: &str) -> Result<Value> {
    history(perchd, profile, &[with])?
        .into_iter()
        .find(|m| m["body"] == body)
        .ok_or_else(|| anyhow!("{profile} has no {body:?} with {with}"))
}

fn wait_body(perchd: &Perchd, profile: &str, with: &str, body: &str) -> Result<Value> {
    wait_until(DELIVERY, || {
        Ok(with_body(perchd, profile, with, body).is_ok())
    })
    .with_context(|| format!("{profile} never had {body:?} with {with}"))?;
    with_body(perchd, profile, with, body)
}

#[test]
fn markers_unread_counts_and_mds_between_two_devices() {
    let mut bed = Bed::start();
    body(&mut bed).unwrap();
}

fn body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    bed.perchd
        .create_profile(&bed.prosody, "bob2", "bob", BOB_PW, &[])?;
    connect(&bed.perchd, "bob2", BOB)?;
    let perchd = &bed.perchd;
    let disco = perchd.cli_json(&["info", "disco", "-p", "alice", &bound_jid(perchd, "bob")?])?;
    let features = disco["info"]["features"].to_string();
    for f in ["urn:xmpp:chat-markers:0", "urn:xmpp:mds:displayed:0+notify"] {
        ensure!(features.contains(f), "{f} not announced: {features}");
    }

    send(perchd, "alice", BOB, "one")?;
    send(perchd, "alice", BOB, "two")?;
    for p in ["bob", "bob2"] {
        wait_body(perchd, p, ALICE, "two")?;
        let u = wait_unread(perchd, p, ALICE, 2)?;
        ensure!(u["last_read_id"].is_null(), "{p}: {u}");
    }
    let two = with_body(perchd, "bob", ALICE, "two")?;
    ensure!(two["extra"]["markable"] == true, "alice's message: {two}");

    // Bob reads (the newest by default): the count drops, alice sees it displayed.
    let mut monitor = Monitor::start(perchd)?;
    let r = perchd.cli_json(&["message", "read", "-p", "bob", ALICE])?;
    ensure!(
        r == json!({"with": ALICE, "unread": 0, "last_read_id": s(&two["id"])}),
        "message read: {r}"
    );
    wait_until(DELIVERY, || {
        let mine = with_body(perchd, "alice", BOB, "two")?;
        Ok(mine["extra"]["displayed"]["by"] == json!([BOB]))
    })
    .context("alice's message never showed bob's displayed marker")?;
    let one = with_body(perchd, "alice", BOB, "one")?;
    ensure!(one["extra"].get("displayed").is_none(), "{one}");
    // His other device follows, over PEP.
    let u = wait_unread(perchd, "bob2", ALICE, 0)?;
    ensure!(
        u["last_read_id"] == with_body(perchd, "bob2", ALICE, "two")?["id"],
        "bob2: {u}"
    );
    // Both devices signalled the move of their read position (in either order).
    let signalled = std::cell::RefCell::new(std::collections::BTreeSet::new());
    monitor.wait(|v| {
        if v["signal"] == "PluginSignal"
            && v["name"] == "read_changed"
            && v["data"]["with"] == ALICE
            && v["data"]["unread"] == 0
        {
            signalled.borrow_mut().insert(s(&v["profile"]));
        }
        signalled.borrow().len() == 2
    })?;
    drop(monitor);

    // New messages count again; our own message reads the conversation.
    send(perchd, "alice", BOB, "three")?;
    wait_body(perchd, "bob", ALICE, "three")?;
    wait_unread(perchd, "bob", ALICE, 1)?;
    send(perchd, "bob", ALICE, "ok")?;
    wait_body(perchd, "bob", ALICE, "ok")?;
    wait_unread(perchd, "bob", ALICE, 0)?;
    wait_unread(perchd, "bob2", ALICE, 0)?;

    // Read on a device while it is offline: published to the other at its next
    // session start.
    send(perchd, "alice", BOB, "five")?;
    for p in ["bob", "bob2"] {
        wait_body(perchd, p, ALICE, "five")?;
        wait_unread(perchd, p, ALICE, 1)?;
    }
    perchd.cli_ok(&["disconnect", "-p", "bob2"])?;
    let r = perchd.cli_json(&["message", "read", "-p", "bob2", ALICE])?;
    ensure!(r["unread"] == 0, "read offline: {r}");
    ensure!(
        unread(perchd, "bob", ALICE)?["unread"] == 1,
        "bob before bob2 is back"
    );
    connect(perchd, "bob2", BOB)?;
    let u = wait_unread(perchd, "bob", ALICE, 0)?;
    ensure!(
        u["last_read_id"] == with_body(perchd, "bob", ALICE, "five")?["id"],
        "bob follows what bob2 read offline: {u}"
    );

    // A displayed marker for an unknown id: ignored and logged; what follows arrives.
    let mut raw = RawClient::connect(bed.prosody.port(), &bed.prosody.ca_file(), "bob", BOB_PW)?;
    raw.send(&format!(
        "<message to='{ALICE}' type='chat' id='x1'>\
         <displayed xmlns='urn:xmpp:chat-markers:0' id='no-such-id'/>\
         <store xmlns='urn:xmpp:hints'/></message>"
    ))?;
    raw.send(&format!(
        "<message to='{ALICE}' type='chat' id='x2'><body>after the noise</body></message>"
    ))?;
    wait_for_incoming(perchd, "alice", "after the noise")?;
    raw.close()?;
    ensure!(
        perchd.log_text()?.contains("a message action was ignored"),
        "the marker for an unknown id was not logged"
    );

    // perchd restarts: the read positions and the marker are kept.
    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    for p in ["bob", "bob2"] {
        let u = unread(perchd, p, ALICE)?;
        ensure!(
            u["unread"] == 0 && u["last_read_id"].is_string(),
            "{p}: {u}"
        );
    }
    let mine = with_body(perchd, "alice", BOB, "two")?;
    ensure!(mine["extra"]["displayed"]["by"] == json!([BOB]), "{mine}");
    let all = perchd.cli_json(&["message", "unread", "-p", "alice"])?;
    ensure!(
        all.as_array()
            .is_some_and(|a| a.iter().any(|u| u["with"] == BOB && u["unread"] == 1)),
        "alice's counts (the noise after her own \"five\"): {all}"
    );
    Ok(())
}

/// A third-party client as bob's other device (slixmpp, `tests/scripts/vcard_mds.py`):
/// it reads the vCard and nickname alice set through perchd and publishes ones
/// perchd reads (XEP-0054, XEP-0172); it reads the read position perchd published over PEP, and perchd
/// follows the one it publishes (XEP-0490, each way).
#[test]
fn vcard_and_read_state_with_a_third_party_client() {
    let bed = Bed::start();
    third_party_body(&bed).unwrap();
}

fn third_party_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    // Contacts: slixmpp publishes its nickname with PEP's default access (presence).
    mutual_subscription(perchd)?;
    perchd.cli_ok(&["vcard", "set", "-p", "alice", "FN=Alice Liddell"])?;
    perchd.cli_json(&["nick", "set", "-p", "alice", "Alice L"])?;
    send(perchd, "alice", BOB, "one")?;
    let one = wait_body(perchd, "bob", ALICE, "one")?;
    perchd.cli_json(&["message", "read", "-p", "bob", ALICE])?;
    let mut slix = message_actions::Slixmpp::start_as(
        bed,
        "vcard_mds.py",
        ("bob@localhost/slix", BOB_PW),
        &[],
    )?;
    let outcome = (|| -> Result<()> {
        slix.expect("peer FN Alice Liddell")?;
        slix.expect("published vcard")?;
        let card = perchd.cli_json(&["vcard", "get", "-p", "alice", BOB])?;
        ensure!(
            card["FN"] == "Bob via slixmpp",
            "bob's vCard as alice reads it: {card}"
        );
        slix.expect("peer nick Alice L")?;
        slix.expect("published nick")?;
        let mut nick = Value::Null;
        wait_until(DELIVERY, || {
            nick = perchd.cli_json(&["nick", "get", "-p", "alice", BOB])?;
            Ok(nick["nick"] == "Bobby")
        })
        .with_context(|| format!("bob's nickname as alice reads it: {nick}"))?;

        // What perchd published, slixmpp reads (by the archive's id).
        let sid = s(&one["stanza_id"]);
        ensure!(!sid.is_empty(), "no stanza-id on bob's copy: {one}");
        slix.say("fetch")?;
        slix.expect(&format!("displayed {sid}"))?;

        // What slixmpp publishes, perchd follows.
        send(perchd, "alice", BOB, "two")?;
        wait_body(perchd, "bob", ALICE, "two")?;
        wait_unread(perchd, "bob", ALICE, 1)?;
        let two = with_body(perchd, "bob", ALICE, "two")?;
        ensure!(
            two["stanza_id"].is_string(),
            "no stanza-id on bob's copy: {two}"
        );
        slix.say(&format!("publish {}", s(&two["stanza_id"])))?;
        slix.expect("published displayed")?;
        let u = wait_unread(perchd, "bob", ALICE, 0)?;
        ensure!(
            u["last_read_id"] == two["id"],
            "bob follows slixmpp's read position: {u}"
        );
        slix.say("")
    })();
    slix.finish(outcome)
}
