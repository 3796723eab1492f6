//! End-to-end tests: a real Prosody, a private dbus-daemon, the real `perchd`, driven
//! through the real `perch` CLI (and, for signals, directly over D-Bus).
//!
//! Every test builds its own fixtures and can run in parallel with the others. Each test
//! body returns `anyhow::Result` and is unwrapped while the fixtures are still alive, so
//! a failure prints the tails of perchd's and Prosody's logs.

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use futures::StreamExt;
use perch_tests::bed::{ALICE, BOB, Bed, DELIVERY, connect, mutual_subscription};
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Prosody, summarize_history, wait_until};
use serde_json::Value;

const CAROL_PW: &str = "carol-secret";

fn history(perchd: &Perchd, profile: &str, extra: &[&str]) -> Result<Vec<Value>> {
    let mut args = vec!["message", "history", "-p", profile];
    args.extend_from_slice(extra);
    let value = perchd.cli_json(&args)?;
    value
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("`message history -p {profile}` is not a JSON array: {value}"))
}

/// (direction, body, peer) of each message.
fn triples(history: &[Value]) -> Vec<(String, String, String)> {
    history
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("<missing>").to_owned();
            (s("direction"), s("body"), s("peer"))
        })
        .collect()
}

fn t(direction: &str, body: &str, peer: &str) -> (String, String, String) {
    (direction.to_owned(), body.to_owned(), peer.to_owned())
}

fn send(perchd: &Perchd, profile: &str, to: &str, body: &str) -> Result<()> {
    perchd.cli_ok(&["message", "send", "-p", profile, to, body])?;
    Ok(())
}

