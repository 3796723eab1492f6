//! The pubsub cache's tables: nodes, items, their indexes and full-text index (and,
//! on PostgreSQL, the functions its field filters use).
//!
//! Why here and not in `perch-migration`: a plugin's tables are part of the plugin, so
//! they live, change and are reviewed with the code that reads them; the core's stay
//! in `perch-migration`. perchd composes every crate's migrations into one migrator,
//! ordered by name (`doc/architecture.rst`, "Invariants"). A migration keeps its file
//! name for ever: sea-orm records it by its file stem, so a database migrated when
//! the file lived elsewhere still knows it as applied.

// sea-orm-migration's `MigrationTrait` (an async_trait) spells `&SchemaManager`
// without its lifetime; the implementations must match it.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::MigrationTrait;

mod m20261123_000004_pubsub_cache;
mod m20261123_000005_pubsub_cache_indexes;
mod m20261123_000006_pubsub_cache_contentless_fts;
mod m20261208_000060_pubsub_cache_pg_json;
mod m20261208_000061_pubsub_cache_pg_fold;

/// This crate's migrations, oldest first.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261123_000004_pubsub_cache::Migration),
        Box::new(m20261123_000005_pubsub_cache_indexes::Migration),
        Box::new(m20261123_000006_pubsub_cache_contentless_fts::Migration),
        Box::new(m20261208_000060_pubsub_cache_pg_json::Migration),
        Box::new(m20261208_000061_pubsub_cache_pg_fold::Migration),
    ]
}
