//! The cache's tables (`pubsub_node`, `pubsub_item`, `pubsub_item_fts`): the only code
//! that touches them. Raw SQL through sea-orm statements: upserts, FTS5 and JSON
//! paths have no builder, and the hot paths (a page of items in one transaction, a
//! 20-item read) must stay a handful of statements. Storing items goes through sqlx
//! itself (the store's checked sqlx transaction), the values moved rather than
//! copied; it also writes the full-text index, which keeps no text of its own
//! (migration 006). Everything goes through the plugin's store: these tables and no
//! other.

use std::collections::HashSet;

use perch_plugin_api::store::{CheckedQuery, CheckedSql};
use perch_plugin_api::{HostError, PluginStore};
use sea_orm::{
    ConnectionTrait, DbBackend, QueryResult, Statement, TransactionSession, TransactionTrait,
    Value as Sql,
};

use super::model::SyncState;

/// Written once, in SQLite's spelling (`?` placeholders): the store makes each
/// statement PostgreSQL's when it runs there (`perch_plugin_api::db::portable_sql`).
const B: DbBackend = DbBackend::Sqlite;

pub fn db_err(e: sea_orm::DbErr) -> HostError {
    HostError::Storage(e.to_string())
}

fn sqlx_err(e: sqlx::Error) -> HostError {
    HostError::Storage(e.to_string())
}

fn stmt(sql: &str, values: Vec<Sql>) -> Statement {
    Statement::from_sql_and_values(B, sql, values)
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One cached node.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: i64,
    pub profile_id: i32,
    pub service: String,
    pub name: String,
    pub analysed: bool,
    pub analyser: Option<String>,
    pub kind: Option<String>,
    pub subtype: Option<String>,
    pub to_sync: bool,
    pub sync_state: SyncState,
    pub sync_state_updated: i64,
    pub sync_error: Option<String>,
    pub coherent: bool,
    pub incoherent_reason: Option<String>,
    pub subscribed: bool,
    pub attempts: i64,
    pub retry_at: Option<i64>,
    pub sync_gen: i64,
    pub seq: i64,
    pub items_fetched: i64,
}

const NODE_COLS: &str = "id, profile_id, service, name, analysed, analyser, type, subtype, to_sync, \
     sync_state, sync_state_updated, sync_error, coherent, incoherent_reason, subscribed, attempts, \
     retry_at, sync_gen, seq, items_fetched";

fn node_of(r: &QueryResult) -> Result<Node, HostError> {
    let g = |c: &str| -> Result<i64, HostError> { r.try_get::<i64>("", c).map_err(db_err) };
    let s = |c: &str| -> Result<Option<String>, HostError> {
        r.try_get::<Option<String>>("", c).map_err(db_err)
    };
    Ok(Node {
        id: g("id")?,
        profile_id: i32::try_from(g("profile_id")?).unwrap_or_default(),
        service: s("service")?.unwrap_or_default(),
        name: s("name")?.unwrap_or_default(),
        analysed: g("analysed")? != 0,
        analyser: s("analyser")?,
        kind: s("type")?,
        subtype: s("subtype")?,
        to_sync: g("to_sync")? != 0,
        sync_state: SyncState::parse(&s("sync_state")?.unwrap_or_default()),
        sync_state_updated: g("sync_state_updated")?,
        sync_error: s("sync_error")?,
        coherent: g("coherent")? != 0,
        incoherent_reason: s("incoherent_reason")?,
        subscribed: g("subscribed")? != 0,
        attempts: g("attempts")?,
        retry_at: r.try_get::<Option<i64>>("", "retry_at").map_err(db_err)?,
        sync_gen: g("sync_gen")?,
        seq: g("seq")?,
        items_fetched: g("items_fetched")?,
    })
}

