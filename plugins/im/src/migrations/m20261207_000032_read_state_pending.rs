//! Read positions set while offline: marked `pending` until published to our other
//! devices (XEP-0490), which happens at the next session start.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("read_state")
                    .add_column(
                        ColumnDef::new("pending")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("read_state")
                    .drop_column("pending")
                    .to_owned(),
            )
            .await
    }
}
