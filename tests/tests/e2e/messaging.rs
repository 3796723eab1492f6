//! Messaging a person can rely on, end to end on the harness Prosody (with mam,
//! carbons, offline storage): the outbox across server restarts and a killed perchd,
//! archive catch-up, carbons from a third-party second device, corrections and chat
//! states.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Prosody, summarize_history, wait_until};
use serde_json::Value;

use super::{
    ALICE, BOB, Bed, DELIVERY, Monitor, catch_up_done, connect, history, send, start_monitor,
    wait_line,
};

/// Bodies of `profile`'s messages with `peer` in direction `dir`, in history order.
pub(super) fn bodies(perchd: &Perchd, profile: &str, dir: &str, peer: &str) -> Result<Vec<String>> {
    Ok(history(perchd, profile, &["--limit", "10000"])?
        .iter()
        .filter(|m| m["direction"] == dir && m["peer"] == peer)
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect())
}

pub(super) fn outbox(perchd: &Perchd, profile: &str) -> Result<Vec<Value>> {
    let v = perchd.cli_json(&["message", "outbox", "-p", profile])?;
    v.as_array()
        .cloned()
        .ok_or_else(|| anyhow!("`message outbox` is not a JSON array: {v}"))
}

/// The drill: 1,000 messages sent one after the other while the server is
/// restarted twice and the sender's perchd is killed once; the receiver (another
/// perchd) has each exactly once, in order, and the sender's outbox is empty.
#[test]
fn outbox_drill_every_message_once_in_order() {
    let mut prosody = Prosody::start().expect("starting Prosody");
    let mut sender = Perchd::start().expect("starting the sender's perchd");
    let receiver = Perchd::start().expect("starting the receiver's perchd");
    drill(&mut prosody, &mut sender, &receiver)
        .map_err(|e| {
            anyhow!(
                "{e:#}\n--- sender ---\n{}\n--- receiver ---\n{}\n--- prosody ---\n{}",
                sender.diagnostics(),
                receiver.diagnostics(),
                prosody.diagnostics()
            )
        })
        .unwrap();
}

const DRILL: usize = 1000;

fn drill(prosody: &mut Prosody, sender: &mut Perchd, receiver: &Perchd) -> Result<()> {
    sender.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    receiver.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(sender, "alice", ALICE)?;
    connect(receiver, "bob", BOB)?;
    let body = |i: usize| format!("drill {i:04}");
    for i in 0..DRILL {
        match i {
            // The server goes away and comes back: what is sent meanwhile is queued,
            // and what was on the wire unconfirmed is sent again.
            300 | 700 => {
                prosody.kill()?;
                prosody.start_again()?;
            }
            // perchd killed mid-stream: its outbox survives in the database.
            500 => {
                sender.kill()?;
                sender.start_again()?;
                sender.cli_ok(&["connect", "-p", "alice"])?;
            }
            _ => {}
        }
        let out = sender.cli_ok(&["message", "send", "-p", "alice", BOB, &body(i)])?;
        ensure!(
            out.starts_with("sent ") || out.starts_with("queued "),
            "message send printed {out:?}"
        );
    }
    let mut left = Vec::new();
    wait_until(Duration::from_secs(120), || {
        left = outbox(sender, "alice")?;
        Ok(left.is_empty())
    })
    .with_context(|| format!("the outbox never emptied; {} left", left.len()))?;
    let expected: Vec<String> = (0..DRILL).map(body).collect();
    let mut got = Vec::new();
    wait_until(Duration::from_secs(120), || {
        got = bodies(receiver, "bob", "in", ALICE)?;
        Ok(got.len() >= DRILL)
    })
    .with_context(|| {
        let missing: Vec<&String> = expected.iter().filter(|b| !got.contains(b)).collect();
        format!(
            "bob has {} of {DRILL}; missing: {:?}",
            got.len(),
            &missing[..missing.len().min(20)]
        )
    })?;
    if got != expected {
        let at = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let h = history(receiver, "bob", &["--limit", "10000"])?;
        let around: Vec<String> = h
            .iter()
            .filter(|m| m["direction"] == "in")
            .skip(at.saturating_sub(3))
            .take(8)
            .map(|m| format!("{} {} {}", m["body"], m["timestamp"], m["stanza_id"]))
            .collect();
        anyhow::bail!(
            "bob's history is not every message once in order: {} messages, first difference at {at}:\n{}",
            got.len(),
            around.join("\n")
        );
    }
    // The sender's own history: every message once, confirmed by the server.
    let sent = history(sender, "alice", &["--limit", "10000"])?;
    let acked = sent.iter().filter(|m| m["state"] == "acked").count();
    ensure!(
        sent.len() == DRILL && acked == DRILL,
        "alice's history: {} messages, {acked} acked",
        sent.len()
    );
    Ok(())
}