pub async fn node(
    db: &PluginStore,
    profile_id: i32,
    service: &str,
    name: &str,
) -> Result<Option<Node>, HostError> {
    let r = db
        .query_one_raw(stmt(
            &format!(
                "SELECT {NODE_COLS} FROM pubsub_node WHERE profile_id = ? AND service = ? AND name = ?"
            ),
            vec![profile_id.into(), service.into(), name.into()],
        ))
        .await
        .map_err(db_err)?;
    r.as_ref().map(node_of).transpose()
}

pub async fn node_by_id(db: &PluginStore, id: i64) -> Result<Option<Node>, HostError> {
    let r = db
        .query_one_raw(stmt(
            &format!("SELECT {NODE_COLS} FROM pubsub_node WHERE id = ?"),
            vec![id.into()],
        ))
        .await
        .map_err(db_err)?;
    r.as_ref().map(node_of).transpose()
}

/// The node's row, created when missing.
pub async fn node_ensure(
    db: &PluginStore,
    profile_id: i32,
    service: &str,
    name: &str,
) -> Result<Node, HostError> {
    db.execute_raw(stmt(
        "INSERT INTO pubsub_node (profile_id, service, name, sync_state_updated) VALUES (?, ?, ?, ?) \
         ON CONFLICT (profile_id, service, name) DO NOTHING",
        vec![profile_id.into(), service.into(), name.into(), now_micros().into()],
    ))
    .await
    .map_err(db_err)?;
    node(db, profile_id, service, name)
        .await?
        .ok_or_else(|| HostError::Storage(format!("node {name:?} vanished")))
}