/// Waits until `profile`'s history holds an incoming message with this body.
fn wait_for_incoming(perchd: &Perchd, profile: &str, body: &str) -> Result<()> {
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = history(perchd, profile, &[])?;
        Ok(last
            .iter()
            .any(|m| m["direction"] == "in" && m["body"] == body))
    })
    .with_context(|| {
        format!(
            "profile {profile} never received {body:?}; its history:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })
}

fn assert_history(
    perchd: &Perchd,
    profile: &str,
    extra: &[&str],
    expected: &[(String, String, String)],
) -> Result<Vec<Value>> {
    let h = history(perchd, profile, extra)?;
    ensure!(
        triples(&h) == expected,
        "history of {profile} {extra:?}:\n{}\nexpected (direction, body, peer): {expected:?}",
        summarize_history(&Value::Array(h))
    );
    Ok(h)
}

fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

// ---------------------------------------------------------------------------------------
// 1. messages
// ---------------------------------------------------------------------------------------

#[test]
fn messages_between_two_profiles() {
    let bed = Bed::start();
    messages_body(&bed).unwrap();
}

fn messages_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;

    let to_bob = "Hello Bob, it's Alice — ça va ?";
    let to_alice = "hi alice";
    send(perchd, "alice", BOB, to_bob)?;
    wait_for_incoming(perchd, "bob", to_bob)?;
    send(perchd, "bob", ALICE, to_alice)?;
    wait_for_incoming(perchd, "alice", to_alice)?;

    let alice_expected = [t("out", to_bob, BOB), t("in", to_alice, BOB)];
    let bob_expected = [t("in", to_bob, ALICE), t("out", to_alice, ALICE)];
    let alice = assert_history(perchd, "alice", &[], &alice_expected)?;
    let bob = assert_history(perchd, "bob", &[], &bob_expected)?;

    // The documented message shape.
    for (m, from) in [(&alice[1], BOB), (&bob[0], ALICE)] {
        ensure!(m["type"] == "chat", "type of {m}");
        let sender = m["from"].as_str().unwrap_or_default();
        ensure!(bare(sender) == from, "`from` of an incoming message: {m}");
        ensure!(
            m["id"].as_str().is_some_and(|s| !s.is_empty()),
            "message without an id: {m}"
        );
        let ts = m["timestamp"].as_str().unwrap_or_default();
        ensure!(
            ts.ends_with('Z') && ts.contains('T'),
            "timestamp not RFC 3339 UTC: {m}"
        );
    }
    ensure!(
        alice[0]["timestamp"].as_str() <= alice[1]["timestamp"].as_str(),
        "history not oldest first: {alice:?}"
    );

    // Filters: by peer (bare JID), and --limit keeps the newest.
    assert_history(perchd, "alice", &[BOB], &alice_expected)?;
    assert_history(perchd, "alice", &["carol@localhost"], &[])?;
    assert_history(
        perchd,
        "alice",
        &[BOB, "--limit", "1"],
        &[t("in", to_alice, BOB)],
    )?;
    assert_history(
        perchd,
        "bob",
        &["--limit", "1"],
        &[t("out", to_alice, ALICE)],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. presence
// ---------------------------------------------------------------------------------------

#[test]
fn presence_subscription_and_update_signal() {
    let bed = Bed::start();
    presence_body(&bed).unwrap();
}

type PresenceSignal = (String, String, String, String, i32);

fn presence_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    mutual_subscription(perchd)?;

    // Mutually subscribed and online: each sees the other available.
    for (profile, contact) in [("alice", BOB), ("bob", ALICE)] {
        let mut last = Value::Null;
        wait_until(DELIVERY, || {
            last = perchd.cli_json(&["presence", "list", "-p", profile])?;
            Ok(last.as_array().is_some_and(|a| {
                a.iter().any(|p| {
                    bare(p["jid"].as_str().unwrap_or_default()) == contact
                        && p["show"] == "available"
                })
            }))
        })
        .with_context(|| {
            format!("{profile} never saw {contact} available; presence list: {last}")
        })?;
    }

    // Watch PresenceUpdate signals on the private bus.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::channel::<Result<PresenceSignal>>();
    runtime.block_on(async {
        let client = perch_client::Client::on_bus(perchd.bus_connection().await?).await?;
        let mut stream = client.signals().await?;
        tokio::spawn(async move {
            let _client = client;
            while let Some(signal) = stream.next().await {
                let parsed = match signal {
                    Ok(perch_client::Signal::PresenceUpdate {
                        profile,
                        jid,
                        show,
                        status,
                        priority,
                    }) => Ok((profile, jid, show, status, priority)),
                    Ok(_) => continue,
                    Err(e) => Err(anyhow::Error::from(e)),
                };
                if tx.send(parsed).is_err() {
                    break;
                }
            }
        });
        anyhow::Ok(())
    })?;

    perchd.cli_ok(&[
        "presence", "set", "-p", "bob", "--show", "away", "--status", "lunch",
    ])?;

    let deadline = std::time::Instant::now() + DELIVERY;
    let mut seen = Vec::new();
    let signal = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(sig)) => {
                seen.push(sig.clone());
                if sig.0 == "alice" && bare(&sig.1) == BOB && sig.2 == "away" {
                    break sig;
                }
            }
            Ok(Err(e)) => return Err(e.context("a PresenceUpdate signal with an unexpected body")),
            Err(_) => {
                return Err(anyhow!(
                    "no PresenceUpdate(alice, {BOB}/…, away, …) within {DELIVERY:?}; signals seen: {seen:?}"
                ));
            }
        }
    };
    ensure!(
        signal.1.starts_with(&format!("{BOB}/")),
        "signal jid should be bob's full JID: {signal:?}"
    );
    ensure!(signal.3 == "lunch", "status of the away signal: {signal:?}");

    let mut last = Value::Null;
    wait_until(Duration::from_secs(5), || {
        last = perchd.cli_json(&["presence", "list", "-p", "alice"])?;
        Ok(last.as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["jid"] == signal.1.as_str() && p["show"] == "away" && p["status"] == "lunch"
            })
        }))
    })
    .with_context(|| format!("`presence list -p alice` does not show bob away/lunch: {last}"))?;
    drop(runtime);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. perchd restart
// ---------------------------------------------------------------------------------------

#[test]
fn restart_keeps_profiles_history_and_autoconnects() {
    let mut bed = Bed::start();
    restart_body(&mut bed).unwrap();
}

