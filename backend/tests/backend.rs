//! Integration tests of perch-backend at its boundaries: the database file, the
//! config file and the `perchd` binary itself (no XMPP server needed here, but for one
//! Libervia params test on Prosody; the end-to-end tests in `tests/` cover sessions).

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

use std::process::Command;
use std::sync::Arc;

use perch_backend::db::{DbOpenError, open_sqlite};
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};
use sea_orm::{ConnectionTrait, Statement};

fn perchd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perchd"))
}

#[tokio::test]
async fn migrations_apply_once_and_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perch.db");
    let db = open_sqlite(&path).await.unwrap();
    let mode = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "journal_mode")
        .unwrap();
    assert_eq!(mode, "wal");
    // A second open finds nothing to do.
    db.close().await.unwrap();
    let db = open_sqlite(&path).await.unwrap();
    // Pretend a newer Perch migrated this database.
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_future', 0)",
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();
    match open_sqlite(&path).await {
        Err(DbOpenError::Newer { unknown, .. }) => {
            assert!(unknown.contains("m20991231_000001_future"))
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a database from a newer Perch was accepted"),
    }
    assert_eq!(
        before,
        std::fs::read(&path).unwrap(),
        "refused database was modified"
    );
}

#[tokio::test]
async fn not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perch.db");
    std::fs::write(
        &path,
        b"this is not sqlite at all, just some text that is long enough",
    )
    .unwrap();
    let Err(e) = open_sqlite(&path).await else {
        panic!("garbage accepted as a database")
    };
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[tokio::test]
async fn passwords_are_sealed_at_rest_and_profiles_validated() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    let new = |name: &str, jid: &str| NewProfile {
        name: name.into(),
        jid: jid.into(),
        password: Password::new("s3cret-passw0rd".into()),
        server: Some("127.0.0.1:5222".into()),
        ca_file: None,
        insecure: false,
        autoconnect: true,
    };
    let first = profiles
        .create(new("alice", "alice@example.org"))
        .await
        .unwrap();
    assert!(first.default, "the first profile becomes the default");
    let second = profiles
        .create(new("bob", "bob@example.org"))
        .await
        .unwrap();
    assert!(!second.default);
    assert_eq!(
        profiles
            .create(new("bob", "bob@example.org"))
            .await
            .unwrap_err()
            .name(),
        "ProfileExists"
    );
    assert_eq!(
        profiles
            .create(new("carol", "not-an-account"))
            .await
            .unwrap_err()
            .name(),
        "InvalidJid"
    );
    let mut bad_ca = new("dave", "dave@example.org");
    bad_ca.ca_file = Some("/nonexistent/ca.pem".into());
    let e = profiles.create(bad_ca).await.unwrap_err();
    assert_eq!(e.name(), "BadArgument");
    assert!(e.to_string().contains("ca_file"), "{e}");

    // Nothing in the database file holds the password in clear.
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT password FROM profile",
        ))
        .await
        .unwrap();
    for r in rows {
        let stored: String = r.try_get("", "password").unwrap();
        assert!(
            stored.starts_with("v1:") && !stored.contains("s3cret"),
            "{stored}"
        );
    }
    let m = profiles.get("alice").await.unwrap();
    assert_eq!(
        profiles.credentials(&m).unwrap().password.expose(),
        "s3cret-passw0rd"
    );

    profiles.set_default("bob").await.unwrap();
    assert_eq!(profiles.resolve("").await.unwrap().name, "bob");
    profiles.delete("bob").await.unwrap();
    assert_eq!(
        profiles.resolve("").await.unwrap_err().name(),
        "NoDefaultProfile"
    );
    assert_eq!(
        profiles.get("bob").await.unwrap_err().name(),
        "UnknownProfile"
    );
}

#[test]
fn bad_config_stops_perchd_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("perchd.toml");
    std::fs::write(&cfg, "[xmpp]\nconect_attempts = 3\n").unwrap();
    let out = perchd()
        .arg("--allow-root")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("perchd.toml") && err.contains("conect_attempts"),
        "{err}"
    );

    let missing = perchd()
        .args(["--allow-root", "--config", "/nonexistent/perchd.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/perchd.toml"));
}

#[test]
fn root_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = perchd()
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .env_remove("PERCH_ALLOW_ROOT")
        .args(["--bus", "none", "--socket", "none", "--data-dir"])
        // A file where the data directory should be: past the root check, the
        // daemon stops right away instead of running.
        .arg(
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
                + "/Cargo.toml",
        )
        .output()
        .unwrap();
    if perch_backend::paths::effective_uid() == 0 {
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to run as root"));
    } else {
        // As a normal user it gets past the root check and fails on the data dir.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("refusing to run as root"), "{err}");
        assert!(err.contains("Cargo.toml"), "{err}");
    }
}

/// The database in `dir` with one profile, `name` (account `jid`); its id.
async fn db_with_profile(
    dir: &std::path::Path,
    name: &str,
    jid: &str,
) -> (sea_orm::DatabaseConnection, i32) {
    let db = open_sqlite(&dir.join("perch.db")).await.unwrap();
    let id = add_profile(&db, dir, name, jid).await;
    (db, id)
}

