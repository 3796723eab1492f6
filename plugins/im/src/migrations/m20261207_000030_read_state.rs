//! Read state (XEP-0333, XEP-0490): each profile's read position per conversation,
//! one row per conversation, so unread counts survive a restart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("read_state")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(integer("profile_id"))
                    // The conversation: a contact's or a room's bare JID.
                    .col(string("peer"))
                    // The last message read: its history id, or the archive's
                    // stanza-id when another device told us (XEP-0490).
                    .col(string("message_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_read_state_profile")
                            .from("read_state", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_read_state_profile_peer")
                    .table("read_state")
                    .col("profile_id")
                    .col("peer")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("read_state").to_owned())
            .await
    }
}
