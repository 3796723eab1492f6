//! Criterion benches of the pubsub cache's database side, on a real SQLite file with
//! 10,000 cached blog items: searches (rare and common full-text terms, a parsed
//! field) and the ingest of one sync page. `cargo bench -p perch-bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use perch_bench::{COMMON, RARE, fresh_db, ingest, search};
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
            b.iter(|| rt.block_on(search(&d.db, q.clone())).expect("search"));
        });
    }
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
