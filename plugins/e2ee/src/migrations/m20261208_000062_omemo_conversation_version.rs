//! The OMEMO version a conversation was started with (`encryption_start`'s
//! `namespace`, Libervia's `messageEncryptionStart`): a user who asks for one
//! version gets that one, not whatever the contact publishes best. NULL: the best
//! version, chosen at each message (what every conversation did before).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("omemo_conversation")
                    .add_column(ColumnDef::new("version").text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("omemo_conversation")
                    .drop_column("version")
                    .to_owned(),
            )
            .await
    }
}