fn restart_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&["--autoconnect"])?;
    let perchd = &mut bed.perchd;
    let show = perchd.cli_json(&["profile", "show", "alice"])?;
    ensure!(
        show["autoconnect"] == true,
        "alice was created with --autoconnect: {show}"
    );

    send(perchd, "alice", BOB, "before restart 1")?;
    wait_for_incoming(perchd, "bob", "before restart 1")?;
    send(perchd, "bob", ALICE, "before restart 2")?;
    wait_for_incoming(perchd, "alice", "before restart 2")?;
    let profiles_before = perchd.cli_json(&["profile", "list"])?;

    perchd.stop()?;
    perchd.start_again()?;

    let profiles = perchd.cli_json(&["profile", "list"])?;
    ensure!(
        profiles == profiles_before,
        "profile list changed across a restart:\nbefore: {profiles_before}\nafter:  {profiles}"
    );
    let names: Vec<&str> = profiles
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names == ["alice", "bob"],
        "profile list after restart: {profiles}"
    );

    let alice_expected = [
        t("out", "before restart 1", BOB),
        t("in", "before restart 2", BOB),
    ];
    let bob_expected = [
        t("in", "before restart 1", ALICE),
        t("out", "before restart 2", ALICE),
    ];
    assert_history(perchd, "alice", &[], &alice_expected)?;
    assert_history(perchd, "bob", &[], &bob_expected)?;

    // alice has autoconnect on: she comes back by herself; bob does not.
    perchd.wait_for_state("alice", "connected", Duration::from_secs(15))?;
    let bob_state = perchd.state_of("bob")?;
    ensure!(
        bob_state == "disconnected",
        "bob has autoconnect off, yet is {bob_state:?} after restart"
    );

    // The autoconnected session works.
    connect(perchd, "bob", BOB)?;
    send(perchd, "alice", BOB, "after restart")?;
    wait_for_incoming(perchd, "bob", "after restart")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. Prosody restart
// ---------------------------------------------------------------------------------------

#[test]
fn reconnects_after_server_restart() {
    let mut bed = Bed::start();
    server_restart_body(&mut bed).unwrap();
}

fn server_restart_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;

    bed.prosody.kill()?;
    // The server is gone: perchd must notice (the kernel closed the TCP connections).
    for profile in ["alice", "bob"] {
        let mut last = String::new();
        wait_until(Duration::from_secs(20), || {
            last = perchd.state_of(profile)?;
            Ok(last != "connected")
        })
        .with_context(|| {
            format!("profile {profile} still \"connected\" 20 s after the server was killed")
        })?;
    }

    bed.prosody.start_again()?;
    for profile in ["alice", "bob"] {
        perchd.wait_for_state(profile, "connected", Duration::from_secs(40))?;
    }

    send(perchd, "alice", BOB, "after the server restart")?;
    wait_for_incoming(perchd, "bob", "after the server restart")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 5. errors
// ---------------------------------------------------------------------------------------

#[test]
fn errors_are_reported_by_name() {
    let bed = Bed::start();
    errors_body(&bed).unwrap();
}

fn last_error_is(perchd: &Perchd, profile: &str, name: &str) -> Result<()> {
    let status = perchd.status_of(profile)?;
    ensure!(
        status["state"] == "disconnected" && status["error"]["name"] == name,
        "status of {profile} after a failed connect should be disconnected with error {name}: {status}"
    );
    Ok(())
}

