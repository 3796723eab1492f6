//! Libervia's parameters that are not part of the profile itself (the XMPP priority,
//! the history limit, contact-list options, the composition syntax, the hash of the
//! profile password): one row per parameter a user changed, as the string Libervia's
//! frontends exchange. A missing row means the default. The JID, the XMPP password,
//! the server, the certificate check and backend autoconnect are the profile's own
//! columns, never copied here (see `doc/libervia-params.rst`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("libervia_param")
                    .if_not_exists()
                    .col(integer("profile_id"))
                    .col(string("category"))
                    .col(string("name"))
                    .col(string("value"))
                    .primary_key(
                        Index::create()
                            .col("profile_id")
                            .col("category")
                            .col("name"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_libervia_param_profile")
                            .from("libervia_param", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("libervia_param").to_owned())
            .await
    }
}
