//! Nicknames (XEP-0172): for each profile and bare JID, the nickname it published
//! (or sent with its subscription request); NULL: it has none (so it is not asked
//! again). No row: nothing known yet.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("nickname")
                    .if_not_exists()
                    .col(integer("profile_id"))
                    .col(string("jid"))
                    .col(string_null("nick"))
                    .primary_key(Index::create().col("profile_id").col("jid"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_nickname_profile")
                            .from("nickname", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("nickname").to_owned())
            .await
    }
}
