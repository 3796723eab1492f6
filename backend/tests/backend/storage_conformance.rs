//! The storage conformance suite: every store operation, written once, run against
//! both engines — a SQLite file and a real PostgreSQL (`perch_tests::Postgres`, a
//! throwaway cluster per test) — as matrix-rust-sdk runs one suite over each of its
//! store implementations. A store that behaves differently on one engine fails here,
//! with the engine in the test's name (`storage_conformance::postgres::roster`).
//!
//! Why in perch-backend's tests: the stores under test are the backend's (profiles,
//! history and outbox, roster, parameters) and the plugin boundary it composes; the
//! harness crate only provides the server.

use std::sync::Arc;

use perch_backend::db::{DbOpenError, Target, known_migrations, open};
use perch_backend::history::{History, Query, Stored};
use perch_backend::profiles::Profiles;
use perch_backend::roster::{RosterStore, StoredRoster};
use perch_backend::secret::Sealer;
use perch_plugin_api::store::Access;
use perch_plugin_api::{MessageState, PluginStore, RosterItem, StoreDenied};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

// The same messages as the SQLite-only history tests.
use super::history::{incoming, outgoing};
use super::new_profile;

/// One engine's database, alive as long as this value.
struct Engine {
    dir: tempfile::TempDir,
    target: Target,
    _server: Option<perch_tests::Postgres>,
}

impl Engine {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Sqlite(dir.path().join("perch.db"));
        Self {
            dir,
            target,
            _server: None,
        }
    }

    fn postgres() -> Self {
        let server = perch_tests::Postgres::start().expect("starting PostgreSQL");
        Self {
            dir: tempfile::tempdir().unwrap(),
            target: Target::Postgres(server.url()),
            _server: Some(server),
        }
    }

    async fn open(&self) -> DatabaseConnection {
        open(&self.target).await.unwrap()
    }

    fn profiles(&self, db: &DatabaseConnection) -> Profiles {
        let sealer = Sealer::load_or_create(&self.dir.path().join("secret.key")).unwrap();
        Profiles::new(db.clone(), Arc::new(sealer))
    }
}

/// A database with one profile, `alice`; its id.
async fn with_alice(engine: &Engine) -> (DatabaseConnection, i32) {
    let db = engine.open().await;
    let profiles = engine.profiles(&db);
    profiles
        .create(new_profile("alice", "alice@example.org"))
        .await
        .unwrap();
    let id = profiles.get("alice").await.unwrap().id;
    (db, id)
}

/// Runs each named suite function against SQLite and PostgreSQL.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Engine::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Engine::postgres()).await;
                }
            )*
        }
    };
}

conformance!(
    migrations,
    profiles,
    concurrent_profiles,
    history_and_outbox,
    roster,
    params,
    plugin_store,
    omemo_store,
    plugin_stores,
    pubsub_cache,
    cache_filters,
    cluster
);

/// Every migration applies, once; a database a newer Perch migrated is refused.
async fn migrations(engine: Engine) {
    let db = engine.open().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .unwrap();
    let applied: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("", "version").unwrap())
        .collect();
    let mut known = known_migrations();
    known.sort();
    assert_eq!(applied, known);
    db.close().await.unwrap();
    // A second open finds nothing to do.
    let db = engine.open().await;
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_future', 0)",
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    match open(&engine.target).await {
        Err(DbOpenError::Newer { unknown, .. }) => {
            assert!(unknown.contains("m20991231_000001_future"));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a database from a newer Perch was accepted"),
    }
}

/// An index written before accents were folded on PostgreSQL (migration 061) finds
/// by the folded words after it; SQLite's was folded from the start.
#[tokio::test]
async fn a_cache_index_from_before_folding_is_rebuilt() {
    use perch_backend::db::{Migrator, MigratorTrait};
    let server = perch_tests::Postgres::start().expect("starting PostgreSQL");
    let db = sea_orm::Database::connect(server.url()).await.unwrap();
    let mut known = known_migrations();
    known.sort();
    let fold = known
        .iter()
        .position(|m| m == "m20261208_000061_pubsub_cache_pg_fold")
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(fold).unwrap()))
        .await
        .unwrap();
    for sql in [
        "INSERT INTO profile (name, jid, password, insecure, autoconnect, is_default, \
         created_at) VALUES ('alice', 'alice@x', 'sealed', false, false, true, 0)",
        "INSERT INTO pubsub_node (profile_id, service, name, sync_state_updated) \
         VALUES (1, 'pubsub.x', 'blog', 0)",
        "INSERT INTO pubsub_item (node_id, item_id, data, seq, generation, created, updated) \
         VALUES (1, 'i1', '<entry xmlns=''urn:t''>Échec du projet</entry>', 1, 1, 0, 0)",
        // As the writer before 061 indexed it: accents kept.
        "INSERT INTO pubsub_item_fts (rowid, tsv) \
         SELECT id, to_tsvector('simple', 'Échec du projet ') FROM pubsub_item",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    db.close().await.unwrap();
    let db = open(&Target::Postgres(server.url())).await.unwrap();
    let cache = PluginStore::new(
        db.clone(),
        "PUBSUB_CACHE",
        &["pubsub_node", "pubsub_item", "pubsub_item_fts"],
    );
    let some = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    for q in ["echec", "Échec", "projet"] {
        assert_eq!(
            found(&cache, 1, serde_json::json!({ "fts": q })).await,
            some(&["i1"]),
            "{q}"
        );
    }
}