/// Bob, back, has what alice said meanwhile: offline storage and the archive both
/// bring it; once the catch-up of his archive is done (offline storage came before it:
/// the server sends it on the presence that goes out before the archive query), each
/// is there once, in order.
fn bob_caught_up(perchd: &Perchd, said: &[&str], monitor: &mut Monitor) -> Result<()> {
    let mut got = Vec::new();
    wait_until(DELIVERY, || {
        got = bodies(perchd, "bob", "in", ALICE)?;
        Ok(got.len() >= said.len())
    })
    .with_context(|| format!("bob caught up with {got:?}"))?;
    monitor.wait(catch_up_done("bob", BOB))?;
    let got = bodies(perchd, "bob", "in", ALICE)?;
    ensure!(got == said, "bob's history from alice: {got:?}");
    Ok(())
}

/// A profile that was offline finds what was said meanwhile (offline storage and
/// its archive both deliver it: stored once); a new profile fetches a bounded
/// recent window of its archive.
#[test]
fn archive_catch_up() {
    let bed = Bed::start();
    catch_up_body(&bed).unwrap();
}

fn catch_up_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    let mut monitor = Monitor::start(perchd)?;
    bed.alice_and_bob_connected(&[])?;
    // The first connection's catch-up is over before bob goes: the next one is his
    // return's.
    monitor.wait(catch_up_done("bob", BOB))?;
    perchd.cli_ok(&["disconnect", "-p", "bob"])?;
    let said = [
        "while you were away 1",
        "while you were away 2",
        "while you were away 3",
    ];
    for b in said {
        send(perchd, "alice", BOB, b)?;
    }
    connect(perchd, "bob", BOB)?;
    bob_caught_up(perchd, &said, &mut monitor)?;

    // A new profile of bob's account elsewhere: the newest five stanzas of the
    // archive, which are alice's last two messages and bob's three receipts (the
    // archive keeps those too; they are not history).
    let fresh = Perchd::start_with_config("[plugins.options.\"XEP-0313\"]\ninitial_window = 5\n")?;
    fresh.create_profile(&bed.prosody, "bob", "bob", BOB_PW, &[])?;
    let mut fresh_monitor = Monitor::start(&fresh)?;
    connect(&fresh, "bob", BOB)?;
    let mut window = Vec::new();
    wait_until(DELIVERY, || {
        window = history(&fresh, "bob", &[])?;
        Ok(window.len() >= 2)
    })
    .with_context(|| {
        format!(
            "the new profile's window: {window:?}\n{}",
            fresh.diagnostics()
        )
    })?;
    fresh_monitor.wait(catch_up_done("bob", BOB))?;
    let window = history(&fresh, "bob", &[])?;
    let texts: Vec<&str> = window.iter().filter_map(|m| m["body"].as_str()).collect();
    ensure!(
        texts == said[1..],
        "the new profile fetched {texts:?}\n{}",
        summarize_history(&Value::Array(window.clone()))
    );
    ensure!(
        window.iter().all(|m| m["stanza_id"].is_string()),
        "archived messages keep their archive id: {window:?}"
    );
    Ok(())
}

