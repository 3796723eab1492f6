//! The one migrator perchd runs: the core's migrations and every plugin crate's.
//!
//! Why composed here: each plugin crate keeps its tables' migrations beside its code,
//! and only the composition root links them all. They are applied in the order of
//! their names (`mYYYYMMDD_NNNNNN_what`, one sequence across the crates), which is the
//! order they were written in and the order every existing database applied them; a
//! migration's name is its file stem, kept when the file moved to its plugin, so an
//! existing database finds every migration it records.

use perch_migration::MigrationTrait;
pub use perch_migration::MigratorTrait;

/// Every migration this binary knows, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = perch_migration::migrations();
        all.extend(perch_plugins_pubsub::migrations());
        all.extend(perch_plugins_im::migrations());
        all.extend(perch_plugins_identity::migrations());
        all.extend(perch_plugins_calls::migrations());
        all.extend(perch_plugins_e2ee::migrations());
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }
}

/// The names of all migrations this binary knows, oldest first.
pub fn known_migrations() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names and order databases recorded before the plugins' migrations moved
    /// to their crates: a renamed or reordered one would be unknown to, or applied
    /// out of turn on, every existing database.
    #[test]
    fn the_composed_migrations_keep_their_names_and_order() {
        assert_eq!(
            known_migrations(),
            [
                "m20261123_000001_profiles",
                "m20261123_000002_history",
                "m20261123_000003_plugins",
                "m20261123_000004_pubsub_cache",
                "m20261123_000005_pubsub_cache_indexes",
                "m20261123_000006_pubsub_cache_contentless_fts",
                "m20261202_000007_messaging",
                "m20261202_000008_muc",
                "m20261202_000009_libervia_params",
                "m20261202_000010_calls",
                "m20261207_000011_blocking",
                "m20261207_000012_omemo",
                "m20261207_000020_avatars",
                "m20261207_000030_read_state",
                "m20261207_000032_read_state_pending",
                "m20261207_000041_roster",
                "m20261207_000042_nicknames",
                "m20261207_000050_cluster",
                "m20261208_000060_pubsub_cache_pg_json",
                "m20261208_000061_pubsub_cache_pg_fold",
                "m20261208_000062_omemo_conversation_version",
            ]
        );
    }
}
