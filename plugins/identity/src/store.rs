//! The `avatar` table and the image files it names, and the `nickname` table.
//!
//! A file is written under a temporary name and renamed into place, so a crash
//! never leaves half an image under a hash; the row is written after the file, so
//! a row always names a whole file.

use std::path::{Path, PathBuf};

use perch_plugin_api::{HostError, PluginStore};
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

/// One JID's avatar, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub hash: String,
    pub media_type: String,
    pub bytes: u64,
}

pub async fn get(db: &PluginStore, profile_id: i32, jid: &str) -> Result<Option<Kept>, HostError> {
    let row = db
        .query_one_raw(stmt(
            "SELECT hash, media_type, bytes FROM avatar WHERE profile_id = ? AND jid = ?",
            vec![profile_id.into(), jid.into()],
        ))
        .await
        .map_err(db_err)?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Kept {
        hash: r.try_get("", "hash").map_err(db_err)?,
        media_type: r.try_get("", "media_type").map_err(db_err)?,
        bytes: u64::try_from(r.try_get::<i64>("", "bytes").map_err(db_err)?).unwrap_or(0),
    }))
}

pub async fn put(db: &PluginStore, profile_id: i32, jid: &str, k: &Kept) -> Result<(), HostError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    db.execute_raw(stmt(
        "INSERT INTO avatar (profile_id, jid, hash, media_type, bytes, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (profile_id, jid) DO UPDATE SET \
         hash = excluded.hash, media_type = excluded.media_type, bytes = excluded.bytes, \
         updated_at = excluded.updated_at",
        vec![
            profile_id.into(),
            jid.into(),
            k.hash.as_str().into(),
            k.media_type.as_str().into(),
            i64::try_from(k.bytes).unwrap_or(i64::MAX).into(),
            now.into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Forgets a JID's avatar; whether there was one.
pub async fn remove(db: &PluginStore, profile_id: i32, jid: &str) -> Result<bool, HostError> {
    let r = db
        .execute_raw(stmt(
            "DELETE FROM avatar WHERE profile_id = ? AND jid = ?",
            vec![profile_id.into(), jid.into()],
        ))
        .await
        .map_err(db_err)?;
    Ok(r.rows_affected() > 0)
}

/// Where the image of `hash` is kept.
pub fn path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(hash)
}

/// Keeps an image under its hash (once: the same hash is the same image).
pub async fn write_file(dir: &Path, hash: &str, data: &[u8]) -> Result<PathBuf, HostError> {
    let to = path(dir, hash);
    if tokio::fs::try_exists(&to).await.unwrap_or(false) {
        return Ok(to);
    }
    // Unique per write: two keeps of one image at once (our own avatar set while its
    // notification comes back) must not share a temporary file.
    let tmp = dir.join(format!(
        ".{hash}.{}.{}",
        std::process::id(),
        perch_plugin_api::ids::random_hex(4)
    ));
    let io = |e: std::io::Error| HostError::Storage(format!("keeping avatar {hash}: {e}"));
    tokio::fs::write(&tmp, data).await.map_err(io)?;
    if let Err(e) = tokio::fs::rename(&tmp, &to).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io(e));
    }
    Ok(to)
}

/// The nickname kept for a JID (XEP-0172): `None` when nothing is known,
/// `Some(None)` when it is known to have none.
pub async fn nick(
    db: &PluginStore,
    profile_id: i32,
    jid: &str,
) -> Result<Option<Option<String>>, HostError> {
    let row = db
        .query_one_raw(stmt(
            "SELECT nick FROM nickname WHERE profile_id = ? AND jid = ?",
            vec![profile_id.into(), jid.into()],
        ))
        .await
        .map_err(db_err)?;
    row.map(|r| r.try_get("", "nick").map_err(db_err))
        .transpose()
}

/// Keeps a JID's nickname (`None`: it has none).
pub async fn set_nick(
    db: &PluginStore,
    profile_id: i32,
    jid: &str,
    nick: Option<&str>,
) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "INSERT INTO nickname (profile_id, jid, nick) VALUES (?, ?, ?) \
         ON CONFLICT (profile_id, jid) DO UPDATE SET nick = excluded.nick",
        vec![
            profile_id.into(),
            jid.into(),
            nick.map(str::to_owned).into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}
