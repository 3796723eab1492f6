//! OMEMO (XEP-0384) end to end: two profiles on one perchd talk through the harness
//! Prosody, each version forced in turn with the plugin's `versions` option. Both
//! histories keep the plaintext with `extra.encryption`; what the server keeps (its
//! archive, offline storage) and perchd's log at trace level hold no plaintext; the
//! sessions survive a restart; a contact without devices is refused, typed, and
//! nothing goes in clear (the contact is offline: the server would keep it).
//!
//! Then group chats (three profiles in a non-anonymous room, each read by the
//! other two; a semi-anonymous room refused), a second device of one account
//! reading what the first sent (carbons, then its archive), and a perchd killed
//! (SIGKILL) right after a key exchange reached it, before it answered.

use super::*;
use perch_tests::MUC_DOMAIN;

const CAROL: &str = "carol@localhost";

/// `[log] level = "trace"`, and the OMEMO versions perchd speaks.
fn config(version: &str) -> String {
    format!(
        "[log]\nlevel = \"trace\"\n[plugins.options.\"XEP-0384\"]\nversions = [\"{version}\"]\n"
    )
}

/// Starts encrypting `profile`'s conversation with `to`, once the other side's
/// keys are published (they are, shortly after its connection).
fn start(perchd: &Perchd, profile: &str, to: &str) -> Result<Value> {
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        let out = perchd.cli(&["--json", "encryption", "start", "-p", profile, to])?;
        if out.status.success() {
            last = serde_json::from_slice(&out.stdout)?;
            return Ok(true);
        }
        Ok(false)
    })
    .with_context(|| format!("{profile} could not start encrypting with {to}"))?;
    Ok(last)
}

/// The stored message of `profile` with this body.
fn stored(perchd: &Perchd, profile: &str, body: &str) -> Result<Value> {
    history(perchd, profile, &[])?
        .into_iter()
        .find(|m| m["body"] == body)
        .ok_or_else(|| anyhow!("{profile} has no message {body:?}"))
}

/// Every file under `dir`, read (lossily) as text.
fn all_text(dir: &std::path::Path) -> Result<String> {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.push_str(&all_text(&path)?);
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&path)?));
        }
    }
    Ok(out)
}

fn exchange(perchd: &Perchd, ns: &str, tag: &str) -> Result<Vec<String>> {
    let (to_bob, to_alice) = (
        format!("{tag}: alice's secret"),
        format!("{tag}: bob's secret"),
    );
    perchd.cli_ok(&["message", "send", "-p", "alice", BOB, "--encrypt", &to_bob])?;
    wait_for_incoming(perchd, "bob", &to_bob)?;
    perchd.cli_ok(&[
        "message",
        "send",
        "-p",
        "bob",
        ALICE,
        "--encrypt",
        &to_alice,
    ])?;
    wait_for_incoming(perchd, "alice", &to_alice)?;
    for (profile, body) in [
        ("alice", &to_bob),
        ("bob", &to_bob),
        ("alice", &to_alice),
        ("bob", &to_alice),
    ] {
        let m = stored(perchd, profile, body)?;
        ensure!(
            m["extra"]["encryption"] == ns,
            "{profile}'s copy of {body:?}: {m}"
        );
        ensure!(m["extra"].get("decryption_error").is_none(), "{m}");
    }
    Ok(vec![to_bob, to_alice])
}

#[test]
fn omemo_2_between_two_profiles() {
    omemo_body("2", "urn:xmpp:omemo:2").unwrap();
}

#[test]
fn omemo_0_3_between_two_profiles() {
    omemo_body("0.3", "eu.siacs.conversations.axolotl").unwrap();
}