fn errors_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    let prosody = &bed.prosody;
    let ca = prosody.ca_file().display().to_string();
    let server = prosody.server_arg();

    // Wrong password.
    perchd.create_profile(prosody, "badpw", "bob", "not-bobs-password", &[])?;
    perchd.cli_fails_with(&["connect", "-p", "badpw"], "AuthenticationFailed")?;
    last_error_is(perchd, "badpw", "AuthenticationFailed")?;

    // Nobody listens there.
    let refused = perch_tests::RefusedPort::new()?;
    let dead = format!("127.0.0.1:{}", refused.port);
    perchd.cli_ok(&[
        "profile",
        "create",
        "unreachable",
        "--jid",
        "carol@localhost",
        "--xmpp-password",
        "x",
        "--server",
        &dead,
        "--ca-file",
        &ca,
    ])?;
    perchd.cli_fails_with(&["connect", "-p", "unreachable"], "ServerUnreachable")?;
    last_error_is(perchd, "unreachable", "ServerUnreachable")?;

    // Unknown profile.
    perchd.cli_fails_with(&["connect", "-p", "nosuch"], "UnknownProfile")?;
    perchd.cli_fails_with(
        &["message", "send", "-p", "nosuch", BOB, "hi"],
        "UnknownProfile",
    )?;
    perchd.cli_fails_with(&["message", "history", "-p", "nosuch"], "UnknownProfile")?;
    perchd.cli_fails_with(&["profile", "show", "nosuch"], "UnknownProfile")?;

    // A taken profile name.
    perchd.cli_fails_with(
        &[
            "profile",
            "create",
            "badpw",
            "--jid",
            ALICE,
            "--xmpp-password",
            ALICE_PW,
            "--server",
            &server,
            "--ca-file",
            &ca,
        ],
        "ProfileExists",
    )?;

    // Invalid JIDs (on a connected profile, so nothing else can be the reason).
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    for bad in ["not a jid@@", "a@b@c"] {
        perchd.cli_fails_with(&["message", "send", "-p", "alice", bad, "hi"], "InvalidJid")?;
    }
    perchd.cli_fails_with(&["roster", "add", "-p", "alice", "a@b@c"], "InvalidJid")?;
    perchd.cli_fails_with(
        &[
            "profile",
            "create",
            "badjid",
            "--jid",
            "a@b@c",
            "--xmpp-password",
            "x",
            "--server",
            &server,
            "--ca-file",
            &ca,
        ],
        "InvalidJid",
    )?;

    // Not connected.
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    let state = perchd.state_of("alice")?;
    ensure!(
        state == "disconnected",
        "after `disconnect -p alice`: {state}"
    );
    // A message sent meanwhile is not refused: it is stored and queued, and can be
    // taken back before it goes out.
    let out = perchd.cli_ok(&["message", "send", "-p", "alice", BOB, "hi"])?;
    ensure!(
        out.starts_with("queued "),
        "send while disconnected: {out:?}"
    );
    let queued = perchd.cli_json(&["message", "outbox", "-p", "alice"])?;
    ensure!(
        queued.as_array().map(Vec::len) == Some(1) && queued[0]["state"] == "queued",
        "the outbox: {queued}"
    );
    let id = queued[0]["id"].as_str().unwrap_or_default().to_owned();
    perchd.cli_ok(&["message", "outbox", "-p", "alice", "cancel", &id])?;
    let empty = perchd.cli_json(&["message", "outbox", "-p", "alice"])?;
    ensure!(empty == serde_json::json!([]), "after cancel: {empty}");
    perchd.cli_fails_with(
        &["message", "outbox", "-p", "alice", "cancel", "no-such-id"],
        "UnknownMessage",
    )?;

    // The daemon survived all of it.
    let version = perchd.cli_ok(&["version"])?;
    ensure!(
        !version.trim().is_empty(),
        "`perch version` printed nothing"
    );
    let profiles = perchd.cli_json(&["profile", "list"])?;
    let names: Vec<&str> = profiles
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names == ["alice", "badpw", "unreachable"],
        "profiles after the failed calls (sorted by name, no `badjid`): {profiles}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 6. TLS
// ---------------------------------------------------------------------------------------

#[test]
fn tls_verification() {
    let bed = Bed::start();
    tls_body(&bed).unwrap();
}

fn log_says_verification_disabled(perchd: &Perchd) -> Result<bool> {
    Ok(perchd
        .log_text()?
        .to_lowercase()
        .contains("certificate verification disabled"))
}

