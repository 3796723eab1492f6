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

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use perch_tests::{Perchd, tail_file, wait_until, workspace_bin};
use serde_json::Value;

use crate::{ALICE, BOB, Bed, bare, mutual_subscription};

/// How long a whole call (set-up, media, hang-up) may take.
const CALL: Duration = Duration::from_secs(60);

/// A running `perch-call`, its stdout and stderr in files of perchd's directory.
struct CallProcess {
    child: Child,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl CallProcess {
    fn spawn(perchd: &Perchd, name: &str, args: &[&str]) -> Result<Self> {
        let bin = workspace_bin("perch-call")?;
        let stdout = perchd.dir().join(format!("{name}.stdout"));
        let stderr = perchd.dir().join(format!("{name}.stderr"));
        let child = Command::new(bin)
            .env_clear()
            .envs(perchd.envs())
            .env("PERCH_CALL_LOG", "perch_call=info")
            .args(args)
            .args(["--local-address", "127.0.0.1"])
            .current_dir(perchd.dir())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting perch-call {}", args.join(" ")))?;
        Ok(Self {
            child,
            name: name.to_owned(),
            stdout,
            stderr,
        })
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the line a listener prints once it cannot miss a call.
    fn wait_listening(&self) -> Result<()> {
        wait_until(Duration::from_secs(20), || {
            Ok(self.stderr_text().contains("waiting for a call"))
        })
        .with_context(|| {
            format!(
                "{} never said it was waiting; stderr:\n{}",
                self.name,
                tail_file(&self.stderr, 30)
            )
        })
    }

    /// Waits for the process to exit; returns (success, stdout, stderr).
    fn finish(mut self, timeout: Duration) -> Result<(bool, String, String)> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(anyhow!(
                    "{} still running after {timeout:?}; stderr:\n{}",
                    self.name,
                    tail_file(&self.stderr, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        fs::File::open(&self.stdout)?.read_to_string(&mut out)?;
        Ok((status.success(), out, self.stderr_text()))
    }

    /// The `--json` facts of a call that went through.
    fn report(self, timeout: Duration) -> Result<Value> {
        Ok(self.report_and_log(timeout)?.0)
    }

    /// The `--json` facts of a call that went through, and its stderr (its log).
    fn report_and_log(self, timeout: Duration) -> Result<(Value, String)> {
        let name = self.name.clone();
        let (ok, out, err) = self.finish(timeout)?;
        ensure!(ok, "{name} failed:\nstdout: {out}\nstderr:\n{err}");
        let report = serde_json::from_str(out.trim())
            .with_context(|| format!("{name}'s stdout is not one JSON object: {out:?}"))?;
        Ok((report, err))
    }
}

impl Drop for CallProcess {
    fn drop(&mut self) {
        // Only when a test failed half-way: the process is ours.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Alice and bob connected and subscribed to each other (so a bare JID reaches bob's
/// resource).
fn bed() -> Result<Bed> {
    let bed = Bed::start();
    bed.alice_and_bob_connected(&[])?;
    mutual_subscription(&bed.perchd)?;
    Ok(bed)
}

/// Checks one side's facts: connected, every stream of `kinds` sent, received, decoded.
fn check_report(
    who: &str,
    report: &Value,
    kinds: &[&str],
    ended_by: &str,
    reason: &str,
) -> Result<()> {
    ensure!(
        matches!(
            report["ice_state"].as_str(),
            Some("connected" | "completed")
        ),
        "{who}: ICE not connected: {report}"
    );
    ensure!(
        report["dtls_state"] == "connected" && report["peer_state"] == "connected",
        "{who}: DTLS not connected: {report}"
    );
    ensure!(
        report["end_reason"] == reason && report["ended_by"] == ended_by,
        "{who}: expected end {reason} by {ended_by}: {report}"
    );
    let setup = report["setup_ms"].as_f64().unwrap_or(-1.0);
    ensure!(
        (0.0..10_000.0).contains(&setup),
        "{who}: set-up time: {report}"
    );
    let streams = report["streams"]
        .as_array()
        .ok_or_else(|| anyhow!("{who}: no streams: {report}"))?;
    let got: Vec<&str> = streams.iter().filter_map(|s| s["kind"].as_str()).collect();
    ensure!(
        got == kinds,
        "{who}: streams {got:?}, expected {kinds:?}: {report}"
    );
    for s in streams {
        ensure!(
            s["stats_matched"] == true,
            "{who}: get-stats had no entry for the {} stream's SSRCs: {report}",
            s["kind"]
        );
        for field in [
            "packets_sent",
            "bytes_sent",
            "packets_received",
            "bytes_received",
            "probe_packets_sent",
            "probe_packets_received",
            "decoded_buffers",
        ] {
            ensure!(
                s[field].as_u64().is_some_and(|n| n > 0),
                "{who}: {field} of {} is not positive: {report}",
                s["kind"]
            );
        }
    }
    Ok(())
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
    std::thread::sleep(Duration::from_secs(1));
    let pid = alice.child.id().to_string();
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

/// The call set-up bench (doc/perch-call.rst, "Set-up time"): 20 audio calls alice →
/// bob over loopback on one Prosody and one perchd, each hung up 0.5 s after it
/// connected; prints the p50 and p90 of the set-up time (answer to ICE and DTLS
/// connected) as each side measured it. Ignored by default (about a minute); run with
/// `cargo test --test e2e calls::call_setup_time_bench -- --ignored --nocapture`.
#[test]
#[ignore = "a bench: run it explicitly"]
fn call_setup_time_bench() {
    let bed = bed().expect("alice and bob");
    bench_body(&bed, 20).unwrap();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_body(bed: &Bed, calls: usize) -> Result<()> {
    let perchd = &bed.perchd;
    let (mut caller, mut callee, mut wall) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..calls {
        let bob = CallProcess::spawn(
            perchd,
            &format!("bench-bob-{i}"),
            &[
                "listen",
                "-p",
                "bob",
                "--accept-from",
                ALICE,
                "--json",
                "--wait",
                "60",
            ],
        )?;
        bob.wait_listening()?;
        let began = Instant::now();
        let alice = CallProcess::spawn(
            perchd,
            &format!("bench-alice-{i}"),
            &["start", "-p", "alice", BOB, "--json", "--duration", "0.5"],
        )?;
        let a = alice.report(CALL)?;
        let b = bob.report(CALL)?;
        wall.push(began.elapsed().as_secs_f64() * 1000.0);
        check_report("alice", &a, &["audio"], "local", "success")?;
        check_report("bob", &b, &["audio"], "remote", "success")?;
        caller.push(a["setup_ms"].as_f64().context("alice's setup_ms")?);
        callee.push(b["setup_ms"].as_f64().context("bob's setup_ms")?);
    }
    for v in [&mut caller, &mut callee, &mut wall] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "call set-up over {calls} loopback audio calls (answer -> ICE+DTLS connected):\n  \
         callee (answer sent -> connected):    p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms\n  \
         caller (answer applied -> connected): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms\n  \
         whole perch-call start run (process start to exit, 0.5 s of media): p50 {:.0} ms",
        percentile(&callee, 0.5),
        percentile(&callee, 0.9),
        callee[calls - 1],
        percentile(&caller, 0.5),
        percentile(&caller, 0.9),
        caller[calls - 1],
        percentile(&wall, 0.5),
    );
    Ok(())
}
