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

/// `sql` as `backend` wants it: written once with SQLite's `?` placeholders, it gets
/// PostgreSQL's numbered `$1, $2, …` there (a `?` inside a quoted string or
/// identifier is left alone). SQL that already numbers its placeholders, or has none,
/// comes back unchanged.
pub fn portable_sql(backend: sea_orm::DbBackend, sql: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if backend != sea_orm::DbBackend::Postgres || !sql.contains('?') || has_numbered(sql) {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut n = 0;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A raw statement written once with `?` placeholders, for `backend`
/// ([`portable_sql`]).
pub fn statement<I>(backend: sea_orm::DbBackend, sql: &str, values: I) -> sea_orm::Statement
where
    I: IntoIterator<Item = sea_orm::Value>,
{
    sea_orm::Statement::from_sql_and_values(backend, portable_sql(backend, sql), values)
}

/// Whether `sql` has a `$1`-style placeholder (sea-orm's PostgreSQL queries do).
fn has_numbered(sql: &str) -> bool {
    sql.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

/// DDL written for SQLite, as PostgreSQL takes it: an `INTEGER PRIMARY KEY
/// AUTOINCREMENT` key becomes an identity column, every other `INTEGER` a `BIGINT`
/// (SQLite's integers are 64-bit, and the stores read them as `i64`), `BLOB` is
/// `BYTEA` and `REAL` `DOUBLE PRECISION`. For migrations whose tables are plain SQL;
/// what has no such spelling (FTS5, triggers) is written per engine.
pub fn portable_ddl(backend: sea_orm::DbBackend, sql: &str) -> String {
    if backend != sea_orm::DbBackend::Postgres {
        return sql.to_owned();
    }
    let sql = sql.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    );
    let mut out = String::with_capacity(sql.len() + 32);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "INTEGER" => "BIGINT",
            "BLOB" => "BYTEA",
            "REAL" => "DOUBLE PRECISION",
            w => w,
        });
        word.clear();
    };
    for c in sql.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbBackend;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let sql = "SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)";
        assert_eq!(portable_sql(DbBackend::Sqlite, sql), sql);
        assert_eq!(
            portable_sql(DbBackend::Postgres, sql),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
        );
        assert_eq!(portable_sql(DbBackend::Postgres, "x = $1"), "x = $1");
    }

    #[test]
    fn ddl_gets_postgres_types() {
        let sql = "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, \
                   integer_count INTEGER, b BLOB)";
        assert_eq!(portable_ddl(DbBackend::Sqlite, sql), sql);
        assert_eq!(
            portable_ddl(DbBackend::Postgres, sql),
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
             n BIGINT NOT NULL, integer_count BIGINT, b BYTEA)"
        );
    }
}
