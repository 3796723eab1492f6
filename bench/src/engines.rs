//! `perch-bench --engines`: the same figures on SQLite and on PostgreSQL, side by side
//! in one run (issue 22, part 5).
//!
//! - **Ingest**: N blog items through the cache's own ingest path (parse, store,
//!   full-text index), pages of 250.
//! - **Search**: the full-text searches of the default run (a 1% term, a common one;
//!   20 newest), p50/p95. The parsed-field filter is SQLite's only (JSON functions):
//!   PostgreSQL refuses it today, and it is left out.
//! - **History read**: M messages stored through `History`, then the newest 50 of
//!   one conversation, p50/p95 over 200 reads, in process (on PostgreSQL after the
//!   table's statistics are gathered, as autovacuum does within a minute).
//! - **Cached read**: perchd on each engine, the harness Prosody, the 20-item read
//!   over D-Bus from the cache and with it bypassed (`cached::cached_reads`).
//!
//! - **Moving an installation**: a SQLite database with the N items and M messages,
//!   moved to PostgreSQL by the `perch-admin migrate` binary (its own process, as a
//!   user runs it): the time, rows per second, and the check that every table
//!   matched.
//!
//! PostgreSQL is the harness's (`perch_tests::Postgres`, on loopback, fsync on as
//! Debian ships it); each part gets a database of its own.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use perch_backend::history::{History, NewMessage, Query};
use perch_plugin_api::{Direction, MessageState};
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Postgres, Prosody};
use serde_json::json;

use crate::cached::{ANALYSER, cached_reads, fill_node, items, wait_for_cache};
use crate::{COMMON, RARE, fresh_db_on, ingest, ms, percentiles, search};

/// `--engines [--sizes N] [--history M] [--reads R]`.
pub async fn run(n: usize, messages: usize, reads: usize) -> Result<()> {
    let pg = Postgres::start()?;
    let prosody = Prosody::start()?;
    for (engine, url) in [
        ("SQLite", None),
        ("PostgreSQL", Some(pg.create_database("bench_db")?)),
    ] {
        println!("\n## {engine}: database side, {n} cached items, {messages} messages");
        database_side(url.as_deref(), n).await?;
        let url = match &url {
            Some(_) => Some(pg.create_database("bench_history")?),
            None => None,
        };
        history_reads(url.as_deref(), messages).await?;
        println!("\n## {engine}: end to end");
        let perchd = match &url {
            Some(_) => Perchd::start_on_database(ANALYSER, &pg.create_database("bench_e2e")?)?,
            None => Perchd::start_with_config(ANALYSER)?,
        };
        end_to_end(&perchd, &prosody, engine, reads)
            .await
            .map_err(|e| anyhow!("{e:#}\n{}", perchd.diagnostics()))?;
    }
    println!("\n## SQLite to PostgreSQL: perch-admin migrate");
    migration(&pg, n, messages).await
}

