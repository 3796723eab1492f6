//! Many writers at once through the real bridge: none is refused by the database.
//!
//! Why: a second writer used to be refused. A transaction that read, then wrote while
//! another connection had committed failed at once with "database is locked"
//! (SQLITE_BUSY_SNAPSHOT): 92 of 300 profile creations 8 at a time, 74 of 240
//! creations and connections, 11 of 40 creations while 8 profiles received floods
//! (`doc/reliability.rst`, "Concurrent writers"). Every writing transaction now starts
//! with `BEGIN IMMEDIATE` and waits for the lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use perch_tests::{ALICE_PW, DOMAIN, Perchd, Prosody, RawClient, wait_until};

use super::Bed;

/// Clients at once, as in the measurements.
const AT_A_TIME: usize = 8;

/// Accounts `{prefix}000` … on the harness's Prosody, all with alice's password.
///
/// SCRAM's stored keys do not depend on the user name, so alice's account record,
/// copied, is an account: 300 of them in milliseconds, where `prosodyctl register`
/// takes about 0.3 s each.
fn add_accounts(prosody: &Prosody, prefix: &str, n: usize) -> Result<()> {
    let dir = prosody.dir().join("data").join(DOMAIN).join("accounts");
    let alice = std::fs::read(dir.join("alice.dat")).context("reading alice's account")?;
    for i in 0..n {
        std::fs::write(dir.join(format!("{prefix}{i:03}.dat")), &alice)?;
    }
    Ok(())
}

