//! This crate's tables: the avatar each profile knows for each JID (XEP-0084), and
//! its nickname (XEP-0172).
//!
//! Why here: a plugin's tables live with the plugin (see `perch-plugins-im`'s
//! migrations for the rule and why file names never change).

#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::MigrationTrait;

mod m20261207_000020_avatars;
mod m20261207_000042_nicknames;

/// This crate's migrations, oldest first.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261207_000020_avatars::Migration),
        Box::new(m20261207_000042_nicknames::Migration),
    ]
}
