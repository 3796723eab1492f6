//! The plugin boundary holds with a real daemon and a real SQLite file: a plugin's
//! store reaches its declared tables and no other (not the profile table with the
//! sealed passwords, not another plugin's), foreign keys to `profile(id)` with
//! `ON DELETE CASCADE` still work, and a plugin cannot fire the core's trigger points.

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use perch_backend::config::Config;
use perch_backend::daemon::Daemon;
use perch_backend::db::open_sqlite;
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};
use perch_plugin_api::points::{IncomingMessage, MessageReceived};
use perch_plugin_api::store::Access;
use perch_plugin_api::{
    Flow, Host, Plugin, PluginFactory, PluginInfo, PluginPoint, PluginStore, PointOwner,
    StoreDenied, TriggerError, TriggerPoint,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionSession,
};

struct Setup {
    _dir: tempfile::TempDir,
    db: DatabaseConnection,
    daemon: Arc<Daemon>,
    profile_id: i32,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    profiles
        .create(NewProfile {
            name: "alice".into(),
            jid: "alice@example.org".into(),
            password: Password::new("hunter2".into()),
            server: None,
            ca_file: None,
            insecure: false,
            autoconnect: false,
        })
        .await
        .unwrap();
    let daemon = Daemon::new(Config::default(), db.clone(), profiles);
    let profile_id = daemon.profile("alice").await.unwrap().id;
    Setup {
        _dir: dir,
        db,
        daemon,
        profile_id,
    }
}

fn sql(s: &str) -> Statement {
    Statement::from_string(DbBackend::Sqlite, s)
}

fn denied(err: DbErr) -> StoreDenied {
    StoreDenied::of(&err)
        .unwrap_or_else(|| panic!("not a refusal: {err}"))
        .clone()
}

fn refusal(plugin: &'static str, table: &str, access: Access) -> StoreDenied {
    StoreDenied {
        plugin,
        table: table.into(),
        access,
    }
}

