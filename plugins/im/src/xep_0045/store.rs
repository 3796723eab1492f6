//! The `muc_room` table: the rooms a profile is in, to join them again when perchd
//! starts. A row is written after each successful join and removed when we leave
//! the room or are thrown out of it. No password is ever stored.

use perch_plugin_api::HostError;
use perch_plugin_api::PluginStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as Sql};

/// Written once, in SQLite's spelling (`?` placeholders): the store makes each
/// statement PostgreSQL's when it runs there (`perch_plugin_api::db::portable_sql`).
const B: DbBackend = DbBackend::Sqlite;

fn db_err(e: sea_orm::DbErr) -> HostError {
    HostError::Storage(e.to_string())
}

fn stmt(sql: &str, values: Vec<Sql>) -> Statement {
    Statement::from_sql_and_values(B, sql, values)
}

/// Records that the profile is in `room` as `nick`.
pub async fn save(
    db: &PluginStore,
    profile_id: i32,
    room: &str,
    nick: &str,
) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "INSERT INTO muc_room (profile_id, room, nick) VALUES (?, ?, ?) \
         ON CONFLICT (profile_id, room) DO UPDATE SET nick = excluded.nick",
        vec![profile_id.into(), room.into(), nick.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn remove(db: &PluginStore, profile_id: i32, room: &str) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "DELETE FROM muc_room WHERE profile_id = ? AND room = ?",
        vec![profile_id.into(), room.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The profile's rooms: (room, nick), by room.
pub async fn rooms(db: &PluginStore, profile_id: i32) -> Result<Vec<(String, String)>, HostError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT room, nick FROM muc_room WHERE profile_id = ? ORDER BY room",
            vec![profile_id.into()],
        ))
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String>("", "room").map_err(db_err)?,
                r.try_get::<String>("", "nick").map_err(db_err)?,
            ))
        })
        .collect()
}