fn tls_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    let prosody = &bed.prosody;
    prosody.register("carol", CAROL_PW)?;
    let server = prosody.server_arg();

    // System roots only: the harness CA is unknown.
    perchd.cli_ok(&[
        "profile",
        "create",
        "notrust",
        "--jid",
        ALICE,
        "--xmpp-password",
        ALICE_PW,
        "--server",
        &server,
    ])?;
    perchd.cli_fails_with(&["connect", "-p", "notrust"], "CertificateNotTrusted")?;
    last_error_is(perchd, "notrust", "CertificateNotTrusted")?;

    // With the CA file.
    perchd.create_profile(prosody, "trusted", "bob", BOB_PW, &[])?;
    let show = perchd.cli_json(&["profile", "show", "trusted"])?;
    ensure!(
        show["ca_file"] == prosody.ca_file().display().to_string().as_str()
            && show["insecure"] == false
            && show["server"] == server.as_str(),
        "profile show trusted: {show}"
    );
    connect(perchd, "trusted", BOB)?;
    ensure!(
        !log_says_verification_disabled(perchd)?,
        "the log says certificate verification is disabled, but no profile is insecure yet"
    );

    // Verification off.
    perchd.cli_ok(&[
        "profile",
        "create",
        "insecure",
        "--jid",
        "carol@localhost",
        "--xmpp-password",
        CAROL_PW,
        "--server",
        &server,
        "--insecure",
    ])?;
    let show = perchd.cli_json(&["profile", "show", "insecure"])?;
    ensure!(
        show["insecure"] == true && show["ca_file"].is_null(),
        "profile show insecure: {show}"
    );
    connect(perchd, "insecure", "carol@localhost")?;
    wait_until(Duration::from_secs(5), || log_says_verification_disabled(perchd)).context(
        "perchd.log does not warn \"certificate verification disabled\" after an --insecure connection",
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Profile management (no XMPP connection needed)
// ---------------------------------------------------------------------------------------

#[test]
fn profile_management() {
    let bed = Bed::start();
    profiles_body(&bed).unwrap();
}

fn profiles_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    let prosody = &bed.prosody;
    let empty = perchd.cli_json(&["profile", "list"])?;
    ensure!(
        empty == Value::Array(vec![]),
        "a fresh perchd has no profiles: {empty}"
    );

    perchd.create_profile(prosody, "zed", "bob", BOB_PW, &[])?;
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &["--autoconnect"])?;
    let list = perchd.cli_json(&["profile", "list"])?;
    let names: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names == ["alice", "zed"],
        "profile list is sorted by name: {list}"
    );

    let zed = perchd.cli_json(&["profile", "show", "zed"])?;
    ensure!(
        zed["jid"] == BOB && zed["default"] == true && zed["autoconnect"] == false,
        "the first profile created is the default: {zed}"
    );
    let alice = perchd.cli_json(&["profile", "show", "alice"])?;
    ensure!(
        alice["default"] == false && alice["autoconnect"] == true,
        "profile show alice: {alice}"
    );

    perchd.cli_ok(&["profile", "default", "alice"])?;
    perchd.cli_ok(&["profile", "autoconnect", "alice", "off"])?;
    let alice = perchd.cli_json(&["profile", "show", "alice"])?;
    let zed = perchd.cli_json(&["profile", "show", "zed"])?;
    ensure!(
        alice["default"] == true && alice["autoconnect"] == false && zed["default"] == false,
        "after `profile default alice` and `profile autoconnect alice off`: {alice} / {zed}"
    );

    perchd.cli_ok(&["profile", "delete", "zed"])?;
    perchd.cli_fails_with(&["profile", "show", "zed"], "UnknownProfile")?;
    let list = perchd.cli_json(&["profile", "list"])?;
    ensure!(
        list.as_array().map(Vec::len) == Some(1) && list[0]["name"] == "alice",
        "after deleting zed: {list}"
    );
    Ok(())
}

/// A headless box: perchd serves no bus, only its peer-to-peer socket in
/// `$XDG_RUNTIME_DIR`; the CLI finds it by itself (nobody owns the name on the session
/// bus) and `perch monitor` gets the signals over it.
#[test]
fn headless_peer_to_peer_socket() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_with_config("[bridge]\nbus = \"none\"\n").expect("starting perchd");
    headless_body(&perchd, &prosody).unwrap();
}

fn headless_body(perchd: &Perchd, prosody: &Prosody) -> Result<()> {
    ensure!(
        !perchd.bus().name_has_owner(perch_tests::BUS_NAME)?,
        "with bridge.bus = \"none\" perchd must not be on the bus"
    );
    let socket = perchd.dir().join("run/perch/perchd.sock");
    ensure!(socket.exists(), "no socket at {}", socket.display());

    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;

    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    connect(perchd, "alice", ALICE)?;
    wait_line(&rx, &mut seen, |v| {
        v["signal"] == "ConnectionState" && v["profile"] == "alice" && v["state"] == "connected"
    })?;
    connect(perchd, "bob", BOB)?;

    send(perchd, "alice", BOB, "over the socket")?;
    wait_line(&rx, &mut seen, |v| {
        v["signal"] == "MessageReceived"
            && v["profile"] == "bob"
            && v["message"]["direction"] == "in"
            && v["message"]["body"] == "over the socket"
            && v["message"]["peer"] == ALICE
    })?;
    wait_for_incoming(perchd, "bob", "over the socket")?;

    let _ = monitor.kill();
    let _ = monitor.wait();

    // An explicit --socket works too, and a wrong one is a clear NoDaemon error.
    let socket_arg = socket.display().to_string();
    let version = perchd.cli_ok(&["--socket", &socket_arg, "version"])?;
    ensure!(version.starts_with("perchd "), "version: {version}");
    let missing = perchd.dir().join("nowhere.sock").display().to_string();
    perchd.cli_fails_with(&["--socket", &missing, "version"], "NoDaemon")?;
    Ok(())
}

