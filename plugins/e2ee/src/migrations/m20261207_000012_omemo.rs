//! OMEMO (XEP-0384): one identity per profile (its private key sealed), our
//! prekeys per version, the devices of contacts (and of our own account), the
//! trust given to each identity key, the sessions with each device, and the
//! conversations the user encrypts. Every row belongs to a profile and goes with it
//! (`ON DELETE CASCADE`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    // The identity key's seed is sealed as the XMPP passwords are (`Host::seal`).
    "CREATE TABLE IF NOT EXISTS omemo_identity (
        profile_id INTEGER PRIMARY KEY NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
        device_id INTEGER NOT NULL,
        sealed_seed TEXT NOT NULL
    )",
    // `perch_omemo::DeviceKeys` as JSON, one per version.
    "CREATE TABLE IF NOT EXISTS omemo_prekeys (
        profile_id INTEGER NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
        version TEXT NOT NULL,
        keys TEXT NOT NULL,
        PRIMARY KEY (profile_id, version)
    )",
    // A device some account published (`active`: in its current list); its
    // fingerprint once its bundle or a session told it.
    "CREATE TABLE IF NOT EXISTS omemo_device (
        profile_id INTEGER NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        version TEXT NOT NULL,
        device_id INTEGER NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        fingerprint TEXT,
        PRIMARY KEY (profile_id, jid, version, device_id)
    )",
    // Trust per identity key of an account: blind, verified, undecided, distrusted.
    "CREATE TABLE IF NOT EXISTS omemo_trust (
        profile_id INTEGER NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        trust TEXT NOT NULL,
        PRIMARY KEY (profile_id, jid, fingerprint)
    )",
    // `perch_omemo::Session` as JSON.
    "CREATE TABLE IF NOT EXISTS omemo_session (
        profile_id INTEGER NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        version TEXT NOT NULL,
        device_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (profile_id, jid, version, device_id)
    )",
    // The conversations whose messages go encrypted (no silent fallback).
    "CREATE TABLE IF NOT EXISTS omemo_conversation (
        profile_id INTEGER NOT NULL REFERENCES profile(id) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        PRIMARY KEY (profile_id, jid)
    )",
];

const TABLES: &[&str] = &[
    "omemo_conversation",
    "omemo_session",
    "omemo_trust",
    "omemo_device",
    "omemo_prekeys",
    "omemo_identity",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Written once: PostgreSQL gets 64-bit integers where SQLite has them.
        let backend = manager.get_database_backend();
        for sql in UP {
            let sql = perch_plugin_api::db::portable_ddl(backend, sql);
            manager.get_connection().execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            manager
                .drop_table(Table::drop().table(*t).to_owned())
                .await?;
        }
        Ok(())
    }
}
