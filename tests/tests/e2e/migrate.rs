//! `perch-admin migrate` (`doc/deployment.rst`, "Moving to PostgreSQL"): an
//! installation used on SQLite — profiles, history, the pubsub cache with its
//! full-text index, OMEMO keys — moved to PostgreSQL with the daemon stopped, then
//! run there as it was. Refused while perchd holds the source, and into a database
//! that already holds data.

use std::process::{Command, Output};

use perch_tests::{Postgres, run_with_timeout, workspace_bin};

use super::cache::{ANALYSER, SERVICE, rich, search, wait_cached};
use super::pubsub::{ids, ps, publish_many};
use super::*;

#[test]
fn an_installation_moves_from_sqlite_to_postgres() {
    let pg = Postgres::start().expect("starting PostgreSQL");
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_with_config(ANALYSER).expect("starting perchd");
    let mut bed = Bed { perchd, prosody };
    if let Err(e) = migrate_body(&mut bed, &pg) {
        panic!("{e:?}\n{}", bed.perchd.diagnostics());
    }
}

/// `perch-admin migrate --from sqlite:… --to URL --json`.
fn admin(perchd: &Perchd, url: &str) -> Result<Output> {
    let mut cmd = Command::new(workspace_bin("perch-admin")?);
    let from = format!("sqlite:{}", perchd.data_dir().join("perch.db").display());
    cmd.args(["migrate", "--from", &from, "--to", url, "--json"])
        .env_remove("PERCH_DATABASE_URL");
    run_with_timeout(cmd, Duration::from_secs(120))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What perchd holds that must come across unchanged.
struct Seen {
    profiles: Value,
    alice: Vec<Value>,
    bob: Vec<Value>,
    hits: Vec<String>,
    fingerprint: Value,
}

/// A profile's history, without the archive's ids: the catch-up at a start fills
/// them in for messages sent before (restart or not).
fn kept_history(perchd: &Perchd, profile: &str) -> Result<Vec<Value>> {
    let mut h = history(perchd, profile, &[])?;
    for m in &mut h {
        if let Some(m) = m.as_object_mut() {
            m.remove("stanza_id");
        }
    }
    Ok(h)
}

fn seen(perchd: &Perchd, node: &str) -> Result<Seen> {
    Ok(Seen {
        profiles: perchd.cli_json(&["profile", "list"])?,
        alice: kept_history(perchd, "alice")?,
        bob: kept_history(perchd, "bob")?,
        hits: search(perchd, &["-f", "zanzibar", "-n", node, "-l", "100"])?,
        fingerprint: perchd.cli_json(&["omemo", "fingerprint", "-p", "alice"])?,
    })
}

fn migrate_body(bed: &mut Bed, pg: &Postgres) -> Result<()> {
    bed.alice_and_bob_connected(&["--autoconnect"])?;
    let perchd = &mut bed.perchd;
    for i in 0..20 {
        send(
            perchd,
            "alice",
            BOB,
            &format!("before the move {i} — ça va"),
        )?;
    }
    wait_for_incoming(perchd, "bob", "before the move 19 — ça va")?;
    let node = "perch-cache-moved";
    let create = ["node", "create", "-p", "alice", "-s", SERVICE, "-n", node];
    ps(
        perchd,
        &[&create[..], &["-f", "pubsub#max_items", "1000"]].concat(),
    )?;
    publish_many(perchd, "alice", SERVICE, node, 0..120, rich)?;
    wait_cached(perchd, node, "the synced node", |p| ids(p).len() == 5)?;
    // The whole node synced: both items with the rare word (7 and 107) found.
    wait_until(DELIVERY, || {
        Ok(search(perchd, &["-f", "zanzibar", "-n", node])?.len() == 2)
    })
    .context("the node's sync")?;
    // Receipts settled (each sent message delivered; a received one never marked so,
    // even by our own receipt read back from the archive at a start), so what is
    // compared after the move is what was there when perchd stopped.
    wait_until(DELIVERY, || {
        let all = [history(perchd, "alice", &[])?, history(perchd, "bob", &[])?].concat();
        Ok(all.len() == 40
            && all
                .iter()
                .all(|m| (m["direction"] == "out") == (m["extra"]["delivered"] == true)))
    })
    .context("receipts of the messages")?;
    let before = seen(perchd, node)?;
    let url = pg.create_database("moved")?;

    // The daemon holds the source: refused, naming it.
    let held = admin(perchd, &url)?;
    let err = text(&held.stderr);
    ensure!(
        !held.status.success(),
        "migrated under a running perchd: {err}"
    );
    ensure!(
        err.contains("perchd holds") && err.contains("stop it"),
        "{err}"
    );
    ensure!(
        !err.contains(perch_tests::postgres::PG_PASSWORD),
        "password shown: {err}"
    );

    perchd.stop()?;
    let moved = admin(perchd, &url)?;
    let err = text(&moved.stderr);
    ensure!(moved.status.success(), "migrate failed:\n{err}");
    ensure!(
        err.contains("every row count and checksum matches"),
        "{err}"
    );
    ensure!(
        !err.contains(perch_tests::postgres::PG_PASSWORD),
        "password shown: {err}"
    );
    let report: Value = serde_json::from_slice(&moved.stdout)
        .with_context(|| format!("report: {}", text(&moved.stdout)))?;
    check_report(&report)?;

    // Not twice into the same database.
    let again = admin(perchd, &url)?;
    let err = text(&again.stderr);
    ensure!(
        !again.status.success() && err.contains("already holds data"),
        "{err}"
    );

    perchd.set_database_url(&url)?;
    perchd.start_again()?;
    perchd.wait_for_state("alice", "connected", Duration::from_secs(15))?;
    connect(perchd, "bob", BOB)?;
    let after = seen(perchd, node)?;
    ensure!(
        after.profiles == before.profiles,
        "profiles: {}",
        after.profiles
    );
    for (who, a, b) in [
        ("alice", &after.alice, &before.alice),
        ("bob", &after.bob, &before.bob),
    ] {
        let changed: Vec<String> = a
            .iter()
            .zip(b.iter())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| format!("before: {y}\nafter:  {x}"))
            .collect();
        ensure!(
            a.len() == b.len() && changed.is_empty(),
            "{who}'s history changed ({} → {} messages):\n{}",
            b.len(),
            a.len(),
            changed.join("\n")
        );
    }
    ensure!(after.hits == before.hits, "search after: {:?}", after.hits);
    ensure!(
        after.fingerprint == before.fingerprint,
        "OMEMO identity changed"
    );
    let log = perchd.log_text()?;
    ensure!(
        log.contains("postgres://perch:***@127.0.0.1"),
        "not on PostgreSQL"
    );
    // New rows get fresh ids (the sequences were set past the moved ones).
    send(perchd, "alice", BOB, "after the move")?;
    wait_for_incoming(perchd, "bob", "after the move")?;
    let alice = history(perchd, "alice", &[])?;
    ensure!(
        alice.len() == before.alice.len() + 1,
        "{} messages",
        alice.len()
    );
    Ok(())
}