/// Waits for a JSON line from `perch --json monitor` that matches.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    matches: impl Fn(&Value) -> bool,
) -> Result<()> {
    let deadline = std::time::Instant::now() + DELIVERY;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let value: Value = serde_json::from_str(&line)
                    .with_context(|| format!("monitor printed a non-JSON line: {line:?}"))?;
                seen.push(line);
                if matches(&value) {
                    return Ok(());
                }
            }
            Err(_) => {
                return Err(anyhow!(
                    "no matching monitor line within {DELIVERY:?}; lines seen:\n{}",
                    seen.join("\n")
                ));
            }
        }
    }
}

/// Starts `perch --json monitor` and waits until it listens; its lines come on the
/// receiver.
fn start_monitor(perchd: &Perchd) -> Result<(std::process::Child, mpsc::Receiver<String>)> {
    let stderr = perchd.dir().join("perch.stderr");
    let before = std::fs::read_to_string(&stderr)
        .unwrap_or_default()
        .matches("listening to perchd's signals")
        .count();
    let mut monitor = perchd.cli_spawn(&["--json", "monitor"])?;
    let stdout = monitor.stdout.take().context("monitor stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_until(DELIVERY, || {
        Ok(std::fs::read_to_string(&stderr)
            .unwrap_or_default()
            .matches("listening to perchd's signals")
            .count()
            > before)
    })
    .context("perch monitor never said it was listening")?;
    Ok((monitor, rx))
}

/// `perch --json monitor` running, and the lines it printed so far: a test waits for
/// the signal that says what it waits for happened.
struct Monitor {
    child: std::process::Child,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Monitor {
    fn start(perchd: &Perchd) -> Result<Self> {
        let (child, rx) = start_monitor(perchd)?;
        Ok(Self {
            child,
            rx,
            seen: Vec::new(),
        })
    }

    /// Waits (up to [`DELIVERY`]) for a line that matches, after those already matched.
    fn wait(&mut self, matches: impl Fn(&Value) -> bool) -> Result<()> {
        wait_line(&self.rx, &mut self.seen, matches)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// XEP-0313's `catch_up_done` for `profile`'s catch-up of `archive` (a bare JID: our
/// account's, or a room's): every result of it came before its end on the stream.
fn catch_up_done<'a>(profile: &'a str, archive: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["signal"] == "PluginSignal"
            && v["plugin"] == "XEP-0313"
            && v["name"] == "catch_up_done"
            && v["profile"] == profile
            && v["data"]["archive"] == archive
    }
}

fn bound_jid(perchd: &Perchd, profile: &str) -> Result<String> {
    let status = perchd.status_of(profile)?;
    status["bound_jid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{profile} has no bound JID: {status}"))
}

/// The built-in plugins, end to end: ping, version and disco between two perchd
/// profiles, receipts marking history and signalling, typed action errors.
#[test]
fn plugins_ping_version_disco_receipts() {
    let bed = Bed::start();
    plugins_body(&bed).unwrap();
}