/// Create, list, default, autoconnect, a name taken twice, delete.
async fn profiles(engine: Engine) {
    let db = engine.open().await;
    let profiles = engine.profiles(&db);
    profiles
        .create(new_profile("alice", "alice@example.org"))
        .await
        .unwrap();
    profiles
        .create(new_profile("bob", "bob@example.org"))
        .await
        .unwrap();
    let dup = profiles.create(new_profile("bob", "bob@example.org")).await;
    assert!(dup.is_err(), "a second bob was created");
    let names = |list: Vec<perch_backend::db::entities::profile::Model>| {
        list.into_iter()
            .map(|m| (m.name, m.is_default, m.autoconnect))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(profiles.list().await.unwrap()),
        [("alice".into(), true, false), ("bob".into(), false, false)]
    );
    profiles.set_default("bob").await.unwrap();
    profiles.set_autoconnect("alice", true).await.unwrap();
    assert_eq!(
        names(profiles.list().await.unwrap()),
        [("alice".into(), false, true), ("bob".into(), true, false)]
    );
    let bob = profiles.get("bob").await.unwrap();
    assert_eq!(
        profiles.name_of(bob.id).await.unwrap().as_deref(),
        Some("bob")
    );
    let creds = profiles.credentials(&bob).unwrap();
    assert_eq!(creds.jid.to_string(), "bob@example.org");
    profiles.delete("bob").await.unwrap();
    assert!(profiles.get("bob").await.is_err());
    assert_eq!(profiles.list().await.unwrap().len(), 1);
}

/// Profiles created at the same moment: of eight first profiles exactly one is the
/// default; of eight of one name, one is created and the others are told it exists
/// (on PostgreSQL too, whose transactions do not take SQLite's one write lock).
async fn concurrent_profiles(engine: Engine) {
    use perch_backend::error::Error;
    let db = engine.open().await;
    let profiles = engine.profiles(&db);
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let created = futures::future::join_all(
        names
            .iter()
            .map(|n| profiles.create(new_profile(n, &format!("{n}@example.org")))),
    )
    .await;
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let list = profiles.list().await.unwrap();
    assert_eq!(list.len(), 8);
    assert_eq!(list.iter().filter(|m| m.is_default).count(), 1, "{list:?}");
    let same = futures::future::join_all(
        (0..8).map(|_| profiles.create(new_profile("same", "same@example.org"))),
    )
    .await;
    assert_eq!(same.iter().filter(|r| r.is_ok()).count(), 1, "{same:?}");
    for r in same.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, Error::ProfileExists(n) if n == "same"), "{r}");
    }
}

/// Messages stored once, listed oldest first and filtered; the outbox's order,
/// claims, confirmations and cancellations; profile deletion takes the history.
async fn history_and_outbox(engine: Engine) {
    let (db, p) = with_alice(&engine).await;
    let h = History::new(db.clone());
    let mut live = incoming("m1", "hé, ça va ?", 1_000);
    live.stanza_id = Some(("A1".into(), "alice@example.org".into()));
    assert!(matches!(
        h.store(p, live.clone()).await.unwrap(),
        Stored::New(_)
    ));
    assert!(matches!(
        h.store(p, live).await.unwrap(),
        Stored::Duplicate(_)
    ));
    assert_eq!(
        h.last_archive_id(p, "alice@example.org")
            .await
            .unwrap()
            .as_deref(),
        Some("A1")
    );
    for i in 0..3 {
        let id = format!("o{i}");
        h.enqueue(
            p,
            outgoing(&id, &format!("#{i}"), 2_000 + i),
            format!("<message id='{id}'/>"),
        )
        .await
        .unwrap();
    }
    let dup = h
        .enqueue(p, outgoing("o1", "dup", 5_000), String::new())
        .await;
    assert_eq!(dup.unwrap_err().name(), "BadArgument");
    let ids =
        |v: Vec<perch_plugin_api::HistoryMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(h.outbox(p).await.unwrap()), ["o0", "o1", "o2"]);
    let batch = h.claim_outbox(p, 2).await.unwrap();
    assert_eq!(
        batch.iter().map(|e| e.msg_id.as_str()).collect::<Vec<_>>(),
        ["o0", "o1"]
    );
    assert_eq!(batch[0].stanza, "<message id='o0'/>");
    assert_eq!(
        h.cancel(p, "o2").await.unwrap().state,
        MessageState::Cancelled
    );
    assert_eq!(
        h.cancel(p, "nope").await.unwrap_err().name(),
        "UnknownMessage"
    );
    let again = h.claim_outbox(p, 10).await.unwrap();
    let done = h
        .confirm_sent(&again.iter().map(|e| e.row).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(done.iter().all(|m| m.state == MessageState::Acked));
    assert!(h.outbox(p).await.unwrap().is_empty());

    let all = h.query(p, &Query::default()).await.unwrap();
    let bodies: Vec<&str> = all.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["hé, ça va ?", "#0", "#1", "#2"]);
    let q = Query {
        limit: Some(2),
        ..Query::default()
    };
    assert_eq!(ids(h.query(p, &q).await.unwrap()), ["o1", "o2"]);
    let q = Query {
        after: Some(1_000),
        before: Some(2_002),
        ..Query::default()
    };
    assert_eq!(ids(h.query(p, &q).await.unwrap()), ["o0", "o1"]);
    let q = Query {
        with: Some("carol@example.org".into()),
        ..Query::default()
    };
    assert!(h.query(p, &q).await.unwrap().is_empty());
    assert_eq!(
        h.latest(p, "bob@example.org", 0..i64::MAX).await.unwrap(),
        Some(2_002)
    );

    engine.profiles(&db).delete("alice").await.unwrap();
    assert!(h.query(p, &Query::default()).await.unwrap().is_empty());
}

fn item(jid: &str, subscription: &str) -> RosterItem {
    RosterItem {
        jid: jid.into(),
        name: Some("Bob".into()),
        subscription: subscription.into(),
        ask: subscription == "none",
        groups: vec!["Friends".into()],
    }
}

