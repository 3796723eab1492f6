//! The plugin's tables (`omemo_*`): what OMEMO must remember across restarts.
//! Every function is one statement (or one transaction) on the plugin's store; the
//! key material in them is JSON of the crypto crate's types, the identity seed
//! sealed by the host.

use perch_omemo::{DeviceKeys, Session, Version};
use perch_plugin_api::{HostError, PluginStore};
use sea_orm::{
    ConnectionTrait, DbBackend, QueryResult, Statement, TransactionSession, Value as Sql,
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

/// A version's name in the tables.
pub fn vname(v: Version) -> &'static str {
    match v {
        Version::V03 => "0.3",
        Version::V2 => "2",
    }
}

fn parse_v(s: &str) -> Option<Version> {
    match s {
        "0.3" => Some(Version::V03),
        "2" => Some(Version::V2),
        _ => None,
    }
}

async fn exec(db: &PluginStore, sql: &str, values: Vec<Sql>) -> Result<(), HostError> {
    db.execute_raw(stmt(sql, values)).await.map_err(db_err)?;
    Ok(())
}

async fn one(
    db: &PluginStore,
    sql: &str,
    values: Vec<Sql>,
) -> Result<Option<QueryResult>, HostError> {
    db.query_one_raw(stmt(sql, values)).await.map_err(db_err)
}

async fn all(db: &PluginStore, sql: &str, values: Vec<Sql>) -> Result<Vec<QueryResult>, HostError> {
    db.query_all_raw(stmt(sql, values)).await.map_err(db_err)
}

fn get<T: sea_orm::TryGetable>(r: &QueryResult, col: &str) -> Result<T, HostError> {
    r.try_get::<T>("", col).map_err(db_err)
}

/// Our device id and the sealed identity seed.
pub async fn identity(db: &PluginStore, pid: i32) -> Result<Option<(u32, String)>, HostError> {
    let Some(r) = one(
        db,
        "SELECT device_id, sealed_seed FROM omemo_identity WHERE profile_id = ?",
        vec![pid.into()],
    )
    .await?
    else {
        return Ok(None);
    };
    let id: i64 = get(&r, "device_id")?;
    Ok(Some((id as u32, get(&r, "sealed_seed")?)))
}

/// Stores the identity unless one is there already; whether it was stored.
pub async fn save_identity(
    db: &PluginStore,
    pid: i32,
    device: u32,
    sealed: &str,
) -> Result<bool, HostError> {
    let r = db
        .execute_raw(stmt(
            "INSERT INTO omemo_identity (profile_id, device_id, sealed_seed) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
            vec![pid.into(), i64::from(device).into(), sealed.into()],
        ))
        .await
        .map_err(db_err)?;
    Ok(r.rows_affected() == 1)
}

pub async fn keys(db: &PluginStore, pid: i32, v: Version) -> Result<Option<DeviceKeys>, HostError> {
    let Some(r) = one(
        db,
        "SELECT keys FROM omemo_prekeys WHERE profile_id = ? AND version = ?",
        vec![pid.into(), vname(v).into()],
    )
    .await?
    else {
        return Ok(None);
    };
    let json: String = get(&r, "keys")?;
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| HostError::Storage(format!("stored prekeys: {e}")))
}

pub async fn save_keys(db: &PluginStore, pid: i32, keys: &DeviceKeys) -> Result<(), HostError> {
    let json = serde_json::to_string(keys).map_err(|e| HostError::Internal(e.to_string()))?;
    exec(
        db,
        "INSERT INTO omemo_prekeys (profile_id, version, keys) VALUES (?, ?, ?) \
         ON CONFLICT (profile_id, version) DO UPDATE SET keys = excluded.keys",
        vec![pid.into(), vname(keys.version()).into(), json.into()],
    )
    .await
}

/// A device of an account, as known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub jid: String,
    pub version: Version,
    pub id: u32,
    /// In the account's current device list.
    pub active: bool,
    pub fingerprint: Option<String>,
}

/// Makes `ids` the active devices of `jid` for `v` (the others stay, inactive:
/// their sessions still decrypt late messages).
pub async fn set_devicelist(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    v: Version,
    ids: &[u32],
) -> Result<(), HostError> {
    let txn = sea_orm::TransactionTrait::begin(db).await.map_err(db_err)?;
    txn.execute_raw(stmt(
        "UPDATE omemo_device SET active = 0 WHERE profile_id = ? AND jid = ? AND version = ?",
        vec![pid.into(), jid.into(), vname(v).into()],
    ))
    .await
    .map_err(db_err)?;
    for id in ids {
        txn.execute_raw(stmt(
            "INSERT INTO omemo_device (profile_id, jid, version, device_id, active) VALUES (?, ?, ?, ?, 1)
             ON CONFLICT (profile_id, jid, version, device_id) DO UPDATE SET active = 1",
            vec![pid.into(), jid.into(), vname(v).into(), i64::from(*id).into()],
        ))
        .await
        .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)
}

/// Notes a device we heard from (a message), keeping its active flag if known.
pub async fn note_device(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    v: Version,
    id: u32,
    fp: &str,
) -> Result<(), HostError> {
    exec(
        db,
        "INSERT INTO omemo_device (profile_id, jid, version, device_id, active, fingerprint) VALUES (?, ?, ?, ?, 0, ?)
         ON CONFLICT (profile_id, jid, version, device_id) DO UPDATE SET fingerprint = excluded.fingerprint",
        vec![pid.into(), jid.into(), vname(v).into(), i64::from(id).into(), fp.into()],
    )
    .await
}

