//! Blocking (XEP-0191) end to end, on the harness Prosody's `mod_blocklist`, through
//! `perch block`: the server drops a blocked contact's messages, a change made by
//! another resource of the account reaches perchd as a push (listed and signalled),
//! unblocking restores delivery, and the list survives a restart.

use super::*;
use perch_tests::RawClient;

const MALLORY: &str = "mallory@localhost";

/// `perch --json block list -p PROFILE`.
fn blocked(perchd: &Perchd, profile: &str) -> Result<Vec<String>> {
    let v = perchd.cli_json(&["block", "list", "-p", profile])?;
    serde_json::from_value(v.clone()).with_context(|| format!("`block list`: {v}"))
}

/// Waits until `profile`'s list is `expected`.
fn wait_blocked(perchd: &Perchd, profile: &str, expected: &[&str]) -> Result<()> {
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = blocked(perchd, profile)?;
        Ok(last == expected)
    })
    .with_context(|| format!("{profile}'s blocklist never became {expected:?}: {last:?}"))
}

/// `blocking_changed` for `profile` with this list.
fn changed<'a>(profile: &'a str, jids: &'a [&'a str]) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["signal"] == "PluginSignal"
            && v["plugin"] == "XEP-0191"
            && v["name"] == "blocking_changed"
            && v["profile"] == profile
            && v["data"]["jids"] == serde_json::json!(jids)
    }
}

/// Whether `profile` holds an incoming message with this body.
fn has_incoming(perchd: &Perchd, profile: &str, body: &str) -> Result<bool> {
    Ok(history(perchd, profile, &[])?
        .iter()
        .any(|m| m["direction"] == "in" && m["body"] == body))
}

#[test]
fn blocking_drops_messages_follows_pushes_and_survives_a_restart() {
    let mut bed = Bed::start();
    blocking_body(&mut bed).unwrap();
}

fn blocking_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    ensure!(
        blocked(perchd, "alice")?.is_empty(),
        "a fresh account blocks nobody"
    );
    // Announced, since it works (asked before bob is blocked: the server would refuse him).
    let alice_full = bound_jid(perchd, "alice")?;
    let disco = perchd.cli_json(&["info", "disco", "-p", "bob", &alice_full])?;
    ensure!(
        disco["info"]["features"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "urn:xmpp:blocking")),
        "urn:xmpp:blocking not announced: {disco}"
    );
    let mut monitor = Monitor::start(perchd)?;

    // Alice blocks bob, reporting him as spam: the server drops his messages.
    let after = perchd.cli_json(&["block", "add", "-p", "alice", BOB, "--report", "spam"])?;
    ensure!(
        after == serde_json::json!([BOB]),
        "`block add` answered {after}"
    );
    monitor.wait(changed("alice", &[BOB]))?;
    ensure!(blocked(perchd, "alice")? == [BOB]);
    let text = perchd.cli_ok(&["block", "list", "-p", "alice"])?;
    ensure!(text.trim() == BOB, "`block list` printed {text:?}");
    send(perchd, "bob", ALICE, "you should not read this")?;

    // Another resource of alice's blocks mallory: perchd gets the server's push.
    let mut other = RawClient::connect(
        bed.prosody.port(),
        &bed.prosody.ca_file(),
        "alice",
        ALICE_PW,
    )?;
    other.send(&format!(
        "<iq type='set' id='blk1'><block xmlns='urn:xmpp:blocking'>\
         <item jid='{MALLORY}'/></block></iq>"
    ))?;
    let answer = other.read_until("blk1", DELIVERY)?;
    ensure!(
        !answer.contains("type='error'"),
        "the raw client's block: {answer}"
    );
    monitor.wait(changed("alice", &[BOB, MALLORY]))?;
    ensure!(blocked(perchd, "alice")? == [BOB, MALLORY]);

    // Unblocking bob restores delivery; what he sent while blocked never came.
    let after = perchd.cli_json(&["block", "remove", "-p", "alice", BOB])?;
    ensure!(
        after == serde_json::json!([MALLORY]),
        "`block remove` answered {after}"
    );
    monitor.wait(changed("alice", &[MALLORY]))?;
    send(perchd, "bob", ALICE, "unblocked now")?;
    wait_for_incoming(perchd, "alice", "unblocked now")?;
    ensure!(
        !has_incoming(perchd, "alice", "you should not read this")?,
        "a message bob sent while blocked reached alice"
    );

    // Stored: after a restart, before any connection, the list is there.
    drop(monitor);
    other.close()?;
    let perchd = &mut bed.perchd;
    perchd.stop()?;
    perchd.start_again()?;
    ensure!(
        blocked(perchd, "alice")? == [MALLORY],
        "the list after a restart"
    );
    connect(perchd, "alice", ALICE)?;
    wait_blocked(perchd, "alice", &[MALLORY])?;

    // No JID: every JID unblocked.
    let after = perchd.cli_json(&["block", "remove", "-p", "alice"])?;
    ensure!(
        after == serde_json::json!([]),
        "`block remove` (all) answered {after}"
    );
    ensure!(blocked(perchd, "alice")?.is_empty());

    // A bad JID is named; nothing is sent.
    let err = perchd.cli_fails_with(&["block", "add", "-p", "alice", "@nobody"], "InvalidJid")?;
    ensure!(err.contains("@nobody"), "the error names the JID: {err}");
    Ok(())
}

