//! Writers racing on one database file never fail: a second writer waits for the first.
//!
//! Before every writing transaction began with `BEGIN IMMEDIATE`
//! (`perch_plugin_api::db::begin_write`), a profile creation (read the names, then
//! insert) that lost the race to another writer failed at once with "database is
//! locked" (SQLITE_BUSY_SNAPSHOT, 517): 92 of 300 creations 8 at a time through perchd
//! (`doc/reliability.rst`, "Concurrent writers").

use std::sync::Arc;

use futures::StreamExt;
use perch_backend::db::open_sqlite;
use perch_backend::history::{History, NewMessage};
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};
use perch_plugin_api::{Direction, MessageState};

const PROFILES: usize = 300;
const AT_A_TIME: usize = 8;

fn new_profile(i: usize) -> NewProfile {
    NewProfile {
        name: format!("p{i:03}"),
        jid: format!("u{i:03}@example.org"),
        password: Password::new("pw-pw-pw-pw".into()),
        server: None,
        ca_file: None,
        insecure: false,
        autoconnect: false,
    }
}

fn message(i: usize) -> NewMessage {
    NewMessage {
        msg_id: format!("m{i}"),
        timestamp: 1_700_000_000_000_000 + i64::try_from(i).unwrap(),
        direction: Direction::In,
        peer: "bob@example.org".into(),
        from: "bob@example.org/phone".into(),
        to: "u@example.org/perch".into(),
        kind: "chat".into(),
        body: format!("message {i}"),
        state: MessageState::Received,
        origin_id: None,
        stanza_id: None,
        replaces: None,
        extra: Default::default(),
    }
}

/// Profiles created before the race, for the writes beside the creations.
const BASE: usize = 8;

/// One step of the race: a creation, and with every other one some writes to one of
/// the [`BASE`] profiles (its default flag, autoconnect, password, a message).
async fn step(profiles: &Profiles, history: &History, i: usize) -> Result<(), String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what} p{i:03}: {e}");
    profiles
        .create(new_profile(i))
        .await
        .map_err(|e| err("create", &e))?;
    if i % 2 == 1 {
        let name = format!("base{}", i % BASE);
        profiles
            .set_default(&name)
            .await
            .map_err(|e| err("set_default", &e))?;
        profiles
            .set_autoconnect(&name, true)
            .await
            .map_err(|e| err("set_autoconnect", &e))?;
        profiles
            .set_password(&name, &Password::new("another-pw-pw".into()))
            .await
            .map_err(|e| err("set_password", &e))?;
        let id = profiles.get(&name).await.map_err(|e| err("get", &e))?.id;
        history
            .store(id, message(i))
            .await
            .map_err(|e| err("store", &e))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn profile_creations_and_other_writers_8_at_a_time_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    let history = History::new(db.clone());
    for b in 0..BASE {
        let mut p = new_profile(PROFILES + b);
        p.name = format!("base{b}");
        profiles.create(p).await.unwrap();
    }
    let failures: Vec<String> = futures::stream::iter(0..PROFILES)
        .map(|i| {
            let (profiles, history) = (&profiles, &history);
            async move { step(profiles, history, i).await }
        })
        .buffer_unordered(AT_A_TIME)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {PROFILES} steps failed, e.g.: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let all = profiles.list().await.unwrap();
    assert_eq!(all.len(), PROFILES + BASE);
    assert_eq!(
        all.iter().filter(|p| p.is_default).count(),
        1,
        "exactly one default profile"
    );
}

/// A writer that finds the lock held past [`WRITE_LOCK_DEADLINE`] (and past the old
/// 5 s busy timeout, after which it failed) waits for it, and then writes.
#[tokio::test]
async fn a_writer_waits_for_a_lock_held_past_the_deadline() {
    use perch_backend::db::{WRITE_LOCK_DEADLINE, begin_write};
    use sea_orm::ConnectionTrait;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perch.db");
    let holder = open_sqlite(&path).await.unwrap();
    holder
        .execute_unprepared("CREATE TABLE t (x INTEGER)")
        .await
        .unwrap();
    let writer = open_sqlite(&path).await.unwrap();
    let held = begin_write(&holder, "hold the lock", "").await.unwrap();
    held.execute_unprepared("INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        let tx = begin_write(&writer, "wait for the lock", "tester").await?;
        tx.execute_unprepared("INSERT INTO t VALUES (2)").await?;
        tx.commit().await
    });
    tokio::time::sleep(WRITE_LOCK_DEADLINE + std::time::Duration::from_secs(1)).await;
    held.commit().await.unwrap();
    waiting.await.unwrap().expect("the second writer failed");
    let n = holder
        .query_one_raw(sea_orm::Statement::from_string(
            holder.get_database_backend(),
            "SELECT count(*) AS n FROM t",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(n, 2);
}
