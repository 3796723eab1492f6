//! The checked sqlx path of a [`crate::store::PluginStore`] on either engine: the hot
//! write paths bind their values straight into sqlx (sea-orm would copy every one),
//! and the statement text is only ever what the store checked.

use std::sync::Arc;

use sea_orm::DbBackend;

/// SQL text the store checked (every statement in it): the only SQL a
/// [`SqlxTransaction`] runs. Only [`crate::store::PluginStore::check_sql`] makes one.
#[derive(Debug, Clone)]
pub struct CheckedSql(Arc<str>, DbBackend);

impl CheckedSql {
    pub(crate) fn new(sql: Arc<str>, backend: DbBackend) -> Self {
        Self(sql, backend)
    }

    /// A sqlx query over this text, to bind values to and run in a
    /// [`SqlxTransaction`].
    pub fn query<'q>(&self) -> CheckedQuery<'q> {
        let text = sqlx::AssertSqlSafe(self.0.clone());
        match self.1 {
            DbBackend::Postgres => CheckedQuery::Postgres(sqlx::query(text)),
            _ => CheckedQuery::Sqlite(sqlx::query(text)),
        }
    }
}

/// A sqlx query over [`CheckedSql`]: values are bound (moved, not copied), the text
/// stays what was checked.
pub enum CheckedQuery<'q> {
    Sqlite(sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>),
    Postgres(sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>),
}

impl<'q> CheckedQuery<'q> {
    pub fn bind<T>(self, value: T) -> Self
    where
        T: 'q
            + sqlx::Encode<'q, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            Self::Sqlite(q) => Self::Sqlite(q.bind(value)),
            Self::Postgres(q) => Self::Postgres(q.bind(value)),
        }
    }

    /// Whether the engine keeps it prepared (see `sqlx::query::Query::persistent`).
    pub fn persistent(self, yes: bool) -> Self {
        match self {
            Self::Sqlite(q) => Self::Sqlite(q.persistent(yes)),
            Self::Postgres(q) => Self::Postgres(q.persistent(yes)),
        }
    }
}

/// A row a [`SqlxTransaction`] read.
pub enum CheckedRow {
    Sqlite(sqlx::sqlite::SqliteRow),
    Postgres(sqlx::postgres::PgRow),
}

impl CheckedRow {
    /// Column `index`, decoded as `T`.
    pub fn try_get<T>(&self, index: usize) -> Result<T, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        use sqlx::Row as _;
        match self {
            Self::Sqlite(r) => r.try_get(index),
            Self::Postgres(r) => r.try_get(index),
        }
    }
}

/// A sqlx transaction of a store, for the hot write paths where sea-orm's copy of
/// every value costs (a sync writes a kilobyte or so per item). It runs only
/// [`CheckedSql`], and never hands out its connection.
pub enum SqlxTransaction<'s> {
    Sqlite(sqlx::Transaction<'s, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'s, sqlx::Postgres>),
}

impl std::fmt::Debug for SqlxTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlxTransaction")
    }
}

impl SqlxTransaction<'_> {
    /// Runs a checked query; the rows it changed.
    pub async fn execute(&mut self, q: CheckedQuery<'_>) -> Result<u64, sqlx::Error> {
        use sqlx::Executor as _;
        match (self, q) {
            (Self::Sqlite(t), CheckedQuery::Sqlite(q)) => Ok(t.execute(q).await?.rows_affected()),
            (Self::Postgres(t), CheckedQuery::Postgres(q)) => {
                Ok(t.execute(q).await?.rows_affected())
            }
            _ => Err(mixed()),
        }
    }

    /// Runs a checked query; its first row, if any.
    pub async fn fetch_optional(
        &mut self,
        q: CheckedQuery<'_>,
    ) -> Result<Option<CheckedRow>, sqlx::Error> {
        use sqlx::Executor as _;
        match (self, q) {
            (Self::Sqlite(t), CheckedQuery::Sqlite(q)) => {
                Ok(t.fetch_optional(q).await?.map(CheckedRow::Sqlite))
            }
            (Self::Postgres(t), CheckedQuery::Postgres(q)) => {
                Ok(t.fetch_optional(q).await?.map(CheckedRow::Postgres))
            }
            _ => Err(mixed()),
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(t) => t.commit().await,
            Self::Postgres(t) => t.commit().await,
        }
    }
}

/// A query checked on one engine run in a transaction of the other (one store has
/// one engine, so this is a bug).
fn mixed() -> sqlx::Error {
    sqlx::Error::Protocol("a query checked for one database engine ran on another".into())
}
