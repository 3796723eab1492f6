//! Starting a database transaction that writes: `BEGIN IMMEDIATE`, waiting for the lock.
//!
//! Why: SQLite's default transaction (`BEGIN`, i.e. DEFERRED) takes a read snapshot at
//! its first statement and asks for the write lock at its first write. If another
//! connection committed in between, its snapshot is stale and SQLite cannot wait it
//! out: the write fails at once with `SQLITE_BUSY_SNAPSHOT` (517, "database is
//! locked"), whatever the busy timeout. Creating profiles 8 at a time (a read of the
//! names, then an insert) failed 92 times in 300 that way (`doc/reliability.rst`,
//! "Concurrent writers"). `BEGIN IMMEDIATE` asks for the write lock first, so a second
//! writer waits for the first (SQLite's busy timeout) and then reads fresh data.
//!
//! A busy database must wait, never fail: past [`WRITE_LOCK_DEADLINE`] the wait is
//! logged (with the profile when known) and goes on; a busy timeout that runs out
//! (`SQLITE_BUSY`) is logged and the lock asked for again. Every transaction that
//! writes starts here ([`begin_write`], or [`begin_write_sqlx`] for code that uses the
//! sqlx pool directly); a write outside a transaction is a single statement, which
//! SQLite makes wait for the lock by itself (the pool's busy timeout).

use std::future::Future;
use std::time::{Duration, Instant};

use sea_orm::sqlx;
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// How long a writer may wait for the database before the wait is logged (and goes on).
pub const WRITE_LOCK_DEADLINE: Duration = Duration::from_secs(5);

/// `BEGIN IMMEDIATE` on `db`, waiting as long as it takes (see the module doc).
/// `what` names the write and `profile` its profile (`""` when there is none), for
/// the log.
pub async fn begin_write(
    db: &DatabaseConnection,
    what: &str,
    profile: &str,
) -> Result<DatabaseTransaction, DbErr> {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    waiting(what, profile, is_busy, || db.begin_with_options(options)).await
}

/// [`begin_write`] for code that writes through the sqlx pool directly.
pub async fn begin_write_sqlx<'p>(
    pool: &'p sqlx::SqlitePool,
    what: &str,
    profile: &str,
) -> Result<sqlx::Transaction<'p, sqlx::Sqlite>, sqlx::Error> {
    waiting(what, profile, is_busy_sqlx, || {
        pool.begin_with("BEGIN IMMEDIATE")
    })
    .await
}

/// Runs `begin` until it gives something other than "busy", logging every
/// [`WRITE_LOCK_DEADLINE`] spent waiting.
async fn waiting<T, E, F>(
    what: &str,
    profile: &str,
    busy: fn(&E) -> bool,
    mut begin: impl FnMut() -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut late = false;
    loop {
        let attempt = begin();
        let mut attempt = std::pin::pin!(attempt);
        let result = loop {
            match tokio::time::timeout(WRITE_LOCK_DEADLINE, &mut attempt).await {
                Ok(r) => break r,
                Err(_) => {
                    late = true;
                    log_wait(what, profile, start);
                }
            }
        };
        match result {
            Err(e) if busy(&e) => {
                late = true;
                log_wait(what, profile, start);
            }
            other => {
                if late && other.is_ok() {
                    tracing::info!(
                        what,
                        profile,
                        waited_ms = start.elapsed().as_millis(),
                        "got the database's write lock"
                    );
                }
                return other;
            }
        }
    }
}

fn log_wait(what: &str, profile: &str, start: Instant) {
    tracing::warn!(
        what,
        profile,
        waited_ms = start.elapsed().as_millis(),
        "the database is busy: still waiting for its write lock"
    );
}

/// `SQLITE_BUSY` and its extended codes (5, 261, 517, …): another connection holds
/// the lock.
fn is_busy_sqlx(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    d.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

fn is_busy(e: &DbErr) -> bool {
    match e {
        DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => is_busy_sqlx(e),
        _ => false,
    }
}
