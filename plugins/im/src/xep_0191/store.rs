//! The `blocked_jid` table: a profile's copy of its server-side blocklist, so the
//! list is there before the connection is (and after a restart), and a change found
//! at the next connection is signalled.

use std::collections::BTreeSet;

use perch_plugin_api::HostError;
use perch_plugin_api::PluginStore;
use sea_orm::{
    ConnectionTrait, DbBackend, Statement, TransactionSession, TransactionTrait, Value as Sql,
};

/// Written once, in SQLite's spelling (`?` placeholders): the store makes each
/// statement PostgreSQL's when it runs there (`perch_plugin_api::db::portable_sql`).
const B: DbBackend = DbBackend::Sqlite;

fn db_err(e: sea_orm::DbErr) -> HostError {
    HostError::Storage(e.to_string())
}

fn stmt(sql: &str, values: Vec<Sql>) -> Statement {
    Statement::from_sql_and_values(B, sql, values)
}

/// The profile's blocked JIDs, sorted.
pub async fn list(db: &PluginStore, profile_id: i32) -> Result<BTreeSet<String>, HostError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT jid FROM blocked_jid WHERE profile_id = ? ORDER BY jid",
            vec![profile_id.into()],
        ))
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "jid").map_err(db_err))
        .collect()
}

/// Makes the profile's stored list `jids`, in one transaction (a crash leaves the
/// old list or the new one, never half of it).
pub async fn replace(
    db: &PluginStore,
    profile_id: i32,
    jids: &BTreeSet<String>,
) -> Result<(), HostError> {
    let txn = db.begin().await.map_err(db_err)?;
    txn.execute_raw(stmt(
        "DELETE FROM blocked_jid WHERE profile_id = ?",
        vec![profile_id.into()],
    ))
    .await
    .map_err(db_err)?;
    for jid in jids {
        txn.execute_raw(stmt(
            "INSERT INTO blocked_jid (profile_id, jid) VALUES (?, ?)",
            vec![profile_id.into(), jid.as_str().into()],
        ))
        .await
        .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)
}
