//! The memory drill of issue 11 (`perch-bench --memory`): perchd's RSS, read from
//! `/proc/PID/status` from outside as a frontend would see it, after start, after
//! caching nodes over the network with 2 profiles, and after each read pattern.
//!
//! Why a second perchd publishes: the items must reach the measured perchd the way
//! a real node does (fetched over XMPP from the server), and publishing 100,000 items
//! through the measured daemon itself would leave its traces in the figure. So a
//! publisher perchd (profile `carol`, the cache disabled) fills the nodes first, then
//! the measured perchd starts, connects alice and bob, and syncs.
//!
//! The server is ejabberd by default (RSM pages of 250, as most services), or Prosody
//! (`--server prosody`: 0.12 answers a node whole, one stanza of up to 10,000 items).
//! Both harness servers keep at most 10,000 items a node, so 100,000 items are 10
//! nodes, synced one after another by each profile: alice's half, then bob's, or
//! the two profiles at once with `--parallel` (what two session starts do).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use perch_client::Action;
use perch_client::actions::{cache, pubsub};
use perch_tests::{ALICE_PW, BOB_PW, Ejabberd, Perchd, Prosody};
use serde_json::{Map, json};

/// Options of the drill.
#[derive(Debug, Clone)]
pub struct Options {
    /// `prosody` or `ejabberd`.
    pub server: String,
    /// Items in all (in nodes of at most 10,000), besides the 2,000-item node.
    pub items: usize,
    /// Reads (or searches) per pattern.
    pub reads: usize,
    /// Extra TOML for the measured perchd (e.g. `memory_budget`).
    pub config: String,
    /// The two profiles sync at the same time (else alice's nodes, then bob's).
    pub parallel: bool,
    /// Once alice and bob are connected, wait until this file exists (to attach a
    /// profiler, `heaptrack -p PID`, before the syncs).
    pub pause: Option<String>,
}

const CAROL_PW: &str = "carol-secret";
const SERVICE: &str = "pubsub.localhost";
const NODE_MAX: usize = 10_000;

/// The measured perchd's cache: the bench nodes are to sync.
const ANALYSER: &str = r#"
[[plugins.options.PUBSUB_CACHE.analysers]]
name = "bench"
type = "bench"
node_prefix = "bench"
to_sync = true
[plugins.options.PUBSUB_CACHE.analysers.fields]
title = "title"
tags = "category/@term[]"
"#;

enum Server {
    Prosody(Prosody),
    Ejabberd(Ejabberd),
}

impl Server {
    fn addr_and_ca(&self) -> (String, String) {
        match self {
            Self::Prosody(p) => (p.server_arg(), p.ca_file().display().to_string()),
            Self::Ejabberd(e) => (e.server_arg(), e.ca_file().display().to_string()),
        }
    }
}

fn profile(perchd: &Perchd, server: &Server, name: &str, pw: &str) -> Result<()> {
    let (addr, ca) = server.addr_and_ca();
    let jid = format!("{name}@localhost");
    perchd.cli_ok(&[
        "profile",
        "create",
        name,
        "--jid",
        &jid,
        "--xmpp-password",
        pw,
        "--server",
        &addr,
        "--ca-file",
        &ca,
    ])?;
    perchd.cli_ok(&["connect", "-p", name])?;
    perchd.wait_for_state(name, "connected", Duration::from_secs(30))
}

/// One typed action over D-Bus, as a frontend calls it (through perch-client).
pub async fn action<A: Action>(
    conn: &zbus::Connection,
    profile: &str,
    args: &A::Args,
) -> Result<A::Output>
where
    A::Args: std::fmt::Debug,
{
    let proxy = perch_client::Perch1Proxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    perch_client::action::run::<A>(&proxy, profile, args)
        .await
        .with_context(|| format!("ActionRun {} {args:?}", A::NAME))
}

/// `pubsub_items_get` on `SERVICE` with `max`, the other arguments absent.
fn items(node: &str, max: usize) -> pubsub::ItemsGetArgs {
    pubsub::ItemsGetArgs {
        service: Some(SERVICE.into()),
        node: node.to_owned(),
        max: Some(max as i64),
        ..Default::default()
    }
}

/// perchd's resident set and its peak, in KiB (`VmRSS`, `VmHWM`).
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let s = Status::read(pid)?;
    Ok((s.field("VmRSS:")?, s.field("VmHWM:")?))
}

/// `/proc/PID/status`, read once.
struct Status {
    pid: u32,
    text: String,
}

impl Status {
    fn read(pid: u32) -> Result<Self> {
        Ok(Self {
            pid,
            text: std::fs::read_to_string(format!("/proc/{pid}/status"))?,
        })
    }