/// A whole roster replaced, pushes with versions, a removal, the version forgotten,
/// another account's roster not shown.
async fn roster(engine: Engine) {
    let (db, pid) = with_alice(&engine).await;
    let store = RosterStore::new(db);
    let me = "alice@example.org";
    let empty = StoredRoster {
        account: me.into(),
        ..StoredRoster::default()
    };
    assert_eq!(store.load(pid, me).await.unwrap(), empty);
    let full = StoredRoster {
        ver: Some("1".into()),
        account: me.into(),
        items: vec![
            item("bob@example.org", "both"),
            item("carol@example.org", "to"),
        ],
    };
    store.replace(pid, "alice", &full).await.unwrap();
    assert_eq!(store.load(pid, me).await.unwrap(), full);
    let dave = item("dave@example.org", "none");
    store
        .push(pid, "alice", me, &dave, Some("2"))
        .await
        .unwrap();
    let gone = item("carol@example.org", "remove");
    store
        .push(pid, "alice", me, &gone, Some("3"))
        .await
        .unwrap();
    let now = store.load(pid, me).await.unwrap();
    assert_eq!(now.ver.as_deref(), Some("3"));
    let jids: Vec<&str> = now.items.iter().map(|i| i.jid.as_str()).collect();
    assert_eq!(jids, ["bob@example.org", "dave@example.org"]);
    assert!(now.items[1].ask);
    assert_eq!(now.items[0].groups, ["Friends"]);
    store.forget_version(pid).await.unwrap();
    let now = store.load(pid, me).await.unwrap();
    assert_eq!((now.ver, now.items.len()), (None, 2));
    let other = store.load(pid, "alice@elsewhere.org").await.unwrap();
    assert!(other.items.is_empty() && other.ver.is_none());
}

/// Libervia's parameters: set, replaced, listed; the priority a session starts with.
async fn params(engine: Engine) {
    use perch_backend::libervia_params::{all, set};
    let (db, p) = with_alice(&engine).await;
    let profiles = engine.profiles(&db);
    assert_eq!(profiles.initial_priority(p).await.unwrap(), 0);
    set(&db, p, "Connection", "Priority", "5").await.unwrap();
    set(&db, p, "General", "Theme", "dark").await.unwrap();
    set(&db, p, "Connection", "Priority", "7").await.unwrap();
    let got = all(&db, p).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&("Connection".to_owned(), "Priority".to_owned())], "7");
    assert_eq!(profiles.initial_priority(p).await.unwrap(), 7);
}

fn sql(s: &str) -> Statement {
    Statement::from_string(DbBackend::Sqlite, s)
}

