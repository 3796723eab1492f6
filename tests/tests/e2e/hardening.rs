//! Hostile and careless input: what a stranger on the network, a frontend sending
//! garbage over D-Bus, or a user racing their own commands can do to perchd. Each test
//! reproduces a defect found by trying (issue "Hardening") and checks that the profile
//! and the daemon carry on, with a typed error where the input came from a frontend.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use perch_tests::tinyfs::{TinyFs, unix_uid};
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Prosody, RawClient, summarize_history, wait_until};
use serde_json::Value;

use super::{ALICE, Bed, DELIVERY, connect, history};

/// Runs `body` on a fresh Prosody and perchd; on failure, perchd's log goes with the
/// error.
fn on_a_bed(body: fn(&Bed) -> Result<()>) {
    let bed = Bed::start();
    if let Err(e) = body(&bed) {
        eprintln!("{}", bed.perchd.diagnostics());
        panic!("{e:?}");
    }
}

/// Runs a future to its end on a runtime of its own (the tests are synchronous).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Profile `alice`, connected, and `bob` logged in as a raw client: the stranger
/// who sends what he likes.
fn alice_and_raw_bob(bed: &Bed) -> Result<RawClient> {
    bed.perchd
        .create_profile(&bed.prosody, "alice", "alice", ALICE_PW, &[])?;
    connect(&bed.perchd, "alice", ALICE)?;
    RawClient::connect(bed.prosody.port(), &bed.prosody.ca_file(), "bob", BOB_PW)
}

/// Messages stamped by a stranger with impossible XEP-0203 delays used to kill the
/// profile's inbox (formatting the time panicked) and every later history read; a
/// stamp far in the future kept a message newest forever.
#[test]
fn hostile_delay_stamps_neither_stop_a_profile_nor_break_a_read() {
    on_a_bed(delay_body);
}

