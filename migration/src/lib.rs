//! Schema migrations of Perch's database.
//!
//! Why a crate of its own: the schema is part of Perch's contract with the data users
//! already have. perchd applies these migrations at start (never anything else touches
//! the schema), and refuses a database that records a migration this binary does not
//! know — a sign that a newer Perch wrote it — instead of guessing.
//!
//! One file per migration: sea-orm takes a migration's name from its file stem, so two
//! migrations in one file would collide.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_profiles;
mod m20261123_000002_history;
mod m20261123_000003_plugins;
mod m20261123_000004_pubsub_cache;
mod m20261123_000005_pubsub_cache_indexes;
mod m20261123_000006_pubsub_cache_contentless_fts;
mod m20261202_000007_messaging;
mod m20261202_000008_muc;
mod m20261202_000010_calls;

/// Every migration this binary knows, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_profiles::Migration),
            Box::new(m20261123_000002_history::Migration),
            Box::new(m20261123_000003_plugins::Migration),
            Box::new(m20261123_000004_pubsub_cache::Migration),
            Box::new(m20261123_000005_pubsub_cache_indexes::Migration),
            Box::new(m20261123_000006_pubsub_cache_contentless_fts::Migration),
            Box::new(m20261202_000007_messaging::Migration),
            Box::new(m20261202_000008_muc::Migration),
            Box::new(m20261202_000010_calls::Migration),
        ]
    }
}

/// The names of all migrations this binary knows, oldest first.
pub fn known_migrations() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}
