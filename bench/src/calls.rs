//! The call set-up bench (doc/perch-call.rst, "Set-up time"): `perch-bench --calls N`.
//!
//! N audio calls alice → bob over loopback, on one Prosody and one perchd (the e2e
//! harness's bed), each hung up 0.5 s after it connected; prints the p50 and p90 of
//! the set-up time (answer to ICE and DTLS connected) as each side measured it, and
//! the whole `perch-call start` run.
//!
//! Why real `perch-call` processes: the figure users feel includes perch-call's own
//! start, its D-Bus signalling through perchd and webrtcbin, not a pipeline alone.
//! Each call is checked as the e2e call tests check theirs
//! (`perch_tests::call::check_report`), so a figure never comes from a broken call.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use perch_tests::bed::{ALICE, BOB, Bed};
use perch_tests::call::{CALL, CallProcess, check_report};

/// The `p` quantile (0 to 1) of sorted `sorted`, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One call; returns (caller's set-up ms, callee's set-up ms, wall ms of the caller's run).
fn one_call(bed: &Bed, i: usize) -> Result<(f64, f64, f64)> {
    let perchd = &bed.perchd;
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
    let wall = began.elapsed().as_secs_f64() * 1000.0;
    check_report("alice", &a, &["audio"], "local", "success")?;
    check_report("bob", &b, &["audio"], "remote", "success")?;
    Ok((
        a["setup_ms"].as_f64().context("alice's setup_ms")?,
        b["setup_ms"].as_f64().context("bob's setup_ms")?,
        wall,
    ))
}

/// Runs `calls` calls and prints the figures.
pub fn run(calls: usize) -> Result<()> {
    ensure!(calls > 0, "--calls N: at least one call");
    println!("\n## call set-up: {calls} perch-call audio calls over loopback");
    let bed = Bed::alice_and_bob_subscribed()?;
    let (mut caller, mut callee, mut wall) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..calls {
        let (a, b, w) = one_call(&bed, i).with_context(|| format!("call {i}"))?;
        caller.push(a);
        callee.push(b);
        wall.push(w);
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
