//! PostgreSQL's full-text index, rebuilt with accents folded.
//!
//! Why: the cache's full-text search now folds accents on PostgreSQL as FTS5 does on
//! SQLite (`pubsub_cache::fts_pg::fold`), in the indexed text and in the query. An
//! index written before held `échec` where a query now looks for `echec`: every
//! entry is written again from its item (SQLite's index is untouched: FTS5 folded
//! from the start).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement, Value};

use crate::pubsub_cache::{fts_pg::fold, service::stored_index_text};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Items re-indexed per statement.
const PAGE: u64 = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM pubsub_item_fts").await?;
        let mut last = 0_i64;
        loop {
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "SELECT id, data, parsed FROM pubsub_item WHERE id > $1 ORDER BY id LIMIT {PAGE}"
                    ),
                    [Value::from(last)],
                ))
                .await?;
            let Some(end) = rows.last() else {
                return Ok(());
            };
            last = end.try_get("", "id")?;
            let mut values = Vec::with_capacity(rows.len() * 2);
            let mut marks = Vec::with_capacity(rows.len());
            for (i, r) in rows.iter().enumerate() {
                let data: String = r.try_get("", "data")?;
                let parsed: Option<String> = r.try_get("", "parsed")?;
                values.push(Value::from(r.try_get::<i64>("", "id")?));
                values.push(Value::from(fold(&stored_index_text(
                    &data,
                    parsed.as_deref(),
                ))));
                marks.push(format!("(${}::bigint, ${})", 2 * i + 1, 2 * i + 2));
            }
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "INSERT INTO pubsub_item_fts (rowid, tsv) SELECT v.column1, \
                     to_tsvector('simple', v.column2) FROM (VALUES {}) AS v",
                    marks.join(", ")
                ),
                values,
            ))
            .await?;
        }
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The folded index reads as well with the code before it (it only finds more).
        Ok(())
    }
}
