//! Fewer indexes on cached items: every index is written for every item a sync
//! stores, and these two served only rare queries (purges by date and ordering by
//! modification scan instead; creation order is the row id since the search orders
//! by it). Measured: see doc/performance.rst.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX IF EXISTS ix_pubsub_item_created; DROP INDEX IF EXISTS ix_pubsub_item_updated;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_pubsub_item_created ON pubsub_item (created); \
                 CREATE INDEX IF NOT EXISTS ix_pubsub_item_updated ON pubsub_item (updated);",
            )
            .await?;
        Ok(())
    }
}
