//! Many profiles in one daemon (`perch-bench --profiles N`): what a service holding
//! many accounts meets.
//!
//! Against the harness Prosody with N accounts (copies of alice's account file, the
//! way the concurrency e2e test makes them) and a perchd started here, from this
//! process over D-Bus as a frontend would:
//! - the time to create the N profiles, then to connect them (every `Connect` called
//!   at once: perchd's own `xmpp.connect_concurrency` bounds the attempts, and
//!   `xmpp.connect_timeout` is 30 s so that the last calls do not give up waiting);
//! - perchd's RSS before the profiles and once all are connected, per profile;
//! - idle CPU over 10 s with every profile connected;
//! - `Status` latency (p50, p95 over 50 calls);
//! - message latency from the first profile to the last one (p50, p99 over 100
//!   messages), timed from the send to the last profile's `MessageReceived` signal;
//! - a restart with every profile on autoconnect: the time until all are connected.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use perch_client::{Client, Signal};
use perch_tests::{ALICE_PW, DOMAIN, Perchd, Prosody};
use serde_json::Value;

use crate::drill::rss_kib;
use crate::ms;

/// `--profiles N`.
pub async fn run(n: usize) -> Result<()> {
    check_descriptor_limit(n)?;
    let prosody = Prosody::start()?;
    let dir = prosody.dir().join("data").join(DOMAIN).join("accounts");
    let alice = std::fs::read(dir.join("alice.dat")).context("reading alice's account")?;
    for i in 0..n {
        std::fs::write(dir.join(format!("u{i:04}.dat")), &alice)?;
    }
    // `Connect` gives up after the attempts' timeouts (the harness' 10 s each);
    // with every call made at once, the last ones wait for a connection slot that
    // long first.
    let mut perchd = Perchd::start_with_config("[xmpp]\nconnect_timeout = 30\n")?;
    let pid = perchd.pid().context("perchd's pid")?;
    let client = Client::on_bus(perchd.bus_connection().await?).await?;
    let (rss0, _) = rss_kib(pid)?;
    println!("\n## {n} profiles in one perchd (Prosody on loopback)");
    let t = Instant::now();
    let mut options = HashMap::new();
    options.insert("server".to_owned(), prosody.server_arg());
    options.insert(
        "ca_file".to_owned(),
        prosody.ca_file().display().to_string(),
    );
    options.insert("autoconnect".to_owned(), "true".to_owned());
    for i in 0..n {
        let jid = format!("u{i:04}@{DOMAIN}");
        client
            .profile_create(&format!("p{i:04}"), &jid, ALICE_PW, &options)
            .await?;
    }
    println!("   created       {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let connects = (0..n).map(|i| {
        let client = &client;
        async move { client.connect(&format!("p{i:04}")).await }
    });
    let results = futures::future::join_all(connects).await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    ensure!(
        failed == 0,
        "{failed} connections failed: {:?}",
        results.iter().find(|r| r.is_err())
    );
    println!(
        "   connected     {:.2} s (all {n})",
        t.elapsed().as_secs_f64()
    );
    settle().await;
    let (rss_early, _) = rss_kib(pid)?;
    let busy = quiet(&[pid, prosody.pid().context("Prosody's pid")?]).await?;
    let (rss, _) = rss_kib(pid)?;
    println!(
        "   RSS           {:.1} MiB before the profiles, {:.1} MiB connected 5 s after: {:.0} KiB per profile",
        rss0 as f64 / 1024.0,
        rss_early as f64 / 1024.0,
        rss_early.saturating_sub(rss0) as f64 / n as f64
    );
    println!(
        "   busy          {:.1} s more after that (what connecting set off: OMEMO keys made and published)",
        busy.as_secs_f64()
    );
    println!(
        "   RSS, quiet    {:.1} MiB: {:.0} KiB per profile",
        rss as f64 / 1024.0,
        rss.saturating_sub(rss0) as f64 / n as f64
    );
    println!(
        "   idle CPU      {:.2}% of a core over 10 s",
        idle_cpu(pid).await?
    );
    status_latency(&client).await?;
    message_latency(&client, n).await?;
    drop(client);
    perchd.stop()?;
    perchd.start_again()?;
    let client = Client::on_bus(perchd.bus_connection().await?).await?;
    let t = Instant::now();
    wait_all_connected(&client, n).await?;
    println!(
        "   restart       all {n} autoconnected {:.2} s after perchd was up",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Each connected profile holds a socket in perchd and one in Prosody, which
/// inherit this process's descriptor limit.
fn check_descriptor_limit(n: usize) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ensure!(
        soft > n + 256,
        "the descriptor limit ({soft}) is too low for {n} profiles: raise it (`ulimit -n`)"
    );
    Ok(())
}

/// A moment for what connecting set off (roster, presence, catch-up) to calm down.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// CPU time `pid` has used, in ticks of USER_HZ (100 on Linux whatever the
/// kernel's tick).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    Ok(f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
}

/// Waits until `pids` (perchd and Prosody) together used under 5% of a core over
/// 2 s, twice in a row (at most 10 minutes): each profile's first session makes and
/// publishes its OMEMO keys, one profile at a time, which goes on well after the
/// last one connected; perchd alone is quiet while it waits for Prosody to store
/// them. Returns how long.
async fn quiet(pids: &[u32]) -> Result<Duration> {
    let t = Instant::now();
    let total = || -> Result<u64> { pids.iter().map(|p| cpu_ticks(*p)).sum() };
    let mut calm = 0;
    loop {
        let before = total()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        calm = if total()? - before < 10 { calm + 1 } else { 0 };
        if calm == 2 || t.elapsed() > Duration::from_secs(600) {
            return Ok(t.elapsed());
        }
    }
}

/// CPU used by `pid` over 10 s, in percent of one core.
async fn idle_cpu(pid: u32) -> Result<f64> {
    let before = cpu_ticks(pid)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok((cpu_ticks(pid)? - before) as f64 / 10.0)
}

async fn status_latency(client: &Client) -> Result<()> {
    let mut samples = Vec::with_capacity(50);
    for _ in 0..50 {
        let t = Instant::now();
        client.status().await?;
        samples.push(t.elapsed());
    }
    let (p50, p95) = crate::percentiles(&mut samples);
    println!("   Status        p50 {}  p95 {}", ms(p50), ms(p95));
    Ok(())
}

/// 100 messages from the first profile to the last, one at a time, each timed until
/// the last profile's `MessageReceived`.
async fn message_latency(client: &Client, n: usize) -> Result<()> {
    let last = format!("p{:04}", n - 1);
    let to = format!("u{:04}@{DOMAIN}", n - 1);
    let mut signals = client.signals().await?;
    let mut samples = Vec::with_capacity(100);
    for i in 0..100 {
        let body = format!("latency {i}");
        let t = Instant::now();
        client.message_send("p0000", &to, &body, "chat").await?;
        let seen = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(s) = signals.next().await {
                if let Ok(Signal::MessageReceived { profile, message }) = s
                    && profile == last
                    && message.contains(&body)
                {
                    return true;
                }
            }
            false
        })
        .await;
        ensure!(matches!(seen, Ok(true)), "message {i} never reached {last}");
        samples.push(t.elapsed());
    }
    samples.sort();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "   message       p50 {}  p99 {} (first profile to the last)",
        ms(p50),
        ms(p99)
    );
    Ok(())
}

async fn wait_all_connected(client: &Client, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status: Value = serde_json::from_str(&client.status().await?)?;
        let connected = status.as_array().map_or(0, |a| {
            a.iter().filter(|s| s["state"] == "connected").count()
        });
        if connected == n {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{connected} of {n} connected after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
