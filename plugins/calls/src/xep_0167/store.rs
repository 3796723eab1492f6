//! The `call` table: ended calls, as `call_list` shows them, so the list survives a
//! restart of perchd. Ongoing calls live in memory only (they cannot outlive the
//! session that carries their signalling).

use perch_plugin_api::HostError;
use perch_plugin_api::PluginStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as Sql};
use serde_json::Value;

fn db_err(e: sea_orm::DbErr) -> HostError {
    HostError::Storage(e.to_string())
}

/// Records an ended call (again: the last write wins).
pub async fn save(
    db: &PluginStore,
    profile_id: i32,
    sid: &str,
    created: &str,
    data: &Value,
) -> Result<(), HostError> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO call (profile_id, sid, created, data) VALUES (?, ?, ?, ?) \
         ON CONFLICT (profile_id, sid) DO UPDATE SET data = excluded.data",
        vec![
            profile_id.into(),
            sid.into(),
            created.into(),
            data.to_string().into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The profile's stored calls, oldest first.
pub async fn list(db: &PluginStore, profile_id: i32) -> Result<Vec<Value>, HostError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT data FROM call WHERE profile_id = ? ORDER BY created, id",
            vec![Sql::from(profile_id)],
        ))
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let text: String = row.try_get("", "data").map_err(db_err)?;
        match serde_json::from_str(&text) {
            Ok(v) => out.push(v),
            Err(e) => {
                tracing::warn!(profile_id, error = %e, "a stored call that is not JSON skipped")
            }
        }
    }
    Ok(out)
}
