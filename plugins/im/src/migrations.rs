//! This crate's tables: the rooms each profile is in (XEP-0045), each profile's
//! blocklist (XEP-0191) and read positions (XEP-0333, XEP-0490).
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

mod m20261202_000008_muc;
mod m20261207_000011_blocking;
mod m20261207_000030_read_state;
mod m20261207_000032_read_state_pending;

/// This crate's migrations, oldest first.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261202_000008_muc::Migration),
        Box::new(m20261207_000011_blocking::Migration),
        Box::new(m20261207_000030_read_state::Migration),
        Box::new(m20261207_000032_read_state_pending::Migration),
    ]
}