fn delay_body(bed: &Bed) -> Result<()> {
    let before = unix_now();
    let mut bob = alice_and_raw_bob(bed)?;
    let stamps = [
        ("minus-one", "-1"),
        ("exponent", "1e12"),
        ("year-zero", "0000-01-01T00:00:00Z"),
        ("epoch", "1970-01-01T00:00:00Z"),
        ("far-future", "9999-12-31T23:59:59Z"),
        ("garbage", "not a date"),
    ];
    for (body, stamp) in stamps {
        bob.send(&format!(
            "<message to='{ALICE}' type='chat' id='{body}'><body>{body}</body>\
             <delay xmlns='urn:xmpp:delay' stamp='{stamp}'/></message>"
        ))?;
    }
    // A plausible past stamp (offline delivery) is kept as the message's time.
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='old'><body>old</body>\
         <delay xmlns='urn:xmpp:delay' stamp='2020-01-02T03:04:05+01:00'/></message>"
    ))?;
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='last'><body>last</body></message>"
    ))?;

    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = history(&bed.perchd, "alice", &[])?;
        Ok(last.len() == stamps.len() + 2)
    })
    .with_context(|| {
        format!(
            "alice did not store every message; her history:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })?;
    let after = unix_now() + 1;
    let mut times = HashMap::new();
    for m in &last {
        let body = m["body"].as_str().unwrap_or_default().to_owned();
        let ts = m["timestamp"].as_str().unwrap_or_default();
        times.insert(body, ts.to_owned());
    }
    ensure!(
        times["old"] == "2020-01-02T02:04:05.000000Z",
        "a plausible delay must be kept: {times:?}"
    );
    for (body, _) in stamps {
        let t = parse_rfc3339_seconds(&times[body])
            .with_context(|| format!("message {body:?} has timestamp {:?}", times[body]))?;
        ensure!(
            (before..=after).contains(&t),
            "message {body:?}, stamped out of range, must be filed at its arrival time ({before}..{after}): {times:?}"
        );
    }
    // Order: the newest is the last message sent, not the one stamped in year 9999.
    let newest = last.last().map(|m| m["body"].clone());
    ensure!(
        newest == Some(Value::from("last")),
        "the newest message must be the last one received: {}",
        summarize_history(&Value::Array(last))
    );
    // The profile still works both ways.
    ensure!(bed.perchd.state_of("alice")? == "connected");
    bed.perchd
        .cli_ok(&["message", "send", "-p", "alice", &bob.jid, "still here"])?;
    bob.read_until("still here", DELIVERY)?;
    bob.close()?;
    Ok(())
}

/// A message stamped with a whole second (what Prosody's archive gives a catch-up)
/// goes after what came live in that second, and before what came live after it:
/// messages sent later may arrive live while the catch-up still runs.
#[test]
fn a_whole_second_stamp_files_the_message_within_its_second() {
    on_a_bed(whole_second_body);
}

fn whole_second_body(bed: &Bed) -> Result<()> {
    let mut bob = alice_and_raw_bob(bed)?;
    let stored = |n: usize| -> Result<Vec<Value>> {
        let mut got = Vec::new();
        wait_until(DELIVERY, || {
            got = history(&bed.perchd, "alice", &[])?;
            Ok(got.len() >= n)
        })
        .with_context(|| format!("alice has not stored {n} messages"))?;
        Ok(got)
    };
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='a'><body>a</body></message>"
    ))?;
    let a = stored(1)?[0]["timestamp"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let second = a.get(..19).context("an RFC 3339 timestamp")?.to_owned();
    // The next message comes live in a later second.
    std::thread::sleep(Duration::from_millis(1100));
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='c'><body>c</body></message>"
    ))?;
    stored(2)?;
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='b'><body>b</body>\
         <delay xmlns='urn:xmpp:delay' stamp='{second}Z'/></message>"
    ))?;
    let all = stored(3)?;
    let order: Vec<&str> = all.iter().filter_map(|m| m["body"].as_str()).collect();
    ensure!(
        order == ["a", "b", "c"],
        "b, stamped {second}Z, must sit between a ({a}) and c: {}",
        summarize_history(&Value::Array(all.clone()))
    );
    bob.close()?;
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Seconds of `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (the bridge's format), by hand so the
/// test checks the daemon's output without sharing its code.
fn parse_rfc3339_seconds(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Text that XML cannot carry used to be stored and reported sent but never sent (the
/// stream writer choked on it); a roster name with one hung, then killed the session.
#[test]
fn characters_xml_cannot_carry_are_refused_by_name() {
    on_a_bed(characters_body);
}

fn characters_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let p = &bed.perchd;
    for bad in ["ring\u{7}", "\u{1b}[31mred", "x\u{FFFE}y", "nul\u{1}"] {
        let e = p.cli_fails_with(
            &["message", "send", "-p", "alice", "bob@localhost", bad],
            "BadArgument",
        )?;
        ensure!(e.contains("body") && e.contains("U+"), "{e}");
        let e = p.cli_fails_with(
            &[
                "roster",
                "add",
                "-p",
                "alice",
                "bob@localhost",
                "--name",
                bad,
            ],
            "BadArgument",
        )?;
        ensure!(e.contains("name"), "{e}");
        let e = p.cli_fails_with(
            &["presence", "set", "-p", "alice", "--status", bad],
            "BadArgument",
        )?;
        ensure!(e.contains("status"), "{e}");
    }
    let e = p.cli_fails_with(
        &["action", "run", "-p", "alice", "ping", "jid=localhost\u{7}"],
        "BadArgument",
    )?;
    ensure!(e.contains("args"), "{e}");
    // Nothing of it was stored, and the session is as it was: a message goes through.
    let h = history(p, "alice", &[])?;
    ensure!(h.is_empty(), "refused messages were stored: {h:?}");
    p.cli_ok(&[
        "message",
        "send",
        "-p",
        "alice",
        "bob@localhost",
        "tab\tand newline\n are fine",
    ])?;
    super::wait_for_incoming(p, "bob", "tab\tand newline\n are fine")?;
    ensure!(p.state_of("alice")? == "connected");
    Ok(())
}

/// Every native method fed malformed arguments straight over D-Bus: a typed error
/// each time, never an echo of a 10 MB argument, and the daemon still answers.
#[test]
fn malformed_dbus_calls_get_typed_errors() {
    on_a_bed(|bed| block_on(malformed_body(bed)));
}

async fn call(
    conn: &zbus::Connection,
    method: &str,
    body: &(impl zbus::export::serde::Serialize + zbus::zvariant::DynamicType),
) -> std::result::Result<zbus::message::Message, zbus::Error> {
    conn.call_method(
        Some(perch_tests::BUS_NAME),
        "/org/perch/Perch",
        Some("org.perch.Perch1"),
        method,
        body,
    )
    .await
}

/// The D-Bus error name and message of a failed call.
fn error_of(
    r: std::result::Result<zbus::message::Message, zbus::Error>,
) -> Result<(String, String)> {
    match r {
        Ok(m) => anyhow::bail!("expected an error, got a reply: {m:?}"),
        Err(zbus::Error::MethodError(name, text, _)) => {
            Ok((name.to_string(), text.unwrap_or_default()))
        }
        // zbus itself refuses a body whose signature is not the method's.
        Err(zbus::Error::FDO(e)) => {
            let e = *e;
            let name = zbus::DBusError::name(&e).to_string();
            Ok((
                name,
                zbus::DBusError::description(&e)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        }
        Err(other) => anyhow::bail!("expected a D-Bus method error, got {other:?}"),
    }
}

async fn malformed_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let conn = bed.perchd.bus_connection().await?;
    let big = "x".repeat(10 * 1024 * 1024);
    let expect = |name: &str, r, why: &str| -> Result<()> {
        let (got, text) = error_of(r).with_context(|| why.to_owned())?;
        ensure!(
            got.ends_with(name),
            "{why}: expected …{name}, got {got}: {}",
            &text[..text.len().min(300)]
        );
        ensure!(
            text.len() < 2000,
            "{why}: the error message is {} bytes: it echoes the argument",
            text.len()
        );
        Ok(())
    };
    let no_options: HashMap<String, String> = HashMap::new();
    expect(
        "UnknownProfile",
        call(&conn, "Connect", &(big.as_str(),)).await,
        "Connect with a 10 MB profile name",
    )?;
    expect(
        "BadArgument",
        call(&conn, "MessageSend", &("alice", big.as_str(), "hi", "")).await,
        "MessageSend to a 10 MB JID",
    )?;
    expect(
        "BadArgument",
        call(
            &conn,
            "MessageSend",
            &("alice", "bob@localhost", big.as_str(), ""),
        )
        .await,
        "MessageSend with a 10 MB body",
    )?;
    expect(
        "InvalidJid",
        call(&conn, "MessageSend", &("alice", "@@", "hi", "")).await,
        "MessageSend to an invalid JID",
    )?;
    expect(
        "BadArgument",
        call(
            &conn,
            "MessageSend",
            &("alice", "bob@localhost", "hi", "shout"),
        )
        .await,
        "MessageSend with an unknown type",
    )?;
    expect(
        "BadArgument",
        call(&conn, "ActionRun", &("alice", "ping", "{not json")).await,
        "ActionRun with bad JSON",
    )?;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    expect(
        "BadArgument",
        call(&conn, "ActionRun", &("alice", "ping", deep.as_str())).await,
        "ActionRun with JSON nested 100,000 deep",
    )?;
    expect(
        "BadArgument",
        call(&conn, "ActionRun", &("alice", "ping", r#"{"jid": 5}"#)).await,
        "ActionRun with a wrong shape",
    )?;
    expect(
        "BadArgument",
        call(&conn, "PresenceSet", &("alice", "away", "", 1000i32)).await,
        "PresenceSet with an out-of-range priority",
    )?;
    for limit in ["0", "-1", "10001", "1e3", big.as_str()] {
        let filters = HashMap::from([("limit".to_owned(), limit.to_owned())]);
        expect(
            "BadArgument",
            call(&conn, "HistoryGet", &("alice", filters)).await,
            &format!("HistoryGet limit {:.10}", limit),
        )?;
    }
    let filters = HashMap::from([("after".to_owned(), big.clone())]);
    expect(
        "BadArgument",
        call(&conn, "HistoryGet", &("alice", filters)).await,
        "HistoryGet with a 10 MB date",
    )?;
    for server in ["bad host", "host:0", "bell\u{7}", "a/b", big.as_str()] {
        let options = HashMap::from([("server".to_owned(), server.to_owned())]);
        expect(
            "BadArgument",
            call(
                &conn,
                "ProfileCreate",
                &("carol", "carol@localhost", "pw", options),
            )
            .await,
            &format!("ProfileCreate with server {:.10}", server),
        )?;
    }
    expect(
        "BadArgument",
        call(
            &conn,
            "ProfileCreate",
            &(big.as_str(), "carol@localhost", "pw", &no_options),
        )
        .await,
        "ProfileCreate with a 10 MB name",
    )?;
    // A body that is not the method's signature (extra arguments to a method that
    // takes none, or more than it takes, or other types) is refused.
    for method in [
        "Status",
        "ProfileList",
        "Version",
        "PluginList",
        "ActionList",
        "DebugTriggers",
    ] {
        let r = call(&conn, method, &("extra",)).await;
        let (name, _) = error_of(r).with_context(|| format!("{method} with an argument"))?;
        ensure!(
            name == "org.freedesktop.DBus.Error.InvalidArgs",
            "{method} with an extra argument: {name}"
        );
    }
    for (what, r) in [
        (
            "Connect with two strings",
            call(&conn, "Connect", &("alice", "extra")).await,
        ),
        (
            "Connect with two integers",
            call(&conn, "Connect", &(1u32, 2u32)).await,
        ),
        ("Connect with nothing", call(&conn, "Connect", &()).await),
    ] {
        let (name, _) = error_of(r).context(what)?;
        ensure!(
            name == "org.freedesktop.DBus.Error.InvalidArgs",
            "{what}: {name}"
        );
    }
    // Still alive, still right.
    let status: String = call(&conn, "Status", &())
        .await?
        .body()
        .deserialize()
        .context("Status")?;
    ensure!(status.contains("\"connected\""), "{status}");
    let h = bed
        .perchd
        .cli_json(&["message", "history", "-p", "alice"])?;
    ensure!(h.as_array().is_some_and(Vec::is_empty), "{h}");
    Ok(())
}

/// Deleting a profile while it connects used to leave its session alive (bound at the
/// server, failing on a foreign key), and a profile re-created under the same name
/// showed connected. Connect, Disconnect and Delete of one profile are serialised.
#[test]
fn delete_while_connecting_leaves_nothing_behind() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start().expect("starting perchd");
    let r = delete_race_body(&perchd, &prosody);
    if let Err(e) = &r {
        eprintln!("{}", perchd.diagnostics());
        panic!("{e:?}");
    }
}

fn delete_race_body(perchd: &Perchd, prosody: &Prosody) -> Result<()> {
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        perchd.create_profile(prosody, "racer", "alice", ALICE_PW, &[])?;
        let mut connecting = perchd.cli_spawn(&["connect", "-p", "racer"])?;
        // Delete at a different point of the connection each round.
        std::thread::sleep(Duration::from_millis((round as u64 * 7) % 60));
        perchd.cli_ok(&["profile", "delete", "racer"])?;
        let _ = connecting.wait();
        perchd.create_profile(prosody, "racer", "alice", ALICE_PW, &[])?;
        let state = perchd.state_of("racer")?;
        ensure!(
            state == "disconnected",
            "round {round}: a re-created profile must start disconnected, got {state}"
        );
        perchd.cli_ok(&["profile", "delete", "racer"])?;
    }
    // No session outlived its profile: nothing failed on the profile's foreign key.
    let log = perchd.log_text()?;
    ensure!(
        !log.contains("FOREIGN KEY"),
        "a session wrote for a deleted profile:\n{log}"
    );
    Ok(())
}

/// A full disk used to have sent and received messages reported stored (an id from
/// MessageSend, a MessageReceived signal, a receipt to the sender) while the row never
/// landed. Now every write's failure surfaces: the frontend gets `Storage`, and
/// neither frontends nor the sender hear of what was not kept.
#[test]
fn full_disk_loses_nothing_acknowledged() {
    let fs = TinyFs::mount("6m").expect("mounting a tmpfs");
    let prosody = Prosody::start().expect("starting Prosody");
    let alice = Perchd::start_with_data_dir("", Some(fs.path())).expect("starting perchd");
    let bob = Perchd::start().expect("starting perchd");
    let r = full_disk_body(&fs, &alice, &bob, &prosody);
    if let Err(e) = &r {
        eprintln!(
            "{}\n--- bob's perchd:\n{}",
            alice.diagnostics(),
            bob.diagnostics()
        );
        panic!("{e:?}");
    }
}

fn full_disk_body(fs: &TinyFs, alice: &Perchd, bob: &Perchd, prosody: &Prosody) -> Result<()> {
    alice.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    bob.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(alice, "alice", ALICE)?;
    connect(bob, "bob", "bob@localhost")?;
    alice.cli_ok(&["message", "send", "-p", "alice", "bob@localhost", "before"])?;
    super::wait_for_incoming(bob, "bob", "before")?;

    fs.fill()?;
    // Sent: every id MessageSend returned is in the history; the first failure is a
    // typed Storage error. Bodies of 16 KiB make SQLite need new pages at once.
    let filler = "z".repeat(16 * 1024);
    let mut sent_ok = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let body = format!("out-{i:03}-{filler}");
        let out = alice.cli(&[
            "--json",
            "message",
            "send",
            "-p",
            "alice",
            "bob@localhost",
            &body,
        ])?;
        if out.status.success() {
            sent_ok.push(format!("out-{i:03}"));
        } else {
            refused = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
    }
    let refused = refused.context("200 messages of 16 KiB were all stored on a full 6 MB disk")?;
    ensure!(
        refused.contains("Storage"),
        "a failed write must be a Storage error: {refused}"
    );
    // And perchd's own log says so, whatever the frontend does with the error.
    let log = alice.log_text()?;
    ensure!(
        log.lines().any(
            |l| l.contains("answered a frontend with a failure of perchd's own")
                && l.contains("Storage")
        ),
        "the Storage error answered to the frontend is not in perchd's log"
    );
    // Received: bob sends with receipt requests; alice can't keep them.
    for i in 0..20 {
        bob.cli_ok(&[
            "message",
            "send",
            "-p",
            "bob",
            ALICE,
            &format!("in-{i:02}-{filler}"),
        ])?;
    }
    // Wait until bob's last message has reached alice's session (her log says so,
    // stored or not), then compare what each side claims.
    wait_until(DELIVERY, || {
        Ok(alice
            .log_text()?
            .matches("storing a received message failed")
            .count()
            + history(alice, "alice", &[])?
                .iter()
                .filter(|m| m["direction"] == "in")
                .count()
            >= 20)
    })
    .context("bob's 20 messages never reached alice's session")?;
    let alice_history = history(alice, "alice", &["--limit", "1000"])?;
    let stored: Vec<String> = alice_history
        .iter()
        .filter_map(|m| m["body"].as_str())
        .map(|b| b.split('-').take(2).collect::<Vec<_>>().join("-"))
        .collect();
    for id in &sent_ok {
        ensure!(
            stored.contains(id),
            "MessageSend returned an id for {id}, which is not in alice's history"
        );
    }
    // Receipts: bob's messages marked delivered are exactly those alice kept.
    let bob_history = history(bob, "bob", &["--limit", "1000"])?;
    for m in &bob_history {
        let body = m["body"].as_str().unwrap_or_default();
        if m["direction"] != "out" || !body.starts_with("in-") {
            continue;
        }
        let key = body.split('-').take(2).collect::<Vec<_>>().join("-");
        let delivered = m["extra"]["delivered"] == true;
        ensure!(
            !delivered || stored.contains(&key),
            "alice acknowledged {key} (a receipt) but did not store it"
        );
    }
    // The daemon kept running: with space again, everything works.
    ensure!(alice.state_of("alice")? == "connected");
    fs.free()?;
    alice.cli_ok(&["message", "send", "-p", "alice", "bob@localhost", "after"])?;
    super::wait_for_incoming(bob, "bob", "after")?;
    bob.cli_ok(&["message", "send", "-p", "bob", ALICE, "back"])?;
    super::wait_for_incoming(alice, "alice", "back")?;
    Ok(())
}

/// A bridge client that stops reading used to stall the one task that sent every
/// connection its signals: once its socket was full, every other frontend stopped
/// hearing anything. Each connection now has its own queue; a stalled one is cut off.
#[test]
fn a_stalled_client_does_not_hold_up_the_others_signals() {
    on_a_bed(stalled_body);
}

fn stalled_body(bed: &Bed) -> Result<()> {
    use std::io::{BufRead, Write};
    let mut bob = alice_and_raw_bob(bed)?;
    let (mut monitor, lines) = super::start_monitor(&bed.perchd)?;

    // A peer-to-peer client that authenticates, then never reads a byte.
    let socket = bed
        .perchd
        .dir()
        .join("run")
        .join("perch")
        .join("perchd.sock");
    let mut stalled = std::os::unix::net::UnixStream::connect(&socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    let uid_hex: String = unix_uid()
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    stalled.write_all(format!("\0AUTH EXTERNAL {uid_hex}\r\n").as_bytes())?;
    let mut ok = String::new();
    std::io::BufReader::new(stalled.try_clone()?).read_line(&mut ok)?;
    ensure!(ok.starts_with("OK "), "D-Bus authentication: {ok:?}");
    stalled.write_all(b"BEGIN\r\n")?;

    // A flood of signals: 3,000 messages of 300 bytes to alice, from bob's raw client.
    const N: usize = 3000;
    let pad = "p".repeat(300);
    for i in 0..N {
        bob.send(&format!(
            "<message to='{ALICE}' type='chat' id='f{i}'><body>flood-{i:04} {pad}</body></message>"
        ))?;
    }
    // The monitor hears every one of them.
    let last = format!("flood-{:04}", N - 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("flood-") => {
                seen += 1;
                if line.contains(&last) {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => {
                let _ = monitor.kill();
                anyhow::bail!(
                    "the monitor heard {seen} of {N} messages while another client stalled"
                );
            }
        }
    }
    let _ = monitor.kill();
    ensure!(seen == N, "the monitor heard {seen} of {N} messages");
    ensure!(
        bed.perchd
            .log_text()?
            .contains("stopped reading its signals"),
        "perchd did not say it cut the stalled client off"
    );
    drop(stalled);
    bob.close()?;
    Ok(())
}

/// tokio-xmpp reports what it discards through the `log` crate; those lines must reach
/// perchd's log (they used to be lost), with the rest of the daemon's.
#[test]
fn the_xmpp_library_s_warnings_reach_the_log() {
    on_a_bed(library_log_body);
}

fn library_log_body(bed: &Bed) -> Result<()> {
    let mut bob = alice_and_raw_bob(bed)?;
    // A message type no parser accepts: tokio-xmpp drops it with a warning.
    bob.send(&format!(
        "<message to='{ALICE}' type='bogus' id='bad'><body>unreadable</body></message>"
    ))?;
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='good'><body>readable</body></message>"
    ))?;
    super::wait_for_incoming(&bed.perchd, "alice", "readable")?;
    wait_until(DELIVERY, || {
        Ok(bed.perchd.log_text()?.contains("invalid stanza"))
    })
    .context("tokio-xmpp's warning about the invalid stanza is not in perchd's log")?;
    bob.close()?;
    Ok(())
}

/// Every method the daemon offers (read from its own introspection, so a new method is
/// covered the day it is added), called with hostile values of its signature: empty,
/// control characters, 10 MB, invalid JIDs and JSON, JSON nested deep, extreme numbers.
/// Each call gets a reply or a typed error that does not echo its argument, and the
/// daemon answers afterwards.
#[test]
fn every_method_survives_hostile_arguments() {
    on_a_bed(|bed| block_on(every_method_body(bed)));
}

/// `(method, signature of its arguments)` of interface `org.perch.Perch1`, from the
/// introspection XML.
fn methods_of(xml: &str) -> Vec<(String, String)> {
    let iface = xml
        .split("<interface name=\"org.perch.Perch1\">")
        .nth(1)
        .and_then(|s| s.split("</interface>").next())
        .unwrap_or_default();
    iface
        .split("<method name=\"")
        .skip(1)
        .map(|m| {
            let name = m.split('"').next().unwrap_or_default().to_owned();
            let body = m.split("</method>").next().unwrap_or_default();
            let sig: String = body
                .split("<arg ")
                .skip(1)
                .filter(|a| !a.contains("direction=\"out\""))
                .filter_map(|a| a.split("type=\"").nth(1))
                .filter_map(|t| t.split('"').next())
                .collect();
            (name, sig)
        })
        .collect()
}

async fn every_method_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let conn = bed.perchd.bus_connection().await?;
    let reply = conn
        .call_method(
            Some(perch_tests::BUS_NAME),
            "/org/perch/Perch",
            Some("org.freedesktop.DBus.Introspectable"),
            "Introspect",
            &(),
        )
        .await?;
    let xml: String = reply.body().deserialize()?;
    let methods = methods_of(&xml);
    ensure!(methods.len() >= 20, "introspection lists {methods:?}");
    let big = "j".repeat(10 * 1024 * 1024);
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let strings: Vec<&str> = vec![
        "",
        "\u{7}\u{1b}[2J",
        &big,
        "@@/",
        "{\"jid\": ",
        &deep,
        "x\u{FFFE}y",
        "nosuch",
    ];
    let ints = [i32::MIN, -1, 0, i32::MAX];
    let mut calls = 0;
    for (method, sig) in &methods {
        for (k, s) in strings.iter().enumerate() {
            let s = *s;
            let map = HashMap::from([(s.to_owned(), s.to_owned())]);
            let list = vec![s.to_owned(), s.to_owned()];
            let r = match sig.as_str() {
                "" => call(&conn, method, &()).await,
                "s" => call(&conn, method, &(s,)).await,
                "ss" => call(&conn, method, &(s, s)).await,
                "sss" => call(&conn, method, &(s, s, s)).await,
                "ssss" => call(&conn, method, &(s, s, s, s)).await,
                "sb" => call(&conn, method, &(s, k % 2 == 0)).await,
                "sa{ss}" => call(&conn, method, &(s, map)).await,
                "sssa{ss}" => call(&conn, method, &(s, s, s, map)).await,
                "sssas" => call(&conn, method, &(s, s, s, list)).await,
                "sssi" => call(&conn, method, &(s, s, s, ints[k % ints.len()])).await,
                other => {
                    anyhow::bail!("method {method} takes ({other}): add a case for it to this test")
                }
            };
            calls += 1;
            match r {
                Ok(_) => {}
                Err(zbus::Error::MethodError(name, text, _)) => {
                    let text = text.unwrap_or_default();
                    ensure!(
                        name.starts_with("org.perch.Perch1.Error."),
                        "{method} with value #{k}: untyped error {name}: {:.200}",
                        text
                    );
                    ensure!(
                        !name.ends_with(".Internal"),
                        "{method} with value #{k}: an internal error: {:.300}",
                        text
                    );
                    ensure!(
                        text.len() < 2000,
                        "{method} with value #{k}: a {}-byte error message",
                        text.len()
                    );
                }
                Err(zbus::Error::FDO(e)) => {
                    let name = zbus::DBusError::name(&*e).to_string();
                    ensure!(
                        name == "org.freedesktop.DBus.Error.InvalidArgs",
                        "{method} with value #{k}: {name}"
                    );
                }
                Err(other) => anyhow::bail!("{method} with value #{k}: {other}"),
            }
        }
    }
    // Alive, and its data intact: both profiles are there.
    let status: String = call(&conn, "Status", &())
        .await?
        .body()
        .deserialize()
        .context("Status")?;
    ensure!(
        status.contains("\"alice\"") && status.contains("\"bob\""),
        "after {calls} hostile calls: {status}"
    );
    Ok(())
}

/// XEP-0198: tokio-xmpp acknowledged every stanza as soon as it had read it, so what
/// perchd had not stored yet (here: a full disk refuses it) was forgotten by the
/// server, and a `kill -9` lost it for good. Acknowledgements now count only what is
/// stored: the server keeps the rest, puts it in offline storage when the session
/// ends, and it arrives once perchd is back.
#[test]
fn messages_not_stored_are_not_acknowledged() {
    let fs = TinyFs::mount("6m").expect("mounting a tmpfs");
    // Hibernation of 2 s: a session killed without closing ends soon after.
    let prosody =
        Prosody::start_with_config("smacks_hibernation_time = 2").expect("starting Prosody");
    let mut alice = Perchd::start_with_data_dir("", Some(fs.path())).expect("starting perchd");
    let r = unacked_body(&fs, &mut alice, &prosody);
    if let Err(e) = &r {
        eprintln!("{}\n{}", alice.diagnostics(), prosody.diagnostics());
        panic!("{e:?}");
    }
}

fn unacked_body(fs: &TinyFs, alice: &mut Perchd, prosody: &Prosody) -> Result<()> {
    const N: usize = 60;
    alice.create_profile(prosody, "alice", "alice", ALICE_PW, &["--autoconnect"])?;
    connect(alice, "alice", ALICE)?;
    let mut bob = RawClient::connect(prosody.port(), &prosody.ca_file(), "bob", BOB_PW)?;
    bob.send(&format!(
        "<message to='{ALICE}' type='chat' id='kept'><body>kept</body></message>"
    ))?;
    super::wait_for_incoming(alice, "alice", "kept")?;

    // 60 messages of 16 KiB on a full disk: what the database still had room for is
    // stored, the rest fails.
    fs.fill()?;
    let pad = "q".repeat(16 * 1024);
    for i in 0..N {
        bob.send(&format!(
            "<message to='{ALICE}' type='chat' id='full-{i}'><body>full-{i:02} {pad}</body></message>"
        ))?;
    }
    let failed = || -> Result<usize> {
        Ok(alice
            .log_text()?
            .matches("storing a received message failed")
            .count())
    };
    let stored = || -> Result<usize> {
        Ok(history(alice, "alice", &["--limit", "1000"])?
            .iter()
            .filter(|m| m["body"].as_str().is_some_and(|b| b.starts_with("full-")))
            .count())
    };
    wait_until(DELIVERY, || Ok(failed()? + stored()? >= N))
        .context("alice's perchd did not handle the 60 messages")?;
    let lost = failed()?;
    ensure!(
        lost > 0,
        "the full disk refused nothing: the drill proves nothing"
    );

    alice.kill()?;
    // The session hibernates, then ends; alice has no other session: what the server
    // still holds (never acknowledged) is left to offline storage, or to the archive
    // when it keeps the message (then catching up brings it back).
    wait_until(Duration::from_secs(30), || {
        let log = std::fs::read_to_string(prosody.log_path())?;
        Ok(log.matches("for offline-handled stanza").count()
            + log.matches("for mam-handled stanza").count()
            >= lost)
    })
    .with_context(|| format!("Prosody did not keep the {lost} messages perchd could not store"))?;
    fs.free()?;
    alice.start_again()?;
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = history(alice, "alice", &["--limit", "1000"])?;
        Ok((0..N).all(|i| {
            last.iter().any(|m| {
                m["body"]
                    .as_str()
                    .is_some_and(|b| b.starts_with(&format!("full-{i:02} ")))
            })
        }))
    })
    .with_context(|| {
        format!(
            "after the restart alice's history lacks some of the {N} messages ({lost} had failed): {}",
            last.iter()
                .filter_map(|m| m["body"].as_str())
                .map(|b| b.split(' ').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        )
    })?;
    bob.close()?;
    Ok(())
}
