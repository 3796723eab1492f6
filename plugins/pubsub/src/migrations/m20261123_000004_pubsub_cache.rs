//! The pubsub cache: nodes with their analysis and sync state, items with their raw
//! XML, parsed JSON and an FTS5 index over their text (never over XML tag or
//! attribute names: the indexed `text` column holds the items' character data and
//! parsed values only, filled by the cache plugin).
//!
//! Raw SQL: FTS5 tables and their triggers have no sea-query builder, and this schema
//! is SQLite's (the bundled SQLite has FTS5 and JSON1).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE pubsub_node (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id INTEGER NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The analysis, remembered: analysed = 1 with analyser NULL means "nothing matched".
    analysed INTEGER NOT NULL DEFAULT 0,
    analyser TEXT,
    type TEXT,
    subtype TEXT,
    to_sync INTEGER NOT NULL DEFAULT 0,
    -- none | in_progress | completed | error | no_sync
    sync_state TEXT NOT NULL DEFAULT 'none',
    sync_state_updated INTEGER NOT NULL,
    sync_error TEXT,
    -- Served from the cache only when completed and coherent.
    coherent INTEGER NOT NULL DEFAULT 0,
    incoherent_reason TEXT,
    subscribed INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at INTEGER,
    -- The sync generation: items not seen by a completed sync are stale.
    sync_gen INTEGER NOT NULL DEFAULT 0,
    -- The highest item sequence number given (items are ordered by it).
    seq INTEGER NOT NULL DEFAULT 0,
    items_fetched INTEGER NOT NULL DEFAULT 0,
    UNIQUE (profile_id, service, name)
);
CREATE TABLE pubsub_item (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id INTEGER NOT NULL REFERENCES pubsub_node(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL,
    publisher TEXT,
    -- The payload element as received.
    data TEXT NOT NULL,
    -- The analyser's JSON, or NULL when there is no parser.
    parsed TEXT,
    -- What full-text search sees: character data and parsed values.
    text TEXT NOT NULL,
    seq INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    UNIQUE (node_id, item_id)
);
CREATE INDEX ix_pubsub_item_node_seq ON pubsub_item (node_id, seq);
CREATE INDEX ix_pubsub_item_created ON pubsub_item (created);
CREATE INDEX ix_pubsub_item_updated ON pubsub_item (updated);
"#;

/// The external-content full-text index over `pubsub_item.text` and the triggers that
/// keep it (also what migration 006 goes back to when undone).
pub(crate) const FTS: &str = r#"
CREATE VIRTUAL TABLE pubsub_item_fts USING fts5(
    text, content = 'pubsub_item', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER pubsub_item_fts_ai AFTER INSERT ON pubsub_item BEGIN
    INSERT INTO pubsub_item_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER pubsub_item_fts_ad AFTER DELETE ON pubsub_item BEGIN
    INSERT INTO pubsub_item_fts (pubsub_item_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER pubsub_item_fts_au AFTER UPDATE OF text ON pubsub_item BEGIN
    INSERT INTO pubsub_item_fts (pubsub_item_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO pubsub_item_fts (rowid, text) VALUES (new.id, new.text);
END;
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS pubsub_item_fts_au;
DROP TRIGGER IF EXISTS pubsub_item_fts_ad;
DROP TRIGGER IF EXISTS pubsub_item_fts_ai;
DROP TABLE IF EXISTS pubsub_item_fts;
DROP TABLE IF EXISTS pubsub_item;
DROP TABLE IF EXISTS pubsub_node;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(UP).await?;
        db.execute_unprepared(FTS).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
