//! OMEMO (XEP-0384) end to end: two profiles on one perchd talk through the harness
//! Prosody, each version forced in turn with the plugin's `versions` option. Both
//! histories keep the plaintext with `extra.encryption`; what the server keeps (its
//! archive, offline storage) and perchd's log at trace level hold no plaintext; the
//! sessions survive a restart; a contact without devices is refused, typed, and
//! nothing goes in clear (the contact is offline: the server would keep it).
//!
//! Then group chats (three profiles in a non-anonymous room, each read by the
//! other two; a semi-anonymous room refused), a second device of one account (its
//! own perchd) reading what the first sent (carbons, then its archive), a perchd killed
//! (SIGKILL) right after it sent a key exchange, before the answer could come
//! (the peer offline), and perchd on its default (both versions): a message whose
//! session is lost kept and signalled, `encryption stop`, `omemo distrust`.

use super::*;
use perch_tests::MUC_DOMAIN;

const CAROL: &str = "carol@localhost";

/// `[log] level = "trace"`, and the OMEMO versions perchd speaks.
fn config(version: &str) -> String {
    format!(
        "[log]\nlevel = \"trace\"\n[plugins.options.\"XEP-0384\"]\nversions = [\"{version}\"]\n"
    )
}

/// `[log] level = "trace"`, the OMEMO versions left to their default (both).
const TRACE_ONLY: &str = "[log]\nlevel = \"trace\"\n";