/// `result`, with the tail of perchd's log printed when it is an error.
fn with_log_tail<T>(perchd: &Perchd, result: Result<T>) -> Result<T> {
    if result.is_err() {
        eprintln!(
            "perchd log tail:\n{}",
            perchd
                .log_text()
                .unwrap_or_default()
                .lines()
                .rev()
                .take(80)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    result
}

fn omemo_body(version: &str, ns: &str) -> Result<()> {
    let prosody =
        Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)])?;
    let mut perchd = Perchd::start_with_config(&config(version))?;
    let result = omemo_steps(&prosody, &mut perchd, ns);
    with_log_tail(&perchd, result)
}

fn omemo_steps(prosody: &Prosody, perchd: &mut Perchd, ns: &str) -> Result<()> {
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    let st = start(perchd, "alice", BOB)?;
    ensure!(st["encrypted"] == true && st["namespace"] == ns, "{st}");
    start(perchd, "bob", ALICE)?;
    let status = perchd.cli_json(&["encryption", "status", "-p", "alice", BOB])?;
    ensure!(status["encrypted"] == true, "{status}");

    // Fingerprints: ours, and bob's as alice sees it (blindly trusted).
    let own = perchd.cli_json(&["omemo", "fingerprint", "-p", "bob"])?;
    let bob_fp = own[0]["fingerprint"]
        .as_str()
        .context("bob's fingerprint")?
        .to_owned();
    let seen = perchd.cli_json(&["omemo", "devices", "-p", "alice", BOB])?;
    ensure!(
        seen[0]["fingerprint"] == bob_fp && seen[0]["trust"] == "blind",
        "{seen}"
    );

    let mut secrets = exchange(perchd, ns, "first")?;
    // Verified: still goes.
    perchd.cli_json(&["omemo", "trust", "-p", "alice", BOB, &bob_fp])?;
    secrets.extend(exchange(perchd, ns, "verified")?);

    // A restart keeps the sessions.
    perchd.stop()?;
    perchd.start_again()?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    secrets.extend(exchange(perchd, ns, "after the restart")?);

    // Once started, a plain send stays encrypted.
    let plain = format!("{ns}: sent without --encrypt");
    send(perchd, "alice", BOB, &plain)?;
    wait_for_incoming(perchd, "bob", &plain)?;
    ensure!(stored(perchd, "bob", &plain)?["extra"]["encryption"] == ns);
    secrets.push(plain);

    // Carol (offline, on no OMEMO client) publishes no device: refused, typed, and
    // nothing sent (her offline storage, checked below, holds nothing).
    let for_carol = "for carol only";
    let err = perchd.cli_fails_with(
        &[
            "message",
            "send",
            "-p",
            "alice",
            CAROL,
            "--encrypt",
            for_carol,
        ],
        "NotEncrypted",
    )?;
    ensure!(err.contains(CAROL), "{err}");
    ensure!(
        !history(perchd, "alice", &[])?
            .iter()
            .any(|m| m["body"] == for_carol),
        "stored"
    );
    secrets.push(for_carol.to_owned());

    // What the server keeps and perchd's trace log hold no plaintext.
    let server = all_text(&prosody.dir().join("data"))?;
    ensure!(
        server.contains("This message is OMEMO encrypted"),
        "the archive holds the messages"
    );
    let log = perchd.log_text()?;
    ensure!(log.contains("TRACE"), "the log is at trace level");
    for s in &secrets {
        ensure!(!server.contains(s.as_str()), "Prosody's data holds {s:?}");
        ensure!(!log.contains(s.as_str()), "perchd's log holds {s:?}");
    }
    Ok(())
}

// --- group chats -------------------------------------------------------------------

/// `perch --json muc ARGS…`
fn muc(perchd: &Perchd, args: &[&str]) -> Result<Value> {
    let mut all = vec!["muc"];
    all.extend_from_slice(args);
    perchd.cli_json(&all)
}

