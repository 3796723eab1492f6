//! Leases between daemons, on a real SQLite file shared by two `Cluster`s (what two
//! processes on one database see; the processes are in the e2e tests).

use std::sync::Arc;

use super::*;
use crate::profiles::{NewProfile, Profiles};
use crate::secret::{Password, Sealer};

async fn db(dir: &tempfile::TempDir) -> DatabaseConnection {
    crate::db::open_sqlite(&dir.path().join("perch.db"))
        .await
        .expect("opening the database")
}

async fn profile(db: &DatabaseConnection, name: &str) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let sealer = Arc::new(Sealer::load_or_create(&dir.path().join("key")).unwrap());
    let profiles = Profiles::new(db.clone(), sealer);
    profiles
        .create(NewProfile {
            name: name.into(),
            jid: format!("{name}@example.org"),
            password: Password::new("secret".into()),
            server: None,
            ca_file: None,
            insecure: false,
            autoconnect: true,
        })
        .await
        .expect("a profile");
    profiles.get(name).await.expect("the profile").id
}

/// Makes `name`'s heartbeat as old as a dead daemon's.
async fn silence(db: &DatabaseConnection, name: &str) {
    daemon_node::Entity::update_many()
        .col_expr(daemon_node::Column::HeartbeatAt, Expr::value(1))
        .filter(daemon_node::Column::Name.eq(name))
        .exec(db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_live_name_is_refused_and_a_dead_one_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(&dir).await;
    let a = Cluster::join(db.clone(), "a").await.unwrap();
    assert_eq!(a.name(), "a");
    // Same host, and this very process holds it: a live daemon.
    match Cluster::join(db.clone(), "a").await {
        Err(e @ JoinError::NameTaken { .. }) => {
            let m = e.to_string();
            assert!(m.contains("\"a\"") && m.contains("[cluster] node"), "{m}");
        }
        other => panic!("expected NameTaken, got {:?}", other.map(|c| c.node)),
    }
    // Its heartbeat stops: the name is free again, and what it held too.
    let p = profile(&db, "alice").await;
    a.acquire("alice", p).await.unwrap();
    silence(&db, "a").await;
    let again = Cluster::join(db.clone(), "a").await.unwrap();
    assert!(again.owners().await.unwrap().is_empty(), "alice is free");
    assert_eq!(again.acquire("alice", p).await.unwrap(), 2);
    // The host name by default.
    let d = Cluster::join(db.clone(), "").await.unwrap();
    assert_eq!(d.name(), host_name());
}

#[tokio::test]
async fn one_owner_at_a_time_and_takeover_once_its_heartbeat_stops() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(&dir).await;
    let p = profile(&db, "alice").await;
    let a = Cluster::join(db.clone(), "a").await.unwrap();
    let b = Cluster::join(db.clone(), "b").await.unwrap();
    assert_eq!(a.live_count().await.unwrap(), 2);

    assert_eq!(a.acquire("alice", p).await.unwrap(), 1);
    match b.acquire("alice", p).await {
        Err(Error::OwnedElsewhere { profile, owner }) => {
            assert_eq!((profile.as_str(), owner.as_str()), ("alice", "a"));
        }
        other => panic!("expected OwnedElsewhere, got {other:?}"),
    }
    assert_eq!(b.owned_elsewhere(p).await.unwrap().as_deref(), Some("a"));
    assert_eq!(a.owned_elsewhere(p).await.unwrap(), None);
    assert_eq!(
        b.owners().await.unwrap().get(&p).map(String::as_str),
        Some("a")
    );
    // The fence: the owner writes, the other does not.
    a.check(&db, p).await.unwrap();
    assert!(matches!(
        b.check(&db, p).await,
        Err(Error::LeaseLost { .. })
    ));

    // a stops beating (killed): b takes over with a higher token; a's writes are
    // fenced off and a's next beat reports the profile lost.
    silence(&db, "a").await;
    assert_eq!(b.owned_elsewhere(p).await.unwrap(), None);
    assert_eq!(b.acquire("alice", p).await.unwrap(), 2);
    b.check(&db, p).await.unwrap();
    match a.check(&db, p).await {
        Err(Error::LeaseLost { owner, .. }) => assert_eq!(owner, "b"),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(a.beat().await.unwrap(), [p]);
    assert!(a.beat().await.unwrap().is_empty(), "reported once");
}

#[tokio::test]
async fn a_clean_stop_hands_profiles_over_and_tokens_only_rise() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(&dir).await;
    let p = profile(&db, "alice").await;
    let q = profile(&db, "bob").await;
    let a = Cluster::join(db.clone(), "a").await.unwrap();
    let b = Cluster::join(db.clone(), "b").await.unwrap();
    a.acquire("alice", p).await.unwrap();
    a.acquire("bob", q).await.unwrap();
    a.release(q).await.unwrap();
    assert!(!b.owners().await.unwrap().contains_key(&q), "bob is free");
    assert_eq!(
        b.acquire("bob", q).await.unwrap(),
        2,
        "the token went on rising"
    );
    a.release_all().await.unwrap();
    assert_eq!(
        b.live_count().await.unwrap(),
        1,
        "a's heartbeat was given up"
    );
    assert_eq!(b.acquire("alice", p).await.unwrap(), 2);
    // Nobody live owns a profile: writes for it are not fenced off (offline work).
    let r = profile(&db, "carol").await;
    a.check(&db, r).await.unwrap();
}
