//! The database: choosing its engine, opening it, migrating it, and refusing one we
//! don't understand.
//!
//! Two engines behind one boundary ([`open`], `doc/storage.rst`): SQLite in WAL mode
//! by default (one file, no server to run: [`sqlite`]), and PostgreSQL for services
//! that hold many accounts ([`postgres`]). Above this module, code sees a sea-orm
//! `DatabaseConnection` and branches on its backend only where the SQL must differ.
//! Migrations come from the `perch-migration` crate (the core's tables) and the
//! plugin crates (their own), composed in [`migrator`], and run at every start; a
//! database that records a migration this binary does not know was written by a
//! newer Perch, and is refused with a clear message — and left untouched — rather
//! than half-understood.

pub mod entities;
pub mod migrator;
pub mod postgres;
pub mod sqlite;

pub use migrator::{Migrator, MigratorTrait, known_migrations};

pub use perch_plugin_api::db::{WRITE_LOCK_DEADLINE, begin_write};

use std::path::Path;

pub use crate::config::{DatabaseTarget as Target, masked_url};

use sea_orm::{DatabaseConnection, DbErr};

#[derive(Debug, thiserror::Error)]
pub enum DbOpenError {
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: DbErr },
    /// PostgreSQL could not be reached (refused, unknown host, timed out).
    #[error(
        "cannot reach the database at {url}: {reason}; is PostgreSQL running there, \
         and does database.url (or --database-url) name it?"
    )]
    Unreachable { url: String, reason: String },
    /// PostgreSQL refused the credentials of the URL.
    #[error("the database at {url} refused the user or password of database.url: {reason}")]
    Auth { url: String, reason: String },
    #[error(
        "database {path} was written by a newer Perch: it records migrations this perchd \
         does not know ({unknown}); upgrade perchd or use another --data-dir. The database \
         was left untouched."
    )]
    Newer { path: String, unknown: String },
    #[error("migrating database {path} failed: {source}")]
    Migrate { path: String, source: DbErr },
}

/// Opens (creating the SQLite file if needed) and migrates the database.
pub async fn open(target: &Target) -> Result<DatabaseConnection, DbOpenError> {
    match target {
        Target::Sqlite(path) => sqlite::open(path).await,
        Target::Postgres(url) => postgres::open(url).await,
    }
}

/// Opens (creating if needed) and migrates the SQLite database at `path`.
pub async fn open_sqlite(path: &Path) -> Result<DatabaseConnection, DbOpenError> {
    sqlite::open(path).await
}

pub(crate) async fn migrate(db: &DatabaseConnection, shown: &str) -> Result<(), DbOpenError> {
    let open_err = |source| DbOpenError::Open {
        path: shown.to_owned(),
        source,
    };
    let known = known_migrations();
    let applied = applied_versions(db).await.map_err(open_err)?;
    let unknown: Vec<_> = applied.iter().filter(|v| !known.contains(v)).collect();
    if !unknown.is_empty() {
        return Err(DbOpenError::Newer {
            path: shown.to_owned(),
            unknown: unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let pending = known.len() - applied.len().min(known.len());
    if pending > 0 {
        tracing::info!(path = shown, pending, "applying database migrations");
    }
    Migrator::up(db, None)
        .await
        .map_err(|source| DbOpenError::Migrate {
            path: shown.to_owned(),
            source,
        })
}

/// Versions recorded in the migration table, without creating it.
async fn applied_versions(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let probe = match backend {
        sea_orm::DbBackend::Sqlite => {
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'"
        }
        _ => {
            "SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'seaql_migrations'"
        }
    };
    let has_table = db
        .query_one_raw(Statement::from_string(backend, probe))
        .await?
        .is_some();
    if !has_table {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "version"))
        .collect()
}

/// Whether a failed statement failed because the database server could not be
/// reached or went away (a PostgreSQL restart, a network cut), so that the same
/// write may succeed once it is back — as opposed to the statement or the data
/// (a constraint, a full disk), which would fail again.
pub fn is_unreachable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // SQLSTATE class 08 (connection exception) and 57P (the server shut
                // down, or is starting and cannot take connections yet).
                sqlx::Error::Database(d) => d
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            }
        }
        _ => false,
    }
}
