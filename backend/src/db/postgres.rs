//! The PostgreSQL engine: a server shared by many accounts (and, later, by several
//! daemons). Opening it is the only PostgreSQL-only code here: a single connection
//! first, so that a server that is down or a wrong password gives a clear, typed
//! error at once (a pool would retry until its acquire timeout), then the pool.
//!
//! The URL may hold a password: every message shows it masked ([`super::masked_url`]),
//! and the server's own messages are scrubbed of it too.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sqlx::ConnectOptions as _;

use super::{DbOpenError, masked_url, migrate};

/// Connections in the pool: PostgreSQL has real concurrent writers, and a daemon with
/// many profiles syncs several at once.
const MAX_CONNECTIONS: u32 = 8;

/// How long opening a connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `url`, checks the server answers and accepts the credentials, and
/// migrates.
pub async fn open(url: &str) -> Result<DatabaseConnection, DbOpenError> {
    let shown = masked_url(url);
    probe(url, &shown).await?;
    let mut opt = ConnectOptions::new(url);
    opt.max_connections(MAX_CONNECTIONS)
        .min_connections(1)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(|o| o.application_name("perchd"));
    let db = Database::connect(opt)
        .await
        .map_err(|source| DbOpenError::Unreachable {
            url: shown.clone(),
            reason: scrub(url, &source.to_string()),
        })?;
    migrate(&db, &shown).await?;
    Ok(db)
}

/// One connection, opened and closed: the typed error when the server is not there
/// or refuses us.
async fn probe(url: &str, shown: &str) -> Result<(), DbOpenError> {
    use sqlx::Connection as _;
    let unreachable = |reason: String| DbOpenError::Unreachable {
        url: shown.to_owned(),
        reason: scrub(url, &reason),
    };
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| unreachable(e.to_string()))?;
    let options = options
        .application_name("perchd")
        .disable_statement_logging();
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&options))
        .await
        .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?;
    match conn {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(sqlx::Error::Database(d)) if is_auth(d.code().as_deref()) => Err(DbOpenError::Auth {
            url: shown.to_owned(),
            reason: scrub(url, d.message()),
        }),
        Err(e) => Err(unreachable(e.to_string())),
    }
}

/// SQLSTATE class 28 (invalid authorization: a wrong password, an unknown user, a
/// `pg_hba.conf` refusal).
fn is_auth(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("28"))
}

/// `message` without the URL's password, should any layer have quoted it.
fn scrub(url: &str, message: &str) -> String {
    match password(url) {
        Some(p) if !p.is_empty() => message.replace(&p, "***"),
        _ => message.to_owned(),
    }
}

/// The password of a `postgres://user:password@host/…` URL.
fn password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    Some(userinfo.split_once(':')?.1.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_scrubbed() {
        let url = "postgres://perch:s3cret@127.0.0.1:5432/perch?sslmode=disable";
        assert_eq!(
            masked_url(url),
            "postgres://perch:***@127.0.0.1:5432/perch?sslmode=disable"
        );
        assert_eq!(
            masked_url("postgres://perch@h/db?password=s3cret&x=1"),
            "postgres://perch@h/db?password=***&x=1"
        );
        assert_eq!(masked_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(scrub(url, "bad s3cret here"), "bad *** here");
        assert!(is_auth(Some("28P01")));
        assert!(!is_auth(Some("3D000")));
    }
}