/// Nodes matching the filters (None: any), for status and management.
pub async fn nodes(
    db: &PluginStore,
    profile_id: Option<i32>,
    service: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Node>, HostError> {
    let mut sql = format!("SELECT {NODE_COLS} FROM pubsub_node WHERE 1 = 1");
    let mut v: Vec<Sql> = Vec::new();
    if let Some(p) = profile_id {
        sql.push_str(" AND profile_id = ?");
        v.push(p.into());
    }
    if let Some(s) = service {
        sql.push_str(" AND service = ?");
        v.push(s.into());
    }
    if let Some(n) = name {
        sql.push_str(" AND name = ?");
        v.push(n.into());
    }
    sql.push_str(" ORDER BY profile_id, service, name");
    let rows = db.query_all_raw(stmt(&sql, v)).await.map_err(db_err)?;
    rows.iter().map(node_of).collect()
}

/// Nodes in a state (all profiles): at start (`in_progress` → resume) and for retries.
pub async fn nodes_in_state(db: &PluginStore, state: SyncState) -> Result<Vec<Node>, HostError> {
    let rows = db
        .query_all_raw(stmt(
            &format!("SELECT {NODE_COLS} FROM pubsub_node WHERE sync_state = ?"),
            vec![state.as_str().into()],
        ))
        .await
        .map_err(db_err)?;
    rows.iter().map(node_of).collect()
}

pub async fn set_analysis(
    db: &PluginStore,
    id: i64,
    a: &super::model::Analysis,
) -> Result<(), HostError> {
    let state = if a.to_sync { "none" } else { "no_sync" };
    db.execute_raw(stmt(
        "UPDATE pubsub_node SET analysed = 1, analyser = ?, type = ?, subtype = ?, to_sync = ?, \
         sync_state = CASE WHEN sync_state IN ('none', 'no_sync') THEN ? ELSE sync_state END \
         WHERE id = ?",
        vec![
            a.analyser.clone().into(),
            a.kind.clone().into(),
            a.subtype.clone().into(),
            i32::from(a.to_sync).into(),
            state.into(),
            id.into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// A sync starts: a new generation, not served until it completes.
pub async fn sync_started(db: &PluginStore, id: i64, forced: bool) -> Result<i64, HostError> {
    db.execute_raw(stmt(
        "UPDATE pubsub_node SET sync_state = 'in_progress', sync_state_updated = ?, sync_error = NULL, \
         coherent = 0, incoherent_reason = NULL, sync_gen = sync_gen + 1, items_fetched = 0, \
         to_sync = CASE WHEN ? THEN 1 ELSE to_sync END WHERE id = ?",
        vec![now_micros().into(), forced.into(), id.into()],
    ))
    .await
    .map_err(db_err)?;
    let n = node_by_id(db, id)
        .await?
        .ok_or_else(|| HostError::Storage("node vanished".into()))?;
    Ok(n.sync_gen)
}

pub async fn set_subscribed(db: &PluginStore, id: i64, yes: bool) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "UPDATE pubsub_node SET subscribed = ? WHERE id = ?",
        vec![i64::from(yes).into(), id.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The sync finished: stale items (of older generations) go, the node is served.
pub async fn sync_completed(db: &PluginStore, id: i64, generation: i64) -> Result<(), HostError> {
    let txn = db.begin().await.map_err(db_err)?;
    txn.execute_raw(stmt(
        "DELETE FROM pubsub_item WHERE node_id = ? AND generation < ?",
        vec![id.into(), generation.into()],
    ))
    .await
    .map_err(db_err)?;
    txn.execute_raw(stmt(
        "UPDATE pubsub_node SET sync_state = 'completed', sync_state_updated = ?, coherent = 1, \
         attempts = 0, retry_at = NULL, sync_error = NULL WHERE id = ?",
        vec![now_micros().into(), id.into()],
    ))
    .await
    .map_err(db_err)?;
    txn.commit().await.map_err(db_err)
}

/// The sync failed: the reason stays visible, a retry is planned.
pub async fn sync_failed(
    db: &PluginStore,
    id: i64,
    reason: &str,
    retry_at: Option<i64>,
) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "UPDATE pubsub_node SET sync_state = 'error', sync_state_updated = ?, sync_error = ?, \
         coherent = 0, attempts = attempts + 1, retry_at = ? WHERE id = ?",
        vec![
            now_micros().into(),
            reason.into(),
            retry_at.into(),
            id.into(),
        ],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The node must not be cached (XEP-0460 hints): not synced again by itself.
pub async fn set_no_sync(db: &PluginStore, id: i64, reason: &str) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "UPDATE pubsub_node SET sync_state = 'no_sync', sync_state_updated = ?, sync_error = ?, \
         coherent = 0, to_sync = 0, retry_at = NULL WHERE id = ?",
        vec![now_micros().into(), reason.into(), id.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The cache can no longer vouch for the node: not served until a new sync.
pub async fn set_incoherent(db: &PluginStore, id: i64, reason: &str) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "UPDATE pubsub_node SET coherent = 0, incoherent_reason = ? WHERE id = ?",
        vec![reason.into(), id.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// PostgreSQL's full-text entries of items from two arrays (their ids, then the
/// texts of [`super::service::stored_index_text`], folded by
/// [`super::fts_pg::fold`]), as [`store_items`] writes them one page at a time: how
/// a rebuild (`perch-admin migrate`, migration 061) fills the index.
pub const PG_INDEX_ROWS: &str = "INSERT INTO pubsub_item_fts (rowid, tsv) \
     SELECT v.id, to_tsvector('simple', v.text) FROM UNNEST($1::bigint[], $2::text[]) AS v (id, text)";

/// Rows per INSERT statement: a whole sync page in one statement (10 values a row,
/// far below SQLite's 32,766 bound variables).
const CHUNK: usize = 250;

/// One item to store.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub item_id: String,
    pub publisher: Option<String>,
    pub data: String,
    /// The analyser's JSON, serialised.
    pub parsed: Option<String>,
    pub text: String,
}

/// Stores a page of items in one transaction, in order (each gets the next sequence
/// number: an edited item moves to the end, as on the services). `fetched`: a page of
/// a sync (else: from a notification). Returns how many.
pub async fn store_items(
    db: &PluginStore,
    node_id: i64,
    generation: i64,
    items: Vec<NewItem>,
    fetched: bool,
) -> Result<usize, HostError> {
    if items.is_empty() {
        return Ok(0);
    }
    let total = items.len();
    let count = i64::try_from(total).unwrap_or(0);
    // A page of a sync gives the service's order; a notification repeating an item we
    // have unchanged (the last item sent on subscription, …) is not an edit and must
    // not move it.
    let seq_set = if fetched {
        "excluded.seq"
    } else {
        "CASE WHEN pubsub_item.data = excluded.data THEN pubsub_item.seq ELSE excluded.seq END"
    };
    // The statements are checked by the store before the write lock is taken (a check
    // runs on another connection of the pool).
    let backend = db.get_database_backend();
    let mut chunks = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let mut chunk: Vec<NewItem> = items.by_ref().take(CHUNK).collect();
        let last = items.peek().is_none();
        let mut texts = index_texts(&mut chunk);
        if backend == DbBackend::Postgres {
            // Accents folded as FTS5 folds them on SQLite (`fts_pg::fold`).
            for (_, t) in &mut texts {
                *t = super::fts_pg::fold(t);
            }
        }
        let mut checked = Vec::new();
        for sql in chunk_sql(chunk.len(), texts.len(), last, seq_set, backend) {
            checked.push(db.check_sql(sql).await.map_err(db_err)?);
        }
        chunks.push((checked, chunk, texts, last));
    }
    let seq_sql = db
        .check_sql("SELECT seq FROM pubsub_node WHERE id = ?")
        .await
        .map_err(db_err)?;
    // sqlx directly, the items moved into the statement: sea-orm would copy every
    // value once more, and a sync writes a kilobyte or so per item.
    // IMMEDIATE: the transaction reads the node's counter before it writes, and a
    // deferred one that must upgrade to a writer while another connection writes gets
    // SQLITE_BUSY at once, without waiting (two syncs at a time failed with "database
    // is locked", perch-bench --memory). Taking the write lock first waits for it.
    let mut tx = db.begin_sqlx_immediate().await.map_err(sqlx_err)?;
    let now = now_micros();
    let mut n: i64 = match tx
        .fetch_optional(seq_sql.query().bind(node_id))
        .await
        .map_err(sqlx_err)?
    {
        Some(row) => row.try_get(0).map_err(sqlx_err)?,
        None => 0,
    };
    let stamps = Stamps {
        node_id,
        generation,
        now,
    };
    for (checked, chunk, texts, last) in chunks {
        let counters = last.then_some((count, if fetched { count } else { 0 }));
        for q in bind_chunk(&checked, chunk, texts, &mut n, &stamps, counters) {
            tx.execute(q).await.map_err(sqlx_err)?;
        }
    }
    tx.commit().await.map_err(sqlx_err)?;
    Ok(total)
}

/// What every row of a write shares.
struct Stamps {
    node_id: i64,
    generation: i64,
    now: i64,
}

/// A chunk's statements, each bound in turn.
struct Slots<'q>(Vec<Option<CheckedQuery<'q>>>);

impl<'q> Slots<'q> {
    fn bind<T>(&mut self, k: usize, value: T)
    where
        T: 'q
            + sqlx::Encode<'q, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        if let Some(q) = self.0[k].take() {
            self.0[k] = Some(q.bind(value));
        }
    }
}

/// The chunk's values bound to its statements, in their order: the rows (the items
/// moved in, each with the next sequence number), the index entries and (with the
/// last chunk, `counters`: items, items fetched) the node's counters. One statement
/// on SQLite, one per part on PostgreSQL ([`chunk_sql`]).
///
/// Not kept prepared: a 250-row statement compiles to hundreds of kilobytes, kept per
/// connection and per page length, for ever (doc/reliability.rst, "Memory");
/// compiling it again costs far less than writing the page.
fn bind_chunk<'q>(
    checked: &[CheckedSql],
    chunk: Vec<NewItem>,
    texts: Vec<(String, String)>,
    n: &mut i64,
    s: &Stamps,
    counters: Option<(i64, i64)>,
) -> Vec<CheckedQuery<'q>> {
    let mut qs = Slots(
        checked
            .iter()
            .map(|c| Some(c.query().persistent(false)))
            .collect(),
    );
    let last = qs.0.len() - 1;
    let (rows, index, node) = (0, 1.min(last), 2.min(last));
    for it in chunk {
        *n += 1;
        qs.bind(rows, s.node_id);
        qs.bind(rows, it.item_id);
        qs.bind(rows, it.publisher);
        qs.bind(rows, it.data);
        qs.bind(rows, it.parsed);
        qs.bind(rows, *n);
        qs.bind(rows, s.generation);
        qs.bind(rows, s.now);
        qs.bind(rows, s.now);
    }
    for (id, text) in texts {
        qs.bind(index, id);
        qs.bind(index, text);
    }
    qs.bind(index, s.node_id);
    if let Some((count, fetched)) = counters {
        qs.bind(node, count);
        qs.bind(node, fetched);
        qs.bind(node, s.node_id);
    }
    qs.0.into_iter().flatten().collect()
}

/// The text to index of a chunk's items, by item id (of two items with one id, the
/// last wins, as in the table); taken out of the items.
fn index_texts(chunk: &mut [NewItem]) -> Vec<(String, String)> {
    let mut texts: Vec<(String, String)> = chunk
        .iter_mut()
        .map(|it| (it.item_id.clone(), std::mem::take(&mut it.text)))
        .collect();
    let mut seen = HashSet::with_capacity(texts.len());
    if !texts.iter().all(|(id, _)| seen.insert(id.as_str())) {
        let mut seen = HashSet::new();
        texts.reverse();
        texts.retain(|(id, _)| seen.insert(id.clone()));
        texts.reverse();
    }
    texts
}

/// A chunk's statements: its rows, their full-text entries (the index is
/// contentless, migration 006: its entries are ours to write; an updated item's old
/// entry went with the update, by trigger) and, with the last chunk, the node's
/// counters. One round trip into SQLite (the statements joined); PostgreSQL prepares
/// one statement at a time (its extended protocol refuses several), so there they
/// stay apart, and an entry is the text's `tsvector` (`doc/storage.rst`).
fn chunk_sql(
    rows: usize,
    texts: usize,
    last: bool,
    seq_set: &str,
    backend: DbBackend,
) -> Vec<String> {
    let mut items = String::with_capacity(400 + rows * 30);
    items.push_str(
        "INSERT INTO pubsub_item (node_id, item_id, publisher, data, parsed, seq, generation, created, updated) VALUES ",
    );
    items.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(","));
    items.push_str(&format!(
        " ON CONFLICT (node_id, item_id) DO UPDATE SET publisher = excluded.publisher, \
         data = excluded.data, parsed = excluded.parsed, \
         seq = {seq_set}, generation = excluded.generation, \
         updated = CASE WHEN pubsub_item.data = excluded.data THEN pubsub_item.updated ELSE excluded.updated END"
    ));
    let entry = match backend {
        DbBackend::Postgres => "(rowid, tsv) SELECT i.id, to_tsvector('simple', v.column2)",
        _ => "(rowid, text) SELECT i.id, v.column2",
    };
    // (PG_INDEX_ROWS writes the same entries from arrays.)
    let index = format!(
        "INSERT INTO pubsub_item_fts {entry} FROM (VALUES {}) AS v \
         JOIN pubsub_item i ON i.node_id = ? AND i.item_id = v.column1",
        vec!["(?, ?)"; texts].join(",")
    );
    let mut parts = vec![items, index];
    if last {
        parts.push(
            "UPDATE pubsub_node SET seq = seq + ?, items_fetched = items_fetched + ? WHERE id = ?"
                .to_owned(),
        );
    }
    match backend {
        DbBackend::Postgres => parts,
        _ => vec![parts.join("; ")],
    }
}

