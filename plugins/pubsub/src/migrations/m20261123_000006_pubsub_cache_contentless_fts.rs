//! The full-text index keeps no copy of the text it indexes.
//!
//! Why: with an external-content FTS5 table, the indexed text had to be stored in
//! `pubsub_item.text` as well — written for nothing but FTS5's own use (deletes and `rebuild`), since searches only match, rank and join
//! on the row id. A contentless table (`content=''`) with `contentless_delete=1`
//! (SQLite 3.43) still supports deleting by row id. The cache now inserts an item's
//! text itself, right after the item (see `pubsub_cache::dao::store_items`); the
//! triggers only remove entries: when an item goes, and when its payload is replaced
//! (the writer then indexes the new text).
//!
//! `automerge` 16 (FTS5's default is 4): each page a sync commits adds a segment to
//! the index, and merging them four at a time cost a noticeable share of the ingest
//! at 1M items; merged sixteen at a time, searches read a few more segments and stay
//! fast (doc/performance.rst, "Design figures").

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use super::m20261123_000004_pubsub_cache::FTS;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
DROP TRIGGER IF EXISTS pubsub_item_fts_ai;
DROP TRIGGER IF EXISTS pubsub_item_fts_ad;
DROP TRIGGER IF EXISTS pubsub_item_fts_au;
DROP TABLE IF EXISTS pubsub_item_fts;
CREATE VIRTUAL TABLE pubsub_item_fts USING fts5(
    text, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO pubsub_item_fts (pubsub_item_fts, rank) VALUES ('automerge', 16);
INSERT INTO pubsub_item_fts (rowid, text) SELECT id, text FROM pubsub_item;
ALTER TABLE pubsub_item DROP COLUMN text;
CREATE TRIGGER pubsub_item_fts_ad AFTER DELETE ON pubsub_item BEGIN
    DELETE FROM pubsub_item_fts WHERE rowid = old.id;
END;
CREATE TRIGGER pubsub_item_fts_au AFTER UPDATE OF data ON pubsub_item BEGIN
    DELETE FROM pubsub_item_fts WHERE rowid = old.id;
END;
"#;

/// Back to migration 004's external-content index (its [`FTS`] statements follow). The indexed text is not kept any
/// more, so the index comes back empty: searches find nothing until the cache is
/// reset or resynchronised.
const DOWN: &str = r#"
DROP TRIGGER IF EXISTS pubsub_item_fts_au;
DROP TRIGGER IF EXISTS pubsub_item_fts_ad;
DROP TABLE IF EXISTS pubsub_item_fts;
ALTER TABLE pubsub_item ADD COLUMN text TEXT NOT NULL DEFAULT '';
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// On PostgreSQL the index was contentless from the start (migration 004's
    /// `PG_FTS`): only the copied text goes.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let up = match manager.get_database_backend() {
            DbBackend::Postgres => "ALTER TABLE pubsub_item DROP COLUMN text",
            _ => UP,
        };
        manager.get_connection().execute_unprepared(up).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE pubsub_item ADD COLUMN text TEXT NOT NULL DEFAULT ''",
            )
            .await?;
            return Ok(());
        }
        db.execute_unprepared(DOWN).await?;
        db.execute_unprepared(FTS).await?;
        Ok(())
    }
}
