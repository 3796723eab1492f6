//! What the plugin mechanism stores: a free `extra` object on each message (receipts
//! and other plugins annotate messages there), and jobs with their progress logs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("message")
                    .add_column(text("extra").default("{}"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("job")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(integer("profile_id"))
                    .col(string("plugin"))
                    .col(string("kind"))
                    .col(text("description"))
                    // running, finished, error, interrupted
                    .col(string("state"))
                    .col(text("status"))
                    .col(double_null("percent"))
                    // Microseconds since the Unix epoch, UTC.
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .col(text_null("result"))
                    .col(text_null("error"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_job_profile")
                            .from("job", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_job_profile_created")
                    .table("job")
                    .col("profile_id")
                    .col("created")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("job_progress")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(string("job_id"))
                    .col(big_integer("at"))
                    .col(text("status"))
                    .col(double_null("percent"))
                    .col(text("data"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_job_progress_job")
                            .from("job_progress", "job_id")
                            .to("job", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_job_progress_job")
                    .table("job_progress")
                    .col("job_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("job_progress").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("job").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("message")
                    .drop_column("extra")
                    .to_owned(),
            )
            .await
    }
}
