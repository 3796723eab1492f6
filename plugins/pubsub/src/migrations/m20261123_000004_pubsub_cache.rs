//! The pubsub cache: nodes with their analysis and sync state, items with their raw
//! XML, parsed JSON and an FTS5 index over their text (never over XML tag or
//! attribute names: the indexed `text` column holds the items' character data and
//! parsed values only, filled by the cache plugin).
//!
//! Raw SQL: FTS5 tables and their triggers have no sea-query builder. The tables are
//! written once (PostgreSQL gets them through `portable_ddl`); the full-text index is
//! per engine: FTS5 on SQLite, a `tsvector` table with a GIN index on PostgreSQL
//! ([`PG_FTS`], `doc/storage.rst`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

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

/// PostgreSQL's full-text index: one row per item (`rowid` is the item's id, as the
/// FTS5 table's), its text as a `tsvector` (the `simple` configuration: no stemming,
/// no stop words, as FTS5's `unicode61`), under a GIN index; goes with its item. The
/// trigger drops the entry when the payload is written (the writer then indexes the
/// new text), as the SQLite trigger of migration 006 does: both fire on an update that
/// sets `data`, changed or not.
pub(crate) const PG_FTS: &str = r#"
CREATE TABLE pubsub_item_fts (
    rowid BIGINT PRIMARY KEY REFERENCES pubsub_item(id) ON DELETE CASCADE,
    tsv tsvector NOT NULL
);
CREATE INDEX ix_pubsub_item_fts_tsv ON pubsub_item_fts USING GIN (tsv);
CREATE FUNCTION pubsub_item_fts_au() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM pubsub_item_fts WHERE rowid = OLD.id;
    RETURN NEW;
END $$;
CREATE TRIGGER pubsub_item_fts_au AFTER UPDATE OF data ON pubsub_item
    FOR EACH ROW EXECUTE FUNCTION pubsub_item_fts_au();
"#;

const PG_DOWN: &str = r#"
DROP TABLE IF EXISTS pubsub_item_fts;
DROP FUNCTION IF EXISTS pubsub_item_fts_au CASCADE;
DROP TABLE IF EXISTS pubsub_item;
DROP TABLE IF EXISTS pubsub_node;
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
        let backend = manager.get_database_backend();
        db.execute_unprepared(&perch_plugin_api::db::portable_ddl(backend, UP))
            .await?;
        match backend {
            DbBackend::Postgres => db.execute_unprepared(PG_FTS).await?,
            _ => db.execute_unprepared(FTS).await?,
        };
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let down = match manager.get_database_backend() {
            DbBackend::Postgres => PG_DOWN,
            _ => DOWN,
        };
        manager.get_connection().execute_unprepared(down).await?;
        Ok(())
    }
}