/// A server without XEP-0191: a typed error naming it.
#[test]
fn blocking_on_a_server_without_it_is_feature_not_implemented() {
    let prosody = Prosody::start_with_config("modules_disabled = { \"s2s\"; \"blocklist\" }")
        .expect("starting Prosody");
    let perchd = Perchd::start().expect("starting perchd");
    no_blocking_body(&prosody, &perchd).unwrap();
}

fn no_blocking_body(prosody: &Prosody, perchd: &Perchd) -> Result<()> {
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    for args in [
        &["block", "add", "-p", "alice", BOB][..],
        &["block", "list", "-p", "alice"][..],
        &["block", "remove", "-p", "alice"][..],
    ] {
        let err = perchd.cli_fails_with(args, "FeatureNotImplemented")?;
        ensure!(err.contains("XEP-0191"), "`{}`: {err}", args.join(" "));
    }
    Ok(())
}

/// libervia-cli's `blocking` commands on Debian's Libervia backend and on perchd's
/// Libervia bridge, compared step by step (`e2e/libervia.rs` says how).
#[test]
fn libervia_cli_blocking() {
    use perch_tests::libervia::{Step, differential, sides};
    let (lib, perch) = sides();
    let mut steps = vec![Step::same(&[
        "profile", "create", "test", "-j", ALICE, "-x", ALICE_PW,
    ])];
    for (param, value) in [
        ("Force server", "127.0.0.1"),
        ("Force port", "{port}"),
        ("check_certificate", "false"),
    ] {
        steps.push(Step::same(&[
            "param",
            "set",
            "-p",
            "test",
            "Connection",
            param,
            value,
        ]));
    }
    steps.extend([
        Step::same(&["profile", "connect", "-p", "test", "-c"]),
        Step::same(&["blocking", "list", "-p", "test"]),
        Step::same(&["blocking", "block", "-p", "test", BOB]),
        Step::same(&["blocking", "list", "-p", "test"]),
        Step::same(&["blocking", "list", "-p", "test", "--output", "json"]),
        Step::same(&["blocking", "unblock", "-p", "test", BOB]),
        Step::same(&["blocking", "block", "-p", "test", MALLORY]),
        Step::same(&["blocking", "list", "-p", "test"]),
        // `all` is 0.9's word for an empty list: every JID.
        Step::same(&["blocking", "unblock", "-p", "test", "all", "-f"]),
        Step::same(&["blocking", "list", "-p", "test"]),
    ]);
    differential(&lib.frontend, &perch.frontend, &steps).unwrap();
}

/// A third-party client as alice's other device (slixmpp, `tests/scripts/blocking.py`):
/// it reads the blocklist perchd set, and perchd follows the changes it makes.
#[test]
fn blocking_with_a_third_party_client() {
    let bed = Bed::start();
    third_party_body(&bed).unwrap();
}

fn third_party_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    perchd.cli_json(&["block", "add", "-p", "alice", BOB])?;
    let mut slix = message_actions::Slixmpp::start_as(
        bed,
        "blocking.py",
        ("alice@localhost/slix", ALICE_PW),
        &[],
    )?;
    let outcome = (|| -> Result<()> {
        slix.expect("ready")?;
        slix.say("list")?;
        slix.expect(&format!("blocked {BOB}"))?;
        slix.say(&format!("block {MALLORY}"))?;
        slix.expect("done")?;
        wait_blocked(perchd, "alice", &[BOB, MALLORY])?;
        slix.say(&format!("unblock {BOB}"))?;
        slix.expect("done")?;
        wait_blocked(perchd, "alice", &[MALLORY])?;
        slix.say("")
    })();
    slix.finish(outcome)
}
