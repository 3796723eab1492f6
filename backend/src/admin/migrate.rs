//! `perch-admin migrate --from sqlite:PATH --to postgres://…`: an installation moved
//! from its SQLite file to PostgreSQL, verified, in one transaction.
//!
//! Why this shape:
//! - **Nobody writes meanwhile.** It refuses while a daemon's heartbeat in the source
//!   says perchd holds it, and copies inside SQLite's write lock (`BEGIN IMMEDIATE`),
//!   so a perchd started during the copy waits instead of writing what would not be
//!   moved; readers are not blocked.
//! - **All or nothing.** Both databases are first migrated by this binary (so they
//!   have the same tables); the rows then go into PostgreSQL in one transaction,
//!   which is committed only once every table's row count and checksum read back
//!   from PostgreSQL match SQLite's. A failure leaves the target as empty as it was.
//! - **What is not copied**: the migration table (each database has its own, from
//!   the same list), the daemons' nodes and leases (the daemons of the new database
//!   start afresh), and derived tables — the pubsub cache's full-text index, rebuilt
//!   from the items, since SQLite's is contentless and PostgreSQL's is a `tsvector`
//!   (`doc/storage.rst`). Identity sequences are set past the largest id moved.
//! - The sealed passwords and keys move as they are: perchd opens them with the data
//!   directory's `secret.key`, which the new installation must keep.

use std::path::PathBuf;

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row, SqliteConnection};

use super::tables::{
    self, Cell, Checksum, Column, Kind, Table, convert, in_dependency_order, quoted,
};
use crate::config::{DatabaseTarget, masked_url};
use crate::db::DbOpenError;

/// Tables that stay behind: each database's own migration record, and the daemons
/// of one installation (`cluster.rs`).
const NOT_MOVED: &[&str] = &["seaql_migrations", "daemon_node", "profile_lease"];

/// What a migration reports while it runs (the binary draws its progress bar).
pub trait Progress {
    /// A table starts: `total` rows to copy.
    fn table(&mut self, name: &str, total: u64);
    /// `done` rows of the current table are copied.
    fn rows(&mut self, done: u64);
    /// The current table is copied and read back.
    fn verified(&mut self, table: &TableReport);
    /// A step other than a table's copy (the index rebuild, the sequences).
    fn step(&mut self, what: &str);
}

/// One table, on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    pub source_checksum: String,
    pub target_checksum: String,
}

impl TableReport {
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_checksum == self.target_checksum
    }
}

/// What was moved.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub target: String,
    pub tables: Vec<TableReport>,
    /// Entries of the full-text index rebuilt from the cached items.
    pub index_entries: u64,
    /// Identity sequences set past the ids moved.
    pub sequences: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("--from {0}: give the SQLite file as sqlite:PATH")]
    BadSource(String),
    #[error("--to {0}: give the PostgreSQL database as postgres://USER:PASSWORD@HOST:PORT/NAME")]
    BadTarget(String),
    #[error("--from: there is no database at {0}")]
    NoSource(String),
    #[error(transparent)]
    Open(#[from] DbOpenError),
    #[error(
        "perchd holds {db}: daemon {node:?} (pid {pid} on {host}, heartbeat {ago_ms} ms ago); \
         stop it, then run perch-admin migrate again"
    )]
    Held {
        db: String,
        node: String,
        pid: i64,
        host: String,
        ago_ms: i64,
    },
    #[error(
        "{db} already holds data ({table} has rows); migrate into an empty database (one \
         perchd has never run on, or a new one: CREATE DATABASE …)"
    )]
    TargetNotEmpty { db: String, table: String },
    #[error("table {table}: {why}")]
    Schema { table: String, why: String },
    #[error("table {table}, column {column}, row {row}: {why}; nothing was moved")]
    Value {
        table: String,
        column: String,
        row: u64,
        why: String,
    },
    #[error(
        "table {table} does not match after the copy (SQLite: {source_rows} rows, checksum \
         {source_checksum}; PostgreSQL: {target_rows} rows, checksum {target_checksum}); \
         nothing was committed"
    )]
    Mismatch {
        table: String,
        source_rows: u64,
        target_rows: u64,
        source_checksum: String,
        target_checksum: String,
    },
    #[error("{what}: {source}")]
    Storage { what: String, source: sqlx::Error },
}