/// The same on ejabberd, the second server (its archive and offline storage are its
/// own): alice queues while offline, bob catches up, each message once.
#[test]
fn outbox_and_catch_up_on_ejabberd() {
    let ejabberd = perch_tests::Ejabberd::start().expect("starting ejabberd");
    let perchd = Perchd::start().expect("starting perchd");
    ejabberd_body(&perchd, &ejabberd)
        .map_err(|e| {
            anyhow!(
                "{e:#}\n{}\n{}",
                perchd.diagnostics(),
                ejabberd.diagnostics()
            )
        })
        .unwrap();
}

fn ejabberd_body(perchd: &Perchd, ejabberd: &perch_tests::Ejabberd) -> Result<()> {
    let mut monitor = Monitor::start(perchd)?;
    super::pubsub::alice_and_bob_on_ejabberd(perchd, ejabberd, &[])?;
    // The first connection's catch-up is over before bob goes.
    monitor.wait(catch_up_done("bob", BOB))?;
    perchd.cli_ok(&["disconnect", "-p", "bob"])?;
    send(perchd, "alice", BOB, "while bob is away")?;
    wait_until(DELIVERY, || Ok(outbox(perchd, "alice")?.is_empty()))
        .context("ejabberd never confirmed alice's message")?;
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    let out = perchd.cli_ok(&[
        "message",
        "send",
        "-p",
        "alice",
        BOB,
        "while alice is offline",
    ])?;
    ensure!(out.starts_with("queued "), "send while offline: {out:?}");
    ensure!(
        outbox(perchd, "alice")?.len() == 1,
        "one message in the outbox"
    );
    connect(perchd, "alice", ALICE)?;
    wait_until(DELIVERY, || Ok(outbox(perchd, "alice")?.is_empty()))
        .context("alice's outbox never emptied")?;
    connect(perchd, "bob", BOB)?;
    bob_caught_up(
        perchd,
        &["while bob is away", "while alice is offline"],
        &mut monitor,
    )?;
    Ok(())
}

/// A second device of alice's account (slixmpp) sends and receives: carbons put both
/// in alice's history in perchd, with the right direction.
#[test]
fn carbons_from_a_second_device() {
    let bed = Bed::start();
    carbons_body(&bed).unwrap();
}

/// Debian's python3, which has python3-slixmpp (another python3 may come first on
/// PATH), with slixmpp importable.
pub(crate) fn python() -> Result<std::path::PathBuf> {
    let debian = std::path::Path::new("/usr/bin/python3");
    let python = if debian.exists() {
        debian.to_path_buf()
    } else {
        perch_tests::find_program("python3", "Python for slixmpp", "python3")?
    };
    let check = Command::new(&python)
        .args(["-c", "import slixmpp"])
        .output()
        .context("running python3")?;
    ensure!(
        check.status.success(),
        "slixmpp is missing: install it with `apt-get install -y python3-slixmpp` ({})",
        String::from_utf8_lossy(&check.stderr).trim()
    );
    Ok(python)
}

