//! `perch-bench`: Perch's figures, printed.
//!
//! 1. The cache's database side at 10k, 100k and 1M items (or the sizes given with
//!    `--sizes`): ingest rate (parse + store + FTS, from replies as the stream parsed
//!    them) beside a raw insert of the same rows, and searches (a 1% full-text term, a common one, a parsed field; limit
//!    20, newest first) with p50/p95.
//! 2. End to end, against a real Prosody, dbus-daemon and perchd started here (the
//!    e2e harness): a 20-item read over D-Bus served from the cache, and the same
//!    read with the cache bypassed; the RSS of perchd with 2 profiles and 100k cached
//!    items.
//!
//! 3. With `--memory` (and nothing else): the memory drill of issue 11, perchd's RSS
//!    after start, after caching 2,000 then 100,000 items over the network with 2
//!    profiles, and after each read pattern (see `perch_bench::drill`).
//!    `--server prosody|ejabberd` (ejabberd), `--items N` (100000), `--reads N`
//!    (1000), `--config TOML` (extra perchd configuration), `--pause FILE` (wait for
//!    FILE before the syncs, to attach a profiler), `--parallel` (the two profiles
//!    sync at once).
//! 4. With `--messages N` (and nothing else): message ingest (`perch_bench::messages`).
//! 5. With `--calls N` (and nothing else; 20 when N is left out): the call set-up
//!    time of N `perch-call` audio calls over loopback, p50 and p90 on each side
//!    (`perch_bench::calls`, doc/perch-call.rst). Needs perch-call, built with
//!    GStreamer: `cargo build --release -p perch-call` as well.
//! 6. With `--libervia-bridge` (and nothing else): `bench/scripts/libervia_bridge.py`
//!    on Debian's libervia-backend and on perchd's Libervia bridge, `--iterations N`
//!    calls each (200) (`perch_bench::libervia_bridge`, doc/performance.rst). Needs
//!    the Debian packages of the Libervia e2e tests.
//! 7. With `--everyday` (and nothing else): a file of `--mib N` MiB (100) uploaded
//!    and downloaded over XEP-0363 (time, perchd's RSS), and history reads over
//!    `--history M` messages (1000) with reactions and corrections on most
//!    (`perch_bench::everyday`); on the harness Prosody, or ejabberd with
//!    `--server ejabberd`.
//! 8. With `--profiles N` (and nothing else): N profiles in one perchd — creation,
//!    connection, RSS per profile, idle CPU, `Status` and message latency, autoconnect
//!    after a restart (`perch_bench::profiles`).
//! 9. With `--omemo N` (and nothing else): OMEMO encrypt, decrypt and session set-up
//!    costs, then end to end with `--omemo-contacts C` sessions
//!    (`--omemo-crypto-only` stops after the first part; `perch_bench::omemo`).
//! 10. With `--engines` (and nothing else): ingest, search, history reads and the
//!     cached read end to end, on SQLite and on a harness PostgreSQL, one after the
//!     other, then a SQLite database of those items and messages moved to PostgreSQL
//!     by `perch-admin migrate` (`--sizes N` items, 10000; `--history M` messages,
//!     10000; `--reads R`; `perch_bench::engines`).
//!
//! Why a binary and not `#[ignore]` tests: a bench prints figures and asserts none
//! of them, and the e2e test binary stays what passes or fails.
//!
//! Build it optimised: `cargo build --release -p perch-backend -p perch-cli -p
//! perch-bench && target/release/perch-bench` (`perchd`, `perch` and `perch-call`
//! are found beside it). `--sizes 10000,100000` picks the database sizes, `--no-db`
//! and `--no-e2e` skip a part.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use perch_bench::cached::{
    ANALYSER, cached_reads, fill_node, items, publish, timed_read, wait_for_cache,
};
use perch_bench::drill::action;
use perch_bench::{COMMON, RARE, fresh_db, ingest, ms, percentiles, raw_insert, search};
use perch_client::actions::{cache, pubsub};
use perch_plugins_pubsub::pubsub_cache::dao;
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Prosody};
use serde_json::json;

/// The value after flag `name`, if given.
fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
}