/// A statement built here: its only variable parts are table and column names from
/// the target's catalog, always [`quoted`]; values are bound.
fn audited(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// Wraps a sqlx error with what was being done.
fn at(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let what = what.into();
    move |source| MigrateError::Storage { what, source }
}

/// The SQLite file of `--from` (`sqlite:PATH`, `sqlite://PATH`).
pub fn source_path(from: &str) -> Result<PathBuf, MigrateError> {
    let path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| MigrateError::BadSource(from.to_owned()))?;
    Ok(PathBuf::from(path))
}

/// Moves the SQLite database of `from` into the empty PostgreSQL database of `to`.
pub async fn migrate(
    from: &str,
    to: &str,
    progress: &mut dyn Progress,
) -> Result<Report, MigrateError> {
    let path = source_path(from)?;
    let Ok(DatabaseTarget::Postgres(url)) = DatabaseTarget::from_url(to, &path) else {
        return Err(MigrateError::BadTarget(masked_url(to)));
    };
    let shown_source = path.display().to_string();
    if !path.is_file() {
        return Err(MigrateError::NoSource(shown_source));
    }
    // Asked before the source is migrated (a running perchd of another version must
    // not see its schema change), and again under the write lock.
    refuse_if_held(&mut open_source(&path, true).await?, &shown_source).await?;
    // The target first: one that cannot be reached leaves the source as it was.
    let target = crate::db::postgres::open(&url).await?;
    let shown_target = masked_url(&url);
    let sqlite = crate::db::open_sqlite(&path).await?;
    let mut source = open_source(&path, false).await?;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut source)
        .await
        .map_err(at(format!("locking {shown_source} for writes")))?;
    refuse_if_held(&mut source, &shown_source).await?;
    let mut pg = target
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(at(format!("connecting to {shown_target}")))?
        .detach();
    let report = move_all(&mut source, &mut pg, &shown_target, progress).await;
    // The source is only read: its lock is given back whatever happened.
    let _ = sqlx::query("ROLLBACK").execute(&mut source).await;
    let _ = source.close().await;
    let _ = pg.close().await;
    sqlite.close().await.ok();
    target.close().await.ok();
    let (tables, index_entries, sequences) = report?;
    Ok(Report {
        source: shown_source,
        target: shown_target,
        tables,
        index_entries,
        sequences,
    })
}

/// One connection to the source file (never created here).
async fn open_source(
    path: &std::path::Path,
    read_only: bool,
) -> Result<SqliteConnection, MigrateError> {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(std::time::Duration::from_secs(10))
        .disable_statement_logging()
        .connect()
        .await
        .map_err(at(format!("opening {}", path.display())))
}

/// Refuses when a live daemon's heartbeat is in the source.
async fn refuse_if_held(source: &mut SqliteConnection, db: &str) -> Result<(), MigrateError> {
    let has_nodes =
        sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'daemon_node'")
            .fetch_optional(&mut *source)
            .await
            .map_err(at(format!("reading {db}")))?
            .is_some();
    if !has_nodes {
        return Ok(());
    }
    let rows = sqlx::query("SELECT name, host, pid, heartbeat_at FROM daemon_node")
        .fetch_all(&mut *source)
        .await
        .map_err(at(format!("reading the daemons of {db}")))?;
    for row in rows {
        let (node, host, pid, beat): (String, String, i64, i64) = (
            row.try_get(0).map_err(at("daemon_node.name"))?,
            row.try_get(1).map_err(at("daemon_node.host"))?,
            row.try_get(2).map_err(at("daemon_node.pid"))?,
            row.try_get(3).map_err(at("daemon_node.heartbeat_at"))?,
        );
        if crate::cluster::node_is_live(&host, pid, beat) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            return Err(MigrateError::Held {
                db: db.to_owned(),
                node,
                pid,
                host,
                ago_ms: now - beat,
            });
        }
    }
    Ok(())
}