pub async fn delete_items(
    db: &PluginStore,
    node_id: i64,
    ids: &[String],
) -> Result<u64, HostError> {
    let mut total = 0;
    for chunk in ids.chunks(200) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut v: Vec<Sql> = vec![node_id.into()];
        v.extend(chunk.iter().map(|i| Sql::from(i.clone())));
        total += db
            .execute_raw(stmt(
                &format!("DELETE FROM pubsub_item WHERE node_id = ? AND item_id IN ({marks})"),
                v,
            ))
            .await
            .map_err(db_err)?
            .rows_affected();
    }
    Ok(total)
}

pub async fn purge_node_items(db: &PluginStore, node_id: i64) -> Result<u64, HostError> {
    Ok(db
        .execute_raw(stmt(
            "DELETE FROM pubsub_item WHERE node_id = ?",
            vec![node_id.into()],
        ))
        .await
        .map_err(db_err)?
        .rows_affected())
}

pub async fn delete_node(db: &PluginStore, node_id: i64) -> Result<(), HostError> {
    db.execute_raw(stmt(
        "DELETE FROM pubsub_node WHERE id = ?",
        vec![node_id.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}

/// A cached item as served.
#[derive(Debug, Clone)]
pub struct Row {
    pub item_id: String,
    pub publisher: Option<String>,
    pub data: String,
}

fn row_of(r: &QueryResult) -> Result<Row, HostError> {
    Ok(Row {
        item_id: r.try_get("", "item_id").map_err(db_err)?,
        publisher: r.try_get("", "publisher").map_err(db_err)?,
        data: r.try_get("", "data").map_err(db_err)?,
    })
}

pub async fn count(db: &PluginStore, node_id: i64) -> Result<usize, HostError> {
    let r = db
        .query_one_raw(stmt(
            "SELECT COUNT(*) AS n FROM pubsub_item WHERE node_id = ?",
            vec![node_id.into()],
        ))
        .await
        .map_err(db_err)?;
    Ok(r.map(|r| r.try_get::<i64>("", "n").unwrap_or(0))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0))
}

/// The newest `n` items in node order, and how many the node has: the common read
/// in one statement.
pub async fn newest(
    db: &PluginStore,
    node_id: i64,
    n: usize,
) -> Result<(Vec<Row>, usize), HostError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT item_id, publisher, data, (SELECT COUNT(*) FROM pubsub_item WHERE node_id = ?) AS total \
             FROM pubsub_item WHERE node_id = ? ORDER BY seq DESC LIMIT ?",
            vec![
                node_id.into(),
                node_id.into(),
                i64::try_from(n).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await
        .map_err(db_err)?;
    let total = match rows.first() {
        Some(r) => r.try_get::<i64>("", "total").map_err(db_err)?,
        None => 0,
    };
    let mut out = rows.iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok((out, usize::try_from(total).unwrap_or(0)))
}

/// Items `offset..offset+limit` in node order (oldest first).
pub async fn range(
    db: &PluginStore,
    node_id: i64,
    offset: usize,
    limit: usize,
) -> Result<Vec<Row>, HostError> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT item_id, publisher, data FROM pubsub_item WHERE node_id = ? ORDER BY seq LIMIT ? OFFSET ?",
            vec![
                node_id.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
                i64::try_from(offset).unwrap_or(0).into(),
            ],
        ))
        .await
        .map_err(db_err)?;
    rows.iter().map(row_of).collect()
}