    /// A field in KiB (or a count, for `Threads:`).
    fn field(&self, name: &str) -> Result<u64> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{}/status", self.pid))
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A small PRNG (xorshift): the patterns are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

struct Report {
    pid: u32,
    start: Instant,
}

impl Report {
    fn line(&self, what: &str) -> Result<()> {
        // Where the resident bytes are: the heap and stacks (anonymous) or the
        // binary's and libraries' pages (file-backed).
        let s = Status::read(self.pid)?;
        println!(
            "{:>7.1} s  RSS {:>6.1} MB  (anon {:>5.1}, file {:>4.1}; peak {:>6.1} MB; {} threads)  {what}",
            self.start.elapsed().as_secs_f64(),
            mb(s.field("VmRSS:")?),
            mb(s.field("RssAnon:")?),
            mb(s.field("RssFile:")? + s.field("RssShmem:")?),
            mb(s.field("VmHWM:")?),
            s.field("Threads:")?
        );
        Ok(())
    }
}

/// Creates `node` on the publisher and publishes `n` items into it, `in_flight` calls
/// at a time.
async fn fill(conn: &zbus::Connection, node: &str, n: usize) -> Result<()> {
    let mut config = Map::new();
    config.insert("pubsub#max_items".into(), json!(NODE_MAX.to_string()));
    let create = pubsub::NodeCreateArgs {
        service: Some(SERVICE.into()),
        node: Some(node.to_owned()),
        config: Some(config),
    };
    action::<pubsub::NodeCreate>(conn, "carol", &create).await?;
    let calls = futures::stream::iter(0..n).map(|i| async move {
        let publish = pubsub::PublishArgs {
            service: Some(SERVICE.into()),
            node: node.to_owned(),
            item_id: Some(format!("i{i:05}")),
            payload: crate::payload(i),
            options: None,
        };
        action::<pubsub::Publish>(conn, "carol", &publish).await
    });
    let mut calls = calls.buffer_unordered(16);
    while let Some(r) = calls.next().await {
        r?;
    }
    Ok(())
}

/// Caches each node in turn for `profile` (its first read analyses it and starts
/// the sync, as a frontend's would), waiting for each sync to complete.
async fn sync_nodes(conn: &zbus::Connection, profile: &str, nodes: &[String]) -> Result<usize> {
    let mut total = 0;
    for node in nodes {
        action::<pubsub::ItemsGet>(conn, profile, &items(node, 1)).await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let which = pubsub::ServiceArgs {
                service: Some(SERVICE.into()),
                node: Some(node.clone()),
            };
            let st = action::<cache::Status>(conn, profile, &which).await?;
            let n = &st["nodes"][0];
            match n["sync_state"].as_str() {
                Some("completed") => {
                    total += usize::try_from(n["items"].as_u64().unwrap_or(0)).unwrap_or(0);
                    break;
                }
                Some("error") => bail!("{profile}: sync of {node} failed: {n}"),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("{profile}: sync of {node} still not done: {n}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(total)
}

/// A read by bob, which must be answered from the cache with `expect` items (at
/// most, for RSM pages near a node's end: items published 16 at a time are stored
/// in about, not exactly, the order of their ids).
async fn read(
    conn: &zbus::Connection,
    args: pubsub::ItemsGetArgs,
    expect: usize,
    exact: bool,
) -> Result<()> {
    let page = action::<pubsub::ItemsGet>(conn, "bob", &args).await?;
    let got = page["items"].as_array().map_or(0, Vec::len);
    if page["source"] != "cache" || got > expect || (exact && got != expect) {
        bail!(
            "read {args:?}: {got} items from {} (expected {expect} from the cache)",
            page["source"]
        );
    }
    Ok(())
}

/// Runs the drill, printing one line per step.
pub async fn run(o: &Options) -> Result<()> {
    let users = [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)];
    let server = match o.server.as_str() {
        "prosody" => Server::Prosody(Prosody::start_with_users(&users)?),
        "ejabberd" => Server::Ejabberd(Ejabberd::start_with_users(&users)?),
        other => bail!("--server: prosody or ejabberd, not {other:?}"),
    };
    println!(
        "\n## memory drill: perchd RSS, {} items cached over the network from {}, 2 profiles",
        o.items + 2_000,
        o.server
    );

    let (publisher, nodes) = publish(o, &server).await?;

    let mut perchd = Perchd::start_with_config(&format!("{ANALYSER}\n{}", o.config))?;
    let pid = perchd.pid().context("perchd pid")?;
    let r = Report {
        pid,
        start: Instant::now(),
    };
    r.line("after start")?;
    profile(&perchd, &server, "alice", ALICE_PW)?;
    profile(&perchd, &server, "bob", BOB_PW)?;
    let conn = perchd.bus_connection().await?;
    r.line("alice and bob connected")?;
    if let Some(path) = &o.pause {
        println!("(perchd is pid {pid}: waiting for {path} to exist)");
        while !std::path::Path::new(path).exists() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let t = Instant::now();
    let n = sync_nodes(&conn, "bob", &["bench-2k".to_owned()]).await?;
    r.line(&format!(
        "bob cached a {n}-item node ({:.1} s)",
        t.elapsed().as_secs_f64()
    ))?;

    // Half the nodes each, the two profiles at once.
    let t = Instant::now();
    let (a, b) = nodes.split_at(nodes.len() / 2);
    let (na, nb) = if o.parallel {
        futures::try_join!(sync_nodes(&conn, "alice", a), sync_nodes(&conn, "bob", b))?
    } else {
        (
            sync_nodes(&conn, "alice", a).await?,
            sync_nodes(&conn, "bob", b).await?,
        )
    };
    r.line(&format!(
        "alice and bob cached {} more items, {} nodes, {} ({:.1} s)",
        na + nb,
        nodes.len(),
        if o.parallel {
            "the two profiles at once"
        } else {
            "alice's then bob's"
        },
        t.elapsed().as_secs_f64()
    ))?;

    let bobs = bob_nodes(o, a.len(), b);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    let (node, size) = bobs.last().cloned().context("no node")?;
    for max in 1..=o.reads {
        read(&conn, items(&node, max), max.min(size), true).await?;
    }
    r.line(&format!("{} reads, max 1…{}", o.reads, o.reads))?;

    random_pages(&conn, &bobs, &mut rng, o.reads).await?;
    r.line(&format!(
        "{} reads of random RSM pages (index, after, before; max 1…100; {} nodes)",
        o.reads,
        bobs.len()
    ))?;

    searches(&conn, &mut rng, o.reads).await?;
    r.line(&format!(
        "{} searches (full text, parsed field, by rank; limit 1…200, 1 in 5 with XML)",
        o.reads
    ))?;

    tokio::time::sleep(Duration::from_secs(10)).await;
    r.line("10 s after the reads")?;
    // A clean stop (a profiler attached gets its end).
    drop(conn);
    perchd.stop()?;
    drop(publisher);
    Ok(())
}

/// The publisher: a second perchd (without the cache) where carol fills the
/// 2,000-item node, then the nodes of `o.items` items; returns it and those nodes.
async fn publish(o: &Options, server: &Server) -> Result<(Perchd, Vec<String>)> {
    let t0 = Instant::now();
    let publisher = Perchd::start_with_config("[plugins]\ndisabled = [\"PUBSUB_CACHE\"]\n")?;
    profile(&publisher, server, "carol", CAROL_PW)?;
    let pconn = publisher.bus_connection().await?;
    fill(&pconn, "bench-2k", 2_000).await?;
    let nodes: Vec<String> = (0..o.items.div_ceil(NODE_MAX))
        .map(|k| format!("bench-{k}"))
        .collect();
    let mut left = o.items;
    for node in &nodes {
        let n = left.min(NODE_MAX);
        fill(&pconn, node, n).await?;
        left -= n;
    }
    println!(
        "(published {} items in {:.0} s by a second perchd)",
        o.items + 2_000,
        t0.elapsed().as_secs_f64()
    );
    Ok((publisher, nodes))
}

/// Bob's nodes and their sizes: the 2,000-item one and his half `b` (alice cached
/// the first `a_len` nodes).
fn bob_nodes(o: &Options, a_len: usize, b: &[String]) -> Vec<(String, usize)> {
    let mut bobs: Vec<(String, usize)> = vec![("bench-2k".to_owned(), 2_000)];
    let mut left = o.items - o.items.min(a_len * NODE_MAX);
    for node in b {
        let n = left.min(NODE_MAX);
        bobs.push((node.clone(), n));
        left -= n;
    }
    bobs
}

/// `reads` reads of random RSM pages of bob's nodes (by index, after or before).
async fn random_pages(
    conn: &zbus::Connection,
    bobs: &[(String, usize)],
    rng: &mut Rng,
    reads: usize,
) -> Result<()> {
    for _ in 0..reads {
        let (node, size) = &bobs[rng.below(bobs.len())];
        let max = 1 + rng.below(100);
        let mut args = items(node, max);
        match rng.below(3) {
            0 => args.index = Some(rng.below(*size) as i64),
            1 => args.after = Some(format!("i{:05}", rng.below(size - 1))),
            _ => args.before = Some(format!("i{:05}", 1 + rng.below(size - 1))),
        }
        read(conn, args, max, false).await?;
    }
    Ok(())
}

/// `reads` searches: full text, a parsed field, by rank; 1 in 5 with the XML.
async fn searches(conn: &zbus::Connection, rng: &mut Rng, reads: usize) -> Result<()> {
    let words = [
        crate::RARE,
        crate::COMMON,
        "quick",
        "fox",
        "ordinary",
        "lazy",
        "number",
    ];
    for k in 0..reads {
        let limit = 1 + rng.below(200);
        let mut q = match k % 3 {
            0 => json!({"fts": words[rng.below(words.len())], "limit": limit}),
            1 => json!({"filters": [{"path": "tags", "op": "contains",
                         "value": format!("t{}", rng.below(10))}], "limit": limit}),
            _ => json!({"fts": words[rng.below(words.len())], "limit": limit,
                        "order_by": [{"key": "rank", "desc": true}]}),
        };
        if k % 5 == 0 {
            q["with_xml"] = json!(true);
        }
        let query = q.as_object().cloned().unwrap_or_default();
        let got = action::<cache::Search>(conn, "bob", &cache::SearchArgs { query }).await?;
        if got["items"].as_array().is_none_or(Vec::is_empty) {
            return Err(anyhow!("search {q}: {got}"));
        }
    }
    Ok(())
}