/// A profile to create: `name` for `jid`, a password, nothing else set.
fn new_profile(name: &str, jid: &str) -> NewProfile {
    NewProfile {
        name: name.into(),
        jid: jid.into(),
        password: Password::new("pw-pw-pw-pw".into()),
        server: None,
        ca_file: None,
        insecure: false,
        autoconnect: false,
    }
}

/// Creates a profile in `db` (its secret key in `dir`); its id.
async fn add_profile(
    db: &sea_orm::DatabaseConnection,
    dir: &std::path::Path,
    name: &str,
    jid: &str,
) -> i32 {
    let sealer = Sealer::load_or_create(&dir.join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    profiles.create(new_profile(name, jid)).await.unwrap();
    profiles.get(name).await.unwrap().id
}

/// A database in a temp dir with one profile, `alice`; its id.
async fn db_with_alice() -> (tempfile::TempDir, sea_orm::DatabaseConnection, i32) {
    let dir = tempfile::tempdir().unwrap();
    let (db, id) = db_with_profile(dir.path(), "alice", "alice@example.org").await;
    (dir, db, id)
}

#[tokio::test]
async fn jobs_left_running_are_interrupted_at_start_and_old_ones_pruned() {
    use perch_backend::jobs::Jobs;
    use std::time::Duration;

    let (dir, db, alice) = db_with_alice().await;
    let path = dir.path().join("perch.db");
    let (events, _rx) = tokio::sync::broadcast::channel(64);
    let jobs = Jobs::new(db.clone(), events.clone(), Duration::from_secs(3600));
    let done = jobs
        .start(alice, "alice", "test", "kind", "finishes")
        .await
        .unwrap();
    let done_id = done.id().to_owned();
    done.progress("half way", Some(50.0), serde_json::json!({"n": 1}))
        .await;
    done.finish(serde_json::json!({"ok": true})).await;
    let cut = jobs
        .start(alice, "alice", "test", "kind", "cut off by a stop")
        .await
        .unwrap();
    let cut_id = cut.id().to_owned();
    cut.progress("working", Some(10.0), serde_json::Value::Null)
        .await;
    // perchd dies here: the handle never reports an end.
    std::mem::forget(cut);
    db.close().await.unwrap();

    // The next perchd: the running job becomes interrupted, the finished one stays.
    let db = open_sqlite(&path).await.unwrap();
    let jobs = Jobs::new(db.clone(), events.clone(), Duration::from_secs(3600));
    assert_eq!(jobs.recover().await.unwrap(), 1);
    let cut = jobs.get(&cut_id).await.unwrap();
    assert_eq!(cut.state, "interrupted");
    assert!(cut.error.unwrap().contains("perchd stopped"));
    assert_eq!(jobs.log(&cut_id).await.unwrap().len(), 1);
    let done = jobs.get(&done_id).await.unwrap();
    assert_eq!(done.state, "finished");
    assert_eq!(done.result.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(jobs.prune().await.unwrap(), 0, "young jobs were pruned");

    // With nothing to keep, both ended jobs go, their logs with them; a running one stays.
    let jobs = Jobs::new(db.clone(), events, Duration::ZERO);
    let running = jobs
        .start(alice, "alice", "test", "kind", "still running")
        .await
        .unwrap();
    // Ended jobs go once their end is in the past (microseconds: at once, or at the
    // next look).
    let mut pruned = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pruned < 2 && std::time::Instant::now() < deadline {
        pruned += jobs.prune().await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(pruned, 2);
    assert_eq!(jobs.get(&done_id).await.unwrap_err().name(), "UnknownJob");
    assert_eq!(jobs.log(&cut_id).await.unwrap_err().name(), "UnknownJob");
    let left = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM job_progress",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(left, 0, "progress records outlived their jobs");
    assert_eq!(jobs.get(running.id()).await.unwrap().state, "running");
    running.finish(serde_json::Value::Null).await;
}

/// Rows matching an FTS query in the cache's full-text index.
async fn fts_ids(db: &sea_orm::DatabaseConnection, query: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT i.item_id FROM pubsub_item_fts JOIN pubsub_item i ON i.id = pubsub_item_fts.rowid \
         WHERE pubsub_item_fts MATCH ? ORDER BY i.item_id",
        [query.into()],
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<String>("", "item_id").unwrap())
    .collect()
}

/// The cache's contentless full-text index (migration 006) follows the items: a page
/// with one id twice indexes the last, an edit replaces the text, a retraction
/// removes it; and a database cached under migration 005 keeps its index.
#[tokio::test]
async fn cache_full_text_index_follows_items_and_survives_migration_006() {
    use perch_backend::db::{Migrator, MigratorTrait};
    use perch_plugins_pubsub::pubsub_cache::dao::{self, NewItem};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perch.db");
    // A database at migration 005, with one cached item and its indexed text.
    let old = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    Migrator::up(&old, Some(5)).await.unwrap();
    old.execute_unprepared(
        "INSERT INTO profile (id, name, jid, password, created_at) \
         VALUES (1, 'alice', 'alice@localhost', 'sealed', 0); \
         INSERT INTO pubsub_node (id, profile_id, service, name, sync_state_updated) \
         VALUES (1, 1, 'alice@localhost', 'n', 0); \
         INSERT INTO pubsub_item (node_id, item_id, data, text, seq, generation, created, updated) \
         VALUES (1, 'old', '<x xmlns=''urn:t''>kumquat</x>', 'kumquat', 1, 0, 0, 0);",
    )
    .await
    .unwrap();
    old.close().await.unwrap();
    let db = open_sqlite(&path).await.unwrap();
    assert_eq!(fts_ids(&db, "kumquat").await, ["old"], "index kept by 006");

    let item = |id: &str, text: &str| NewItem {
        item_id: id.into(),
        publisher: None,
        data: format!("<x xmlns='urn:t'>{text}</x>"),
        parsed: None,
        text: text.into(),
    };
    let page = vec![
        item("a", "first apple"),
        item("b", "cherry"),
        item("a", "second banana"),
    ];
    let store = || {
        perch_plugin_api::PluginStore::new(
            db.clone(),
            "PUBSUB_CACHE",
            perch_plugins_pubsub::pubsub_cache::TABLES,
        )
    };
    assert_eq!(
        dao::store_items(&store(), 1, 1, page, true).await.unwrap(),
        3
    );
    assert_eq!(fts_ids(&db, "banana").await, ["a"]);
    assert!(
        fts_ids(&db, "apple").await.is_empty(),
        "replaced in the page"
    );
    // An edit from a notification replaces the indexed text.
    dao::store_items(&store(), 1, 1, vec![item("b", "damson")], false)
        .await
        .unwrap();
    assert!(fts_ids(&db, "cherry").await.is_empty());
    assert_eq!(fts_ids(&db, "damson").await, ["b"]);
    // Retracted: gone from the index too.
    dao::delete_items(&store(), 1, &["a".into(), "old".into()])
        .await
        .unwrap();
    assert!(fts_ids(&db, "banana OR kumquat").await.is_empty());
    let entries = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM pubsub_item_fts WHERE pubsub_item_fts MATCH 'damson OR banana OR apple OR cherry OR kumquat'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(entries, 1, "only b's entry is left");
    // Undone (back to 004's index, which comes back empty) and redone: items are
    // indexed again as they are stored.
    Migrator::down(&db, Some(1)).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    // A store made after the schema changed (a plugin's is made at start, after the
    // migrations).
    dao::store_items(&store(), 1, 1, vec![item("c", "elderberry")], true)
        .await
        .unwrap();
    assert_eq!(fts_ids(&db, "elderberry").await, ["c"]);
}

/// Fresh databases used at once by several connections while the WAL checkpointer
/// runs: every statement sees the schema. (A checkpoint run as a new connection's
/// first statement once left it seeing no tables, in about one start in ten.)
#[tokio::test]
async fn fresh_databases_stay_usable_while_checkpointed() {
    for round in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
        let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
        let profiles = Profiles::new(db.clone(), Arc::new(sealer));
        for name in ["alice", "bob"] {
            profiles
                .create(NewProfile {
                    name: name.into(),
                    jid: format!("{name}@example.org"),
                    password: Password::new("s3cret-passw0rd".into()),
                    server: None,
                    ca_file: None,
                    insecure: false,
                    autoconnect: false,
                })
                .await
                .unwrap_or_else(|e| panic!("round {round}: create {name}: {e}"));
        }
        // Let the checkpointer take a connection of its own, then use them all.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (a, b, c) = tokio::join!(
            profiles.set_default("bob"),
            profiles.get("bob"),
            profiles.delete("alice"),
        );
        a.unwrap_or_else(|e| panic!("round {round}: set_default: {e}"));
        b.unwrap_or_else(|e| panic!("round {round}: get: {e}"));
        c.unwrap_or_else(|e| panic!("round {round}: delete: {e}"));
        db.close().await.unwrap();
    }
}

// The other suites of this crate, in this one test binary (one per crate: each
// binary links the whole backend again).
#[path = "backend/cache_memory.rs"]
mod cache_memory;
#[path = "backend/client_contract.rs"]
mod client_contract;
#[path = "backend/concurrent_writers.rs"]
mod concurrent_writers;
#[path = "backend/db_pool.rs"]
mod db_pool;
#[path = "backend/history.rs"]
mod history;
#[path = "backend/layers.rs"]
mod layers;
#[path = "backend/libervia_bridge.rs"]
mod libervia_bridge;
#[path = "backend/libervia_muc.rs"]
mod libervia_muc;
#[path = "backend/libervia_params.rs"]
mod libervia_params;
#[path = "backend/plugin_boundary.rs"]
mod plugin_boundary;
#[path = "backend/search_sql.rs"]
mod search_sql;
#[path = "backend/storage_conformance.rs"]
mod storage_conformance;
#[path = "backend/typed_actions.rs"]
mod typed_actions;
