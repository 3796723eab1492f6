//! What the benches share: a real SQLite file with Perch's schema, generated blog
//! items, the cache's own ingest path and a raw insert to compare it with, and
//! percentiles.
//!
//! Why the cache's own code and not a copy: the figures must be those of what perchd
//! runs (`pubsub_cache::dao`, `service::to_new`, `search::build`).

pub mod cached;
pub mod calls;
pub mod drill;
pub mod engines;
pub mod everyday;
pub mod libervia_bridge;
pub mod messages;
pub mod omemo;
pub mod profiles;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use perch_backend::db::open_sqlite;
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};
use perch_plugin_api::PluginStore;
use perch_plugin_api::minidom::Element;
use perch_plugins_pubsub::pubsub_cache::{self, dao, search, service};
use perch_plugins_pubsub::xep_0060;
use perch_plugins_pubsub::xep_0277;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tempfile::TempDir;

/// The term in 1% of the items.
pub const RARE: &str = "zanzibar";
/// The term in every item.
pub const COMMON: &str = "perch";

/// A blog post (an Atom entry, as XEP-0277 publishes them); 1 in 100 mentions [`RARE`].
pub fn payload(i: usize) -> String {
    let rare = if i.is_multiple_of(100) {
        RARE
    } else {
        "ordinary"
    };
    format!(
        "<entry xmlns='http://www.w3.org/2005/Atom'><title type='text'>Post {i} about {rare}</title>\
         <id>tag:bench,2026:{i}</id><published>2026-01-01T00:00:{s:02}Z</published>\
         <updated>2026-01-01T00:00:{s:02}Z</updated><author><name>Alice</name>\
         <uri>xmpp:alice@localhost</uri></author><content type='text'>Some words of post {i}: \
         {COMMON} the quick brown fox jumps over the lazy dog, number {i}, {rare}.</content>\
         <category term='t{t}'/><category term='{COMMON}'/></entry>",
        s = i % 60,
        t = i % 10,
    )
}

/// A fresh database file with Perch's schema, one profile and one node.
pub struct Db {
    pub dir: TempDir,
    pub db: DatabaseConnection,
    /// The pubsub cache's store over `db`, as the plugin has it.
    pub store: PluginStore,
    pub profile_id: i32,
    pub node_id: i64,
}

pub async fn fresh_db() -> Result<Db> {
    fresh_db_on(None).await
}

/// [`fresh_db`] on the database at `url` (PostgreSQL) when given, else a SQLite file.
pub async fn fresh_db_on(url: Option<&str>) -> Result<Db> {
    let dir = tempfile::Builder::new().prefix("perch-bench-").tempdir()?;
    let db = match url {
        Some(u) => {
            perch_backend::db::open(&perch_backend::db::Target::Postgres(u.to_owned())).await?
        }
        None => open_sqlite(&dir.path().join("perch.db")).await?,
    };
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key"))?;
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    profiles
        .create(NewProfile {
            name: "alice".into(),
            jid: "alice@localhost".into(),
            password: Password::new("bench-password".into()),
            server: None,
            ca_file: None,
            insecure: false,
            autoconnect: false,
        })
        .await?;
    let profile_id = profiles.get("alice").await?.id;
    let store = PluginStore::new(db.clone(), "PUBSUB_CACHE", pubsub_cache::TABLES);
    let node = dao::node_ensure(&store, profile_id, "alice@localhost", xep_0277::NODE)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Db {
        dir,
        db,
        store,
        profile_id,
        node_id: node.id,
    })
}

/// Items per batch of pre-parsed pages: the pages of a batch are built before its
/// ingest is timed, and 10,000 items' trees stay small beside a 1M-item run.
const BATCH: usize = 10_000;

/// Sync pages as the stream hands them over: the `<pubsub/>` child of an items
/// reply, already parsed (XML parsing is the stream reader's work, done for every
/// stanza, cache or not; it is timed apart, see [`stream_parse`]).
pub fn pages(range: std::ops::Range<usize>, page: usize) -> Vec<Element> {
    let ids: Vec<usize> = range.collect();
    ids.chunks(page)
        .map(|p| page_xml(p).parse().expect("bench page"))
        .collect()
}

/// The `<pubsub/>` element of an items reply carrying items `ids`, as XML.
fn page_xml(ids: &[usize]) -> String {
    let mut xml = format!(
        "<pubsub xmlns='{}'><items node='{}'>",
        xep_0060::xml::NS,
        xep_0277::NODE
    );
    for i in ids {
        xml.push_str(&format!("<item id='i{i:07}'>{}</item>", payload(*i)));
    }
    xml.push_str("</items></pubsub>");
    xml
}

