//! Schema migrations of the core's tables: profiles, the message history, jobs, the
//! outbox, the Libervia bridge's parameters, the roster and the daemons' leases.
//!
//! Why a crate of its own: the schema is part of Perch's contract with the data users
//! already have. perchd applies migrations at start (never anything else touches the
//! schema), and refuses a database that records a migration it does not know — a sign
//! that a newer Perch wrote it — instead of guessing.
//!
//! Why only the core's: a plugin crate keeps its own tables' migrations beside its code
//! (`perch_plugins_pubsub::migrations`, …); perchd composes them with these into one
//! migrator (`perch_backend::db::Migrator`), ordered by name. A name is
//! `mYYYYMMDD_NNNNNN_what`, the sequence number running across every crate, so name
//! order is the order the migrations were written in — the order existing databases
//! applied them. A new migration, wherever it lives, takes the next number.
//!
//! One file per migration: sea-orm takes a migration's name from its file stem, so two
//! migrations in one file would collide; and a file keeps its name when it moves.

// sea-orm-migration's `MigrationTrait` (an async_trait) spells `&SchemaManager`
// without its lifetime; the implementations must match it.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_profiles;
mod m20261123_000002_history;
mod m20261123_000003_plugins;
mod m20261202_000007_messaging;
mod m20261202_000009_libervia_params;
mod m20261207_000041_roster;
mod m20261207_000050_cluster;

/// The core's migrations, oldest first.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261123_000001_profiles::Migration),
        Box::new(m20261123_000002_history::Migration),
        Box::new(m20261123_000003_plugins::Migration),
        Box::new(m20261202_000007_messaging::Migration),
        Box::new(m20261202_000009_libervia_params::Migration),
        Box::new(m20261207_000041_roster::Migration),
        Box::new(m20261207_000050_cluster::Migration),
    ]
}