/// `sql`'s rows from perchd's SQLite database, as `sqlite3` prints them (one a
/// line, columns split by `|`).
fn sqlite(perchd: &Perchd, sql: &str) -> Result<String> {
    let program = perch_tests::find_program("sqlite3", "the sqlite3 shell", "sqlite3")?;
    let mut cmd = std::process::Command::new(program);
    cmd.arg(perchd.data_dir().join("perch.db")).arg(sql);
    let out = perch_tests::run_checked(cmd, Duration::from_secs(30))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The secret keys of a stored JSON value (`perch_omemo`'s prekeys or session):
/// private keys, one-time prekeys, root, chain and skipped message keys; the
/// public ones (identity, ratchet and ephemeral keys, signatures) left out.
fn secret_leaves(v: &Value, under: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let k = if under == "prekeys" {
                    under
                } else {
                    k.as_str()
                };
                secret_leaves(v, k, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| secret_leaves(i, under, out)),
        Value::String(text)
            if ["private", "own_priv", "root_key", "key", "prekeys"].contains(&under) =>
        {
            out.push(text.clone());
        }
        _ => {}
    }
}

/// Key material as perchd stores it (prekeys, signed prekeys, ratchet states, the
/// sealed seed), read back from its database: each secret key in hex, its first
/// half (a fragment), and the first half of its base64; the sealed seed's first
/// half.
fn stored_key_material(perchd: &Perchd) -> Result<Vec<String>> {
    use base64::Engine;
    let rows = sqlite(
        perchd,
        "SELECT keys FROM omemo_prekeys UNION ALL SELECT state FROM omemo_session",
    )?;
    let mut secrets = Vec::new();
    for line in rows.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("stored: {line}"))?;
        secret_leaves(&v, "", &mut secrets);
    }
    let mut out = Vec::new();
    for h in secrets {
        ensure!(h.len() >= 64, "not a key: {h:?}");
        let bytes: Vec<u8> = (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .with_context(|| format!("not hex: {h:?}"))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        out.push(encoded[..encoded.len() / 2].to_owned());
        out.push(h[..h.len() / 2].to_owned());
        out.push(h);
    }
    for sealed in sqlite(perchd, "SELECT sealed_seed FROM omemo_identity")?.lines() {
        if sealed.len() >= 32 {
            out.push(sealed[..sealed.len() / 2].to_owned());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
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
    // Nor any key it stored: read back from its database, whole or in part.
    let keys = stored_key_material(perchd)?;
    ensure!(
        keys.len() > 100,
        "too little key material read: {}",
        keys.len()
    );
    for k in &keys {
        ensure!(
            !log.contains(k.as_str()),
            "perchd's log holds stored key material {k:?}"
        );
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

/// A second device of alice's account (a profile of the same JID on a perchd of its
/// own) reads what the first sent bob: live (a carbon), then from its archive
/// after being away.
#[test]
fn omemo_a_second_device_reads_what_the_first_sent() {
    let prosody = Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
        .expect("starting Prosody");
    let perchd = Perchd::start_with_config(&config("2")).expect("starting perchd");
    let phones = Perchd::start_with_config(&config("2")).expect("starting the phone's perchd");
    let result = second_device_steps(&prosody, &perchd, &phones);
    let result = with_log_tail(&phones, result);
    with_log_tail(&perchd, result).unwrap();
}

fn second_device_steps(prosody: &Prosody, perchd: &Perchd, phones: &Perchd) -> Result<()> {
    let ns = "urn:xmpp:omemo:2";
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    phones.create_profile(prosody, "phone", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    for (name, jid) in [("alice", ALICE), ("bob", BOB)] {
        connect(perchd, name, jid)?;
    }
    connect(phones, "phone", ALICE)?;
    // Alice's profile knows the phone's device (her account's device list).
    let phone = phones.cli_json(&["omemo", "fingerprint", "-p", "phone"])?;
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
    wait_for_sent_copy(phones, "phone", live, ns)?;

    phones.cli_ok(&["disconnect", "-p", "phone"])?;
    let away = "sent while the phone is away";
    perchd.cli_ok(&["message", "send", "-p", "alice", BOB, "--encrypt", away])?;
    wait_for_incoming(perchd, "bob", away)?;
    connect(phones, "phone", ALICE)?;
    wait_for_sent_copy(phones, "phone", away, ns)?;
    let h = history(phones, "phone", &[])?;
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

/// Alice's perchd is killed (SIGKILL) right after her first message, a key
/// exchange, reached the server, while bob is offline: the answer can't have come
/// yet. Restarted, she reads bob's answer to it (his empty message, then his
/// text): the session opened before the kill works both ways, and nothing is
/// stored twice or undecryptable.
#[test]
fn omemo_a_killed_perchd_keeps_the_new_session() {
    let prosody = Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
        .expect("starting Prosody");
    let mut alices = Perchd::start_with_config(&config("2")).expect("starting alice's perchd");
    let bobs = Perchd::start_with_config(&config("2")).expect("starting bob's perchd");
    let result = kill_steps(&prosody, &mut alices, &bobs);
    let result = with_log_tail(&alices, result);
    with_log_tail(&bobs, result).unwrap();
}

/// Waits until `profile`'s copy of `text` is confirmed by the server.
fn wait_acked(perchd: &Perchd, profile: &str, text: &str) -> Result<()> {
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        last = stored(perchd, profile, text)?;
        Ok(last["state"] == "acked")
    })
    .with_context(|| format!("{profile}'s {text:?} never acked: {last}"))
}

fn kill_steps(prosody: &Prosody, alices: &mut Perchd, bobs: &Perchd) -> Result<()> {
    let ns = "urn:xmpp:omemo:2";
    alices.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    bobs.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(alices, "alice", ALICE)?;
    connect(bobs, "bob", BOB)?;
    start(alices, "alice", BOB)?;
    start(bobs, "bob", ALICE)?;
    bobs.cli_ok(&["disconnect", "-p", "bob"])?;
    let first = "the first, with a key exchange";
    alices.cli_ok(&["message", "send", "-p", "alice", BOB, "--encrypt", first])?;
    wait_acked(alices, "alice", first)?;
    let sessions = sqlite(alices, "SELECT COUNT(*) FROM omemo_session")?;
    ensure!(
        sessions.trim() == "1",
        "alice's sessions before the kill: {sessions}"
    );
    alices.kill()?;
    alices.start_again()?;
    let mut monitor = Monitor::start(alices)?;
    connect(alices, "alice", ALICE)?;
    // Her archive catch-up brings her own message back: recognised.
    monitor.wait(catch_up_done("alice", ALICE))?;
    // Bob comes online: reads the key exchange and answers it.
    connect(bobs, "bob", BOB)?;
    wait_for_incoming(bobs, "bob", first)?;
    let lines = [
        ("bob", ALICE, "bob answers after the kill"),
        ("alice", BOB, "alice again"),
        ("bob", ALICE, "bob again"),
    ];
    for (from, to, text) in lines {
        let (sender, receiver, reader) = if from == "bob" {
            (bobs, &*alices, "alice")
        } else {
            (&*alices, bobs, "bob")
        };
        sender.cli_ok(&["message", "send", "-p", from, to, "--encrypt", text])?;
        wait_for_incoming(receiver, reader, text)?;
    }
    // Alice's session was confirmed by bob's answer: no key exchange any more.
    let state = sqlite(alices, "SELECT state FROM omemo_session")?;
    let state: Value = serde_json::from_str(state.trim())?;
    ensure!(state["confirmed"] == true, "alice's session: not confirmed");
    for (perchd, name) in [(&*alices, "alice"), (bobs, "bob")] {
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

// --- both versions, a lost session, stop and distrust -----------------------------------

/// `omemo_decryption_failed` for `profile`, with this reason.
fn decryption_failed<'a>(profile: &'a str, reason: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["signal"] == "PluginSignal"
            && v["plugin"] == "XEP-0384"
            && v["name"] == "omemo_decryption_failed"
            && v["profile"] == profile
            && v["data"]["reason"] == reason
    }
}

/// perchd on its default versions (both): the two profiles pick 2. A reaction is
/// refused (it can't be encrypted), nothing sent. A message whose session alice lost is kept as undecryptable and signalled, never shown as
/// its text; `encryption stop` makes later sends plain; after `omemo distrust` of
/// bob's only key, an encrypted send is refused, typed, and nothing goes.
#[test]
fn omemo_on_both_versions_a_lost_session_stop_and_distrust() {
    let prosody = Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW)])
        .expect("starting Prosody");
    let perchd = Perchd::start_with_config(TRACE_ONLY).expect("starting perchd");
    let result = default_steps(&prosody, &perchd);
    with_log_tail(&perchd, result).unwrap();
}

fn default_steps(prosody: &Prosody, perchd: &Perchd) -> Result<()> {
    let ns = "urn:xmpp:omemo:2";
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    let st = start(perchd, "alice", BOB)?;
    ensure!(st["namespace"] == ns, "{st}");
    start(perchd, "bob", ALICE)?;
    let versions = perchd.cli_json(&["omemo", "devices", "-p", "alice", BOB])?;
    ensure!(
        versions[0]["versions"]
            .as_array()
            .is_some_and(|v| v.len() == 2),
        "bob publishes both versions: {versions}"
    );
    let mut secrets = exchange(perchd, ns, "both versions")?;

    // A reaction can't be encrypted: refused, typed, and nothing goes in clear.
    let target = stored(perchd, "alice", "both versions: bob's secret")?;
    let id = target["id"].as_str().context("the message's id")?;
    let err = perchd.cli_fails_with(
        &["message", "react", "-p", "alice", BOB, id, "👍"],
        "NotEncrypted",
    )?;
    ensure!(err.contains("a reaction can't be encrypted"), "{err}");

    // Alice loses her session with bob; his next message (no key exchange) is kept
    // with the reason, signalled, never shown as its text.
    let mut monitor = Monitor::start(perchd)?;
    sqlite(
        perchd,
        &format!(
            "DELETE FROM omemo_session WHERE jid = '{BOB}' AND profile_id = \
             (SELECT id FROM profile WHERE name = 'alice')"
        ),
    )?;
    let lost = "sent to a lost session";
    perchd.cli_ok(&["message", "send", "-p", "bob", ALICE, "--encrypt", lost])?;
    monitor.wait(decryption_failed("alice", "no session"))?;
    let h = history(perchd, "alice", &[])?;
    let kept: Vec<&Value> = h
        .iter()
        .filter(|m| m["extra"]["decryption_error"] == "no session")
        .collect();
    ensure!(
        kept.len() == 1
            && kept[0]["direction"] == "in"
            && kept[0]["body"] == "[encrypted message that could not be decrypted]"
            && kept[0]["extra"]["encryption"] == ns,
        "alice's history:\n{}",
        summarize_history(&Value::Array(h.clone()))
    );
    ensure!(!h.iter().any(|m| m["body"] == lost), "shown as its text");
    secrets.push(lost.to_owned());

    // Stopped: later sends are plain again.
    let st = perchd.cli_json(&["encryption", "stop", "-p", "alice", BOB])?;
    ensure!(st["encrypted"] == false, "{st}");
    let status = perchd.cli_json(&["encryption", "status", "-p", "alice", BOB])?;
    ensure!(status["encrypted"] == false, "{status}");
    let plain = "in clear, encryption stopped";
    send(perchd, "alice", BOB, plain)?;
    wait_for_incoming(perchd, "bob", plain)?;
    for profile in ["alice", "bob"] {
        let m = stored(perchd, profile, plain)?;
        ensure!(m["extra"].get("encryption").is_none(), "{profile}: {m}");
    }

    // Bob's only key distrusted: an encrypted send is refused, nothing stored.
    let bob_fp = perchd.cli_json(&["omemo", "fingerprint", "-p", "bob"])?[0]["fingerprint"]
        .as_str()
        .context("bob's fingerprint")?
        .to_owned();
    let out = perchd.cli_json(&["omemo", "distrust", "-p", "alice", BOB, &bob_fp])?;
    let listed = out.as_array().cloned().unwrap_or_default();
    ensure!(
        !listed.is_empty()
            && listed
                .iter()
                .all(|d| d["fingerprint"] == bob_fp.as_str() && d["trust"] == "distrusted"),
        "{out}"
    );
    let refused = "to a distrusted key";
    let err = perchd.cli_fails_with(
        &["message", "send", "-p", "alice", BOB, "--encrypt", refused],
        "NotEncrypted",
    )?;
    ensure!(err.contains("distrusted"), "{err}");
    ensure!(
        !history(perchd, "alice", &[])?
            .iter()
            .any(|m| m["body"] == refused),
        "the refused message was stored"
    );
    secrets.push(refused.to_owned());

    let server = all_text(&prosody.dir().join("data"))?;
    let log = perchd.log_text()?;
    for s in &secrets {
        ensure!(!server.contains(s.as_str()), "Prosody's data holds {s:?}");
        ensure!(!log.contains(s.as_str()), "perchd's log holds {s:?}");
    }
    ensure!(
        server.contains(plain),
        "the plain message is in the archive, in clear"
    );
    Ok(())
}
