//! The SQLite engine: one file in WAL mode, no server. Everything SQLite-only about
//! opening and keeping the database (pragmas, WAL, the checkpointer, connections left
//! inside a failed transaction) lives here, behind [`super::open`].

use std::path::Path;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use super::{DbOpenError, migrate};

/// Opens (creating if needed) and migrates the SQLite database at `path`.
pub async fn open(path: &Path) -> Result<DatabaseConnection, DbOpenError> {
    let shown = path.display().to_string();
    let mut opt = ConnectOptions::new("sqlite://perch.db?mode=rwc");
    let file = path.to_path_buf();
    // Two pooled connections, not four: every connection keeps its own page cache,
    // prepared statements and FTS5 buffers, and the pool hands out its idle
    // connections in turn, so each one warms up. A sync writes on one while reads
    // and the checkpointer share the other (SQLite has one writer at a time anyway).
    // Two connections with 256 KiB of cache each keep perchd's RSS several MB lower
    // after many searches (doc/performance.rst, "Design figures").
    opt.max_connections(2)
        .min_connections(1)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.filename(&file)
                .create_if_missing(true)
                // 8 KiB pages (for databases created from now on; SQLite's default is
                // 4 KiB): a cache sync writes about 1 KiB a row, and larger pages cut
                // the B-tree and WAL work per row (ingest faster, reads unchanged:
                // doc/performance.rst, "Design figures").
                .page_size(8192)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                // A writer waits for the lock rather than fail: a single statement
                // waits this long inside SQLite; a transaction that writes starts
                // with `begin_write` (BEGIN IMMEDIATE), which logs a wait past
                // WRITE_LOCK_DEADLINE and asks again when this runs out.
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true)
                // 256 KiB of page cache per connection (SQLite's default is 2 MiB):
                // the B-tree's inner pages of a cached read still fit (32 pages of
                // 8 KiB); the rest comes from the OS's file cache, which perchd's RSS
                // does not count.
                .pragma("cache_size", "-256")
                // The background checkpointer below does this work; a writer only
                // checkpoints by itself past 64 MiB of WAL (SQLite's default is 1,000
                // pages), should the checkpointer fall behind.
                .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
        });
    opt.map_sqlx_sqlite_pool_opts(|o| o.after_release(|conn, _| Box::pin(sane_after_use(conn))));
    let db = Database::connect(opt)
        .await
        .map_err(|source| DbOpenError::Open {
            path: shown.clone(),
            source,
        })?;
    migrate(&db, &shown).await?;
    tokio::spawn(checkpointer(db.clone(), shown));
    Ok(db)
}

/// Whether a connection going back to the pool may be used again.
///
/// Why: a statement that fails with `SQLITE_FULL` (a full disk) inside a
/// transaction makes SQLite roll the whole transaction back by itself; the rollback
/// sqlx then sends fails ("no transaction is active"), and sqlx goes on counting the
/// connection as inside a transaction. The next transaction on it became a
/// savepoint of a transaction that never ends: its writes "succeeded" and were
/// never seen by any other connection, and it held the write lock (measured on a
/// 6 MB tmpfs, `doc/reliability.rst`, "Full disk"). Such a connection is closed
/// here (the pool opens a fresh one). A transaction merely dropped has its rollback
/// queued on the connection's worker; a ping waits for it to have run.
async fn sane_after_use(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!(
            "a database connection is stuck in a failed transaction (a full disk?); closed"
        );
        return Ok(false);
    }
    Ok(true)
}

/// How long SQLite makes a statement wait for another connection's lock before it
/// answers "database is locked" (SQLite's default is 0, sqlx's 5 s): a single write
/// statement has no other way to wait, and no transaction of ours should hold the
/// lock anywhere near this long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// WAL pages past which a committing connection checkpoints by itself.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 8192;

/// Copies the WAL back into the database file off the writers' path.
///
/// Why: a checkpoint ends with an fsync of everything copied, and SQLite runs it in
/// whichever connection commits past the threshold — during a cache sync, that is
/// the sync's writer, which then waits for the disk every few pages (ingest got a
/// third faster when this moved here: doc/performance.rst, "Design figures").
/// A passive checkpoint never blocks readers or writers. Every 100 ms while the WAL
/// grows (a sync at full speed stays well under the writers' own 64 MiB threshold in
/// that time), every 500 ms when it is idle; ends when the pool is closed.
async fn checkpointer(db: DatabaseConnection, shown: String) {
    use sqlx::Row as _;
    let pool = db.get_sqlite_connection_pool();
    let mut last = (0, 0);
    loop {
        if pool.is_closed() {
            return;
        }
        let frames = match checkpoint(pool).await {
            Ok(r) => (
                r.try_get::<i64, _>(1).unwrap_or(0),
                r.try_get::<i64, _>(2).unwrap_or(0),
            ),
            Err(e) => {
                if !pool.is_closed() {
                    tracing::warn!(path = %shown, error = %e, "WAL checkpoint failed");
                }
                (0, 0)
            }
        };
        let busy = frames != last && frames.0 > 0;
        last = frames;
        tokio::time::sleep(Duration::from_millis(if busy { 100 } else { 500 })).await;
    }
}

/// One passive checkpoint, on a connection that has read the schema first: run as
/// the first statement of a new connection to a database with 8 KiB pages, the
/// checkpoint left that connection seeing no tables ("no such table: profile" from
/// its next statement, in about one run of the backend tests in four).
async fn checkpoint(pool: &sqlx::SqlitePool) -> Result<sqlx::sqlite::SqliteRow, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT 1 FROM sqlite_master LIMIT 1")
        .execute(&mut *conn)
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await
}