/// A SQLite database with `n` cached items and `messages` messages moved to
/// PostgreSQL by `perch-admin migrate`.
async fn migration(pg: &Postgres, n: usize, messages: usize) -> Result<()> {
    let d = fresh_db_on(None).await?;
    ingest(&d, 0..n, 250).await?;
    let history = History::new(d.db.clone());
    for i in 0..messages {
        history.store(d.profile_id, message(i)).await?;
    }
    d.db.clone().close().await?;
    let url = pg.create_database("bench_migrate")?;
    let from = format!("sqlite:{}", d.dir.path().join("perch.db").display());
    let mut cmd = std::process::Command::new(perch_tests::workspace_bin("perch-admin")?);
    cmd.args(["migrate", "--from", &from, "--to", &url, "--json"]);
    let start = Instant::now();
    let out = perch_tests::run_with_timeout(cmd, Duration::from_secs(3600))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(anyhow!(
            "perch-admin: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let tables = report["tables"].as_array().cloned().unwrap_or_default();
    let rows: u64 = tables
        .iter()
        .filter_map(|t| t["target_rows"].as_u64())
        .sum();
    let matched = tables
        .iter()
        .all(|t| t["source_checksum"] == t["target_checksum"]);
    println!(
        "moved {rows} rows ({n} items, {messages} messages) and rebuilt {} index entries in \
         {:.2} s ({:.0} rows/s), checksums {}",
        report["index_entries"],
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        if matched { "all match" } else { "DIFFER" }
    );
    Ok(())
}

async fn database_side(url: Option<&str>, n: usize) -> Result<()> {
    let d = fresh_db_on(url).await?;
    let t = ingest(&d, 0..n, 250).await?;
    println!(
        "ingest (parse + store + full-text index, pages of 250): {:.0} items/s ({:.2} s)",
        n as f64 / t.as_secs_f64(),
        t.as_secs_f64()
    );
    let newest = json!([{"key": "creation", "desc": true}]);
    for (name, term, expect) in [
        ("fts 1% term", RARE, (n / 100).min(20)),
        ("fts common term", COMMON, n.min(20)),
    ] {
        let q = json!({"fts": term, "limit": 20, "order_by": newest});
        let mut samples = Vec::with_capacity(100);
        for _ in 0..100 {
            let start = Instant::now();
            let got = search(&d.store, q.clone()).await?;
            samples.push(start.elapsed());
            if got != expect {
                return Err(anyhow!("{name}: {got} results, expected {expect}"));
            }
        }
        let (p50, p95) = percentiles(&mut samples);
        println!("search {name}: p50 {} p95 {}", ms(p50), ms(p95));
    }
    Ok(())
}

fn message(i: usize) -> NewMessage {
    let peer = if i.is_multiple_of(2) {
        "bob@localhost"
    } else {
        "carol@localhost"
    };
    NewMessage {
        msg_id: format!("m{i}"),
        timestamp: 1_700_000_000_000_000 + i64::try_from(i).unwrap_or(0) * 1_000,
        direction: Direction::In,
        peer: peer.into(),
        from: format!("{peer}/phone"),
        to: "alice@localhost/perch".into(),
        kind: "chat".into(),
        body: format!("message {i} {}", crate::payload(i).len()),
        state: MessageState::Received,
        origin_id: None,
        stanza_id: None,
        replaces: None,
        extra: Default::default(),
        apply: None,
    }
}

async fn history_reads(url: Option<&str>, messages: usize) -> Result<()> {
    let d = fresh_db_on(url).await?;
    let history = History::new(d.db.clone());
    let start = Instant::now();
    for i in 0..messages {
        history.store(d.profile_id, message(i)).await?;
    }
    let took = start.elapsed();
    if url.is_some() {
        // What PostgreSQL's autovacuum does within a minute of so many new rows: its
        // planner has the table's statistics. Without them it expects one row per
        // conversation and sorts all 5,000 for a page (2.5 ms instead of 0.2).
        use sea_orm::ConnectionTrait;
        d.db.execute_unprepared("ANALYZE message").await?;
    }
    let q = Query {
        with: Some("bob@localhost".into()),
        limit: Some(50),
        ..Query::default()
    };
    let mut samples: Vec<Duration> = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        let page = history.query(d.profile_id, &q).await?;
        samples.push(start.elapsed());
        if page.len() != 50 {
            return Err(anyhow!("a history page of {}", page.len()));
        }
    }
    let (p50, p95) = percentiles(&mut samples);
    println!(
        "history: {messages} messages stored one by one in {:.2} s ({:.0}/s); newest 50 of a conversation: p50 {} p95 {}",
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64(),
        ms(p50),
        ms(p95)
    );
    Ok(())
}

async fn end_to_end(perchd: &Perchd, prosody: &Prosody, engine: &str, reads: usize) -> Result<()> {
    for (name, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        perchd.create_profile(prosody, name, name, pw, &[])?;
        perchd.cli_ok(&["connect", "-p", name])?;
    }
    let conn = perchd.bus_connection().await?;
    let (s, node) = (
        "pubsub.localhost",
        format!("bench-{}", engine.to_lowercase()),
    );
    fill_node(&conn, s, &node).await?;
    wait_for_cache(&conn, &items(s, &node, 20)).await?;
    cached_reads(&conn, s, &node, reads).await
}
