//! perchd on PostgreSQL (`doc/storage.rst`): a harness PostgreSQL, two profiles on the
//! harness Prosody exchanging messages, a restart keeping profiles and history; and the
//! faults at start: the database unreachable, a wrong password in the URL.

use anyhow::{Context, Result, ensure};
use perch_tests::bed::{ALICE, BOB, connect};
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Postgres, Prosody, RefusedPort};

use super::{assert_history, send, t, wait_for_incoming};

#[test]
fn messages_and_restart_on_postgres() {
    let pg = Postgres::start().expect("starting PostgreSQL");
    let prosody = Prosody::start().expect("starting Prosody");
    let mut perchd = Perchd::start_on_database("", &pg.url()).expect("starting perchd");
    postgres_body(&mut perchd, &prosody).unwrap();
}

fn postgres_body(perchd: &mut Perchd, prosody: &Prosody) -> Result<()> {
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &["--autoconnect"])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    let log = perchd.log_text()?;
    ensure!(
        log.contains("postgres://perch:***@127.0.0.1"),
        "perchd's log should name the database, its password masked"
    );
    ensure!(
        !log.contains(perch_tests::postgres::PG_PASSWORD),
        "perchd's log shows the database password"
    );
    ensure!(
        !perchd.data_dir_has("perch.db"),
        "perchd on PostgreSQL made a SQLite file too"
    );

    send(perchd, "alice", BOB, "on postgres 1")?;
    wait_for_incoming(perchd, "bob", "on postgres 1")?;
    send(perchd, "bob", ALICE, "on postgres 2 — ça va")?;
    wait_for_incoming(perchd, "alice", "on postgres 2 — ça va")?;
    let alice_expected = [
        t("out", "on postgres 1", BOB),
        t("in", "on postgres 2 — ça va", BOB),
    ];
    let bob_expected = [
        t("in", "on postgres 1", ALICE),
        t("out", "on postgres 2 — ça va", ALICE),
    ];
    assert_history(perchd, "alice", &[], &alice_expected)?;
    assert_history(perchd, "bob", &[], &bob_expected)?;
    // Every plugin's store worked on the way (OMEMO's keys, rooms, blocklist…).
    let log = perchd.log_text()?;
    ensure!(
        !log.contains("Query Error") && !log.contains("error returned from database"),
        "a store failed on PostgreSQL:\n{}",
        perch_tests::tail_lines(&log, 40)
    );
    let profiles_before = perchd.cli_json(&["profile", "list"])?;

    perchd.stop()?;
    perchd.start_again()?;

    let profiles = perchd.cli_json(&["profile", "list"])?;
    ensure!(
        profiles == profiles_before,
        "profile list changed across a restart:\nbefore: {profiles_before}\nafter:  {profiles}"
    );
    assert_history(perchd, "alice", &[], &alice_expected)?;
    assert_history(perchd, "bob", &[], &bob_expected)?;
    perchd.wait_for_state("alice", "connected", std::time::Duration::from_secs(15))?;
    connect(perchd, "bob", BOB)?;
    send(perchd, "alice", BOB, "after restart")?;
    wait_for_incoming(perchd, "bob", "after restart")?;
    Ok(())
}

#[test]
fn unreachable_database_stops_the_start() {
    let refused = RefusedPort::new().expect("a refused port");
    let url = format!(
        "postgres://perch:nobody-listens@127.0.0.1:{}/perch",
        refused.port
    );
    let Err(e) = Perchd::start_on_database("", &url) else {
        panic!("perchd started without its database");
    };
    let e = format!("{e:#}");
    assert!(e.contains("exited during startup"), "{e}");
    assert!(
        e.contains("cannot reach the database at postgres://perch:***@127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains("nobody-listens"), "the password was shown: {e}");
}

#[test]
fn wrong_database_password_is_a_typed_error_never_logged() {
    let pg = Postgres::start().expect("starting PostgreSQL");
    let wrong = "not-the-password-42";
    let Err(e) = Perchd::start_on_database("", &pg.url_with_password(wrong)) else {
        panic!("perchd started with a wrong database password");
    };
    let e = format!("{e:#}");
    assert!(e.contains("exited during startup"), "{e}");
    assert!(e.contains("refused the user or password"), "{e}");
    assert!(e.contains("postgres://perch:***@127.0.0.1"), "{e}");
    assert!(!e.contains(wrong), "the password was shown: {e}");
}

/// PostgreSQL restarted while messages arrive: storing waits for the database and
/// goes on once it is back; every message is in the history once, none was
/// acknowledged to the server before it was stored.
#[test]
fn a_postgres_restart_under_load_loses_nothing() {
    let mut pg = Postgres::start().expect("starting PostgreSQL");
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_on_database("", &pg.url()).expect("starting perchd");
    if let Err(e) = restart_body(&perchd, &prosody, &mut pg) {
        panic!("{e:?}\n{}\n{}", perchd.diagnostics(), prosody.diagnostics());
    }
}

fn restart_body(perchd: &Perchd, prosody: &Prosody, pg: &mut Postgres) -> Result<()> {
    const N: usize = 30;
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    let mut bob =
        perch_tests::RawClient::connect(prosody.port(), &prosody.ca_file(), "bob", BOB_PW)?;
    let say = |bob: &mut perch_tests::RawClient, i: usize| {
        bob.send(&format!(
            "<message to='{ALICE}' type='chat' id='pg-{i}'><body>pg {i:02}</body></message>"
        ))
    };
    for i in 0..10 {
        say(&mut bob, i)?;
    }
    wait_for_incoming(perchd, "alice", "pg 09")?;
    pg.stop()?;
    for i in 10..N {
        say(&mut bob, i)?;
    }
    // Down until storing has failed as unreachable and waits (past the pool's
    // acquire timeout, 10 s, which alone would absorb a shorter outage): a fixed
    // sleep was not always enough on a loaded machine.
    let waiting = "the database cannot be reached; waiting for it to store a message";
    perch_tests::wait_until(std::time::Duration::from_secs(90), || {
        Ok(perchd.log_text()?.contains(waiting))
    })
    .context("perchd never waited for the database")?;
    pg.start_again()?;
    wait_for_incoming(perchd, "alice", &format!("pg {:02}", N - 1))?;
    let history = super::history(perchd, "alice", &["--limit", "1000"])?;
    let bodies: Vec<&str> = history.iter().filter_map(|m| m["body"].as_str()).collect();
    let expected: Vec<String> = (0..N).map(|i| format!("pg {i:02}")).collect();
    ensure!(
        bodies == expected,
        "alice's history after the restart: {bodies:?}"
    );
    bob.close()
}