/// Every table moved matches on both sides, and the rows we made are there.
fn check_report(report: &Value) -> Result<()> {
    let tables = report["tables"].as_array().context("tables")?;
    let rows = |name: &str| {
        tables
            .iter()
            .find(|t| t["table"] == name)
            .and_then(|t| t["target_rows"].as_u64())
            .unwrap_or(0)
    };
    for t in tables {
        ensure!(
            t["source_rows"] == t["target_rows"] && t["source_checksum"] == t["target_checksum"],
            "{t}"
        );
    }
    ensure!(rows("profile") == 2, "{report}");
    ensure!(rows("message") >= 40, "{report}");
    ensure!(rows("pubsub_item") == 120, "{report}");
    ensure!(rows("omemo_identity") == 2, "{report}");
    ensure!(report["index_entries"] == 120, "{report}");
    ensure!(
        !tables
            .iter()
            .any(|t| t["table"] == "daemon_node" || t["table"] == "pubsub_item_fts"),
        "{report}"
    );
    Ok(())
}

/// What `perch-admin migrate` is given wrong: each refused with what was wrong, the
/// password never shown, and nothing created.
#[test]
fn migrate_refuses_bad_arguments() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let missing = dir.path().join("none.db");
    let refused = perch_tests::RefusedPort::new().expect("a refused port");
    let down = format!(
        "postgres://perch:hidden-pw@127.0.0.1:{}/perch",
        refused.port
    );
    let sqlite = format!("sqlite:{}", missing.display());
    let run = |from: &str, to: &str| -> String {
        let mut cmd = Command::new(workspace_bin("perch-admin").expect("perch-admin"));
        cmd.args(["migrate", "--from", from, "--to", to])
            .env_remove("PERCH_DATABASE_URL");
        let out = run_with_timeout(cmd, Duration::from_secs(60)).expect("perch-admin ran");
        assert!(!out.status.success(), "{from} → {to} succeeded");
        text(&out.stderr)
    };
    let e = run(&sqlite, &down);
    assert!(
        e.contains("there is no database at") && e.contains("none.db"),
        "{e}"
    );
    assert!(!missing.exists(), "the missing source was created");
    let e = run(missing.to_str().unwrap(), &down);
    assert!(e.contains("give the SQLite file as sqlite:PATH"), "{e}");
    let e = run(&sqlite, "mysql://root:hidden-pw@127.0.0.1/perch");
    assert!(
        e.contains("give the PostgreSQL database as postgres://"),
        "{e}"
    );
    assert!(!e.contains("hidden-pw"), "password shown: {e}");
    // A real source, an unreachable target.
    let db = dir.path().join("perch.db");
    std::fs::write(&db, b"").expect("an empty SQLite file");
    let e = run(&format!("sqlite:{}", db.display()), &down);
    assert!(
        e.contains("cannot reach the database at postgres://perch:***@127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains("hidden-pw"), "password shown: {e}");
}
