//! Calls (XEP-0167): each profile's ended calls, so `perch call list` still shows
//! them after perchd restarts. One row per call, written when it ends; the call's
//! facts are the bridge's JSON object (`doc/calls.rst`, `call_list`), kept whole so a
//! field added there needs no new migration.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("call")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(integer("profile_id"))
                    // The Jingle session id (the JMI id for a call that began so).
                    .col(string("sid"))
                    // RFC 3339 UTC with microseconds: sorts as text.
                    .col(string("created"))
                    // The call as `call_list` shows it (JSON object).
                    .col(text("data"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_call_profile")
                            .from("call", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_call_profile_sid")
                    .table("call")
                    .col("profile_id")
                    .col("sid")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("call").to_owned())
            .await
    }
}