/// The copy, its check, the sequences and the index, in one target transaction.
async fn move_all(
    source: &mut SqliteConnection,
    pg: &mut PgConnection,
    shown_target: &str,
    progress: &mut dyn Progress,
) -> Result<(Vec<TableReport>, u64, u64), MigrateError> {
    let (moved, derived) = plan(pg).await?;
    let mut tx = pg.begin().await.map_err(at("starting the transaction"))?;
    for t in &moved {
        let has_rows = sqlx::query(audited(format!(
            "SELECT 1 FROM {} LIMIT 1",
            quoted(&t.name)
        )))
        .fetch_optional(&mut *tx)
        .await
        .map_err(at(format!("reading {}", t.name)))?
        .is_some();
        if has_rows {
            return Err(MigrateError::TargetNotEmpty {
                db: shown_target.to_owned(),
                table: t.name.clone(),
            });
        }
    }
    check_tables(source, &moved, &derived).await?;
    let mut reports = Vec::with_capacity(moved.len());
    for t in &moved {
        check_columns(source, t).await?;
        let report = copy_table(source, &mut tx, t, progress).await?;
        progress.verified(&report);
        if !report.matches() {
            return Err(MigrateError::Mismatch {
                table: report.table,
                source_rows: report.source_rows,
                target_rows: report.target_rows,
                source_checksum: report.source_checksum,
                target_checksum: report.target_checksum,
            });
        }
        reports.push(report);
    }
    progress.step("setting identity sequences");
    let sequences = reset_sequences(&mut tx, &moved).await?;
    let mut index_entries = 0;
    for name in derived {
        progress.step(&format!("rebuilding {name}"));
        index_entries += rebuild(&mut tx, &name).await?;
    }
    tx.commit().await.map_err(at("committing"))?;
    Ok((reports, index_entries, sequences))
}

/// The target's tables to move (parents first) and its derived tables.
async fn plan(pg: &mut PgConnection) -> Result<(Vec<Table>, Vec<String>), MigrateError> {
    let rows = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, \
         (c.is_identity = 'YES' OR COALESCE(c.column_default, '') LIKE 'nextval(%') \
         FROM information_schema.columns c JOIN information_schema.tables t \
         ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&mut *pg)
    .await
    .map_err(at("reading the target's tables"))?;
    let mut tables: Vec<Table> = Vec::new();
    let mut derived: Vec<String> = Vec::new();
    for row in rows {
        let (table, column, udt, serial): (String, String, String, bool) = (
            row.try_get(0).map_err(at("table_name"))?,
            row.try_get(1).map_err(at("column_name"))?,
            row.try_get(2).map_err(at("udt_name"))?,
            row.try_get(3).map_err(at("is_identity"))?,
        );
        if NOT_MOVED.contains(&table.as_str()) {
            continue;
        }
        if udt == "tsvector" {
            derived.push(table);
            continue;
        }
        let kind = Kind::of_udt(&udt).ok_or_else(|| MigrateError::Schema {
            table: table.clone(),
            why: format!("column {column} has type {udt}, which perch-admin cannot move"),
        })?;
        let column = Column {
            name: column,
            kind,
            serial,
        };
        match tables.last_mut() {
            Some(t) if t.name == table => t.columns.push(column),
            _ => tables.push(Table {
                name: table,
                columns: vec![column],
            }),
        }
    }
    tables.retain(|t| !derived.contains(&t.name));
    let edges = foreign_keys(pg).await?;
    Ok((in_dependency_order(tables, &edges), derived))
}

