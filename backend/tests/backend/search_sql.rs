//! Property: every search the pubsub cache accepts runs on SQLite with Perch's schema
//! (and on PostgreSQL: `every_search_runs_or_is_refused_as_a_bad_query_on_postgres`).
//!
//! Why here and not beside `search::build`: the statement is only proven by the real
//! SQLite with the real migrations (`open_sqlite`), which the plugins crate does not
//! see. A search either is refused naming its bad part, or runs; the only error
//! SQLite may still give is about the full-text query, which `dao::fts_error` then
//! confirms and the action reports as a bad `query.fts` (doc/reliability.rst,
//! "Property tests").

use perch_plugin_api::PluginStore;
use perch_plugins_pubsub::pubsub_cache::dao::{self, NewItem};
use perch_plugins_pubsub::pubsub_cache::search::{self, Query};
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Parsed data of every shape a search meets: numbers, dates, text, lists, objects,
/// keys that need quoting, none at all.
const PARSED: &[Option<&str>] = &[
    Some(r#"{"n": 3, "s": "abc", "d": "2024-01-01", "tags": ["a", "b"], "o": {"x": 1}}"#),
    Some(
        r#"{"n": 2.5, "s": "ABC", "d": "2025-06-01T10:00:00Z", "tags": [], "a\"b": 1, "a\\b": 2}"#,
    ),
    Some(r#"{"n": "x", "tags": "a", "a.b": {"c": [1, 2]}, "": 0}"#),
    Some("[1, 2, 3]"),
    None,
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,6}",
        1 => "[a-z\"\\\\.$\\[\\]*# -]{1,8}",
        1 => any::<String>(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!("2024-06-01")),
    ]
}

fn path() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        select(&["n", "s", "d", "tags", "o", "x", "a\"b", "a\\b", "a.b"][..]).prop_map(Value::from),
        text().prop_map(Value::from),
        (0..4u64).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
    ];
    prop_oneof![
        "[a-z\"\\\\]{1,3}(\\.[a-z]{1,3}){0,2}".prop_map(Value::from),
        prop::collection::vec(key, 1..4).prop_map(Value::from),
    ]
}

/// Well-formed searches over the items above, with keys and values of every kind.
fn query() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        3 => scalar(),
        1 => prop::collection::vec(scalar(), 1..4).prop_map(Value::from),
    ];
    let filter = (path(), select(search::OPERATORS), value)
        .prop_map(|(p, o, v)| json!({"path": p, "op": o, "value": v}));
    let order = (
        select(&["creation", "modification", "item_id", "rank", "path"][..]),
        path(),
        any::<bool>(),
    )
        .prop_map(|(k, p, d)| json!({"key": k, "path": p, "desc": d}));
    (
        of(prop_oneof!["[a-z]{1,6}", "[a-z]{1,6} (AND|OR|NOT) [a-z*]{1,6}", text()]),
        prop::collection::vec(filter, 0..4),
        prop::collection::vec(order, 0..3),
        (of(any::<u64>()), of(prop_oneof![0..10u64, any::<u64>()])),
    )
        .prop_map(|(fts, filters, order_by, (limit, index))| {
            json!({"fts": fts, "filters": filters, "order_by": order_by, "limit": limit, "index": index})
        })
}

