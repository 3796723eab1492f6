//! Avatars (XEP-0084): for each profile and bare JID, the hash of its avatar and its
//! media type. The image itself is a file named by the hash under the plugin's
//! directory: one copy for every profile and JID that shows the same image.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("avatar")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(integer("profile_id"))
                    .col(string("jid"))
                    // SHA-1 of the image, hex.
                    .col(string("hash"))
                    .col(string("media_type"))
                    .col(big_integer("bytes"))
                    .col(big_integer("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_avatar_profile")
                            .from("avatar", "profile_id")
                            .to("profile", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_avatar_profile_jid")
                    .table("avatar")
                    .col("profile_id")
                    .col("jid")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("avatar").to_owned())
            .await
    }
}
