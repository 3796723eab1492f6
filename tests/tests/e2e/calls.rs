//! Jingle calls end to end (issue 14): two real `perch-call` processes, one per profile
//! of a real perchd, on the harness's Prosody. perchd does the signalling, each
//! perch-call runs its own webrtcbin; the media goes over 127.0.0.1 (libnice is told to
//! gather there with `--local-address`, since it skips loopback otherwise).
//!
//! Each call is checked from both ends' `--json` facts (ICE and DTLS connected, RTP
//! sent, received and decoded on every stream, the end reason and who hung up) and
//! from both profiles' `perch call list`. perch-call needs GStreamer with webrtcbin and
//! libnice (scripts/test installs them); without them the tests fail naming the
//! missing element.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use perch_tests::bed::Bed;
use perch_tests::call::{CALL, CallProcess, check_report};
use perch_tests::{Perchd, wait_until};
use serde_json::Value;

use crate::{ALICE, BOB, bare};

/// Alice and bob connected and subscribed to each other (so a bare JID reaches bob's
/// resource).
fn bed() -> Result<Bed> {
    Bed::alice_and_bob_subscribed()
}

/// `perch call list -p PROFILE` shows the call `sid` ended with `reason`, after it
/// was connected for a while.
fn wait_call_listed_ended(perchd: &Perchd, profile: &str, sid: &str, reason: &str) -> Result<()> {
    let mut last = Value::Null;
    wait_until(Duration::from_secs(10), || {
        last = perchd.cli_json(&["call", "list", "-p", profile])?;
        Ok(last.as_array().is_some_and(|a| {
            a.iter().any(|c| {
                c["sid"] == sid
                    && c["state"] == "ended"
                    && c["end_reason"] == reason
                    && c["connected"].is_string()
                    && c["duration_s"].as_f64().is_some_and(|d| d > 0.0)
            })
        }))
    })
    .with_context(|| format!("{profile}'s call_list never showed {sid} ended ({reason}): {last}"))
}

/// One call alice → bob with `media`; `caller_hangs_up` says who has `--duration`.
fn call_body(bed: &Bed, media: &[&str], caller_hangs_up: bool, jmi: bool) -> Result<()> {
    let perchd = &bed.perchd;
    let mut listen_args = vec![
        "listen",
        "-p",
        "bob",
        "--accept-from",
        ALICE,
        "--json",
        "--wait",
        "60",
    ];
    let mut start_args = vec!["start", "-p", "alice", BOB, "--json"];
    for m in media {
        start_args.push(if *m == "audio" { "--audio" } else { "--video" });
    }
    if jmi {
        start_args.push("--jmi");
    }
    if caller_hangs_up {
        start_args.extend(["--duration", "3"]);
    } else {
        listen_args.extend(["--duration", "3"]);
    }
    let bob = CallProcess::spawn(perchd, "call-bob", &listen_args)?;
    bob.wait_listening()?;
    let alice = CallProcess::spawn(perchd, "call-alice", &start_args)?;
    let alice_report = alice.report(CALL)?;
    let (bob_report, bob_log) = bob.report_and_log(CALL)?;
    ensure!(
        bob_log.contains("accepting a proposed call") == jmi,
        "bob's perch-call should {}have accepted a JMI proposal; its log:\n{bob_log}",
        if jmi { "" } else { "not " }
    );
    // Shown with --nocapture: what a call on this machine looks like.
    println!("alice: {alice_report}\nbob:   {bob_report}");
    // Both took the harness Prosody's STUN and TURN servers (XEP-0215).
    ensure!(
        bob_log.contains("stun=\"stun://127.0.0.1:") && bob_log.contains(" turn=1"),
        "bob's perch-call did not use perchd's external_services; its log:\n{bob_log}"
    );
    let (alice_end, bob_end) = if caller_hangs_up {
        ("local", "remote")
    } else {
        ("remote", "local")
    };
    check_report("alice", &alice_report, media, alice_end, "success")?;
    check_report("bob", &bob_report, media, bob_end, "success")?;
    // RTCP receiver reports come within the 3 s of media, at least to one side.
    ensure!(
        [&alice_report, &bob_report]
            .iter()
            .any(|r| r["rtt_ms"].as_f64().is_some_and(|rtt| rtt >= 0.0)),
        "no round-trip time on either side: {alice_report} / {bob_report}"
    );
    ensure!(
        bare(alice_report["peer"].as_str().unwrap_or_default()) == BOB
            && bare(bob_report["peer"].as_str().unwrap_or_default()) == ALICE,
        "peers: {alice_report} / {bob_report}"
    );
    let sid = alice_report["sid"].as_str().context("alice's sid")?;
    ensure!(
        bob_report["sid"] == sid,
        "both ends name the same session: {alice_report} / {bob_report}"
    );
    wait_call_listed_ended(perchd, "alice", sid, "success")?;
    wait_call_listed_ended(perchd, "bob", sid, "success")?;
    Ok(())
}