#[tokio::test]
async fn a_store_reaches_its_tables_and_no_other() {
    let t = setup().await;
    let muc = PluginStore::new(t.db.clone(), "XEP-0045", &["muc_room"]);
    // Its own table, with the foreign key to profile(id) checked by SQLite.
    muc.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO muc_room (profile_id, room, nick) VALUES (?, ?, ?)",
        [t.profile_id.into(), "r@muc".into(), "al".into()],
    ))
    .await
    .unwrap();
    let fk = muc
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO muc_room (profile_id, room, nick) VALUES (?, ?, ?)",
            [(t.profile_id + 100).into(), "x@muc".into(), "al".into()],
        ))
        .await
        .unwrap_err();
    assert!(StoreDenied::of(&fk).is_none(), "{fk}");
    assert!(fk.to_string().contains("FOREIGN KEY"), "{fk}");
    let rows = muc
        .query_all_raw(sql("SELECT room FROM muc_room"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);

    // The profile table: no column of it, not by a join, not its index.
    for (q, access) in [
        ("SELECT password FROM profile", Access::Read),
        ("SELECT id FROM profile WHERE name = 'alice'", Access::Read),
        (
            "SELECT p.password FROM muc_room r JOIN profile p ON p.id = r.profile_id",
            Access::Read,
        ),
        (
            "UPDATE profile SET jid = 'mallory@evil.example'",
            Access::Write,
        ),
        ("DELETE FROM profile", Access::Write),
    ] {
        let err = muc.query_all_raw(sql(q)).await.unwrap_err();
        assert_eq!(denied(err), refusal("XEP-0045", "profile", access), "{q}");
    }
    // Another plugin's table, and the core's.
    let err = muc
        .query_all_raw(sql("SELECT * FROM pubsub_node"))
        .await
        .unwrap_err();
    assert_eq!(
        denied(err),
        refusal("XEP-0045", "pubsub_node", Access::Read)
    );
    let err = muc
        .query_all_raw(sql("SELECT body FROM message"))
        .await
        .unwrap_err();
    assert_eq!(denied(err), refusal("XEP-0045", "message", Access::Read));
    // Not a data statement, or two of them.
    for (q, word) in [
        ("PRAGMA foreign_keys = OFF", "PRAGMA"),
        ("DROP TABLE muc_room", "DROP"),
        ("ATTACH 'other.db' AS o", "ATTACH"),
        (
            "SELECT 1 FROM muc_room; DELETE FROM profile",
            "several statements",
        ),
    ] {
        let err = muc.execute_unprepared(q).await.unwrap_err();
        let err = if word == "several statements" {
            // execute_unprepared checks each statement: the second one is refused.
            assert_eq!(
                denied(err),
                refusal("XEP-0045", "profile", Access::Write),
                "{q}"
            );
            muc.query_all_raw(sql(q)).await.unwrap_err()
        } else {
            err
        };
        assert_eq!(
            denied(err),
            refusal("XEP-0045", word, Access::Statement),
            "{q}"
        );
    }
    let err = muc
        .query_all_raw(sql("SELECT sql FROM sqlite_schema"))
        .await
        .unwrap_err();
    assert_eq!(
        denied(err),
        refusal("XEP-0045", "sqlite_schema", Access::Read)
    );
    // The profile table is untouched, and its deletion takes the room along.
    let n =
        t.db.query_one_raw(sql("SELECT count(*) AS n FROM profile"))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
    assert_eq!(n, 1);
    t.db.execute_unprepared("DELETE FROM profile")
        .await
        .unwrap();
    let rows = muc
        .query_all_raw(sql("SELECT room FROM muc_room"))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

#[tokio::test]
async fn full_text_tables_shadow_tables_and_transactions() {
    let t = setup().await;
    let cache = PluginStore::new(
        t.db.clone(),
        "PUBSUB_CACHE",
        &["pubsub_node", "pubsub_item", "pubsub_item_fts"],
    );
    let txn = cache.begin_immediate().await.unwrap();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO pubsub_node (profile_id, service, name, sync_state_updated) \
         VALUES (?, 's', 'n', 0)",
        [t.profile_id.into()],
    ))
    .await
    .unwrap();
    // Refused inside a transaction too; the transaction is still usable.
    let err = txn
        .query_all_raw(sql("SELECT name FROM profile"))
        .await
        .unwrap_err();
    assert_eq!(
        denied(err),
        refusal("PUBSUB_CACHE", "profile", Access::Read)
    );
    txn.commit().await.unwrap();
    // The FTS5 table (a virtual table: matched by its pointer), its shadow tables,
    // and a delete whose SQL trigger writes the FTS table.
    for q in [
        "SELECT rowid FROM pubsub_item_fts WHERE pubsub_item_fts MATCH 'x'",
        "SELECT count(*) FROM pubsub_item_fts_data",
        "DELETE FROM pubsub_item WHERE node_id = 1",
        "SELECT value FROM json_each('[1, 2]')",
        "DELETE FROM pubsub_node",
    ] {
        cache
            .query_all_raw(sql(q))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    // Not from another plugin.
    let muc = PluginStore::new(t.db.clone(), "XEP-0045", &["muc_room"]);
    for (q, table, access) in [
        (
            "SELECT rowid FROM pubsub_item_fts WHERE pubsub_item_fts MATCH 'x'",
            "pubsub_item_fts",
            Access::Read,
        ),
        (
            "SELECT block FROM pubsub_item_fts_data",
            "pubsub_item_fts",
            Access::Read,
        ),
        (
            "INSERT INTO pubsub_item_fts (rowid, text) VALUES (1, 'x')",
            "pubsub_item_fts",
            Access::Write,
        ),
    ] {
        let err = muc.query_all_raw(sql(q)).await.unwrap_err();
        assert_eq!(denied(err), refusal("XEP-0045", table, access), "{q}");
    }
    // A table-valued pragma is a virtual table nobody declared.
    let err = muc
        .query_all_raw(sql("SELECT name FROM pragma_table_info('profile')"))
        .await
        .unwrap_err();
    assert_eq!(StoreDenied::of(&err).map(|d| d.access), Some(Access::Read));
    // The same statement again: the cached verdict.
    let err = muc
        .query_all_raw(sql("SELECT name FROM pragma_table_info('profile')"))
        .await
        .unwrap_err();
    assert!(StoreDenied::of(&err).is_some());
}