/// The position (0-based, node order) of an item, if cached.
pub async fn position(
    db: &PluginStore,
    node_id: i64,
    item_id: &str,
) -> Result<Option<usize>, HostError> {
    let r = db
        .query_one_raw(stmt(
            "SELECT (SELECT COUNT(*) FROM pubsub_item WHERE node_id = i.node_id AND seq < i.seq) AS pos \
             FROM pubsub_item i WHERE i.node_id = ? AND i.item_id = ?",
            vec![node_id.into(), item_id.into()],
        ))
        .await
        .map_err(db_err)?;
    Ok(r.and_then(|r| r.try_get::<i64>("", "pos").ok())
        .and_then(|p| usize::try_from(p).ok()))
}

/// These items, in node order (missing ones are left out).
pub async fn by_ids(db: &PluginStore, node_id: i64, ids: &[String]) -> Result<Vec<Row>, HostError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(",");
    let mut v: Vec<Sql> = vec![node_id.into()];
    v.extend(ids.iter().map(|i| Sql::from(i.clone())));
    let rows = db
        .query_all_raw(stmt(
            &format!(
                "SELECT item_id, publisher, data FROM pubsub_item WHERE node_id = ? AND item_id IN ({marks}) ORDER BY seq"
            ),
            v,
        ))
        .await
        .map_err(db_err)?;
    rows.iter().map(row_of).collect()
}

