//! This crate's tables: OMEMO's identity, prekeys, devices, trust, sessions and
//! which conversations are encrypted (XEP-0384).
//!
//! Why here: a plugin's tables live with the code that reads them; perchd composes
//! every crate's migrations into one migrator, ordered by name.

// sea-orm-migration's `MigrationTrait` (an async_trait) spells `&SchemaManager`
// without its lifetime; the implementations must match it.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::MigrationTrait;

mod m20261207_000012_omemo;
mod m20261208_000062_omemo_conversation_version;

/// This crate's migrations, oldest first.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261207_000012_omemo::Migration),
        Box::new(m20261208_000062_omemo_conversation_version::Migration),
    ]
}
