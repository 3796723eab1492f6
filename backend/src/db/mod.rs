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

use std::path::{Path, PathBuf};

use sea_orm::{DatabaseConnection, DbErr};

/// Which database perchd opens.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL (which may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Target {
    /// `url` ("" for SQLite at `sqlite_path`), or why it names no engine Perch has.
    pub fn from_url(url: &str, sqlite_path: &Path) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Self::Sqlite(sqlite_path.to_path_buf()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "{} is neither postgres://… nor sqlite://PATH (\"\" for SQLite in the data dir)",
            masked_url(url)
        ))
    }

    /// How logs and errors name it: a path, or the URL with its password masked.
    pub fn shown(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres(url) => masked_url(url),
        }
    }
}

/// `url` with its password (in the user part or a `password=` parameter) replaced by
/// `***`: what every log line and error shows of a database URL.
pub fn masked_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            out.replace_range(start..scheme_end + 3 + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

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