/// A plugin's store: its own table with the foreign key to `profile(id)`, refusals of
/// every other table and of statements that are not data statements, cascades.
async fn plugin_store(engine: Engine) {
    let (db, p) = with_alice(&engine).await;
    let muc = PluginStore::new(db.clone(), "XEP-0045", &["muc_room"]);
    let insert = "INSERT INTO muc_room (profile_id, room, nick) VALUES (?, ?, ?)";
    muc.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        insert,
        [p.into(), "r@muc".into(), "al".into()],
    ))
    .await
    .unwrap();
    let fk = muc
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            insert,
            [(p + 100).into(), "x@muc".into(), "al".into()],
        ))
        .await
        .unwrap_err();
    assert!(StoreDenied::of(&fk).is_none(), "{fk}");
    assert!(
        fk.to_string().to_lowercase().contains("foreign key"),
        "{fk}"
    );
    let rows = muc
        .query_all_raw(sql("SELECT room FROM muc_room"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    for (q, table, access) in [
        ("SELECT password FROM profile", "profile", Access::Read),
        (
            "SELECT p.password FROM muc_room r JOIN profile p ON p.id = r.profile_id",
            "profile",
            Access::Read,
        ),
        (
            "UPDATE profile SET jid = 'mallory@evil.example'",
            "profile",
            Access::Write,
        ),
        ("DELETE FROM profile", "profile", Access::Write),
        ("SELECT * FROM pubsub_node", "pubsub_node", Access::Read),
        ("SELECT body FROM message", "message", Access::Read),
        ("DROP TABLE muc_room", "DROP", Access::Statement),
    ] {
        let err = muc.query_all_raw(sql(q)).await.unwrap_err();
        let denied = StoreDenied::of(&err).unwrap_or_else(|| panic!("{q}: {err}"));
        assert_eq!(
            (denied.table.as_str(), denied.access),
            (table, access),
            "{q}"
        );
    }
    db.execute_unprepared("DELETE FROM profile").await.unwrap();
    let rows = muc
        .query_all_raw(sql("SELECT room FROM muc_room"))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

/// The OMEMO plugin's store (`omemo_*`): the identity kept once, trust per key,
/// encrypted conversations; all go with the profile.
async fn omemo_store(engine: Engine) {
    use perch_plugins_e2ee::xep_0384::store;
    let (db, p) = with_alice(&engine).await;
    let omemo = PluginStore::new(
        db.clone(),
        "XEP-0384",
        &[
            "omemo_identity",
            "omemo_prekeys",
            "omemo_device",
            "omemo_trust",
            "omemo_session",
            "omemo_conversation",
        ],
    );
    assert_eq!(store::identity(&omemo, p).await.unwrap(), None);
    assert!(
        store::save_identity(&omemo, p, 4242, "sealed-1")
            .await
            .unwrap()
    );
    assert!(
        !store::save_identity(&omemo, p, 7, "sealed-2")
            .await
            .unwrap()
    );
    assert_eq!(
        store::identity(&omemo, p).await.unwrap(),
        Some((4242, "sealed-1".into()))
    );
    let bob = "bob@example.org";
    store::set_trust(&omemo, p, bob, "fp-b", "blind")
        .await
        .unwrap();
    store::set_trust(&omemo, p, bob, "fp-a", "verified")
        .await
        .unwrap();
    store::set_trust(&omemo, p, bob, "fp-b", "blind")
        .await
        .unwrap();
    store::end_blind_trust(&omemo, p, bob).await.unwrap();
    assert_eq!(
        store::trusts(&omemo, p, bob).await.unwrap(),
        [
            ("fp-a".to_owned(), "verified".to_owned()),
            ("fp-b".to_owned(), "undecided".to_owned())
        ]
    );
    assert_eq!(
        store::trust(&omemo, p, bob, "fp-a")
            .await
            .unwrap()
            .as_deref(),
        Some("verified")
    );
    assert!(!store::encrypted(&omemo, p, bob).await.unwrap());
    store::set_encrypted(&omemo, p, bob, true).await.unwrap();
    store::set_encrypted(&omemo, p, bob, true).await.unwrap();
    assert!(store::encrypted(&omemo, p, bob).await.unwrap());
    store::set_encrypted(&omemo, p, bob, false).await.unwrap();
    assert!(!store::encrypted(&omemo, p, bob).await.unwrap());
    // The version a conversation was started with (none: the best at each message).
    let v03 =
        perch_plugins_e2ee::xep_0384::versions_option(&serde_json::json!({"versions": ["0.3"]}))
            .unwrap()[0];
    assert_eq!(store::conversation(&omemo, p, bob).await.unwrap(), None);
    store::set_conversation(&omemo, p, bob, Some(v03))
        .await
        .unwrap();
    assert_eq!(
        store::conversation(&omemo, p, bob).await.unwrap(),
        Some(Some(v03))
    );
    store::set_conversation(&omemo, p, bob, None).await.unwrap();
    assert_eq!(
        store::conversation(&omemo, p, bob).await.unwrap(),
        Some(None)
    );
    assert!(store::encrypted(&omemo, p, bob).await.unwrap());
    store::set_encrypted(&omemo, p, bob, false).await.unwrap();
    engine.profiles(&db).delete("alice").await.unwrap();
    assert_eq!(store::identity(&omemo, p).await.unwrap(), None);
    assert!(store::trusts(&omemo, p, bob).await.unwrap().is_empty());
}

/// The other plugins' stores, each operation: rooms to rejoin (group chats), the
/// blocklist, read positions, avatars and nicknames, ended calls; all go with the
/// profile.
async fn plugin_stores(engine: Engine) {
    use perch_plugins_im::{xep_0045, xep_0191, xep_0490};
    use std::collections::{BTreeMap, BTreeSet};
    let (db, p) = with_alice(&engine).await;
    let store = |name: &'static str, tables: &'static [&'static str]| {
        PluginStore::new(db.clone(), name, tables)
    };

    let rooms = store("XEP-0045", &["muc_room"]);
    xep_0045::store::save(&rooms, p, "b@conf.x", "alice")
        .await
        .unwrap();
    xep_0045::store::save(&rooms, p, "a@conf.x", "al")
        .await
        .unwrap();
    xep_0045::store::save(&rooms, p, "a@conf.x", "alice2")
        .await
        .unwrap();
    let pair = |r: &str, n: &str| (r.to_owned(), n.to_owned());
    assert_eq!(
        xep_0045::store::rooms(&rooms, p).await.unwrap(),
        [pair("a@conf.x", "alice2"), pair("b@conf.x", "alice")]
    );
    xep_0045::store::remove(&rooms, p, "b@conf.x")
        .await
        .unwrap();
    assert_eq!(xep_0045::store::rooms(&rooms, p).await.unwrap().len(), 1);

    let blocked = store("XEP-0191", &["blocked_jid"]);
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    xep_0191::store::replace(&blocked, p, &set(&["spam@x", "troll@y"]))
        .await
        .unwrap();
    xep_0191::store::replace(&blocked, p, &set(&["troll@y", "bot@z"]))
        .await
        .unwrap();
    assert_eq!(
        xep_0191::store::list(&blocked, p).await.unwrap(),
        set(&["bot@z", "troll@y"])
    );

    let read = store("XEP-0490", &["read_state"]);
    xep_0490::store::set(&read, p, "bob@x", "m1", false)
        .await
        .unwrap();
    xep_0490::store::set(&read, p, "carol@x", "m7", true)
        .await
        .unwrap();
    let map = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        xep_0490::store::all(&read, p).await.unwrap(),
        map(&[("bob@x", "m1"), ("carol@x", "m7")])
    );
    assert_eq!(
        xep_0490::store::pending(&read, p).await.unwrap(),
        map(&[("carol@x", "m7")])
    );
    // Published, unless the position moved meanwhile.
    xep_0490::store::published(&read, p, "carol@x", "m6")
        .await
        .unwrap();
    assert_eq!(xep_0490::store::pending(&read, p).await.unwrap().len(), 1);
    xep_0490::store::published(&read, p, "carol@x", "m7")
        .await
        .unwrap();
    assert!(xep_0490::store::pending(&read, p).await.unwrap().is_empty());

    let identity = store("XEP-0084", &["avatar"]);
    let store_mod = &perch_plugins_identity::store::Kept {
        hash: "abc".into(),
        media_type: "image/png".into(),
        bytes: 1234,
    };
    use perch_plugins_identity::store as id_store;
    assert_eq!(id_store::get(&identity, p, "bob@x").await.unwrap(), None);
    id_store::put(&identity, p, "bob@x", store_mod)
        .await
        .unwrap();
    id_store::put(&identity, p, "bob@x", store_mod)
        .await
        .unwrap();
    assert_eq!(
        id_store::get(&identity, p, "bob@x").await.unwrap().as_ref(),
        Some(store_mod)
    );
    assert!(id_store::remove(&identity, p, "bob@x").await.unwrap());
    assert!(!id_store::remove(&identity, p, "bob@x").await.unwrap());
    let nicks = store("XEP-0172", &["nickname"]);
    assert_eq!(id_store::nick(&nicks, p, "bob@x").await.unwrap(), None);
    id_store::set_nick(&nicks, p, "bob@x", Some("Bob"))
        .await
        .unwrap();
    assert_eq!(
        id_store::nick(&nicks, p, "bob@x").await.unwrap(),
        Some(Some("Bob".into()))
    );
    id_store::set_nick(&nicks, p, "bob@x", None).await.unwrap();
    assert_eq!(
        id_store::nick(&nicks, p, "bob@x").await.unwrap(),
        Some(None)
    );

    let calls = store("XEP-0167", &["call"]);
    use perch_plugins_calls::xep_0167::store as call_store;
    let call = |n: u32| serde_json::json!({"sid": format!("s{n}"), "state": "ended", "n": n});
    call_store::save(&calls, p, "s2", "2026-12-07T10:00:02Z", &call(2))
        .await
        .unwrap();
    call_store::save(&calls, p, "s1", "2026-12-07T10:00:01Z", &call(1))
        .await
        .unwrap();
    call_store::save(&calls, p, "s1", "2026-12-07T10:00:01Z", &call(3))
        .await
        .unwrap();
    assert_eq!(
        call_store::list(&calls, p).await.unwrap(),
        [call(3), call(2)]
    );

    engine.profiles(&db).delete("alice").await.unwrap();
    assert!(xep_0045::store::rooms(&rooms, p).await.unwrap().is_empty());
    assert!(xep_0191::store::list(&blocked, p).await.unwrap().is_empty());
    assert!(xep_0490::store::all(&read, p).await.unwrap().is_empty());
    assert_eq!(id_store::nick(&nicks, p, "bob@x").await.unwrap(), None);
    assert!(call_store::list(&calls, p).await.unwrap().is_empty());
}

fn cache_item(id: &str, text: &str) -> perch_plugins_pubsub::pubsub_cache::dao::NewItem {
    perch_plugins_pubsub::pubsub_cache::dao::NewItem {
        item_id: id.into(),
        publisher: Some("bob@example.org".into()),
        data: format!("<entry xmlns='urn:test'>{text}</entry>"),
        parsed: None,
        text: text.into(),
    }
}

/// The item ids a search finds, in its order; `None` when the full-text query is
/// refused (by the translation on PostgreSQL, by FTS5 on SQLite: `dao::fts_error`
/// says so on both).
async fn found(cache: &PluginStore, pid: i32, query: serde_json::Value) -> Option<Vec<String>> {
    use perch_plugins_pubsub::pubsub_cache::{dao, search};
    let q: search::Query = serde_json::from_value(query).unwrap();
    let fts = q.fts.clone().unwrap_or_default();
    let Ok(built) = search::build_for(&q, &[pid], cache.get_database_backend()) else {
        assert!(dao::fts_error(cache, &fts).await.is_some(), "{fts}");
        return None;
    };
    match dao::query(cache, &built.sql, built.values).await {
        Ok(rows) => Some(
            rows.iter()
                .map(|r| r.try_get("", "item_id").unwrap())
                .collect(),
        ),
        Err(e) => {
            assert!(dao::fts_error(cache, &fts).await.is_some(), "{fts}: {e}");
            None
        }
    }
}

/// The pubsub cache: items stored in order (an edit moves the item to the end and
/// re-indexes it), full-text search with FTS5's query language (terms, phrases,
/// prefixes, AND, OR, NOT, parentheses) giving the same items on both engines,
/// ordering, a bad query reported as such, purge and reset.
async fn pubsub_cache(engine: Engine) {
    use perch_plugins_pubsub::pubsub_cache::dao;
    use serde_json::json;
    let (db, p) = with_alice(&engine).await;
    let cache = PluginStore::new(
        db.clone(),
        "PUBSUB_CACHE",
        &["pubsub_node", "pubsub_item", "pubsub_item_fts"],
    );
    let node = dao::node_ensure(&cache, p, "pubsub.example.org", "blog")
        .await
        .unwrap();
    let items = vec![
        cache_item("i1", "Échec du projet alpha"),
        cache_item("i2", "alpha beta gamma"),
        cache_item("i3", "Hello, world"),
    ];
    assert_eq!(
        dao::store_items(&cache, node.id, 1, items, true)
            .await
            .unwrap(),
        3
    );
    assert_eq!(dao::count(&cache, node.id).await.unwrap(), 3);
    // The node's state: a sync started (forced), our subscription recorded.
    dao::sync_started(&cache, node.id, true).await.unwrap();
    dao::set_subscribed(&cache, node.id, true).await.unwrap();
    let state = dao::node_by_id(&cache, node.id).await.unwrap().unwrap();
    assert!(state.subscribed && state.to_sync, "{state:?}");
    let ids = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    for (fts, expected) in [
        ("alpha", ids(&["i2", "i1"])),
        ("ALPHA beta", ids(&["i2"])),
        ("alpha NOT beta", ids(&["i1"])),
        ("alpha OR hello", ids(&["i3", "i2", "i1"])),
        ("\"beta gamma\"", ids(&["i2"])),
        ("\"gamma beta\"", ids(&[])),
        ("hel*", ids(&["i3"])),
        ("(hello OR échec) AND NOT alpha", None),
        ("(hello OR échec) AND projet", ids(&["i1"])),
        // NEAR of two phrases, in either order, N tokens between at most.
        ("NEAR(alpha gamma, 1)", ids(&["i2"])),
        ("NEAR(gamma alpha, 1)", ids(&["i2"])),
        ("NEAR(alpha gamma, 0)", ids(&[])),
        ("NEAR(échec alpha, 2)", ids(&["i1"])),
        ("NEAR(échec alpha, 1)", ids(&[])),
        ("NEAR(\"beta gamma\" alpha, 0)", ids(&["i2"])),
        ("NEAR(alph* gamma)", ids(&["i2"])),
        (
            "NEAR(hello world) OR NEAR(projet alpha, 0)",
            ids(&["i3", "i1"]),
        ),
        // Accents folded in the text and the query, on both engines.
        ("echec", ids(&["i1"])),
        ("ÉCHEC projet", ids(&["i1"])),
        ("\"echec du\"", ids(&["i1"])),
        ("(hello OR échec) projet", None),
        ("text:world", ids(&["i3"])),
        ("alpha AND", None),
        ("\"unterminated", None),
    ] {
        assert_eq!(
            found(&cache, p, json!({ "fts": fts })).await,
            expected,
            "{fts}"
        );
    }
    let ranked = json!({"fts": "alpha", "order_by": [{"key": "rank", "desc": true}]});
    assert_eq!(found(&cache, p, ranked).await.map(|v| v.len()), Some(2));
    let by_id = json!({"order_by": [{"key": "item_id", "desc": true}]});
    assert_eq!(found(&cache, p, by_id).await, ids(&["i3", "i2", "i1"]));
    let oldest = json!({"order_by": [{"key": "creation"}], "limit": 2});
    assert_eq!(found(&cache, p, oldest).await, ids(&["i1", "i2"]));

    // An edit (a notification, not a sync page) re-indexes the item and moves it last.
    let edit = vec![cache_item("i1", "omega")];
    dao::store_items(&cache, node.id, 1, edit, false)
        .await
        .unwrap();
    assert_eq!(
        found(&cache, p, json!({"fts": "alpha"})).await,
        ids(&["i2"])
    );
    assert_eq!(
        found(&cache, p, json!({"fts": "omega"})).await,
        ids(&["i1"])
    );
    let unchanged = vec![cache_item("i2", "alpha beta gamma")];
    dao::store_items(&cache, node.id, 1, unchanged, false)
        .await
        .unwrap();
    assert_eq!(
        found(&cache, p, json!({"fts": "gamma"})).await,
        ids(&["i2"])
    );

    let purged = dao::purge_where(&cache, "i.item_id = ?", vec!["i3".into()])
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(dao::count(&cache, node.id).await.unwrap(), 2);
    assert_eq!(found(&cache, p, json!({"fts": "hello"})).await, ids(&[]));
    dao::reset(&cache).await.unwrap();
    assert_eq!(found(&cache, p, json!({})).await, ids(&[]));
}

/// The items `cache_filters` searches: numbers (and a number written as text), dates
/// in several forms, text, arrays (and a scalar where others have one), nested
/// objects, JSON nulls, missing fields, an item without parsed data.
fn filter_items() -> Vec<perch_plugins_pubsub::pubsub_cache::dao::NewItem> {
    use serde_json::json;
    let item = |id: &str, text: &str, parsed: Option<serde_json::Value>| {
        let mut i = cache_item(id, text);
        i.parsed = parsed.map(|p| p.to_string());
        i
    };
    vec![
        item(
            "n1",
            "alpha red",
            Some(
                json!({"n": 5, "d": "2024-01-02", "t": "Alpha", "tags": ["red", "Blue"],
                "author": {"name": "Ann"}, "flag": true, "mixed": 10, "we\"ird": 1}),
            ),
        ),
        item(
            "n2",
            "beta green",
            Some(
                json!({"n": 12.5, "d": "2024-01-02T10:00:00Z", "t": "beta", "tags": ["green"],
                "author": {"name": "bob"}, "flag": false, "mixed": "abc"}),
            ),
        ),
        item(
            "n3",
            "gamma ray",
            Some(
                json!({"n": -3, "d": "2024-01-02 10:00:00+02:00", "t": "Gamma ray", "tags": [],
                "author": {"name": "Ann"}, "mixed": "2024-01-01"}),
            ),
        ),
        item(
            "n4",
            "alpha blue",
            Some(
                json!({"n": 100, "d": "2023-12-31T23:59:59.500Z", "t": "alpha",
                "tags": ["blue", "red"], "mixed": 3}),
            ),
        ),
        item(
            "n5",
            "zeta red",
            Some(json!({"d": "not a date", "t": "Zeta", "tags": "red"})),
        ),
        item("n6", "no parsed red", None),
        item(
            "n7",
            "nulls",
            Some(json!({"n": null, "t": null, "tags": null})),
        ),
        item(
            "n8",
            "échec total",
            Some(
                json!({"n": "7", "t": "ÉCHEC total", "d": "2024-06-15", "tags": [1, 2, "3"],
                "author": {"name": "Cy"}}),
            ),
        ),
    ]
}

/// The pubsub cache's field filters and ordering by a field give the same items on
/// both engines, with SQLite's rules (`pubsub_cache::search`, `filters_pg`): numbers
/// as numbers, dates as instants, a number before any text, text by its bytes, `in`
/// and `overlap` by plain equality, case-insensitive operators lowering ASCII only,
/// missing fields matching nothing and sorting last.
async fn cache_filters(engine: Engine) {
    use perch_plugins_pubsub::pubsub_cache::dao;
    use serde_json::json;
    let (db, p) = with_alice(&engine).await;
    let cache = PluginStore::new(
        db.clone(),
        "PUBSUB_CACHE",
        &["pubsub_node", "pubsub_item", "pubsub_item_fts"],
    );
    let node = dao::node_ensure(&cache, p, "pubsub.example.org", "blog")
        .await
        .unwrap();
    dao::store_items(&cache, node.id, 1, filter_items(), true)
        .await
        .unwrap();
    let by_id = json!([{"key": "item_id"}]);
    for (path, op, value, expected) in filter_cases() {
        let q = json!({"filters": [{"path": path, "op": op, "value": value}], "order_by": by_id});
        let got = found(&cache, p, q).await.unwrap();
        assert_eq!(got, expected, "{path} {op} {value}");
    }
    for (path, desc, expected) in order_cases() {
        let q =
            json!({"order_by": [{"key": "path", "path": path, "desc": desc}, {"key": "item_id"}]});
        let got = found(&cache, p, q).await.unwrap();
        assert_eq!(got, expected, "order by {path} desc={desc}");
    }
    let both = json!({"filters": [{"path": "n", "op": "gt", "value": 0},
        {"path": "tags", "op": "overlap", "value": ["red"]}], "order_by": by_id});
    assert_eq!(found(&cache, p, both).await.unwrap(), ["n1", "n4"]);
    let page = json!({"order_by": [{"key": "path", "path": "n"}], "limit": 2, "index": 1});
    assert_eq!(found(&cache, p, page).await.unwrap(), ["n1", "n8"]);
    let fts = json!({"fts": "red", "filters": [{"path": "n", "op": "gte", "value": 0}]});
    assert_eq!(found(&cache, p, fts).await.unwrap(), ["n1"]);
    let fts = json!({"fts": "red OR alpha",
        "order_by": [{"key": "path", "path": "n", "desc": true}, {"key": "item_id"}]});
    assert_eq!(
        found(&cache, p, fts).await.unwrap(),
        ["n4", "n1", "n5", "n6"]
    );
}

/// `(path, op, value, expected ids)` for `cache_filters`, by item id.
fn filter_cases() -> Vec<(
    serde_json::Value,
    &'static str,
    serde_json::Value,
    Vec<&'static str>,
)> {
    use serde_json::json;
    vec![
        // Numbers; "7" is a number to SQLite's julianday, so it compares as one.
        (json!("n"), "gt", json!(5), vec!["n2", "n4", "n8"]),
        (json!("n"), "gte", json!(5), vec!["n1", "n2", "n4", "n8"]),
        (json!("n"), "lt", json!(5), vec!["n3"]),
        (json!("n"), "lte", json!(5), vec!["n1", "n3"]),
        (json!("n"), "eq", json!(12.5), vec!["n2"]),
        (json!("n"), "ne", json!(5), vec!["n2", "n3", "n4", "n8"]),
        (json!("n"), "eq", json!(7), vec!["n8"]),
        (json!("n"), "eq", json!("7"), vec!["n8"]),
        (
            json!("n"),
            "between",
            json!([0, 50]),
            vec!["n1", "n2", "n8"],
        ),
        // `in` is plain equality: the text "7" is not the number 7.
        (
            json!("n"),
            "in",
            json!([5, 100, "7"]),
            vec!["n1", "n4", "n8"],
        ),
        (json!("n"), "in", json!([7]), vec![]),
        (
            json!("n"),
            "not_in",
            json!([5, 100]),
            vec!["n2", "n3", "n8"],
        ),
        // A number sorts before any text.
        (json!("n"), "gt", json!("abc"), vec![]),
        (
            json!("n"),
            "lt",
            json!("abc"),
            vec!["n1", "n2", "n3", "n4", "n8"],
        ),
        (json!("mixed"), "gt", json!(5), vec!["n1", "n2", "n3"]),
        // Dates as instants, whatever their form; a text that is no date after them.
        (
            json!("d"),
            "gt",
            json!("2024-01-02T09:00:00Z"),
            vec!["n2", "n5", "n8"],
        ),
        (
            json!("d"),
            "lt",
            json!("2024-01-02T09:00:00Z"),
            vec!["n1", "n3", "n4"],
        ),
        (
            json!("d"),
            "between",
            json!(["2024-01-01", "2024-01-02T08:00:00Z"]),
            vec!["n1", "n3"],
        ),
        (
            json!("d"),
            "eq",
            json!("2024-01-02T00:00:00+00:00"),
            vec!["n1"],
        ),
        (
            json!("d"),
            "eq",
            json!("2024-01-02T12:00:00+02:00"),
            vec!["n2"],
        ),
        (
            json!("d"),
            "lt",
            json!("2024-01-01 00:00:00.000"),
            vec!["n4"],
        ),
        // Text, by its bytes; the i-operators lower ASCII only (SQLite's `lower`).
        (json!("t"), "eq", json!("alpha"), vec!["n4"]),
        (json!("t"), "ieq", json!("ALPHA"), vec!["n1", "n4"]),
        (
            json!("t"),
            "ine",
            json!("alpha"),
            vec!["n2", "n3", "n5", "n8"],
        ),
        (json!("t"), "ieq", json!(5), vec![]),
        (
            json!("t"),
            "ine",
            json!(5),
            vec!["n1", "n2", "n3", "n4", "n5", "n8"],
        ),
        (json!("t"), "gt", json!("Zeta"), vec!["n2", "n4", "n8"]),
        (json!("t"), "in", json!(["Alpha", "beta"]), vec!["n1", "n2"]),
        (
            json!("t"),
            "iin",
            json!(["ALPHA", "Zeta"]),
            vec!["n1", "n4", "n5"],
        ),
        (
            json!("t"),
            "inot_in",
            json!(["alpha"]),
            vec!["n2", "n3", "n5", "n8"],
        ),
        (json!("t"), "contains", json!("a r"), vec!["n3"]),
        (json!("t"), "contains", json!("lph"), vec!["n1", "n4"]),
        (json!("t"), "icontains", json!("ALP"), vec!["n1", "n4"]),
        (json!("t"), "icontains", json!("CHEC"), vec!["n8"]),
        (json!("t"), "icontains", json!("échec"), vec![]),
        // Arrays (and a scalar, which json_each walks as one value); JSON null is a
        // field for `disjoint`, as SQLite's `json_type` says.
        (
            json!("tags"),
            "overlap",
            json!(["red"]),
            vec!["n1", "n4", "n5"],
        ),
        (json!("tags"), "overlap", json!(["blue"]), vec!["n4"]),
        (json!("tags"), "ioverlap", json!(["BLUE"]), vec!["n1", "n4"]),
        (json!("tags"), "overlap", json!([2, "3"]), vec!["n8"]),
        (json!("tags"), "overlap", json!(["2"]), vec![]),
        (
            json!("tags"),
            "disjoint",
            json!(["red"]),
            vec!["n2", "n3", "n7", "n8"],
        ),
        (
            json!("tags"),
            "idisjoint",
            json!(["BLUE", "green"]),
            vec!["n3", "n5", "n7", "n8"],
        ),
        (
            json!("tags"),
            "contains",
            json!("red"),
            vec!["n1", "n4", "n5"],
        ),
        (json!("tags"), "contains", json!("re"), vec!["n5"]),
        (json!("tags"), "icontains", json!("BLUE"), vec!["n1", "n4"]),
        (json!("tags"), "contains", json!(2), vec!["n8"]),
        (json!(["tags", 0]), "eq", json!("red"), vec!["n1"]),
        (json!("tags.0"), "eq", json!("red"), vec![]),
        // Nested objects, booleans, keys with quotes, missing fields.
        (json!("author.name"), "eq", json!("Ann"), vec!["n1", "n3"]),
        (
            json!(["author", "name"]),
            "iin",
            json!(["BOB", "cy"]),
            vec!["n2", "n8"],
        ),
        (json!("author"), "contains", json!("Ann"), vec!["n1", "n3"]),
        (json!("flag"), "eq", json!(true), vec!["n1"]),
        (json!("flag"), "eq", json!(0), vec!["n2"]),
        (json!(["we\"ird"]), "eq", json!(1), vec!["n1"]),
        (json!("nope"), "ne", json!(1), vec![]),
    ]
}

/// `(path, desc, expected ids)` for `cache_filters`: numbers before text ascending,
/// after it descending, items without the field last (by item id).
fn order_cases() -> Vec<(&'static str, bool, Vec<&'static str>)> {
    vec![
        (
            "n",
            false,
            vec!["n3", "n1", "n8", "n2", "n4", "n5", "n6", "n7"],
        ),
        (
            "n",
            true,
            vec!["n4", "n2", "n8", "n1", "n3", "n5", "n6", "n7"],
        ),
        (
            "mixed",
            false,
            vec!["n4", "n1", "n3", "n2", "n5", "n6", "n7", "n8"],
        ),
        (
            "mixed",
            true,
            vec!["n2", "n3", "n1", "n4", "n5", "n6", "n7", "n8"],
        ),
        (
            "d",
            false,
            vec!["n4", "n1", "n3", "n2", "n8", "n5", "n6", "n7"],
        ),
        (
            "d",
            true,
            vec!["n5", "n8", "n2", "n3", "n1", "n4", "n6", "n7"],
        ),
        (
            "t",
            false,
            vec!["n1", "n3", "n5", "n4", "n2", "n8", "n6", "n7"],
        ),
        (
            "t",
            true,
            vec!["n8", "n2", "n4", "n5", "n3", "n1", "n6", "n7"],
        ),
    ]
}

/// Several daemons on one database (`cluster.rs`): node names, leases and their
/// fencing tokens, and a history write fenced off once another daemon took the
/// profile over.
async fn cluster(engine: Engine) {
    use perch_backend::cluster::{Cluster, JoinError};
    use perch_backend::error::Error;

    let (db, alice) = with_alice(&engine).await;
    let a = Arc::new(Cluster::join(db.clone(), "a").await.unwrap());
    let b = Arc::new(Cluster::join(db.clone(), "b").await.unwrap());
    assert!(matches!(
        Cluster::join(db.clone(), "a").await,
        Err(JoinError::NameTaken { .. })
    ));
    assert_eq!(a.live_count().await.unwrap(), 2);
    assert_eq!(a.acquire("alice", alice).await.unwrap(), 1);
    match b.acquire("alice", alice).await {
        Err(Error::OwnedElsewhere { owner, .. }) => assert_eq!(owner, "a"),
        other => panic!("expected OwnedElsewhere, got {other:?}"),
    }
    assert_eq!(
        b.owners().await.unwrap().get(&alice).map(String::as_str),
        Some("a")
    );
    let on_a = History::fenced(db.clone(), Some(a.clone()));
    let on_b = History::fenced(db.clone(), Some(b.clone()));
    on_a.store(alice, incoming("m1", "by a", 1_000_000))
        .await
        .unwrap();
    assert!(matches!(
        on_b.store(alice, incoming("m2", "by b", 2_000_000)).await,
        Err(Error::LeaseLost { .. })
    ));
    // a gives its heartbeat up (as a clean stop does): b takes alice, a is fenced.
    a.release_all().await.unwrap();
    assert_eq!(b.acquire("alice", alice).await.unwrap(), 2);
    on_b.store(alice, incoming("m3", "by b", 3_000_000))
        .await
        .unwrap();
    assert!(a.check(&db, alice).await.is_err());
    let bodies: Vec<String> = on_b
        .query(alice, &Query::default())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["by a", "by b"]);
}
