//! The roster, kept per profile so that it answers while the profile is offline and
//! so that roster versioning (RFC 6121 §2.6) can ask the server for what changed only.
//!
//! `roster_item`: one row per contact (the groups as a JSON array of strings: they
//! are only ever read and written whole, with their item). `roster_version`: one row
//! per profile, the account (bare JID) whose roster the rows are (a profile's JID can
//! change) and the version string (`ver`) the server gave with them (NULL when it
//! does not version rosters). Both go with their
//! profile (foreign keys cascade on delete).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("roster_item")
                    .if_not_exists()
                    .col(integer("profile_id"))
                    .col(string("jid"))
                    .col(string_null("name"))
                    .col(string("subscription"))
                    .col(boolean("ask"))
                    .col(string("groups"))
                    .primary_key(Index::create().col("profile_id").col("jid"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_roster_item_profile")
                            .from("roster_item", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("roster_version")
                    .if_not_exists()
                    .col(integer("profile_id").primary_key())
                    .col(string("account"))
                    .col(string_null("ver"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_roster_version_profile")
                            .from("roster_version", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("roster_version").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("roster_item").to_owned())
            .await
    }
}
