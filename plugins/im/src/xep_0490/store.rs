//! The `read_state` table: a profile's read position per conversation.

use std::collections::BTreeMap;

use perch_plugin_api::HostError;
use perch_plugin_api::PluginStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as Sql};

fn db_err(e: sea_orm::DbErr) -> HostError {
    HostError::Storage(e.to_string())
}

fn stmt(sql: &str, values: Vec<Sql>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

/// The profile's read positions: conversation → the last message read.
pub async fn all(db: &PluginStore, profile_id: i32) -> Result<BTreeMap<String, String>, HostError> {
    positions(db, profile_id, false).await
}

/// The read positions of `profile_id` (only the pending ones when `pending`).
async fn positions(
    db: &PluginStore,
    profile_id: i32,
    pending: bool,
) -> Result<BTreeMap<String, String>, HostError> {
    let sql = if pending {
        "SELECT peer, message_id FROM read_state WHERE profile_id = ? AND pending"
    } else {
        "SELECT peer, message_id FROM read_state WHERE profile_id = ?"
    };
    let rows = db
        .query_all_raw(stmt(sql, vec![profile_id.into()]))
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String>("", "peer").map_err(db_err)?,
                r.try_get::<String>("", "message_id").map_err(db_err)?,
            ))
        })
        .collect()
}

/// Sets the read position of conversation `peer` (one statement); `pending`: not
/// yet published to our other devices.
pub async fn set(
    db: &PluginStore,
    profile_id: i32,
    peer: &str,
    message_id: &str,
    pending: bool,
) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "INSERT INTO read_state (profile_id, peer, message_id, pending) VALUES (?, ?, ?, ?) \
         ON CONFLICT (profile_id, peer) DO UPDATE SET message_id = excluded.message_id, \
         pending = excluded.pending",
        vec![
            profile_id.into(),
            peer.into(),
            message_id.into(),
            pending.into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The positions set and not yet published: conversation → message id.
pub async fn pending(
    db: &PluginStore,
    profile_id: i32,
) -> Result<BTreeMap<String, String>, HostError> {
    positions(db, profile_id, true).await
}

/// Position `message_id` of `peer` is published (unless it moved meanwhile).
pub async fn published(
    db: &PluginStore,
    profile_id: i32,
    peer: &str,
    message_id: &str,
) -> Result<(), HostError> {
    db.execute_raw(stmt(
        // The flag bound, not a literal 0: PostgreSQL's column is a boolean.
        "UPDATE read_state SET pending = ? \
         WHERE profile_id = ? AND peer = ? AND message_id = ?",
        vec![
            false.into(),
            profile_id.into(),
            peer.into(),
            message_id.into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}
