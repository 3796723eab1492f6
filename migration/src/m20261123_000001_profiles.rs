//! Profiles: one row per XMPP account perchd manages.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("profile")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(string_uniq("name"))
                    .col(string("jid"))
                    // The XMPP password, sealed with the daemon's key (never clear text).
                    .col(text("password"))
                    .col(string_null("server"))
                    .col(string_null("ca_file"))
                    .col(boolean("insecure").default(false))
                    .col(boolean("autoconnect").default(false))
                    .col(boolean("is_default").default(false))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("profile").to_owned())
            .await
    }
}
