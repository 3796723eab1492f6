//! The OMEMO figures (`perch-bench --omemo N`): what encryption costs.
//!
//! Two parts. The cryptography, in process, with `perch_omemo` as the plugin calls
//! it: a message's encryption for one device (the payload, the ratchet step, the
//! session stored as JSON and read back, as the plugin does around each message)
//! and its decryption; a session's set-up (bundle checked, X3DH, first key
//! exchange, and the answering side's); the resident memory of 100 live sessions
//! and their stored size. Then end to end: perchd with alice and `--omemo-contacts`
//! other accounts on the harness Prosody, each of whom starts an encrypted
//! conversation with alice and sends her one message, so alice's profile holds that
//! many sessions; perchd's RSS before and after, and `MessageSend` latency and
//! delivery for N encrypted messages against N plain ones.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use perch_omemo::{DeviceKeys, Identity, Session, Version, payload};
use perch_tests::{ALICE_PW, Perchd, Prosody};
use serde_json::Value;

use crate::drill::rss_kib;
use crate::percentiles;

/// The text of every measured message (a short chat line).
const TEXT: &str = "Are we still on for lunch tomorrow at noon? I can book the table.";

/// Two devices with an open, confirmed session each way.
struct Pair {
    alice: Identity,
    a: Session,
    b: Session,
}

/// Alice opens a session with bob's bundle; bob answers the key exchange and
/// alice reads the answer, so both ratchets are past the set-up.
fn pair(v: Version) -> Result<Pair> {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let keys = DeviceKeys::generate(v, &bob, 100);
    let (mut a, kex) = Session::initiate(&alice, &keys.bundle(&bob), &[7; 32])?;
    let mut b = Session::respond(&bob, &keys, &kex.bytes)?.session;
    let answer = b.encrypt(&bob, &[8; 32]);
    a.decrypt(&answer.bytes, answer.key_exchange)?;
    Ok(Pair { alice, a, b })
}

/// A sent message: payload ciphertext, its IV (0.3), the device's encrypted key.
type Sent = (Vec<u8>, Vec<u8>, Vec<u8>);

/// One message as the plugin sends it to one device: payload, ratchet step, the
/// session read from and written back to its stored JSON.
fn encrypt_one(p: &Pair, stored: &str) -> Result<(Sent, String)> {
    let mut s = Session::from_json(stored)?;
    let (ciphertext, iv, km) = match s.version() {
        Version::V03 => {
            let x = payload::encrypt_v03(TEXT.as_bytes());
            (x.ciphertext, x.iv, x.key_material)
        }
        Version::V2 => {
            let x = payload::encrypt_v2(TEXT.as_bytes());
            (x.ciphertext, Vec::new(), x.key_material)
        }
    };
    let e = s.encrypt(&p.alice, &km);
    Ok(((ciphertext, iv, e.bytes), s.to_json()))
}

/// Its decryption by the receiving device, the same way round.
fn decrypt_one(stored: &str, c: &Sent) -> Result<String> {
    let mut s = Session::from_json(stored)?;
    let km = s.decrypt(&c.2, false)?;
    let text = match s.version() {
        Version::V03 => payload::decrypt_v03(&km, &c.1, &c.0)?,
        Version::V2 => payload::decrypt_v2(&km, &c.0)?,
    };
    anyhow::ensure!(text == TEXT.as_bytes(), "decrypted text differs");
    Ok(s.to_json())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Per message, both versions: encryption for one device and decryption.
fn per_message(v: Version, n: usize) -> Result<()> {
    let p = pair(v)?;
    let (mut a_json, mut b_json) = (p.a.to_json(), p.b.to_json());
    let (mut enc, mut dec) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let (sent, next) = encrypt_one(&p, &a_json)?;
        enc.push(t.elapsed());
        a_json = next;
        let t = Instant::now();
        b_json = decrypt_one(&b_json, &sent)?;
        dec.push(t.elapsed());
    }
    let (e50, e95) = percentiles(&mut enc);
    let (d50, d95) = percentiles(&mut dec);
    println!(
        "{v:?}: encrypt (one device, session JSON in/out) p50 {:.1} / p95 {:.1} µs; decrypt p50 {:.1} / p95 {:.1} µs; stored session {} / {} bytes (sender / receiver)",
        us(e50),
        us(e95),
        us(d50),
        us(d95),
        a_json.len(),
        b_json.len()
    );
    Ok(())
}

/// Session set-up: the bundle's keys made once (a device's own, at first use), then
/// each set-up: initiate from the bundle, respond to the key exchange.
fn setup(v: Version, n: usize) -> Result<()> {
    let bob = Identity::generate();
    let t = Instant::now();
    let keys = DeviceKeys::generate(v, &bob, 100);
    let made = t.elapsed();
    let bundle = keys.bundle(&bob);
    let (mut init, mut resp) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let alice = Identity::generate();
        let t = Instant::now();
        let (_, kex) = Session::initiate(&alice, &bundle, &[7; 32])?;
        init.push(t.elapsed());
        let t = Instant::now();
        Session::respond(&bob, &keys, &kex.bytes)?;
        resp.push(t.elapsed());
    }
    let (i50, i95) = percentiles(&mut init);
    let (r50, r95) = percentiles(&mut resp);
    println!(
        "{v:?}: session set-up, initiating (bundle checked, X3DH, first message) p50 {:.0} / p95 {:.0} µs; responding p50 {:.0} / p95 {:.0} µs; a device's keys with 100 prekeys made in {:.1} ms",
        us(i50),
        us(i95),
        us(r50),
        us(r95),
        made.as_secs_f64() * 1e3
    );
    Ok(())
}

