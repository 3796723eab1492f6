//! Message history: both directions, per profile.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("message")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(integer("profile_id"))
                    .col(string("msg_id"))
                    // Microseconds since the Unix epoch, UTC.
                    .col(big_integer("timestamp"))
                    .col(string("direction"))
                    .col(string("peer"))
                    .col(string("from_jid"))
                    .col(string("to_jid"))
                    .col(string("kind"))
                    .col(text("body"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_profile")
                            .from("message", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_message_profile_peer_ts")
                    .table("message")
                    .col("profile_id")
                    .col("peer")
                    .col("timestamp")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_message_profile_ts")
                    .table("message")
                    .col("profile_id")
                    .col("timestamp")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("message").to_owned())
            .await
    }
}