/// Runs a search statement built by `search`.
pub async fn query(
    db: &PluginStore,
    sql: &str,
    values: Vec<Sql>,
) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
    db.query_all_raw(stmt(sql, values)).await
}

/// Why FTS5 refuses a full-text query, if it does: the query alone, on no row.
///
/// Why a second statement: FTS5 reports a bad query in many ways ("fts5: syntax
/// error", "no such column" for a `word:` prefix, "unterminated string", "unknown
/// special query"…); asked alone, the query tells whether a search failed because of
/// the frontend's `fts` (a bad argument) or because of the storage.
pub async fn fts_error(db: &PluginStore, fts: &str) -> Option<String> {
    if db.get_database_backend() == DbBackend::Postgres {
        // Translated before the search ran (`search::build_for`): a query that got
        // this far was not the frontend's fault.
        return super::fts_pg::to_tsquery(fts).err();
    }
    db.query_all_raw(stmt(
        "SELECT rowid FROM pubsub_item_fts WHERE pubsub_item_fts MATCH ? AND rowid = 0",
        vec![Sql::from(fts.trim().to_owned())],
    ))
    .await
    .err()
    .map(|e| e.to_string())
}

/// Deletes cached items matching a WHERE clause built by the purge action; the nodes
/// they came from are no longer whole, so they are no longer served (a read syncs
/// them again).
pub async fn purge_where(
    db: &PluginStore,
    clause: &str,
    values: Vec<Sql>,
) -> Result<u64, HostError> {
    let txn = db.begin().await.map_err(db_err)?;
    let matching = format!(
        "SELECT i.id FROM pubsub_item i JOIN pubsub_node n ON n.id = i.node_id WHERE {clause}"
    );
    txn.execute_raw(stmt(
        &format!(
            "UPDATE pubsub_node SET coherent = 0, sync_state = 'none', \
             incoherent_reason = 'items purged from the cache' \
             WHERE id IN (SELECT node_id FROM pubsub_item WHERE id IN ({matching}))"
        ),
        values.clone(),
    ))
    .await
    .map_err(db_err)?;
    let deleted = txn
        .execute_raw(stmt(
            &format!("DELETE FROM pubsub_item WHERE id IN ({matching})"),
            values,
        ))
        .await
        .map_err(db_err)?
        .rows_affected();
    txn.commit().await.map_err(db_err)?;
    Ok(deleted)
}

/// Drops everything cached.
pub async fn reset(db: &PluginStore) -> Result<(), HostError> {
    db.execute_unprepared("DELETE FROM pubsub_item; DELETE FROM pubsub_node;")
        .await
        .map_err(db_err)?;
    Ok(())
}
