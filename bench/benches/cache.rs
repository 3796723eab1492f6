//! Criterion benches of the pubsub cache's database side, on a real SQLite file with
//! 10,000 cached blog items: searches (rare and common full-text terms, a parsed
//! field) and the ingest of one sync page. `cargo bench -p perch-bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use perch_bench::{COMMON, RARE, fresh_db, ingest, search};
use perch_plugins_pubsub::pubsub_cache::dao;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let d = rt.block_on(async {
        let d = fresh_db().await.expect("database");
        ingest(&d, 0..10_000, 250).await.expect("ingest");
        d
    });
    let newest = json!([{"key": "creation", "desc": true}]);
    for (name, q) in [
        (
            "search fts 1% term, 10k",
            json!({"fts": RARE, "limit": 20, "order_by": newest}),
        ),
        (
            "search fts common term, 10k",
            json!({"fts": COMMON, "limit": 20, "order_by": newest}),
        ),
        (
            "search parsed field (tags contains), 10k",
            json!({"filters": [{"path": "tags", "op": "contains", "value": "t3"}], "limit": 20, "order_by": newest}),
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| rt.block_on(search(&d.store, q.clone())).expect("search"));
        });
    }
    // The newest 20 items of the node, the cache's hot read (`dao::newest`), through
    // the daemon's bare connection and through the plugin's store, which checks each
    // statement's tables (once per SQL text, then a hash lookup).
    let newest_20 = || {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT item_id, publisher, data, (SELECT COUNT(*) FROM pubsub_item WHERE node_id = ?) AS total \
             FROM pubsub_item WHERE node_id = ? ORDER BY seq DESC LIMIT ?",
            [d.node_id.into(), d.node_id.into(), 20i64.into()],
        )
    };
    c.bench_function("20-item read, bare connection", |b| {
        b.iter(|| rt.block_on(d.db.query_all_raw(newest_20())).expect("read"));
    });
    c.bench_function("20-item read, plugin store", |b| {
        b.iter(|| {
            rt.block_on(d.store.query_all_raw(newest_20()))
                .expect("read")
        });
    });
    c.bench_function("20-item read, dao::newest", |b| {
        b.iter(|| {
            rt.block_on(dao::newest(&d.store, d.node_id, 20))
                .expect("read")
        });
    });
    let mut next = 10_000;
    c.bench_function("ingest one page of 250 items", |b| {
        b.iter(|| {
            rt.block_on(ingest(&d, next..next + 250, 250))
                .expect("ingest");
            next += 250;
        });
    });
}

criterion_group! {
    name = cache;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(cache);
