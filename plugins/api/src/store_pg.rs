//! The store's check on PostgreSQL: which tables a statement reaches, read from its
//! plan rather than from its text.
//!
//! Why a plan: a plan names every relation the statement scans or modifies, however
//! the SQL spells them (aliases, subqueries, CTEs, `USING`). The statement is
//! prepared on a connection of its own (as on SQLite: never one the caller may hold),
//! and its *generic* plan explained (`plan_cache_mode = force_generic_plan`): a
//! custom plan for NULL parameters could fold a scan away (`WHERE x = NULL`) and hide
//! a table. Foreign-key checks are triggers, not plan nodes: a plugin's insert that
//! references `profile(id)` reads nothing of it through the plan. Table-valued
//! functions (`jsonb_array_elements`…) are function scans and read only their
//! arguments.

use crate::store::{Access, StoreDenied};

/// The prepared statement's name on the check's own connection.
const NAME: &str = "perch_store_check";

/// Judges `sql` on a fresh connection to `pool`'s server.
pub(crate) async fn judge(
    pool: &sqlx::PgPool,
    sql: &str,
    owns: impl Fn(&str) -> bool,
    denied: impl Fn(String, Access) -> StoreDenied,
) -> Result<Result<(), StoreDenied>, sqlx::Error> {
    use sqlx::{Connection as _, Executor as _, Row as _};
    let mut conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
    conn.execute("SET plan_cache_mode = force_generic_plan")
        .await?;
    conn.execute(sqlx::AssertSqlSafe(format!("PREPARE {NAME} AS {sql}")))
        .await?;
    let params: i32 = sqlx::query(
        "SELECT coalesce(cardinality(parameter_types), 0) FROM pg_prepared_statements \
         WHERE name = $1",
    )
    .bind(NAME)
    .fetch_one(&mut conn)
    .await?
    .try_get(0)?;
    let args = vec!["NULL"; usize::try_from(params).unwrap_or(0)].join(", ");
    let call = if args.is_empty() {
        NAME.to_owned()
    } else {
        format!("{NAME}({args})")
    };
    // `EXPLAIN (FORMAT JSON)` answers one `json` value.
    let plan: serde_json::Value = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (FORMAT JSON) EXECUTE {call}"
    )))
    .persistent(false)
    .fetch_one(&mut conn)
    .await?
    .try_get(0)?;
    let _ = conn.close().await;
    let mut reached = Vec::new();
    relations(&plan, &mut reached);
    for (table, access) in reached {
        if !owns(&table) {
            return Ok(Err(denied(table, access)));
        }
    }
    Ok(Ok(()))
}

/// Every relation a plan node (and its sub-plans) scans or modifies.
fn relations(node: &serde_json::Value, out: &mut Vec<(String, Access)>) {
    match node {
        serde_json::Value::Array(items) => items.iter().for_each(|n| relations(n, out)),
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(table)) = map.get("Relation Name") {
                let write = map.get("Node Type").and_then(|t| t.as_str()) == Some("ModifyTable");
                out.push((
                    table.clone(),
                    if write { Access::Write } else { Access::Read },
                ));
            }
            map.values().for_each(|v| relations(v, out));
        }
        _ => {}
    }
}