/// Sets the room's `muc#roomconfig_whois` (`anyone`: non-anonymous, `moderators`:
/// semi-anonymous), as its owner.
fn whois(perchd: &Perchd, owner: &str, room: &str, who: &str) -> Result<()> {
    let after = muc(
        perchd,
        &[
            "config",
            "-p",
            owner,
            room,
            "-f",
            "muc#roomconfig_whois",
            who,
        ],
    )?;
    ensure!(
        after["values"]["muc#roomconfig_whois"] == who,
        "the room's configuration: {after}"
    );
    Ok(())
}

/// Waits until `profile` sees every one of `nicks` in `room`, each with its real
/// JID.
fn wait_real_jids(perchd: &Perchd, profile: &str, room: &str, nicks: &[&str]) -> Result<()> {
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        last = muc(perchd, &["occupants", "-p", profile, room])?;
        let list = last["occupants"].as_array().cloned().unwrap_or_default();
        Ok(nicks.iter().all(|n| {
            list.iter()
                .any(|o| o["nick"] == *n && o["jid"].as_str().is_some())
        }))
    })
    .with_context(|| format!("{profile}'s view of {room}: {last}"))
}

#[test]
fn omemo_2_in_a_group_chat() {
    group_body("2", "urn:xmpp:omemo:2").unwrap();
}

#[test]
fn omemo_0_3_in_a_group_chat() {
    group_body("0.3", "eu.siacs.conversations.axolotl").unwrap();
}

fn group_body(version: &str, ns: &str) -> Result<()> {
    let prosody =
        Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)])?;
    let perchd = Perchd::start_with_config(&config(version))?;
    let result = group_steps(&prosody, &perchd, ns);
    with_log_tail(&perchd, result)
}

