//! Storage of each profile's roster (the `roster_item` and `roster_version` tables),
//! so that the roster answers while the profile is offline, and so that a session
//! can ask the server only for what changed since the version it kept (RFC 6121
//! §2.6, roster versioning).
//!
//! Why a whole-roster replace and a one-item push: those are the two shapes the
//! server sends (a full roster answer, a push of one item with the version it
//! makes). Each is one `BEGIN IMMEDIATE` transaction, so the stored version is
//! always the version of the stored items: a crash between the two writes can never
//! leave a new version beside old items, which would make the next session skip
//! changes it never stored.

use perch_plugin_api::RosterItem;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use crate::db::begin_write;
use crate::error::Result;

/// What is kept of one profile's roster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRoster {
    /// The server's version of these items; `None` when it gave none.
    pub ver: Option<String>,
    /// The account (bare JID) whose roster this is: a profile whose JID changed
    /// must not offer the old account's version to the new account's server.
    pub account: String,
    pub items: Vec<RosterItem>,
}

/// The roster store (cheap to clone: the pool's handle).
#[derive(Clone)]
pub struct RosterStore {
    db: DatabaseConnection,
}

fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    perch_plugin_api::db::statement(db.get_database_backend(), sql, values)
}

impl RosterStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The last roster stored for a profile's account `account` (empty, without a
    /// version, when none was, or when it was another account's).
    pub async fn load(&self, profile_id: i32, account: &str) -> Result<StoredRoster> {
        let db = &self.db;
        let rows = db
            .query_all_raw(stmt(
                db,
                "SELECT jid, name, subscription, ask, groups FROM roster_item \
                 WHERE profile_id = ? ORDER BY jid",
                vec![profile_id.into()],
            ))
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let groups: String = r.try_get("", "groups")?;
            items.push(RosterItem {
                jid: r.try_get("", "jid")?,
                name: r.try_get("", "name")?,
                subscription: r.try_get("", "subscription")?,
                ask: r.try_get("", "ask")?,
                groups: serde_json::from_str(&groups).unwrap_or_default(),
            });
        }
        let stored = db
            .query_one_raw(stmt(
                db,
                "SELECT account, ver FROM roster_version WHERE profile_id = ?",
                vec![profile_id.into()],
            ))
            .await?;
        let (stored_account, ver) = match stored {
            Some(r) => (
                r.try_get::<String>("", "account")?,
                r.try_get::<Option<String>>("", "ver")?,
            ),
            None => (String::new(), None),
        };
        if stored_account != account {
            // Another account's roster, or none stored yet: nothing to show.
            return Ok(StoredRoster {
                account: account.to_owned(),
                ..StoredRoster::default()
            });
        }
        Ok(StoredRoster {
            ver,
            account: stored_account,
            items,
        })
    }

    /// Replaces a profile's whole roster (a full roster answer) and its version.
    pub async fn replace(
        &self,
        profile_id: i32,
        profile: &str,
        roster: &StoredRoster,
    ) -> Result<()> {
        let tx = begin_write(&self.db, "roster replace", profile).await?;
        tx.execute_raw(stmt(
            &tx,
            "DELETE FROM roster_item WHERE profile_id = ?",
            vec![profile_id.into()],
        ))
        .await?;
        for item in &roster.items {
            upsert_item(&tx, profile_id, item).await?;
        }
        set_ver(&tx, profile_id, &roster.account, roster.ver.as_deref()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One pushed item (`subscription` `remove` deletes it), with the version the
    /// push carried (`None`: the version is unknown from now on).
    pub async fn push(
        &self,
        profile_id: i32,
        profile: &str,
        account: &str,
        item: &RosterItem,
        ver: Option<&str>,
    ) -> Result<()> {
        let tx = begin_write(&self.db, "roster push", profile).await?;
        if item.subscription == "remove" {
            tx.execute_raw(stmt(
                &tx,
                "DELETE FROM roster_item WHERE profile_id = ? AND jid = ?",
                vec![profile_id.into(), item.jid.clone().into()],
            ))
            .await?;
        } else {
            upsert_item(&tx, profile_id, item).await?;
        }
        set_ver(&tx, profile_id, account, ver).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl RosterStore {
    /// Forgets the stored version (the items missed a change): the next stream
    /// fetches the whole roster.
    pub async fn forget_version(&self, profile_id: i32) -> Result<()> {
        let db = &self.db;
        db.execute_raw(stmt(
            db,
            "UPDATE roster_version SET ver = NULL WHERE profile_id = ?",
            vec![profile_id.into()],
        ))
        .await?;
        Ok(())
    }
}

async fn upsert_item(db: &impl ConnectionTrait, profile_id: i32, item: &RosterItem) -> Result<()> {
    let groups = serde_json::to_string(&item.groups).unwrap_or_else(|_| "[]".into());
    db.execute_raw(stmt(
        db,
        "INSERT INTO roster_item (profile_id, jid, name, subscription, ask, groups) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (profile_id, jid) DO UPDATE SET \
         name = excluded.name, subscription = excluded.subscription, \
         ask = excluded.ask, groups = excluded.groups",
        vec![
            profile_id.into(),
            item.jid.clone().into(),
            item.name.clone().into(),
            item.subscription.clone().into(),
            item.ask.into(),
            groups.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Records whose roster the rows are and its version (`None`: none known).
async fn set_ver(
    db: &impl ConnectionTrait,
    profile_id: i32,
    account: &str,
    ver: Option<&str>,
) -> Result<()> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO roster_version (profile_id, account, ver) VALUES (?, ?, ?) \
         ON CONFLICT (profile_id) DO UPDATE SET account = excluded.account, ver = excluded.ver",
        vec![
            profile_id.into(),
            account.into(),
            ver.map(str::to_owned).into(),
        ],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::profiles::{NewProfile, Profiles};
    use crate::secret::{Password, Sealer};

    fn item(jid: &str, subscription: &str) -> RosterItem {
        RosterItem {
            jid: jid.into(),
            name: Some("N".into()),
            subscription: subscription.into(),
            ask: false,
            groups: vec!["Friends".into()],
        }
    }

    /// A whole roster replaced, then pushes, each with its version; another
    /// account's roster is not shown; forgetting the version keeps the items.
    #[tokio::test]
    async fn replace_push_and_account() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open_sqlite(&dir.path().join("perch.db"))
            .await
            .unwrap();
        let sealer = Arc::new(Sealer::load_or_create(&dir.path().join("key")).unwrap());
        let profiles = Profiles::new(db.clone(), sealer);
        profiles
            .create(NewProfile {
                name: "alice".into(),
                jid: "alice@example.org".into(),
                password: Password::new("pw".into()),
                server: None,
                ca_file: None,
                insecure: false,
                autoconnect: false,
            })
            .await
            .unwrap();
        let pid = profiles.get("alice").await.unwrap().id;
        let store = RosterStore::new(db);
        let me = "alice@example.org";
        assert_eq!(
            store.load(pid, me).await.unwrap(),
            StoredRoster {
                account: me.into(),
                ..StoredRoster::default()
            }
        );
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
        assert_eq!(now.items[0].groups, ["Friends"]);

        store.forget_version(pid).await.unwrap();
        let now = store.load(pid, me).await.unwrap();
        assert_eq!((now.ver, now.items.len()), (None, 2));

        // The profile's JID changed: the old account's roster is not its roster.
        let other = store.load(pid, "alice@elsewhere.org").await.unwrap();
        assert!(other.items.is_empty() && other.ver.is_none());
    }
}
