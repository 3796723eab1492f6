//! OMEMO (XEP-0384) end to end: two profiles on one perchd talk through the harness
//! Prosody, each version forced in turn with the plugin's `versions` option. Both
//! histories keep the plaintext with `extra.encryption`; what the server keeps (its
//! archive, offline storage) and perchd's log at trace level hold no plaintext; the
//! sessions survive a restart; a contact without devices is refused, typed, and
//! nothing goes in clear (the contact is offline: the server would keep it).

use super::*;

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

fn omemo_body(version: &str, ns: &str) -> Result<()> {
    let prosody =
        Prosody::start_with_users(&[("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)])?;
    let mut perchd = Perchd::start_with_config(&config(version))?;
    let result = omemo_steps(&prosody, &mut perchd, ns);
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