fn group_steps(prosody: &Prosody, perchd: &Perchd, ns: &str) -> Result<()> {
    let people = [("alice", ALICE), ("bob", BOB), ("carol", CAROL)];
    for ((name, jid), pw) in people.into_iter().zip([ALICE_PW, BOB_PW, CAROL_PW]) {
        perchd.create_profile(prosody, name, name, pw, &[])?;
        connect(perchd, name, jid)?;
    }
    // A non-anonymous room: every occupant sees the others' real JIDs.
    let room = format!("crypt@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    whois(perchd, "alice", room, "anyone")?;
    muc(perchd, &["join", "-p", "bob", room, "--nick", "bob"])?;
    muc(perchd, &["join", "-p", "carol", room, "--nick", "carol"])?;
    for (name, _) in people {
        wait_real_jids(perchd, name, room, &["alice", "bob", "carol"])?;
    }
    for (name, _) in people {
        let st = start(perchd, name, room)?;
        ensure!(
            st["encrypted"] == true && st["namespace"] == ns,
            "{name}: {st}"
        );
    }

    // Each speaks; the other two read it.
    let mut said = Vec::new();
    for (name, _) in people {
        let text = format!("{ns}: {name}'s secret to the room");
        muc(perchd, &["say", "-p", name, room, &text])?;
        for (other, _) in people.iter().filter(|p| p.0 != name) {
            wait_for_incoming(perchd, other, &text)?;
        }
        said.push((name, text));
    }
    // Each history: the three plaintexts once, marked; ours went out, and the room's
    // echo of it was recognised (it taught our copy the room's archive id) rather
    // than stored as a message we could not decrypt.
    for (name, _) in people {
        let mut last = Vec::new();
        wait_until(DELIVERY, || {
            last = history(perchd, name, &[room])?;
            Ok(last
                .iter()
                .any(|m| m["direction"] == "out" && m["stanza_id"].is_string()))
        })
        .with_context(|| format!("{name}'s echo never came: {last:?}"))?;
        let expected: Vec<_> = said
            .iter()
            .map(|(who, text)| t(if *who == name { "out" } else { "in" }, text, room))
            .collect();
        let h = assert_history(perchd, name, &[room], &expected)?;
        for m in &h {
            ensure!(
                m["extra"]["encryption"] == ns && m["extra"].get("decryption_error").is_none(),
                "{name}'s copy: {m}"
            );
        }
    }
    let mut secrets: Vec<String> = said.into_iter().map(|(_, t)| t).collect();
    secrets.extend(semi_anonymous_refused(perchd)?);

    // The room's archive holds no plaintext.
    let server = all_text(&prosody.dir().join("data"))?;
    ensure!(server.contains("This message is OMEMO encrypted"));
    for s in &secrets {
        ensure!(!server.contains(s.as_str()), "Prosody's data holds {s:?}");
    }
    Ok(())
}

/// A semi-anonymous room (real JIDs for moderators only): encryption can't start,
/// and a room encrypted before it became one refuses to send, typed, naming why;
/// nothing is sent or stored. The refused text.
fn semi_anonymous_refused(perchd: &Perchd) -> Result<Vec<String>> {
    let room = format!("veiled@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    muc(perchd, &["join", "-p", "bob", room, "--nick", "bob"])?;
    let err = perchd.cli_fails_with(
        &["encryption", "start", "-p", "alice", room],
        "NotEncrypted",
    )?;
    ensure!(err.contains("non-anonymous"), "{err}");
    whois(perchd, "alice", room, "anyone")?;
    start(perchd, "alice", room)?;
    whois(perchd, "alice", room, "moderators")?;
    let text = "said in a room that hides real JIDs";
    let err = perchd.cli_fails_with(&["muc", "say", "-p", "alice", room, text], "NotEncrypted")?;
    ensure!(err.contains(room) && err.contains("non-anonymous"), "{err}");
    ensure!(
        !history(perchd, "alice", &[room])?
            .iter()
            .any(|m| m["body"] == text),
        "the refused message was stored"
    );
    Ok(vec![text.to_owned()])
}

// --- our own other devices -----------------------------------------------------------

/// A second device of alice's account (a second profile of the same JID on the same
/// perchd) reads what the first sent bob: live (a carbon), then from its archive
/// after being away.
#[test]
fn omemo_a_second_device_reads_what_the_first_sent() {
    let prosody = Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
        .expect("starting Prosody");
    let perchd = Perchd::start_with_config(&config("2")).expect("starting perchd");
    let result = second_device_steps(&prosody, &perchd);
    with_log_tail(&perchd, result).unwrap();
}

fn second_device_steps(prosody: &Prosody, perchd: &Perchd) -> Result<()> {
    let ns = "urn:xmpp:omemo:2";
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "phone", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    for (name, jid) in [("alice", ALICE), ("phone", ALICE), ("bob", BOB)] {
        connect(perchd, name, jid)?;
    }
    // Alice's profile knows the phone's device (her account's device list).
    let phone = perchd.cli_json(&["omemo", "fingerprint", "-p", "phone"])?;
    let phone_device = phone[0]["device_id"].clone();
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        last = perchd.cli_json(&["omemo", "devices", "-p", "alice", ALICE])?;
        Ok(last.as_array().is_some_and(|ds| {
            ds.iter()
                .any(|d| d["device_id"] == phone_device && d["active"] == true)
        }))
    })
    .with_context(|| format!("alice's devices never listed the phone's: {last}"))?;
    start(perchd, "alice", BOB)?;
    start(perchd, "bob", ALICE)?;

    let live = "sent while the phone listens";
    perchd.cli_ok(&["message", "send", "-p", "alice", BOB, "--encrypt", live])?;
    wait_for_incoming(perchd, "bob", live)?;
    wait_for_sent_copy(perchd, "phone", live, ns)?;

    perchd.cli_ok(&["disconnect", "-p", "phone"])?;
    let away = "sent while the phone is away";
    perchd.cli_ok(&["message", "send", "-p", "alice", BOB, "--encrypt", away])?;
    wait_for_incoming(perchd, "bob", away)?;
    connect(perchd, "phone", ALICE)?;
    wait_for_sent_copy(perchd, "phone", away, ns)?;
    let h = history(perchd, "phone", &[])?;
    ensure!(
        h.iter()
            .all(|m| m["extra"].get("decryption_error").is_none()),
        "the phone kept something it could not read:\n{}",
        summarize_history(&Value::Array(h))
    );
    for text in [live, away] {
        let n = h.iter().filter(|m| m["body"] == text).count();
        ensure!(n == 1, "the phone has {text:?} {n} times");
    }
    Ok(())
}

