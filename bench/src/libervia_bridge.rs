//! The Libervia bridge bench: `perch-bench --libervia-bridge`.
//!
//! The figures of `bench/scripts/libervia_bridge.py` on both backends: Debian's
//! `libervia-backend` 0.9 and perchd serving its Libervia bridge, each on its own
//! Prosody (the e2e harness's two sides, `perch_tests::libervia::try_sides`). Each
//! side gets profile `test` with 20 blog posts (each containing "benchword"), synced
//! into its cache, prepared with Libervia's own `libervia-cli`; then the script runs
//! on Libervia, then on perchd, one at a time so neither disturbs the other's timings.
//!
//! Why a Python script: it is the client Libervia's own frontends are (python3-dbus),
//! so both backends are timed through the very calls a Libervia frontend makes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use perch_tests::ALICE_PW;
use perch_tests::libervia::{Side, try_sides};

/// The blog node both sides publish to.
const NODE: &str = "urn:xmpp:microblog:0";

/// Profile `test` (alice) connected, 20 blog posts published and synced into the cache.
fn prepare(side: &Side) -> Result<()> {
    let f = &side.frontend;
    let port = side.prosody.port().to_string();
    f.cli_ok(&[
        "profile",
        "create",
        "test",
        "-j",
        "alice@localhost",
        "-x",
        ALICE_PW,
    ])?;
    for (param, value) in [
        ("Force server", "127.0.0.1"),
        ("Force port", port.as_str()),
        ("check_certificate", "false"),
    ] {
        f.cli_ok(&["param", "set", "-p", "test", "Connection", param, value])?;
    }
    f.cli_ok(&["profile", "connect", "-p", "test", "-c"])?;
    // Prosody's PEP nodes keep one item unless configured otherwise.
    f.cli_ok(&[
        "pubsub",
        "node",
        "create",
        "-p",
        "test",
        "-s",
        "alice@localhost",
        "-n",
        NODE,
        "-f",
        "max_items",
        "100",
    ])?;
    for i in 0..20 {
        let out = f.cli_input(
            &["blog", "set", "-p", "test", "-T", &format!("Post {i}")],
            &format!("benchword number {i}\n"),
        )?;
        ensure!(out.success(), "blog set: {}", out.describe());
    }
    f.cli_ok(&[
        "pubsub",
        "cache",
        "sync",
        "-p",
        "test",
        "-s",
        "alice@localhost",
        "-n",
        NODE,
    ])?;
    Ok(())
}

/// Prepares both sides, then runs the script with `iterations` calls on each.
pub fn run(iterations: usize) -> Result<()> {
    println!("\n## the Libervia bridge: libervia-backend 0.9 and perchd, {iterations} calls each");
    let (lib, perch) = try_sides()?;
    std::thread::scope(|s| {
        let a = s.spawn(|| prepare(&lib));
        let b = s.spawn(|| prepare(&perch));
        let a = a
            .join()
            .map_err(|_| anyhow!("preparing Libervia panicked"))?;
        let b = b.join().map_err(|_| anyhow!("preparing perchd panicked"))?;
        a.map_err(|e| e.context("preparing Libervia"))?;
        b.map_err(|e| e.context("preparing perchd"))
    })?;
    let script =
        Path::new(&perch_tests::manifest_dir()).join("../bench/scripts/libervia_bridge.py");
    let n = iterations.to_string();
    for (label, side) in [("libervia-backend 0.9", &lib), ("perchd", &perch)] {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.env_clear()
            .envs(side.frontend.envs())
            .arg(&script)
            .args(["--address", side.frontend.bus_address()])
            .args(["--profile", "test", "--service", "alice@localhost"])
            .args(["--node", NODE, "--fts", "benchword"])
            .args(["-n", &n, "--label", label]);
        let out = perch_tests::run_checked(cmd, Duration::from_secs(600))?;
        println!("{}", String::from_utf8_lossy(&out.stdout).trim_end());
    }
    Ok(())
}
