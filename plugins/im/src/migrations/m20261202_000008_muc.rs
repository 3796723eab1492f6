//! Group chats (XEP-0045): the rooms each profile is in, so they are joined again
//! when perchd starts. Only the room and the nick: a room's password is never stored
//! here (it stays in memory, or in the account's bookmark on the server).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("muc_room")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(integer("profile_id"))
                    // The room's bare JID.
                    .col(string("room"))
                    .col(string("nick"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_muc_room_profile")
                            .from("muc_room", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_muc_room_profile_room")
                    .table("muc_room")
                    .col("profile_id")
                    .col("room")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("muc_room").to_owned())
            .await
    }
}