/// Runs `job(i)` for every `i` in `0..n`, `threads` at a time; the failures, as
/// "i: error".
fn race(n: usize, threads: usize, job: impl Fn(usize) -> Result<()> + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    if let Err(e) = job(i) {
                        failures.lock().unwrap().push(format!("{i}: {e:#}"));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

fn no_failures(failures: &[String], of: usize, what: &str) -> Result<()> {
    ensure!(
        failures.is_empty(),
        "{} of {of} {what} failed; the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    Ok(())
}

/// perchd's log says nothing of a locked database.
fn log_has_no_lock_error(perchd: &Perchd) -> Result<()> {
    let log = perchd.log_text()?;
    let locked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("database is locked"))
        .collect();
    ensure!(
        locked.is_empty(),
        "perchd's log has {} \"database is locked\" lines, e.g. {:?}",
        locked.len(),
        locked.first()
    );
    Ok(())
}

fn create(bed: &Bed, name: &str, user: &str) -> Result<()> {
    bed.perchd
        .create_profile(&bed.prosody, name, user, ALICE_PW, &[])
}

fn connect(bed: &Bed, name: &str) -> Result<()> {
    bed.perchd.cli_ok(&["connect", "-p", name]).map(drop)
}

const PROFILES: usize = 300;

#[test]
fn three_hundred_profiles_created_and_connected_8_at_a_time() {
    let bed = Bed::start();
    created_and_connected_body(&bed).unwrap();
}

fn created_and_connected_body(bed: &Bed) -> Result<()> {
    add_accounts(&bed.prosody, "u", PROFILES)?;
    let start = Instant::now();
    let failures = race(PROFILES, AT_A_TIME, |i| {
        let name = format!("p{i:03}");
        create(bed, &name, &format!("u{i:03}"))?;
        connect(bed, &name)
    });
    eprintln!(
        "{PROFILES} profiles created and connected, {AT_A_TIME} at a time: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    no_failures(&failures, PROFILES, "creations and connections")?;
    let status = bed.perchd.cli_json(&["status"])?;
    let connected = status
        .as_array()
        .map(|a| a.iter().filter(|s| s["state"] == "connected").count())
        .unwrap_or(0);
    ensure!(
        connected == PROFILES,
        "{connected} of {PROFILES} profiles connected: {status}"
    );
    log_has_no_lock_error(&bed.perchd)
}

const FLOODED: usize = 8;
const FLOOD: usize = 2000;
const CREATIONS: usize = 40;

#[test]
fn forty_creations_while_8_profiles_receive_floods() {
    let bed = Bed::start();
    floods_body(&bed).unwrap();
}

fn floods_body(bed: &Bed) -> Result<()> {
    add_accounts(&bed.prosody, "f", FLOODED)?;
    add_accounts(&bed.prosody, "s", FLOODED)?;
    let mut senders = Vec::new();
    for k in 0..FLOODED {
        let name = format!("f{k:03}");
        create(bed, &name, &name)?;
        connect(bed, &name)?;
        let user = format!("s{k:03}");
        senders.push(RawClient::connect(
            bed.prosody.port(),
            &bed.prosody.ca_file(),
            &user,
            ALICE_PW,
        )?);
    }
    let pad = "p".repeat(200);
    let start = Instant::now();
    let failures = std::thread::scope(|s| -> Result<Vec<String>> {
        let floods: Vec<_> = senders
            .iter_mut()
            .enumerate()
            .map(|(k, sender)| {
                let pad = &pad;
                s.spawn(move || -> Result<()> {
                    for i in 0..FLOOD {
                        sender.send(&format!(
                            "<message to='f{k:03}@{DOMAIN}' type='chat' id='f{i}'>\
                             <body>flood-{i:04} {pad}</body></message>"
                        ))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let failures = race(CREATIONS, AT_A_TIME, |i| {
            create(bed, &format!("c{i:03}"), &format!("f{:03}", i % FLOODED))
        });
        for f in floods {
            f.join().expect("a flooding thread panicked")?;
        }
        Ok(failures)
    })?;
    eprintln!(
        "{CREATIONS} creations during {FLOODED} floods of {FLOOD}: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    no_failures(&failures, CREATIONS, "creations during floods")?;
    // Every flood was stored, to its last message.
    for k in 0..FLOODED {
        let profile = format!("f{k:03}");
        let last = format!("flood-{:04}", FLOOD - 1);
        wait_until(Duration::from_secs(120), || {
            let h = bed
                .perchd
                .cli_ok(&["message", "history", "-p", &profile, "--limit", "5"])?;
            Ok(h.contains(&last))
        })
        .with_context(|| format!("{profile} never stored {last}"))?;
    }
    for s in senders {
        s.close()?;
    }
    log_has_no_lock_error(&bed.perchd)
}

const CLIENTS: usize = 16;
const FOR: Duration = Duration::from_secs(30);

#[test]
fn every_write_method_by_16_clients_for_30_s() {
    let bed = Bed::start();
    write_methods_body(&bed).unwrap();
}

/// One round of every write method of the bridge, by client `k`: the failures.
fn write_round(bed: &Bed, k: usize, n: usize) -> Vec<String> {
    let own = format!("w{k:03}");
    let peer = format!("w{:03}@{DOMAIN}", (k + 1) % CLIENTS);
    let temp = format!("t{k:03}-{n}");
    let contact = format!("x{n}@{DOMAIN}");
    let (round, status, priority) = (format!("round {n}"), n.to_string(), (n % 5).to_string());
    let mut calls: Vec<Vec<&str>> = vec![
        vec![
            "profile",
            "autoconnect",
            &own,
            if n.is_multiple_of(2) { "on" } else { "off" },
        ],
        vec!["profile", "password", &own, "--xmpp-password", ALICE_PW],
        vec!["profile", "default", &own],
        vec![
            "presence", "set", "-p", &own, "--show", "away", "--status", &status,
        ],
        vec!["presence", "set", "-p", &own, "--priority", &priority],
        vec!["message", "send", "-p", &own, &peer, &round],
        vec!["roster", "add", "-p", &own, &contact],
        vec!["roster", "subscribe", "-p", &own, &peer],
        vec!["roster", "remove", "-p", &own, &contact],
        vec!["profile", "delete", &temp],
    ];
    let mut failures = Vec::new();
    if let Err(e) = create(bed, &temp, &own) {
        failures.push(format!("client {k}, round {n}: create: {e:#}"));
    }
    if n % 4 == 3 {
        calls.push(vec!["disconnect", "-p", &own]);
        calls.push(vec!["connect", "-p", &own]);
    }
    for call in calls {
        if let Err(e) = bed.perchd.cli_ok(&call) {
            failures.push(format!("client {k}, round {n}: {e:#}"));
        }
    }
    failures
}

fn write_methods_body(bed: &Bed) -> Result<()> {
    add_accounts(&bed.prosody, "w", CLIENTS)?;
    let setup = race(CLIENTS, AT_A_TIME, |k| {
        let name = format!("w{k:03}");
        create(bed, &name, &name)?;
        connect(bed, &name)
    });
    no_failures(&setup, CLIENTS, "creations and connections")?;
    let rounds = AtomicUsize::new(0);
    let end = Instant::now() + FOR;
    let failures = Mutex::new(Vec::new());
    race(CLIENTS, CLIENTS, |k| {
        let mut n = 0;
        while Instant::now() < end {
            let f = write_round(bed, k, n);
            failures.lock().unwrap().extend(f);
            n += 1;
        }
        rounds.fetch_add(n, Ordering::SeqCst);
        Ok(())
    });
    let rounds = rounds.into_inner();
    eprintln!("{CLIENTS} clients, {FOR:?}: {rounds} rounds of every write method");
    ensure!(rounds >= CLIENTS, "only {rounds} rounds in {FOR:?}");
    no_failures(&failures.into_inner().unwrap(), rounds * 11, "calls")?;
    log_has_no_lock_error(&bed.perchd)
}