fn carbons_body(bed: &Bed) -> Result<()> {
    let python = python()?;
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let script = format!("{}/scripts/second_device.py", perch_tests::manifest_dir());
    let mut phone = Command::new(&python)
        .arg(script)
        .args([
            &format!("{ALICE}/phone"),
            ALICE_PW,
            &bed.prosody.port().to_string(),
            &bed.prosody.ca_file().display().to_string(),
            BOB,
            "from the phone",
            "to the phone",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the second device")?;
    let stdout = phone.stdout.take().context("second device stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    if first != "sent" {
        let _ = phone.kill();
        let out = phone.wait_with_output()?;
        return Err(anyhow!(
            "the second device did not send: {first:?}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Sent by the phone: in alice's history as hers (a sent carbon).
    wait_until(DELIVERY, || {
        Ok(bodies(perchd, "alice", "out", BOB)?.contains(&"from the phone".to_owned()))
    })
    .context("the phone's message never reached alice's history as sent")?;
    super::wait_for_incoming(perchd, "bob", "from the phone")?;
    // Sent to the phone: in alice's history as received (a received carbon).
    send(perchd, "bob", &format!("{ALICE}/phone"), "to the phone")?;
    let status = phone.wait().context("waiting for the second device")?;
    ensure!(
        status.success(),
        "the second device never got bob's message"
    );
    wait_until(DELIVERY, || {
        Ok(bodies(perchd, "alice", "in", BOB)?.contains(&"to the phone".to_owned()))
    })
    .context("bob's message to the phone never reached alice's history")?;
    let h = history(perchd, "alice", &[])?;
    let once = |b: &str| h.iter().filter(|m| m["body"] == b).count() == 1;
    ensure!(
        once("from the phone") && once("to the phone"),
        "each carbon once: {}",
        summarize_history(&Value::Array(h.clone()))
    );
    Ok(())
}

/// A correction replaces the text on both sides and keeps the original; chat states
/// are signalled and never stored.
#[test]
fn corrections_and_chat_states() {
    let bed = Bed::start();
    corrections_body(&bed).unwrap();
}

fn corrections_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let sent = perchd.cli_json(&["message", "send", "-p", "alice", BOB, "helo wrold"])?;
    let id = sent["id"]
        .as_str()
        .context("send --json gives the id")?
        .to_owned();
    super::wait_for_incoming(perchd, "bob", "helo wrold")?;
    perchd.cli_ok(&["message", "correct", "-p", "alice", BOB, &id, "hello world"])?;
    for (profile, dir, peer) in [("bob", "in", ALICE), ("alice", "out", BOB)] {
        let mut h = Vec::new();
        wait_until(DELIVERY, || {
            h = history(perchd, profile, &[])?
                .into_iter()
                .filter(|m| m["direction"] == dir && m["peer"] == peer)
                .collect();
            Ok(h.len() == 1 && h[0]["body"] == "hello world")
        })
        .with_context(|| format!("{profile}'s history after the correction: {h:?}"))?;
        ensure!(
            h[0]["extra"]["edits"][0]["body"] == "helo wrold",
            "{profile} keeps the original text: {}",
            h[0]
        );
    }
    let (mut monitor, rx) = start_monitor(perchd)?;
    perchd.cli_ok(&["message", "state", "-p", "bob", ALICE, "composing"])?;
    let mut seen = Vec::new();
    let waited = wait_line(&rx, &mut seen, |v| {
        v["signal"] == "PluginSignal"
            && v["name"] == "chat_state"
            && v["profile"] == "alice"
            && v["data"]["state"] == "composing"
    });
    let _ = monitor.kill();
    let _ = monitor.wait();
    waited.context("alice never heard bob composing")?;
    let h = history(perchd, "alice", &[])?;
    ensure!(
        h.iter()
            .all(|m| m["body"].as_str().is_some_and(|b| !b.is_empty())),
        "a chat state was stored: {h:?}"
    );
    Ok(())
}

/// A message the server sends back (no such account here) is marked failed, with
/// the error, instead of looking delivered.
#[test]
fn a_bounced_message_is_marked_failed() {
    let bed = Bed::start();
    bounce_body(&bed).unwrap();
}

fn bounce_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let sent = perchd.cli_json(&[
        "message",
        "send",
        "-p",
        "alice",
        "nobody@localhost",
        "hello?",
    ])?;
    let id = sent["id"]
        .as_str()
        .context("send --json gives the id")?
        .to_owned();
    let mut m = Value::Null;
    wait_until(DELIVERY, || {
        m = history(perchd, "alice", &["nobody@localhost"])?
            .into_iter()
            .find(|m| m["id"] == id.as_str())
            .unwrap_or(Value::Null);
        Ok(m["state"] == "failed")
    })
    .with_context(|| format!("the message to nobody: {m}"))?;
    ensure!(
        m["extra"]["error"]["condition"] == "service-unavailable",
        "the bounce's error is kept: {m}"
    );
    ensure!(
        outbox(perchd, "alice")?.is_empty(),
        "a failed message left the outbox"
    );
    Ok(())
}
