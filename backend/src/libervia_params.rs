//! Storage of the Libervia parameters that are not profile settings (the
//! `libervia_param` table: one row per value a user set, keyed by profile,
//! category and name; no row means the schema's default).
//!
//! Why here and not in `libervia::params`: the bridge translates, the storage layer
//! owns the SQL; the schema, validation and defaults stay with the bridge, which
//! only reads and writes strings through these two functions. Rows go with their
//! profile (the table's foreign key cascades on delete).

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::error::Result;

/// Sets one parameter of a profile, replacing its value if it had one.
pub async fn set(
    db: &DatabaseConnection,
    profile_id: i32,
    category: &str,
    name: &str,
    value: &str,
) -> Result<()> {
    db.execute_raw(perch_plugin_api::db::statement(
        db.get_database_backend(),
        "INSERT INTO libervia_param (profile_id, category, name, value) VALUES (?, ?, ?, ?) \
         ON CONFLICT (profile_id, category, name) DO UPDATE SET value = excluded.value",
        [
            profile_id.into(),
            category.into(),
            name.into(),
            value.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Every parameter set for a profile, by (category, name).
pub async fn all(
    db: &DatabaseConnection,
    profile_id: i32,
) -> Result<HashMap<(String, String), String>> {
    let rows = db
        .query_all_raw(perch_plugin_api::db::statement(
            db.get_database_backend(),
            "SELECT category, name, value FROM libervia_param WHERE profile_id = ?",
            [profile_id.into()],
        ))
        .await?;
    let all = rows
        .iter()
        .map(|r| {
            Ok((
                (r.try_get("", "category")?, r.try_get("", "name")?),
                r.try_get("", "value")?,
            ))
        })
        .collect::<std::result::Result<_, sea_orm::DbErr>>()?;
    Ok(all)
}