/// Foreign keys of the target: (child table, parent table).
async fn foreign_keys(pg: &mut PgConnection) -> Result<Vec<(String, String)>, MigrateError> {
    let rows = sqlx::query(
        "SELECT child.relname::text, parent.relname::text FROM pg_constraint co \
         JOIN pg_class child ON child.oid = co.conrelid \
         JOIN pg_class parent ON parent.oid = co.confrelid \
         JOIN pg_namespace n ON n.oid = child.relnamespace \
         WHERE co.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *pg)
    .await
    .map_err(at("reading the target's foreign keys"))?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(at("reading the target's foreign keys"))
}

/// Every table of the source is moved, stays behind on purpose, or is derived (an
/// FTS5 index and its shadow tables): none is silently left out.
async fn check_tables(
    source: &mut SqliteConnection,
    moved: &[Table],
    derived: &[String],
) -> Result<(), MigrateError> {
    let rows = sqlx::query(
        "SELECT name, sql LIKE 'CREATE VIRTUAL TABLE%' FROM sqlite_master \
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut *source)
    .await
    .map_err(at("reading the source's tables"))?;
    let mut tables: Vec<(String, bool)> = Vec::with_capacity(rows.len());
    for r in &rows {
        tables.push((
            r.try_get(0).map_err(at("sqlite_master.name"))?,
            r.try_get::<Option<bool>, _>(1)
                .map_err(at("sqlite_master.sql"))?
                .unwrap_or(false),
        ));
    }
    let virtuals: Vec<&str> = tables
        .iter()
        .filter(|t| t.1)
        .map(|t| t.0.as_str())
        .collect();
    let known = |name: &str| {
        moved.iter().any(|t| t.name == name)
            || NOT_MOVED.contains(&name)
            || derived.iter().any(|d| d == name)
            || virtuals.iter().any(|v| {
                name.strip_prefix(v)
                    .is_some_and(|rest| rest.starts_with('_'))
            })
    };
    match tables.iter().find(|(name, _)| !known(name)) {
        None => Ok(()),
        Some((name, _)) => Err(MigrateError::Schema {
            table: name.clone(),
            why: "SQLite has this table and PostgreSQL's schema does not".into(),
        }),
    }
}

/// The source table has the target's columns, and no other.
async fn check_columns(source: &mut SqliteConnection, t: &Table) -> Result<(), MigrateError> {
    let rows = sqlx::query("SELECT name FROM pragma_table_info(?)")
        .bind(&t.name)
        .fetch_all(&mut *source)
        .await
        .map_err(at(format!("reading the columns of {}", t.name)))?;
    let mut have: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(at(format!("reading the columns of {}", t.name)))?;
    let mut want: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    have.sort();
    want.sort();
    if have == want {
        return Ok(());
    }
    Err(MigrateError::Schema {
        table: t.name.clone(),
        why: format!(
            "SQLite has columns [{}], PostgreSQL [{}]",
            have.join(", "),
            want.join(", ")
        ),
    })
}

/// Copies one table in batches, then reads it back: both sides' counts and checksums.
async fn copy_table(
    source: &mut SqliteConnection,
    tx: &mut PgConnection,
    t: &Table,
    progress: &mut dyn Progress,
) -> Result<TableReport, MigrateError> {
    let total: i64 =
        sqlx::query_scalar(audited(format!("SELECT count(*) FROM {}", quoted(&t.name))))
            .fetch_one(&mut *source)
            .await
            .map_err(at(format!("counting {}", t.name)))?;
    progress.table(&t.name, u64::try_from(total).unwrap_or(0));
    let mut sent = Checksum::default();
    let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(t.batch_rows());
    let select = t.select();
    let mut rows = sqlx::query(audited(select.clone())).fetch(&mut *source);
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(at(format!("reading {}", t.name)))?
    {
        let cells = source_row(t, &row, sent.rows + 1)?;
        sent.add(&cells);
        batch.push(cells);
        if batch.len() == t.batch_rows() {
            insert(tx, t, &batch).await?;
            batch.clear();
            progress.rows(sent.rows);
        }
    }
    drop(rows);
    insert(tx, t, &batch).await?;
    progress.rows(sent.rows);
    let mut got = Checksum::default();
    let mut back = sqlx::query(audited(select)).fetch(&mut *tx);
    while let Some(row) = back
        .try_next()
        .await
        .map_err(at(format!("reading back {}", t.name)))?
    {
        let cells = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| tables::cell_of(&row, i, c.kind))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at(format!("reading back {}", t.name)))?;
        got.add(&cells);
    }
    Ok(TableReport {
        table: t.name.clone(),
        source_rows: sent.rows,
        target_rows: got.rows,
        source_checksum: sent.hex(),
        target_checksum: got.hex(),
    })
}

/// A source row converted to the target's columns (`n`: its number, for errors).
fn source_row(t: &Table, row: &sqlx::sqlite::SqliteRow, n: u64) -> Result<Vec<Cell>, MigrateError> {
    t.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let raw =
                tables::raw_of(row, i).map_err(at(format!("reading {}.{}", t.name, c.name)))?;
            convert(raw, c.kind).map_err(|why| MigrateError::Value {
                table: t.name.clone(),
                column: c.name.clone(),
                row: n,
                why,
            })
        })
        .collect()
}

