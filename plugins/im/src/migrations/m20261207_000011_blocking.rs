//! Blocking (XEP-0191): each profile's copy of its server-side blocklist, one row
//! per blocked JID, so the list is known before the connection and after a restart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("blocked_jid")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(integer("profile_id"))
                    // As the server has it: bare, full or a domain.
                    .col(string("jid"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocked_jid_profile")
                            .from("blocked_jid", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_blocked_jid_profile_jid")
                    .table("blocked_jid")
                    .col("profile_id")
                    .col("jid")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("blocked_jid").to_owned())
            .await
    }
}