/// A look-alike of `message.received`: a plugin's own type under the core's name.
struct FakeReceived;
impl TriggerPoint for FakeReceived {
    const NAME: &'static str = "message.received";
    const DOC: &'static str = "a rogue plugin's attempt";
    type Args = IncomingMessage;
    type Value = ();
}
impl PluginPoint for FakeReceived {}

struct Rogue;
impl Plugin for Rogue {}

/// What the rogue plugin saw when it tried.
#[derive(Debug, Default)]
struct Attempts {
    plugin: String,
    read_passwords: Option<Result<(), StoreDenied>>,
    fire: Option<Result<(), TriggerError>>,
    declare: Option<Result<(), TriggerError>>,
}

fn rogue_factory(seen: Arc<Mutex<Attempts>>) -> PluginFactory {
    let info = PluginInfo {
        import_name: "ROGUE",
        name: "Rogue",
        description: "tries to reach beyond its boundary",
        dependencies: &[],
        recommendations: &[],
        tables: &["muc_room"],
        signals_as: None,
    };
    PluginFactory::new(info, move |host: Arc<dyn Host>| async move {
        let read = host
            .store()
            .query_one_raw(sql("SELECT password FROM profile"))
            .await
            .map(|_| ())
            .map_err(denied);
        let mut args = IncomingMessage::live(
            "alice".into(),
            perch_plugin_api::parsers::message::Message::new(None),
        );
        let fire = host
            .triggers()
            .fire::<FakeReceived>(&mut args)
            .await
            .map(|_| ());
        let declare = host.triggers().declare::<FakeReceived>();
        // Adding a handler to a core point is allowed (under the bound name).
        host.triggers()
            .add::<MessageReceived, _>(0, |_: &mut IncomingMessage| {
                async { Flow::Continue }.boxed()
            })?;
        *seen.lock().unwrap() = Attempts {
            plugin: host.plugin().to_owned(),
            read_passwords: Some(read),
            fire: Some(fire),
            declare: Some(declare),
        };
        Ok(Arc::new(Rogue) as Arc<dyn Plugin>)
    })
}

#[tokio::test]
async fn a_plugin_built_by_the_daemon_stays_inside_its_boundary() {
    let t = setup().await;
    let seen = Arc::new(Mutex::new(Attempts::default()));
    t.daemon
        .start_plugins(vec![rogue_factory(seen.clone())], |info| {
            perch_backend::host::DaemonHost::new(&t.daemon, info)
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.plugin, "ROGUE");
    assert_eq!(
        seen.read_passwords,
        Some(Err(refusal("ROGUE", "profile", Access::Read)))
    );
    let not_owner = TriggerError::NotOwner {
        plugin: "ROGUE",
        point: "message.received",
        owner: PointOwner::Core,
    };
    assert_eq!(seen.fire, Some(Err(not_owner)));
    assert_eq!(
        seen.declare,
        Some(Err(TriggerError::NameClash("message.received")))
    );
    // Its handler is filed under the name the daemon gave it.
    let points = t.daemon.registry().triggers.list();
    let received = points
        .iter()
        .find(|p| p.name == "message.received")
        .unwrap();
    assert_eq!(received.owner, Some(PointOwner::Core));
    assert_eq!(received.handlers[0].plugin, "ROGUE");
}