fn plugins_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;

    let plugins = perchd.cli_json(&["plugin", "list"])?;
    for name in ["XEP-0030", "XEP-0092", "XEP-0184", "XEP-0199"] {
        let p = plugins
            .as_array()
            .and_then(|a| a.iter().find(|p| p["import_name"] == name))
            .ok_or_else(|| anyhow!("{name} missing from plugin list: {plugins}"))?;
        ensure!(p["state"] == "loaded", "{name} not loaded: {p}");
    }

    let bob_full = bound_jid(perchd, "bob")?;
    // Ping: the server, then bob's perchd (which answers through its ping plugin).
    for target in ["localhost", bob_full.as_str()] {
        let pong = perchd.cli_json(&["ping", "-p", "alice", target])?;
        ensure!(
            pong["rtt_ms"].as_f64().is_some_and(|r| r >= 0.0) && pong["jid"] == target,
            "ping {target}: {pong}"
        );
    }
    let text = perchd.cli_ok(&["ping", "-p", "alice", &bob_full])?;
    ensure!(text.starts_with("pong from "), "ping text: {text}");

    let version = perchd.cli_json(&["info", "version", "-p", "alice", &bob_full])?;
    ensure!(
        version["name"] == "Perch" && version["os"].is_null(),
        "version of bob's perchd: {version}"
    );

    let disco = perchd.cli_json(&["info", "disco", "-p", "alice", &bob_full])?;
    let features: Vec<&str> = disco["info"]["features"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for f in [
        "urn:xmpp:ping",
        "urn:xmpp:receipts",
        "jabber:iq:version",
        "http://jabber.org/protocol/disco#info",
    ] {
        ensure!(features.contains(&f), "{f} not announced: {disco}");
    }
    ensure!(disco["info"]["cached"] == false, "first lookup: {disco}");
    let again = perchd.cli_json(&["info", "disco", "-p", "alice", &bob_full])?;
    ensure!(
        again["info"]["cached"] == true,
        "second lookup is cached: {again}"
    );
    let fresh = perchd.cli_json(&["info", "disco", "-p", "alice", &bob_full, "--no-cache"])?;
    ensure!(fresh["info"]["cached"] == false, "--no-cache: {fresh}");

    // Action calls are checked before they run.
    let err = perchd.cli_fails_with(&["action", "run", "-p", "alice", "ping"], "BadArgument")?;
    ensure!(
        err.contains("\"jid\""),
        "missing parameter not named: {err}"
    );
    let err = perchd.cli_fails_with(
        &[
            "action",
            "run",
            "-p",
            "alice",
            "disco_info",
            "jid=localhost",
            "use_cache=maybe",
        ],
        "BadArgument",
    )?;
    ensure!(err.contains("use_cache"), "wrong type not named: {err}");
    perchd.cli_fails_with(&["action", "run", "-p", "alice", "nope"], "UnknownAction")?;
    let listed = perchd.cli_json(&["action", "list"])?;
    ensure!(
        listed
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == "ping"
                && x["params"][0]["name"] == "jid"
                && x["params"][0]["type"] == "jid")),
        "action list: {listed}"
    );

    let triggers = perchd.cli_json(&["debug", "triggers"])?;
    let send = triggers
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "message.send"))
        .ok_or_else(|| anyhow!("message.send not listed: {triggers}"))?;
    ensure!(
        send["handlers"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x["plugin"] == "XEP-0184")),
        "receipts hook message.send: {send}"
    );

    // Receipts: bob's perchd confirms, alice's message is marked and signalled.
    let (mut monitor, rx) = start_monitor(perchd)?;
    let sent = perchd.cli_json(&["message", "send", "-p", "alice", BOB, "with receipt"])?;
    let id = sent["id"].as_str().context("message id")?.to_owned();
    let mut seen = Vec::new();
    wait_line(&rx, &mut seen, |v| {
        v["signal"] == "PluginSignal"
            && v["name"] == "message_delivered"
            && v["profile"] == "alice"
            && v["data"]["id"] == id.as_str()
    })?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let hist = history(perchd, "alice", &[BOB])?;
    let m = hist
        .iter()
        .find(|m| m["id"] == id.as_str())
        .ok_or_else(|| {
            anyhow!(
                "sent message not in history: {}",
                summarize_history(&Value::Array(hist.clone()))
            )
        })?;
    ensure!(m["extra"]["delivered"] == true, "not marked delivered: {m}");
    // The receipt itself is not a message in bob's history nor in alice's.
    ensure!(
        hist.iter()
            .all(|m| !m["body"].as_str().unwrap_or("").is_empty()),
        "a bodiless entry in history: {hist:?}"
    );
    Ok(())
}

/// A job's progress reaches a D-Bus client as signals, and the job is kept.
#[test]
fn job_progress_signals_and_log() {
    let bed = Bed::start();
    job_body(&bed).unwrap();
}

fn job_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    perchd.create_profile(&bed.prosody, "alice", "alice", ALICE_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    let (mut monitor, rx) = start_monitor(perchd)?;
    let started = perchd.cli_json(&[
        "action",
        "run",
        "-p",
        "alice",
        "disco_walk",
        "jid=localhost",
    ])?;
    let id = started["job"].as_str().context("job id")?.to_owned();
    let mut seen = Vec::new();
    for signal in ["ProgressStarted", "Progress", "ProgressFinished"] {
        wait_line(&rx, &mut seen, |v| {
            v["signal"] == signal && v["id"] == id.as_str()
        })?;
    }
    let _ = monitor.kill();
    let _ = monitor.wait();

    let job = perchd.cli_json(&["job", "show", &id, "--log"])?;
    ensure!(
        job["state"] == "finished"
            && job["percent"] == 100.0
            && job["result"]["jid"] == "localhost",
        "job after it finished: {job}"
    );
    ensure!(
        job["log"].as_array().is_some_and(|l| !l.is_empty()),
        "no progress records: {job}"
    );
    // --follow on a finished job returns at once with its state.
    let followed = perchd.cli_ok(&["job", "show", &id, "--follow"])?;
    ensure!(
        followed.contains("finished"),
        "job show --follow: {followed}"
    );
    let list = perchd.cli_json(&["job", "list", "-p", "alice"])?;
    ensure!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|j| j["id"] == id.as_str())),
        "job list: {list}"
    );
    perchd.cli_fails_with(&["job", "show", "nosuchjob"], "UnknownJob")?;
    Ok(())
}