#[test]
fn audio_call_connects_and_caller_hangs_up() {
    let bed = bed().expect("alice and bob");
    call_body(&bed, &["audio"], true, false).unwrap();
}

#[test]
fn audio_video_call_connects_and_callee_hangs_up() {
    let bed = bed().expect("alice and bob");
    call_body(&bed, &["audio", "video"], false, false).unwrap();
}

/// A user hangs up by stopping perch-call (SIGTERM, as a session manager or Ctrl-C
/// would): it ends the call with `success` and still prints the facts; the peer's
/// perch-call sees the end.
#[test]
fn stopping_perch_call_hangs_up() {
    let bed = bed().expect("alice and bob");
    sigterm_body(&bed).unwrap();
}

fn sigterm_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    let bob = CallProcess::spawn(
        perchd,
        "call-bob",
        &["listen", "-p", "bob", "--json", "--wait", "60"],
    )?;
    bob.wait_listening()?;
    let alice = CallProcess::spawn(
        perchd,
        "call-alice",
        &["start", "-p", "alice", BOB, "--json"],
    )?;
    wait_until(Duration::from_secs(30), || {
        Ok(alice.stderr_text().contains("media connected"))
    })
    .with_context(|| format!("alice's call never connected:\n{}", alice.stderr_text()))?;
    // Hung up once media flows both ways: each end decoded the other's.
    wait_until(Duration::from_secs(30), || {
        Ok([&alice, &bob]
            .iter()
            .all(|p| p.stderr_text().contains("first incoming media decoded")))
    })
    .with_context(|| {
        format!(
            "media never decoded on both ends:\nalice:\n{}\nbob:\n{}",
            alice.stderr_text(),
            bob.stderr_text()
        )
    })?;
    let pid = alice.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status()?;
    ensure!(killed.success(), "kill -TERM {pid} failed");
    let alice_report = alice.report(CALL)?;
    let bob_report = bob.report(CALL)?;
    check_report("alice", &alice_report, &["audio"], "local", "success")?;
    check_report("bob", &bob_report, &["audio"], "remote", "success")?;
    Ok(())
}

/// XEP-0353: alice rings bob's devices (propose), bob's perch-call accepts (proceed),
/// then the session starts and connects as a direct one would.
#[test]
fn jmi_call_is_accepted_and_connects() {
    let bed = bed().expect("alice and bob");
    call_body(&bed, &["audio"], true, true).unwrap();
}

#[test]
fn declined_call_ends_the_callers_perch_call_with_the_reason() {
    let bed = bed().expect("alice and bob");
    decline_body(&bed).unwrap();
}

fn decline_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    // bob takes calls from carol only: alice's is declined.
    let bob = CallProcess::spawn(
        perchd,
        "call-bob",
        &[
            "listen",
            "-p",
            "bob",
            "--accept-from",
            "carol@localhost",
            "--wait",
            "60",
        ],
    )?;
    bob.wait_listening()?;
    let alice = CallProcess::spawn(perchd, "call-alice", &["start", "-p", "alice", BOB])?;
    let (ok, out, err) = alice.finish(CALL)?;
    ensure!(
        !ok,
        "a declined call must fail: stdout {out:?}, stderr {err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("perch-call: "))
        .ok_or_else(|| anyhow!("no one-line error: {err}"))?;
    ensure!(
        line.starts_with("perch-call: CallEnded: ") && line.contains("decline"),
        "the error names the reason: {line}"
    );
    // The call stays listed as ended: a decline racing perchd's own bookkeeping of the
    // session-initiate it sent must not bring the call back to "pending".
    let mut list = Value::Null;
    wait_until(Duration::from_secs(10), || {
        list = perchd.cli_json(&["call", "list", "-p", "alice"])?;
        Ok(list.as_array().is_some_and(|a| {
            a.iter()
                .any(|c| c["state"] == "ended" && c["end_reason"] == "decline")
        }))
    })
    .with_context(|| format!("alice's call list never showed the declined call ended: {list}"))?;
    drop(bob);

    // A contact that is not online cannot be called: a typed one-line error at once.
    let carol = CallProcess::spawn(
        perchd,
        "call-offline",
        &["start", "-p", "alice", "carol@localhost"],
    )?;
    let (ok, out, err) = carol.finish(CALL)?;
    ensure!(!ok, "a call to an offline contact must fail: {out:?} {err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("perch-call: "))
        .collect();
    ensure!(
        lines.len() == 1
            && lines[0].starts_with("perch-call: RecipientUnavailable: ")
            && lines[0].contains("carol@localhost"),
        "one line naming the contact: {err}"
    );
    Ok(())
}