/// The devices known of `jid`, both versions.
pub async fn devices(db: &PluginStore, pid: i32, jid: &str) -> Result<Vec<Device>, HostError> {
    let rows = all(
        db,
        "SELECT version, device_id, active, fingerprint FROM omemo_device
         WHERE profile_id = ? AND jid = ? ORDER BY version, device_id",
        vec![pid.into(), jid.into()],
    )
    .await?;
    rows.iter()
        .filter_map(|r| {
            let v: String = get(r, "version").ok()?;
            Some((parse_v(&v)?, r))
        })
        .map(|(version, r)| {
            let id: i64 = get(r, "device_id")?;
            let active: i64 = get(r, "active")?;
            Ok(Device {
                jid: jid.to_owned(),
                version,
                id: id as u32,
                active: active != 0,
                fingerprint: get(r, "fingerprint")?,
            })
        })
        .collect()
}

/// The trust given to `fingerprint` of `jid`, if any.
pub async fn trust(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    fp: &str,
) -> Result<Option<String>, HostError> {
    let r = one(
        db,
        "SELECT trust FROM omemo_trust WHERE profile_id = ? AND jid = ? AND fingerprint = ?",
        vec![pid.into(), jid.into(), fp.into()],
    )
    .await?;
    r.map(|r| get(&r, "trust")).transpose()
}

/// Every fingerprint of `jid` with its trust.
pub async fn trusts(
    db: &PluginStore,
    pid: i32,
    jid: &str,
) -> Result<Vec<(String, String)>, HostError> {
    let rows = all(
        db,
        "SELECT fingerprint, trust FROM omemo_trust WHERE profile_id = ? AND jid = ? ORDER BY fingerprint",
        vec![pid.into(), jid.into()],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((get(r, "fingerprint")?, get(r, "trust")?)))
        .collect()
}

pub async fn set_trust(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    fp: &str,
    trust: &str,
) -> Result<(), HostError> {
    exec(
        db,
        "INSERT INTO omemo_trust (profile_id, jid, fingerprint, trust) VALUES (?, ?, ?, ?) \
         ON CONFLICT (profile_id, jid, fingerprint) DO UPDATE SET trust = excluded.trust",
        vec![pid.into(), jid.into(), fp.into(), trust.into()],
    )
    .await
}

/// Every blindly trusted key of `jid` becomes undecided (a key was verified).
pub async fn end_blind_trust(db: &PluginStore, pid: i32, jid: &str) -> Result<(), HostError> {
    exec(
        db,
        "UPDATE omemo_trust SET trust = 'undecided' WHERE profile_id = ? AND jid = ? AND trust = 'blind'",
        vec![pid.into(), jid.into()],
    )
    .await
}

pub async fn session(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    v: Version,
    device: u32,
) -> Result<Option<Session>, HostError> {
    let Some(r) = one(
        db,
        "SELECT state FROM omemo_session WHERE profile_id = ? AND jid = ? AND version = ? AND device_id = ?",
        vec![pid.into(), jid.into(), vname(v).into(), i64::from(device).into()],
    )
    .await?
    else {
        return Ok(None);
    };
    let json: String = get(&r, "state")?;
    Session::from_json(&json)
        .map(Some)
        .map_err(|e| HostError::Storage(e.to_string()))
}

pub async fn save_session(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    device: u32,
    s: &Session,
) -> Result<(), HostError> {
    exec(
        db,
        "INSERT INTO omemo_session (profile_id, jid, version, device_id, state) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (profile_id, jid, version, device_id) DO UPDATE SET state = excluded.state",
        vec![
            pid.into(),
            jid.into(),
            vname(s.version()).into(),
            i64::from(device).into(),
            s.to_json().into(),
        ],
    )
    .await
}

pub async fn encrypted(db: &PluginStore, pid: i32, jid: &str) -> Result<bool, HostError> {
    Ok(one(
        db,
        "SELECT 1 AS x FROM omemo_conversation WHERE profile_id = ? AND jid = ?",
        vec![pid.into(), jid.into()],
    )
    .await?
    .is_some())
}

pub async fn set_encrypted(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    on: bool,
) -> Result<(), HostError> {
    let sql = if on {
        "INSERT INTO omemo_conversation (profile_id, jid) VALUES (?, ?) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM omemo_conversation WHERE profile_id = ? AND jid = ?"
    };
    exec(db, sql, vec![pid.into(), jid.into()]).await
}

/// Whether the conversation with `jid` is encrypted (`Some`), and with the version
/// it was started with (`Some(None)`: the best one at each message).
pub async fn conversation(
    db: &PluginStore,
    pid: i32,
    jid: &str,
) -> Result<Option<Option<Version>>, HostError> {
    let Some(r) = one(
        db,
        "SELECT version FROM omemo_conversation WHERE profile_id = ? AND jid = ?",
        vec![pid.into(), jid.into()],
    )
    .await?
    else {
        return Ok(None);
    };
    let v: Option<String> = get(&r, "version")?;
    Ok(Some(v.as_deref().and_then(parse_v)))
}

/// Encrypts the conversation with `jid`, in version `pinned` (`None`: the best one
/// at each message).
pub async fn set_conversation(
    db: &PluginStore,
    pid: i32,
    jid: &str,
    pinned: Option<Version>,
) -> Result<(), HostError> {
    exec(
        db,
        "INSERT INTO omemo_conversation (profile_id, jid, version) VALUES (?, ?, ?) \
         ON CONFLICT (profile_id, jid) DO UPDATE SET version = excluded.version",
        vec![
            pid.into(),
            jid.into(),
            pinned.map(|v| vname(v).to_owned()).into(),
        ],
    )
    .await
}