/// A plugin disabled in the config is really gone: listed as disabled with the reason,
/// its action unknown, its feature not announced.
#[test]
fn disabled_plugin_is_absent() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_with_config("[plugins]\ndisabled = [\"XEP-0199\"]\n")
        .expect("starting perchd");
    disabled_body(&perchd, &prosody).unwrap();
    // A second daemon without XEP-0092: the IQ nobody claims is answered
    // service-unavailable (RFC 6120 §8.4), never left unanswered.
    let bare = Perchd::start_with_config("[plugins]\ndisabled = [\"XEP-0092\"]\n")
        .expect("starting perchd");
    unclaimed_iq_body(&perchd, &bare, &prosody).unwrap();
}

fn unclaimed_iq_body(perchd: &Perchd, bare: &Perchd, prosody: &Prosody) -> Result<()> {
    prosody.register("carol", CAROL_PW)?;
    bare.create_profile(prosody, "carol", "carol", CAROL_PW, &[])?;
    connect(bare, "carol", "carol@localhost")?;
    let carol_full = bound_jid(bare, "carol")?;
    perchd.cli_fails_with(
        &["info", "version", "-p", "alice", &carol_full],
        "ServiceUnavailable: service-unavailable",
    )?;
    Ok(())
}

fn disabled_body(perchd: &Perchd, prosody: &Prosody) -> Result<()> {
    let plugins = perchd.cli_json(&["plugin", "list"])?;
    let ping = plugins
        .as_array()
        .and_then(|a| a.iter().find(|p| p["import_name"] == "XEP-0199"))
        .ok_or_else(|| anyhow!("XEP-0199 not listed: {plugins}"))?;
    ensure!(
        ping["state"] == "disabled"
            && ping["reason"]
                .as_str()
                .is_some_and(|r| r.contains("plugins.disabled")),
        "disabled plugin: {ping}"
    );
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    perchd.cli_fails_with(&["ping", "-p", "alice", "localhost"], "UnknownAction")?;
    let bob_full = bound_jid(perchd, "bob")?;
    let disco = perchd.cli_json(&["info", "disco", "-p", "alice", &bob_full])?;
    let features = disco["info"]["features"].to_string();
    ensure!(
        !features.contains("urn:xmpp:ping"),
        "ping still announced: {features}"
    );
    ensure!(
        features.contains("jabber:iq:version"),
        "version missing: {features}"
    );
    Ok(())
}
#[path = "e2e/blocking.rs"]
mod blocking;
#[path = "e2e/cache.rs"]
mod cache;
#[path = "e2e/calls.rs"]
mod calls;
#[path = "e2e/calls_signalling.rs"]
mod calls_signalling;
#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/compliance.rs"]
mod compliance;
#[path = "e2e/concurrency.rs"]
mod concurrency;
#[path = "e2e/files.rs"]
mod files;
#[path = "e2e/hardening.rs"]
mod hardening;
#[path = "e2e/hostile.rs"]
mod hostile;
#[path = "e2e/identity.rs"]
mod identity;
#[path = "e2e/libervia.rs"]
mod libervia;
#[path = "e2e/libervia_muc.rs"]
mod libervia_muc;
#[path = "e2e/message_actions.rs"]
mod message_actions;
#[path = "e2e/messaging.rs"]
mod messaging;
#[path = "e2e/migrate.rs"]
mod migrate;
#[path = "e2e/muc.rs"]
mod muc;
#[path = "e2e/omemo.rs"]
mod omemo;
#[path = "e2e/omemo_libervia.rs"]
mod omemo_libervia;
#[path = "e2e/postgres.rs"]
mod postgres;
#[path = "e2e/pubsub.rs"]
mod pubsub;
#[path = "e2e/read_state.rs"]
mod read_state;
#[path = "e2e/roster.rs"]
mod roster;
#[path = "e2e/socket.rs"]
mod socket;