/// 100 live sessions in this process: the resident memory they add.
fn live_sessions() -> Result<()> {
    let me = std::process::id();
    let before = rss_kib(me)?.0;
    let mut pairs = Vec::with_capacity(100);
    for i in 0..100 {
        let v = if i % 2 == 0 {
            Version::V2
        } else {
            Version::V03
        };
        pairs.push(pair(v)?);
    }
    let after = rss_kib(me)?.0;
    let json: usize = pairs.iter().map(|p| p.a.to_json().len()).sum();
    println!(
        "100 live sessions (50 of each version, both ends: 200 Session values): RSS +{} KiB; stored, {} bytes a session on average",
        after.saturating_sub(before),
        json / 100
    );
    Ok(())
}

/// The in-process part.
pub fn crypto(n: usize) -> Result<()> {
    println!("\n## OMEMO cryptography, in process, {n} messages / set-ups");
    for v in [Version::V2, Version::V03] {
        per_message(v, n)?;
        setup(v, n.min(1000))?;
    }
    live_sessions()
}

fn config() -> &'static str {
    "[plugins.options.\"XEP-0384\"]\nversions = [\"0.3\", \"2\"]\n"
}

fn user(i: usize) -> String {
    format!("contact{i:03}")
}

/// The end-to-end part: `contacts` encrypted conversations with alice, then `n`
/// encrypted and `n` plain messages from the first contact to alice.
pub async fn end_to_end(n: usize, contacts: usize) -> Result<()> {
    let users: Vec<(String, String)> = (0..contacts).map(|i| (user(i), user(i))).collect();
    let mut all: Vec<(&str, &str)> = vec![("alice", ALICE_PW)];
    all.extend(users.iter().map(|(u, p)| (u.as_str(), p.as_str())));
    let prosody = Prosody::start_with_users(&all)?;
    let perchd = Perchd::start_with_config(config())?;
    let pid = perchd.pid().context("perchd's pid")?;
    for (name, pw) in &all {
        perchd.create_profile(&prosody, name, name, pw, &[])?;
        perchd.cli_ok(&["connect", "-p", name])?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rss_kib(pid)?;
    println!("\n## OMEMO end to end: alice and {contacts} contacts on one perchd, harness Prosody");
    println!(
        "perchd RSS, {} profiles connected, keys published: {:.1} MB",
        contacts + 1,
        before.0 as f64 / 1024.0
    );
    let t = Instant::now();
    for (u, _) in &users {
        start(&perchd, u)?;
        perchd.cli_ok(&["message", "send", "-p", u, "alice@localhost", "hello"])?;
    }
    let opened = t.elapsed();
    wait_history(&perchd, contacts, Duration::from_secs(300)).await?;
    let after = rss_kib(pid)?;
    println!(
        "{contacts} sessions opened (encryption start + a first message, one after the other): {:.2} s; perchd RSS then {:.1} MB (peak {:.1} MB)",
        opened.as_secs_f64(),
        after.0 as f64 / 1024.0,
        after.1 as f64 / 1024.0
    );
    sends(&perchd, &users[0].0, n).await
}

/// `encryption start`, retried until the other side's keys are seen.
fn start(perchd: &Perchd, profile: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = perchd.cli(&["encryption", "start", "-p", profile, "alice@localhost"])?;
        if out.status.success() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{profile}: no encryption");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until alice's history holds `n` incoming messages.
async fn wait_history(perchd: &Perchd, n: usize, limit: Duration) -> Result<Duration> {
    let t = Instant::now();
    loop {
        let got = count_in(perchd)?;
        if got >= n {
            return Ok(t.elapsed());
        }
        anyhow::ensure!(t.elapsed() < limit, "alice has {got} of {n} messages");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` encrypted then `n` plain messages from `from` to alice through perchd's
/// bus: `MessageSend` latency and the time until all are in alice's history.
async fn sends(perchd: &Perchd, from: &str, n: usize) -> Result<()> {
    let client = perch_client::Client::on_bus(perchd.bus_connection().await?).await?;
    let mut seen = count_in(perchd)?;
    for encrypted in [true, false] {
        if !encrypted {
            perchd.cli_ok(&["encryption", "stop", "-p", from, "alice@localhost"])?;
        }
        let mut lat = Vec::with_capacity(n);
        let t = Instant::now();
        for i in 0..n {
            let s = Instant::now();
            client
                .message_send(from, "alice@localhost", &format!("{TEXT} {i}"), "chat")
                .await?;
            lat.push(s.elapsed());
        }
        seen += n;
        let all = wait_history(perchd, seen, Duration::from_secs(600)).await?;
        let total = t.elapsed().max(all);
        let (p50, p95) = percentiles(&mut lat);
        println!(
            "{n} {} messages: MessageSend p50 {:.2} / p95 {:.2} ms; all in alice's history after {:.2} s ({:.0}/s)",
            if encrypted { "encrypted" } else { "plain" },
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64()
        );
    }
    Ok(())
}

fn count_in(perchd: &Perchd) -> Result<usize> {
    let h: Value = perchd.cli_json(&["message", "history", "-p", "alice", "--limit", "10000"])?;
    Ok(h.as_array()
        .map_or(0, |a| a.iter().filter(|m| m["direction"] == "in").count()))
}