/// How long the stream's parser takes to read the pages' XML (for reference: not
/// part of the cache's ingest).
pub fn stream_parse(range: std::ops::Range<usize>, page: usize) -> Duration {
    let mut total = Duration::ZERO;
    let ids: Vec<usize> = range.collect();
    for p in ids.chunks(page) {
        let xml = page_xml(p);
        let start = Instant::now();
        let e: Element = xml.parse().expect("bench page");
        total += start.elapsed();
        std::hint::black_box(e);
    }
    total
}

/// What the sync does with a page before writing it: read the items of the reply
/// (payloads kept as elements and serialised for storage), then analyse each. (A
/// sync reads the reply in its fetch stage and analyses on a blocking thread; both
/// run beside the writer, as this does.)
pub fn prepare(reply: Element) -> Vec<dao::NewItem> {
    let analyser = xep_0277::analyser();
    let (items, _) = xep_0060::xml::parse_items(Some(reply)).expect("bench page");
    items
        .iter()
        .map(|i| service::to_new(i, Some(&analyser)))
        .collect()
}

/// Stores items `range` the way a sync does: pages of `page`, each read and
/// analysed on a blocking thread while the previous one is written in one
/// transaction. Returns the time taken (the pages' XML parsing excluded).
pub async fn ingest(d: &Db, range: std::ops::Range<usize>, page: usize) -> Result<Duration> {
    let mut total = Duration::ZERO;
    let mut at = range.start;
    while at < range.end {
        let batch = pages(at..(at + BATCH).min(range.end), page);
        at += BATCH;
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<dao::NewItem>>(2);
        let producer = tokio::spawn(async move {
            for p in batch {
                let Ok(items) = tokio::task::spawn_blocking(move || prepare(p)).await else {
                    return;
                };
                if tx.send(items).await.is_err() {
                    return;
                }
            }
        });
        while let Some(items) = rx.recv().await {
            dao::store_items(&d.store, d.node_id, 1, items, true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        producer.await?;
        total += start.elapsed();
    }
    Ok(total)
}

/// Only the preparing part of [`ingest`]: items read from the replies (payloads
/// serialised), the analyser's JSON, the indexed text.
pub fn parse_only(range: std::ops::Range<usize>) -> Duration {
    let mut total = Duration::ZERO;
    let mut at = range.start;
    while at < range.end {
        let batch = pages(at..(at + BATCH).min(range.end), 250);
        at += BATCH;
        let start = Instant::now();
        for p in batch {
            std::hint::black_box(prepare(p));
        }
        total += start.elapsed();
    }
    total
}

/// The same rows, already prepared, inserted into a plain table (no FTS, no upsert,
/// no parsing): the floor the cache's ingest is compared with.
pub async fn raw_insert(d: &Db, range: std::ops::Range<usize>, page: usize) -> Result<Duration> {
    d.db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS raw_item (id INTEGER PRIMARY KEY, node_id INTEGER, item_id TEXT, \
         data TEXT, parsed TEXT, text TEXT, seq INTEGER, created INTEGER)",
    )
    .await?;
    let rows: Vec<dao::NewItem> = pages(range, page).into_iter().flat_map(prepare).collect();
    let start = Instant::now();
    for (p, chunk) in rows.chunks(page).enumerate() {
        let txn = sea_orm::TransactionTrait::begin(&d.db).await?;
        for (c, sub) in chunk.chunks(50).enumerate() {
            let mut sql = String::from(
                "INSERT INTO raw_item (node_id, item_id, data, parsed, text, seq, created) VALUES ",
            );
            let mut v: Vec<sea_orm::Value> = Vec::new();
            for (k, it) in sub.iter().enumerate() {
                if k > 0 {
                    sql.push(',');
                }
                sql.push_str("(?, ?, ?, ?, ?, ?, ?)");
                let seq = i64::try_from(p * page + c * 50 + k).unwrap_or(0);
                v.extend([
                    d.node_id.into(),
                    it.item_id.clone().into(),
                    it.data.clone().into(),
                    it.parsed.clone().into(),
                    it.text.clone().into(),
                    seq.into(),
                    seq.into(),
                ]);
            }
            txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, &sql, v))
                .await?;
        }
        txn.commit().await?;
    }
    Ok(start.elapsed())
}

/// A search as the `pubsub_cache_search` action runs it: build, then query.
pub async fn search(db: &PluginStore, query: serde_json::Value) -> Result<usize> {
    let q: search::Query = serde_json::from_value(query)?;
    let backend = db.get_database_backend();
    let built = search::build_for(&q, &[], backend).map_err(|e| anyhow::anyhow!(e))?;
    let rows = dao::query(db, &built.sql, built.values)
        .await
        .context("search")?;
    Ok(rows.len())
}

/// p50 and p95 of `samples`.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    (at(0.50), at(0.95))
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