/// A database with Perch's schema and one item per [`PARSED`] (`i0`, `i1`, …).
fn database(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> PluginStore {
    rt.block_on(async {
        let (db, pid) = super::db_with_profile(dir, "alice", "alice@localhost").await;
        with_items(db, pid).await
    })
}

/// The same on a harness PostgreSQL.
fn pg_database(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    server: &perch_tests::Postgres,
) -> PluginStore {
    rt.block_on(async {
        let target = perch_backend::db::Target::Postgres(server.url());
        let db = perch_backend::db::open(&target).await.unwrap();
        let pid = super::add_profile(&db, dir, "alice", "alice@localhost").await;
        with_items(db, pid).await
    })
}

/// `db`'s cache with one item per [`PARSED`] (`i0`, `i1`, …) on a node of `pid`.
async fn with_items(db: sea_orm::DatabaseConnection, pid: i32) -> PluginStore {
    {
        let db = PluginStore::new(
            db,
            "PUBSUB_CACHE",
            perch_plugins_pubsub::pubsub_cache::TABLES,
        );
        let node = dao::node_ensure(&db, pid, "alice@localhost", "n")
            .await
            .unwrap();
        let items = PARSED
            .iter()
            .enumerate()
            .map(|(i, p)| NewItem {
                item_id: format!("i{i}"),
                publisher: None,
                data: format!("<x xmlns='urn:t'>word{i} abc</x>"),
                parsed: p.map(str::to_owned),
                text: format!("word{i} abc"),
            })
            .collect();
        dao::store_items(&db, node.id, 1, items, true)
            .await
            .unwrap();
        db
    }
}

/// Keys holding `"`, `\` or `.` select the items that have them (a `"` was refused
/// by SQLite as a bad JSON path).
#[test]
fn keys_that_need_quoting_select_their_items() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = database(&rt, dir.path());
    let ids = |filter: Value| -> Vec<String> {
        let q: Query = serde_json::from_value(json!({"filters": [filter]})).unwrap();
        let b = search::build(&q, &[]).unwrap();
        let rows = rt.block_on(dao::query(&db, &b.sql, b.values)).unwrap();
        rows.iter()
            .map(|r| r.try_get::<String>("", "item_id").unwrap())
            .collect()
    };
    assert_eq!(
        ids(json!({"path": ["a\"b"], "op": "eq", "value": 1})),
        ["i1"]
    );
    assert_eq!(
        ids(json!({"path": ["a\\b"], "op": "eq", "value": 2})),
        ["i1"]
    );
    assert_eq!(
        ids(json!({"path": ["a.b", "c"], "op": "contains", "value": 2})),
        ["i2"]
    );
    assert_eq!(ids(json!({"path": "o.x", "op": "eq", "value": 1})), ["i0"]);
}

/// A full-text query `word:` (a column filter on a column that does not exist), an
/// unterminated string or a lone `*` were reported as a storage failure, not as the
/// frontend's bad `query.fts`: the query alone tells.
#[test]
fn a_bad_column_filter_is_a_full_text_query_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = database(&rt, dir.path());
    for fts in ["nope: abc", "abc AND", "\"abc", "*", " * "] {
        let q: Query = serde_json::from_value(json!({"fts": fts})).unwrap();
        let b = search::build(&q, &[]).unwrap();
        let e = rt.block_on(dao::query(&db, &b.sql, b.values)).unwrap_err();
        let why = rt.block_on(dao::fts_error(&db, fts));
        assert!(why.is_some(), "{fts}: {e}");
    }
    assert_eq!(rt.block_on(dao::fts_error(&db, "abc OR word1")), None);
    let q: Query = serde_json::from_value(json!({"fts": "text: abc"})).unwrap();
    let b = search::build(&q, &[]).unwrap();
    assert_eq!(
        rt.block_on(dao::query(&db, &b.sql, b.values))
            .unwrap()
            .len(),
        PARSED.len()
    );
}

#[test]
fn every_search_runs_or_is_refused_as_a_bad_query() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = database(&rt, dir.path());
    runs_or_is_refused(&rt, &db);
}

/// The same on PostgreSQL: its full-text translation and its field filters
/// (`filters_pg`, the functions of migration 060) never fail on what a frontend
/// may send — a key or a value of any text, an index beyond any array.
#[test]
fn every_search_runs_or_is_refused_as_a_bad_query_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = perch_tests::Postgres::start().expect("starting PostgreSQL");
    let db = pg_database(&rt, dir.path(), &server);
    runs_or_is_refused(&rt, &db);
}

/// Every generated search is refused by `build_for` or runs on `db`, or fails on its
/// full-text query alone (`dao::fts_error`).
fn runs_or_is_refused(rt: &tokio::runtime::Runtime, db: &PluginStore) {
    use sea_orm::ConnectionTrait;
    // 256 cases, or PROPTEST_CASES for a deeper search.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    let result = runner.run(&query(), |json| {
        let q: Query = serde_json::from_value(json.clone())
            .map_err(|e| TestCaseError::fail(format!("generated {json}: {e}")))?;
        let Ok(built) = search::build_for(&q, &[], db.get_database_backend()) else {
            return Ok(());
        };
        let beyond = q.index.is_some_and(|i| i >= PARSED.len() as u64);
        match rt.block_on(dao::query(db, &built.sql, built.values)) {
            Ok(rows) => {
                prop_assert!(rows.len() <= PARSED.len());
                prop_assert!(!beyond || rows.is_empty(), "index past the end: {json}");
            }
            Err(e) => {
                let m = e.to_string();
                let fts = q
                    .fts
                    .as_deref()
                    .and_then(|f| rt.block_on(dao::fts_error(db, f)));
                prop_assert!(fts.is_some(), "{json}: {m}\n{}", built.sql);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