/// The number after flag `name`, or `default`.
fn flag_number(args: &[String], name: &str, default: usize) -> Result<usize> {
    flag_value(args, name).map_or(Ok(default), |v| {
        v.parse().with_context(|| format!("{name}: a number"))
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The modes that run alone (`--calls`, `--libervia-bridge`, `--messages`,
/// `--omemo`, `--memory`); `None` when none was asked for.
fn single_mode(args: &[String]) -> Option<Result<()>> {
    let header = || println!("# perch-bench {}", env!("CARGO_PKG_VERSION"));
    if args.iter().any(|a| a == "--calls") {
        return Some(flag_number(args, "--calls", 20).and_then(|n| {
            header();
            perch_bench::calls::run(n)
        }));
    }
    if args.iter().any(|a| a == "--libervia-bridge") {
        return Some(flag_number(args, "--iterations", 200).and_then(|n| {
            header();
            perch_bench::libervia_bridge::run(n)
        }));
    }
    if flag_value(args, "--messages").is_some() {
        return Some(flag_number(args, "--messages", 0).and_then(|n| {
            header();
            runtime()?.block_on(perch_bench::messages::run(n))
        }));
    }
    if flag_value(args, "--omemo").is_some() {
        return Some(omemo(args));
    }
    if args.iter().any(|a| a == "--memory") {
        return Some(memory(args));
    }
    if flag_value(args, "--profiles").is_some() {
        return Some(flag_number(args, "--profiles", 100).and_then(|n| {
            header();
            runtime()?.block_on(perch_bench::profiles::run(n))
        }));
    }
    if args.iter().any(|a| a == "--everyday") {
        return Some(everyday(args));
    }
    if args.iter().any(|a| a == "--engines") {
        return Some(engines(args));
    }
    None
}

fn everyday(args: &[String]) -> Result<()> {
    let mib = flag_number(args, "--mib", 100)? as u64;
    let m = flag_number(args, "--history", 1000)?;
    println!("# perch-bench {}", env!("CARGO_PKG_VERSION"));
    let ejabberd = match flag_value(args, "--server").map(String::as_str) {
        None | Some("prosody") => false,
        Some("ejabberd") => true,
        Some(other) => anyhow::bail!("--server: {other:?} is neither prosody nor ejabberd"),
    };
    runtime()?.block_on(perch_bench::everyday::run(mib, m, ejabberd))
}

/// `--engines [--sizes N] [--history M] [--reads R]`.
fn engines(args: &[String]) -> Result<()> {
    let n = flag_number(args, "--sizes", 10_000)?;
    let m = flag_number(args, "--history", 10_000)?;
    let reads = flag_number(args, "--reads", 500)?;
    println!("# perch-bench {}", env!("CARGO_PKG_VERSION"));
    runtime()?.block_on(perch_bench::engines::run(n, m, reads))
}

/// `--omemo N [--omemo-contacts C] [--omemo-crypto-only]`.
fn omemo(args: &[String]) -> Result<()> {
    let n = flag_number(args, "--omemo", 1000)?;
    let contacts = flag_number(args, "--omemo-contacts", 100)?;
    println!("# perch-bench {}", env!("CARGO_PKG_VERSION"));
    perch_bench::omemo::crypto(n)?;
    if args.iter().any(|a| a == "--omemo-crypto-only") {
        return Ok(());
    }
    runtime()?.block_on(perch_bench::omemo::end_to_end(n.min(500), contacts))
}

fn memory(args: &[String]) -> Result<()> {
    let options = perch_bench::drill::Options {
        server: flag_value(args, "--server")
            .cloned()
            .unwrap_or_else(|| "ejabberd".into()),
        items: flag_number(args, "--items", 100_000)?,
        reads: flag_number(args, "--reads", 1_000)?,
        config: flag_value(args, "--config").cloned().unwrap_or_default(),
        pause: flag_value(args, "--pause").cloned(),
        parallel: args.iter().any(|a| a == "--parallel"),
    };
    let rt = runtime()?;
    println!("# perch-bench {}", env!("CARGO_PKG_VERSION"));
    rt.block_on(perch_bench::drill::run(&options))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(done) = single_mode(&args) {
        return done;
    }
    let sizes: Vec<usize> = match args.iter().position(|a| a == "--sizes") {
        Some(i) => args
            .get(i + 1)
            .context("--sizes N,N,…")?
            .split(',')
            .map(|s| s.parse().context("--sizes: numbers"))
            .collect::<Result<_>>()?,
        None => vec![10_000, 100_000, 1_000_000],
    };
    let skip_e2e = args.iter().any(|a| a == "--no-e2e");
    // `--reads N`: how many reads each end-to-end figure is taken over (500).
    let reads: usize = match args.iter().position(|a| a == "--reads") {
        Some(i) => args
            .get(i + 1)
            .context("--reads N")?
            .parse()
            .context("--reads: a number")?,
        None => 500,
    };
    let sizes = if args.iter().any(|a| a == "--no-db") {
        Vec::new()
    } else {
        sizes
    };
    let rt = runtime()?;
    println!("# perch-bench {}", env!("CARGO_PKG_VERSION"));
    for n in sizes {
        rt.block_on(db_side(n))?;
    }
    if !skip_e2e {
        rt.block_on(end_to_end(reads))?;
    }
    Ok(())
}

async fn db_side(n: usize) -> Result<()> {
    println!("\n## database side, {n} cached items");
    // Small runs last a few tens of milliseconds: the median of five fresh databases.
    let reps = if n <= 10_000 { 5 } else { 1 };
    let mut ts = Vec::with_capacity(reps);
    let mut raws = Vec::with_capacity(reps);
    let mut d = fresh_db().await?;
    for rep in 0..reps {
        if rep > 0 {
            d = fresh_db().await?;
        }
        ts.push(ingest(&d, 0..n, 250).await?);
        raws.push(raw_insert(&d, 0..n, 250).await?);
    }
    let (t, _) = percentiles(&mut ts);
    let (raw, _) = percentiles(&mut raws);
    let parse = perch_bench::parse_only(0..n);
    let rate = n as f64 / t.as_secs_f64();
    let raw_rate = n as f64 / raw.as_secs_f64();
    println!(
        "ingest (parse + store + FTS, pages of 250{}): {rate:.0} items/s ({:.2} s); raw insert of the same rows: {raw_rate:.0} items/s; ratio {:.2}x",
        if reps > 1 { ", median of 5 runs" } else { "" },
        t.as_secs_f64(),
        raw_rate / rate
    );
    println!(
        "of which preparing alone (items taken from the replies, payloads serialised, Atom -> JSON, indexed text): {:.0} items/s",
        n as f64 / parse.as_secs_f64()
    );
    println!(
        "for reference, the stream's XML parsing of those replies (not part of ingest): {:.0} items/s",
        n as f64 / perch_bench::stream_parse(0..n, 250).as_secs_f64()
    );
    let newest = json!([{"key": "creation", "desc": true}]);
    let runs = if n >= 1_000_000 { 30 } else { 100 };
    for (name, q, expect) in [
        (
            "fts 1% term",
            json!({"fts": RARE, "limit": 20, "order_by": newest}),
            20,
        ),
        (
            "fts common term",
            json!({"fts": COMMON, "limit": 20, "order_by": newest}),
            20,
        ),
        (
            "parsed field tags contains t3",
            json!({"filters": [{"path": "tags", "op": "contains", "value": "t3"}], "limit": 20, "order_by": newest}),
            20,
        ),
    ] {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
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

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

async fn end_to_end(reads: usize) -> Result<()> {
    println!("\n## end to end: Prosody, dbus-daemon, perchd");
    let prosody = Prosody::start()?;
    let perchd = Perchd::start_with_config(ANALYSER)?;
    for (name, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        perchd.create_profile(&prosody, name, name, pw, &[])?;
        perchd.cli_ok(&["connect", "-p", name])?;
    }
    let conn = perchd.bus_connection().await?;
    let (s, node) = ("pubsub.localhost", "bench-node");
    fill_node(&conn, s, node).await?;
    // The first read syncs the node for bob.
    let read = items(s, node, 20);
    wait_for_cache(&conn, &read).await?;
    version_round_trips(&conn).await?;
    cached_reads(&conn, s, node, reads).await?;
    paged_reads(&conn, s, node, reads).await?;
    publish_latency(&conn, s, node).await?;
    rss_with_cache(&perchd, &conn, s, node, &read).await?;
    Ok(())
}

/// The bare D-Bus round trip, to compare the reads with.
async fn version_round_trips(conn: &zbus::Connection) -> Result<()> {
    let mut version = Vec::new();
    for _ in 0..500 {
        let start = Instant::now();
        conn.call_method(
            Some(perch_tests::BUS_NAME),
            "/org/perch/Perch",
            Some("org.perch.Perch1"),
            "Version",
            &(),
        )
        .await?;
        version.push(start.elapsed());
    }
    let (p50, p95) = percentiles(&mut version);
    println!(
        "D-Bus round trip (Version), for reference: p50 {} p95 {}",
        ms(p50),
        ms(p95)
    );
    Ok(())
}

/// 20-item reads from the cache, each of another page.
async fn paged_reads(conn: &zbus::Connection, s: &str, node: &str, reads: usize) -> Result<()> {
    // A different page each time (RSM index): what a read costs when it is not the
    // one answered a moment ago.
    let mut samples = Vec::new();
    for k in 0..reads {
        let args = serde_json::to_string(&pubsub::ItemsGetArgs {
            index: Some((k % 80) as i64),
            ..items(s, node, 20)
        })?;
        let (took, page) = timed_read(conn, &args).await?;
        samples.push(took);
        if page["source"] != "cache" || page["items"].as_array().map(Vec::len) != Some(20) {
            return Err(anyhow!("paged read: {page}"));
        }
    }
    let (p50, p95) = percentiles(&mut samples);
    println!(
        "20-item read over D-Bus from the cache, a different RSM page each time: p50 {} p95 {}",
        ms(p50),
        ms(p95)
    );

    Ok(())
}

/// From alice's publish to bob's cached read showing the item.
async fn publish_latency(conn: &zbus::Connection, s: &str, node: &str) -> Result<()> {
    // How long until alice's new item shows in bob's cached read.
    let mut lat = Vec::new();
    for k in 0..20 {
        let id = format!("new{k}");
        let start = Instant::now();
        let p = publish(s, node, id.clone(), perch_bench::payload(k));
        action::<pubsub::Publish>(conn, "alice", &p).await?;
        loop {
            let page = action::<pubsub::ItemsGet>(conn, "bob", &items(s, node, 1)).await?;
            if page["source"] == "cache" && page["items"][0]["id"] == id.as_str() {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                return Err(anyhow!("{id} never showed in bob's cached read"));
            }
        }
        lat.push(start.elapsed());
    }
    let (p50, p95) = percentiles(&mut lat);
    println!(
        "publish by alice -> visible in bob's cached read: p50 {} p95 {}",
        ms(p50),
        ms(p95)
    );

    Ok(())
}

/// perchd's RSS once bob's cache holds 100k items.
async fn rss_with_cache(
    perchd: &Perchd,
    conn: &zbus::Connection,
    s: &str,
    node: &str,
    read: &pubsub::ItemsGetArgs,
) -> Result<()> {
    // RSS with 2 profiles and 100k cached items: the items go straight into perchd's
    // database (the same rows a sync writes), then perchd serves and searches them.
    let db_path = perchd.dir().join("data/perch.db");
    let db = perch_backend::db::open_sqlite(&db_path).await?;
    let bob = perch_backend::profiles::Profiles::new(
        db.clone(),
        std::sync::Arc::new(perch_backend::secret::Sealer::load_or_create(
            &perchd.dir().join("data/secret.key"),
        )?),
    )
    .get("bob")
    .await?
    .id;
    let store = perch_plugin_api::PluginStore::new(
        db.clone(),
        "PUBSUB_CACHE",
        perch_plugins_pubsub::pubsub_cache::TABLES,
    );
    let n = dao::node(&store, bob, s, node)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .context("bob's cached node")?;
    let d = perch_bench::Db {
        dir: tempfile::tempdir()?,
        db: db.clone(),
        store: store.clone(),
        profile_id: bob,
        node_id: n.id,
    };
    ingest(&d, 1000..101_000, 250).await?;
    for _ in 0..100 {
        action::<pubsub::ItemsGet>(conn, "bob", read).await?;
    }
    let query = json!({"fts": RARE, "limit": 20});
    let query = query.as_object().cloned().unwrap_or_default();
    action::<cache::Search>(conn, "bob", &cache::SearchArgs { query }).await?;
    let pid = perchd.pid().context("perchd pid")?;
    println!(
        "perchd RSS with 2 profiles and {} cached items: {:.1} MB",
        dao::count(&store, n.id).await.map_err(|e| anyhow!("{e}"))?,
        rss_kib(pid)? as f64 / 1024.0
    );
    Ok(())
}
