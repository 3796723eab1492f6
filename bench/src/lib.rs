//! What the benches share: a real SQLite file with Perch's schema, generated blog
//! items, the cache's own ingest path and a raw insert to compare it with, and
//! percentiles.
//!
//! Why the cache's own code and not a copy: the figures must be those of what perchd
//! runs (`pubsub_cache::dao`, `service::to_new`, `search::build`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use perch_backend::db::open_sqlite;
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};
use perch_plugins::pubsub_cache::{dao, search, service};
use perch_plugins::xep_0060::Item;
use perch_plugins::xep_0277;
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
    pub profile_id: i32,
    pub node_id: i64,
}

pub async fn fresh_db() -> Result<Db> {
    let dir = tempfile::Builder::new().prefix("perch-bench-").tempdir()?;
    let db = open_sqlite(&dir.path().join("perch.db")).await?;
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
    let node = dao::node_ensure(&db, profile_id, "alice@localhost", xep_0277::NODE)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Db {
        dir,
        db,
        profile_id,
        node_id: node.id,
    })
}

/// Stores items `range` the way a sync does: pages of `page`, each parsed on a
/// blocking thread (XEP-0277 analyser, text for FTS) while the previous one is
/// written in one transaction. Returns the time taken.
pub async fn ingest(d: &Db, range: std::ops::Range<usize>, page: usize) -> Result<Duration> {
    let start = Instant::now();
    let ids: Vec<usize> = range.collect();
    let pages: Vec<Vec<usize>> = ids.chunks(page).map(<[usize]>::to_vec).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<dao::NewItem>>(2);
    let producer = tokio::spawn(async move {
        for p in pages {
            let parsed = tokio::task::spawn_blocking(move || {
                let analyser = xep_0277::analyser();
                p.iter()
                    .map(|i| {
                        service::to_new(
                            &Item {
                                id: format!("i{i:07}"),
                                publisher: None,
                                payload: Some(payload(*i)),
                            },
                            Some(&analyser),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(items) = parsed else { return };
            if tx.send(items).await.is_err() {
                return;
            }
        }
    });
    while let Some(items) = rx.recv().await {
        dao::store_items(&d.db, d.node_id, 1, &items, true)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    producer.await?;
    Ok(start.elapsed())
}

/// Only the parsing part of [`ingest`]: XML, the analyser's JSON, the indexed text.
pub fn parse_only(range: std::ops::Range<usize>) -> Duration {
    let analyser = xep_0277::analyser();
    let start = Instant::now();
    let mut bytes = 0;
    for i in range {
        let n = service::to_new(
            &Item {
                id: format!("i{i:07}"),
                publisher: None,
                payload: Some(payload(i)),
            },
            Some(&analyser),
        );
        bytes += n.text.len();
    }
    std::hint::black_box(bytes);
    start.elapsed()
}

/// The same rows, already prepared, inserted into a plain table (no FTS, no upsert,
/// no parsing): the floor the cache's ingest is compared with.
pub async fn raw_insert(d: &Db, range: std::ops::Range<usize>, page: usize) -> Result<Duration> {
    d.db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS raw_item (id INTEGER PRIMARY KEY, node_id INTEGER, item_id TEXT, \
         data TEXT, parsed TEXT, text TEXT, seq INTEGER, created INTEGER)",
    )
    .await?;
    let analyser = xep_0277::analyser();
    let rows: Vec<_> = range
        .map(|i| {
            service::to_new(
                &Item {
                    id: format!("i{i:07}"),
                    publisher: None,
                    payload: Some(payload(i)),
                },
                Some(&analyser),
            )
        })
        .collect();
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
                    it.parsed.as_ref().map(|p| p.to_string()).into(),
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
pub async fn search(db: &DatabaseConnection, query: serde_json::Value) -> Result<usize> {
    let q: search::Query = serde_json::from_value(query)?;
    let built = search::build(&q, &[]).map_err(|e| anyhow::anyhow!(e))?;
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