/// One multi-row INSERT of `batch` (nothing when empty).
async fn insert(tx: &mut PgConnection, t: &Table, batch: &[Vec<Cell>]) -> Result<(), MigrateError> {
    if batch.is_empty() {
        return Ok(());
    }
    let overriding = if t.columns.iter().any(|c| c.serial) {
        " OVERRIDING SYSTEM VALUE "
    } else {
        " "
    };
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "INSERT INTO {} ({}){overriding}",
        quoted(&t.name),
        t.column_list()
    ));
    qb.push_values(batch, |mut b, row| {
        for (cell, c) in row.iter().zip(&t.columns) {
            tables::bind(&mut b, cell, c.kind);
        }
    });
    qb.build()
        .execute(&mut *tx)
        .await
        .map_err(at(format!("writing {}", t.name)))?;
    Ok(())
}

/// Sets each identity sequence past the largest id moved (at 1 for an empty table).
async fn reset_sequences(tx: &mut PgConnection, moved: &[Table]) -> Result<u64, MigrateError> {
    let mut n = 0;
    for t in moved {
        for c in t.columns.iter().filter(|c| c.serial) {
            let col = quoted(&c.name);
            sqlx::query(audited(format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(MAX({col}), 1), \
                 MAX({col}) IS NOT NULL) FROM {}",
                quoted(&t.name)
            )))
            .bind(quoted(&t.name))
            .bind(&c.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(at(format!("setting the sequence of {}.{}", t.name, c.name)))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Fills a derived table from what it derives from; returns its entries.
async fn rebuild(tx: &mut PgConnection, name: &str) -> Result<u64, MigrateError> {
    match name {
        "pubsub_item_fts" => rebuild_cache_index(tx).await,
        other => Err(MigrateError::Schema {
            table: other.to_owned(),
            why: "a derived table perch-admin does not know how to rebuild".into(),
        }),
    }
}

/// The pubsub cache's full-text index, from its items, a page at a time.
async fn rebuild_cache_index(tx: &mut PgConnection) -> Result<u64, MigrateError> {
    use perch_plugins_pubsub::pubsub_cache::dao::PG_INDEX_ROWS;
    use perch_plugins_pubsub::pubsub_cache::{fts_pg::fold, service::stored_index_text};
    let (mut last, mut n) = (0_i64, 0_u64);
    loop {
        let rows = sqlx::query(
            "SELECT id, data, parsed FROM pubsub_item WHERE id > $1 ORDER BY id LIMIT 500",
        )
        .bind(last)
        .fetch_all(&mut *tx)
        .await
        .map_err(at("reading the cached items"))?;
        let Some(end) = rows.last() else {
            return Ok(n);
        };
        last = end.try_get(0).map_err(at("pubsub_item.id"))?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut texts = Vec::with_capacity(rows.len());
        for r in &rows {
            let data: String = r.try_get(1).map_err(at("pubsub_item.data"))?;
            let parsed: Option<String> = r.try_get(2).map_err(at("pubsub_item.parsed"))?;
            ids.push(r.try_get::<i64, _>(0).map_err(at("pubsub_item.id"))?);
            texts.push(fold(&stored_index_text(&data, parsed.as_deref())));
        }
        sqlx::query(PG_INDEX_ROWS)
            .bind(&ids)
            .bind(&texts)
            .execute(&mut *tx)
            .await
            .map_err(at("writing the full-text index"))?;
        n += ids.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_sqlite_paths() {
        assert_eq!(
            source_path("sqlite:/srv/perch/perch.db").unwrap(),
            PathBuf::from("/srv/perch/perch.db")
        );
        assert_eq!(
            source_path("sqlite:///srv/perch/perch.db").unwrap(),
            PathBuf::from("/srv/perch/perch.db")
        );
        assert_eq!(
            source_path("sqlite:perch.db").unwrap(),
            PathBuf::from("perch.db")
        );
        for bad in ["/srv/perch.db", "sqlite:", "postgres://x/y"] {
            assert!(
                matches!(source_path(bad), Err(MigrateError::BadSource(_))),
                "{bad}"
            );
        }
    }
}