/// Waits until `profile` has `text` as a message it sent (from another device),
/// decrypted, marked with `ns`.
fn wait_for_sent_copy(perchd: &Perchd, profile: &str, text: &str, ns: &str) -> Result<()> {
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = history(perchd, profile, &[])?;
        Ok(last.iter().any(|m| {
            m["direction"] == "out" && m["body"] == text && m["extra"]["encryption"] == ns
        }))
    })
    .with_context(|| {
        format!(
            "{profile} never read {text:?}:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })
}

// --- kill -9 ---------------------------------------------------------------------------

/// Bob's perchd is killed (SIGKILL) as soon as alice's first message, a key
/// exchange, is in his history, before he answered it; restarted, the session
/// works both ways and nothing is stored twice or undecryptable.
#[test]
fn omemo_a_killed_perchd_keeps_the_new_session() {
    let prosody = Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
        .expect("starting Prosody");
    let alices = Perchd::start_with_config(&config("2")).expect("starting alice's perchd");
    let mut bobs = Perchd::start_with_config(&config("2")).expect("starting bob's perchd");
    let result = kill_steps(&prosody, &alices, &mut bobs);
    let result = with_log_tail(&alices, result);
    with_log_tail(&bobs, result).unwrap();
}

fn kill_steps(prosody: &Prosody, alices: &Perchd, bobs: &mut Perchd) -> Result<()> {
    let ns = "urn:xmpp:omemo:2";
    alices.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    bobs.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(alices, "alice", ALICE)?;
    connect(bobs, "bob", BOB)?;
    start(alices, "alice", BOB)?;
    start(bobs, "bob", ALICE)?;
    let first = "the first, with a key exchange";
    alices.cli_ok(&["message", "send", "-p", "alice", BOB, "--encrypt", first])?;
    wait_for_incoming(bobs, "bob", first)?;
    bobs.kill()?;
    bobs.start_again()?;
    let mut monitor = Monitor::start(bobs)?;
    connect(bobs, "bob", BOB)?;
    // Its archive catch-up brings the first message again: recognised.
    monitor.wait(catch_up_done("bob", BOB))?;
    let lines = [
        ("bob", ALICE, "bob answers after the kill"),
        ("alice", BOB, "alice again"),
        ("bob", ALICE, "bob again"),
    ];
    for (from, to, text) in lines {
        let (sender, receiver, reader) = if from == "bob" {
            (&*bobs, alices, "alice")
        } else {
            (alices, &*bobs, "bob")
        };
        sender.cli_ok(&["message", "send", "-p", from, to, "--encrypt", text])?;
        wait_for_incoming(receiver, reader, text)?;
    }
    for (perchd, name) in [(alices, "alice"), (&*bobs, "bob")] {
        let h = history(perchd, name, &[])?;
        for text in std::iter::once(first).chain(lines.iter().map(|l| l.2)) {
            let copies: Vec<&Value> = h.iter().filter(|m| m["body"] == text).collect();
            ensure!(
                copies.len() == 1 && copies[0]["extra"]["encryption"] == ns,
                "{name}'s copies of {text:?}: {copies:?}"
            );
        }
        ensure!(
            h.iter()
                .all(|m| m["extra"].get("decryption_error").is_none()),
            "{name} kept something undecryptable:\n{}",
            summarize_history(&Value::Array(h))
        );
    }
    Ok(())
}
