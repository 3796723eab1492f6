//! Several daemons on one database: who runs, and who owns each profile.
//!
//! `daemon_node`: one row per daemon name (`[cluster] node`), with the host and pid
//! of the process that holds it and its last heartbeat (milliseconds since the Unix
//! epoch). `profile_lease`: the daemon that owns each profile (its sessions, its
//! outbox) and a fencing token, raised at every acquisition. A lease is valid while
//! its owner's heartbeat is fresh; writes for the profile check the token, so a
//! daemon that lost its lease (paused past its heartbeat) cannot write after another
//! took over. Leases go with their profile (the foreign key cascades on delete).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("daemon_node")
                    .if_not_exists()
                    .col(string("name").primary_key())
                    .col(string("host"))
                    .col(big_integer("pid"))
                    .col(big_integer("started_at"))
                    .col(big_integer("heartbeat_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("profile_lease")
                    .if_not_exists()
                    .col(integer("profile_id").primary_key())
                    .col(string("owner"))
                    .col(big_integer("token"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_profile_lease_profile")
                            .from("profile_lease", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_profile_lease_owner")
                    .table("profile_lease")
                    .col("owner")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("profile_lease").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("daemon_node").to_owned())
            .await
    }
}
