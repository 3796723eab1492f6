//! Search over cached items: a JSON query checked and turned into one SQL statement.
//!
//! Why checked here: a malformed query must be refused naming the bad part (the
//! operator, the path, the value), never reach SQLite as a syntax error. Values are
//! always bound, never spliced. Parsed fields compare and sort by value: numbers as
//! numbers, dates (anything SQLite's `julianday` reads) as instants, other text as
//! text; items without parsed data simply do not match a field filter.

use sea_orm::Value as Sql;
use serde::Deserialize;
use serde_json::Value;

/// A search, as the `pubsub_cache_search` action takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Query {
    /// SQLite FTS5 query over the items' text and parsed values.
    pub fts: Option<String>,
    pub profiles: Vec<String>,
    pub services: Vec<String>,
    pub nodes: Vec<String>,
    pub types: Vec<String>,
    pub subtypes: Vec<String>,
    pub item_ids: Vec<String>,
    pub filters: Vec<Filter>,
    pub order_by: Vec<Order>,
    pub limit: Option<u64>,
    pub index: Option<u64>,
    /// Include each item's XML.
    pub with_xml: bool,
}

/// `{"path": "author.name" or ["author", "name"], "op": "eq", "value": …}`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub path: Path,
    pub op: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Path {
    Dotted(String),
    Keys(Vec<Value>),
}

/// `{"key": "creation"|"modification"|"item_id"|"rank"|"path", "path": …, "desc": bool}`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub key: String,
    #[serde(default)]
    pub path: Option<Path>,
    #[serde(default)]
    pub desc: bool,
}

/// The operators, for errors and docs.
pub const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "in",
    "not_in",
    "overlap",
    "disjoint",
    "contains",
    "ieq",
    "ine",
    "iin",
    "inot_in",
    "icontains",
    "ioverlap",
    "idisjoint",
];

/// A SQLite JSON path (`$."a"."b"[0]`) from a path, refusing empty keys.
pub fn json_path(p: &Path) -> Result<String, String> {
    let keys: Vec<Value> = match p {
        Path::Dotted(s) => s.split('.').map(|k| Value::String(k.to_owned())).collect(),
        Path::Keys(k) => k.clone(),
    };
    if keys.is_empty() {
        return Err("empty path".into());
    }
    let mut out = String::from("$");
    for k in keys {
        match k {
            Value::String(s) if !s.is_empty() => {
                out.push_str(&format!(".\"{}\"", s.replace('"', "\"\"")));
            }
            Value::Number(n) if n.is_u64() => out.push_str(&format!("[{n}]")),
            other => return Err(format!("bad path element {other}")),
        }
    }
    Ok(out)
}

/// A bound scalar from JSON (arrays and objects are refused by the callers).
fn scalar(v: &Value) -> Result<Sql, String> {
    Ok(match v {
        Value::String(s) => s.clone().into(),
        Value::Bool(b) => i64::from(*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::Null => return Err("null is not a value to compare with".into()),
        other => return Err(format!("{other} is not a single value")),
    })
}

/// How many times [`norm`] repeats its expression (each `?` in it is bound that often).
const NORM_USES: usize = 4;

/// `n` copies of a bound value.
fn rep(v: &Sql, n: usize) -> Vec<Sql> {
    vec![v.clone(); n]
}

/// What orders and compares by value: numbers stay numbers, dates become Julian days.
fn norm(e: &str) -> String {
    format!(
        "(CASE WHEN typeof({e}) IN ('integer', 'real') THEN {e} ELSE COALESCE(julianday({e}), {e}) END)"
    )
}

/// The statement: SQL and its bound values.
#[derive(Debug)]
pub struct Built {
    pub sql: String,
    pub values: Vec<Sql>,
    pub with_xml: bool,
}

/// Builds the statement; profile names are already turned into ids.
pub fn build(q: &Query, profile_ids: &[i32]) -> Result<Built, String> {
    let mut values: Vec<Sql> = Vec::new();
    let mut wheres: Vec<String> = Vec::new();
    let fts = q.fts.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let mut sql = String::from(
        "SELECT i.id, i.item_id, i.publisher, i.parsed, i.created, i.updated, n.service, n.name AS node, \
         n.profile_id, n.type, n.subtype",
    );
    if q.with_xml {
        sql.push_str(", i.data");
    }
    // bm25 costs per matching row: only when the order needs it.
    let ranked = fts.is_some() && q.order_by.iter().any(|o| o.key == "rank");
    if ranked {
        sql.push_str(", bm25(pubsub_item_fts) AS rank");
    }
    // Creation order is insertion order (`created` grows with the row id): ordered by
    // the FTS rowid, FTS5 walks its index newest first and stops at the limit instead
    // of sorting every match.
    let by_id = if fts.is_some() {
        "pubsub_item_fts.rowid"
    } else {
        "i.id"
    };
    sql.push_str(" FROM pubsub_item i JOIN pubsub_node n ON n.id = i.node_id");
    if let Some(f) = fts {
        sql.push_str(" JOIN pubsub_item_fts ON pubsub_item_fts.rowid = i.id");
        wheres.push("pubsub_item_fts MATCH ?".into());
        values.push(f.to_owned().into());
    }
    let mut list = |col: &str, items: Vec<Sql>| {
        if !items.is_empty() {
            wheres.push(format!("{col} IN ({})", vec!["?"; items.len()].join(",")));
            values.extend(items);
        }
    };
    list(
        "n.profile_id",
        profile_ids.iter().map(|i| Sql::from(*i)).collect(),
    );
    list(
        "n.service",
        q.services.iter().map(|s| Sql::from(s.clone())).collect(),
    );
    list(
        "n.name",
        q.nodes.iter().map(|s| Sql::from(s.clone())).collect(),
    );
    list(
        "n.type",
        q.types.iter().map(|s| Sql::from(s.clone())).collect(),
    );
    list(
        "n.subtype",
        q.subtypes.iter().map(|s| Sql::from(s.clone())).collect(),
    );
    list(
        "i.item_id",
        q.item_ids.iter().map(|s| Sql::from(s.clone())).collect(),
    );
    for (n, f) in q.filters.iter().enumerate() {
        let (clause, mut vals) = filter(f)
            .map_err(|e| format!("filters[{n}] ({} {}): {e}", path_text(&f.path), f.op))?;
        wheres.push(clause);
        values.append(&mut vals);
    }
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    let mut orders = Vec::new();
    for (n, o) in q.order_by.iter().enumerate() {
        let dir = if o.desc { "DESC" } else { "ASC" };
        let expr = match o.key.as_str() {
            "creation" => format!("{by_id} {dir}"),
            "modification" => format!("i.updated {dir}, i.id {dir}"),
            "item_id" => format!("i.item_id {dir}"),
            // bm25: lower is better; "desc" means best first.
            "rank" if ranked => format!("rank {}", if o.desc { "ASC" } else { "DESC" }),
            "rank" => return Err(format!("order_by[{n}]: rank needs a full-text query (fts)")),
            "path" => {
                let p = o
                    .path
                    .as_ref()
                    .ok_or_else(|| format!("order_by[{n}]: key \"path\" needs a path"))?;
                let jp = json_path(p).map_err(|e| format!("order_by[{n}]: {e}"))?;
                // Items without the field last, whatever the direction; the path is
                // bound once for IS NULL and three times inside norm().
                values.extend(rep(&Sql::from(jp), 1 + NORM_USES));
                let e = "json_extract(i.parsed, ?)";
                format!("({e}) IS NULL, {} {dir}", norm(e))
            }
            other => {
                return Err(format!(
                    "order_by[{n}]: unknown key {other:?} (creation, modification, item_id, rank, path)"
                ));
            }
        };
        orders.push(expr);
    }
    let sql_orders = orders;
    sql.push_str(" ORDER BY ");
    if sql_orders.is_empty() {
        sql.push_str(by_id);
        sql.push_str(" DESC");
    } else {
        sql.push_str(&sql_orders.join(", "));
    }
    let limit = q.limit.unwrap_or(100).min(10_000);
    sql.push_str(" LIMIT ? OFFSET ?");
    values.push(i64::try_from(limit).unwrap_or(100).into());
    values.push(i64::try_from(q.index.unwrap_or(0)).unwrap_or(0).into());
    Ok(Built {
        sql,
        values,
        with_xml: q.with_xml,
    })
}

fn path_text(p: &Path) -> String {
    match p {
        Path::Dotted(s) => s.clone(),
        Path::Keys(k) => Value::Array(k.clone()).to_string(),
    }
}

fn array(v: &Value) -> Result<Vec<Sql>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("value must be an array, got {v}"))?;
    if a.is_empty() {
        return Err("value must not be an empty array".into());
    }
    a.iter().map(scalar).collect()
}

fn lower(v: Sql) -> Sql {
    match v {
        Sql::String(Some(s)) => Sql::String(Some(s.to_lowercase())),
        other => other,
    }
}

/// One filter's clause and values.
fn filter(f: &Filter) -> Result<(String, Vec<Sql>), String> {
    let jp = json_path(&f.path)?;
    let field = "json_extract(i.parsed, ?)";
    let each = "SELECT value FROM json_each(i.parsed, ?)";
    let p = || Sql::from(jp.clone());
    let (op, ci) = match f.op.strip_prefix('i') {
        Some(base)
            if [
                "eq", "ne", "in", "not_in", "contains", "overlap", "disjoint",
            ]
            .contains(&base) =>
        {
            (base, true)
        }
        _ => (f.op.as_str(), false),
    };
    let fv = |s: &str| {
        if ci {
            format!("lower({s})")
        } else {
            s.to_owned()
        }
    };
    let cv = |v: Sql| if ci { lower(v) } else { v };
    Ok(match op {
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" => {
            let sym = match op {
                "eq" => "=",
                "ne" => "<>",
                "gt" => ">",
                "gte" => ">=",
                "lt" => "<",
                _ => "<=",
            };
            let v = cv(scalar(&f.value)?);
            if ci {
                (format!("{} {sym} ?", fv(field)), vec![p(), v])
            } else {
                let mut vals = rep(&p(), NORM_USES);
                vals.extend(rep(&v, NORM_USES));
                (format!("{} {sym} {}", norm(field), norm("?")), vals)
            }
        }
        "between" => {
            let a = f
                .value
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| format!("value must be [low, high], got {}", f.value))?;
            let (lo, hi) = (scalar(&a[0])?, scalar(&a[1])?);
            let mut vals = rep(&p(), NORM_USES);
            vals.extend(rep(&lo, NORM_USES));
            vals.extend(rep(&hi, NORM_USES));
            (
                format!("{} BETWEEN {} AND {}", norm(field), norm("?"), norm("?")),
                vals,
            )
        }
        "in" | "not_in" => {
            let vals: Vec<Sql> = array(&f.value)?.into_iter().map(cv).collect();
            let marks = vec!["?"; vals.len()].join(",");
            let not = if op == "not_in" { "NOT " } else { "" };
            let mut v = vec![p()];
            v.extend(vals);
            (format!("{} {not}IN ({marks})", fv(field)), v)
        }
        "overlap" | "disjoint" => {
            let vals: Vec<Sql> = array(&f.value)?.into_iter().map(cv).collect();
            let marks = vec!["?"; vals.len()].join(",");
            let not = if op == "disjoint" { "NOT " } else { "" };
            let mut v = vec![p()];
            v.extend(vals);
            // Only items that have the field: a missing field is not "disjoint".
            let has = "json_type(i.parsed, ?) IS NOT NULL AND ";
            let mut all = vec![p()];
            all.extend(v);
            (
                format!(
                    "({has}{not}EXISTS ({each} WHERE {} IN ({marks})))",
                    fv("value")
                ),
                all,
            )
        }
        "contains" => {
            let v = cv(scalar(&f.value)?);
            (
                format!(
                    "(CASE json_type(i.parsed, ?) WHEN 'array' THEN EXISTS ({each} WHERE {} = ?) \
                     ELSE instr({}, ?) > 0 END)",
                    fv("value"),
                    fv(field)
                ),
                vec![p(), p(), v.clone(), p(), v],
            )
        }
        other => {
            return Err(format!(
                "unknown operator {other:?} (known: {})",
                OPERATORS.join(", ")
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(json: &str) -> Result<Built, String> {
        let query: Query = serde_json::from_str(json).map_err(|e| e.to_string())?;
        build(&query, &[])
    }

    #[test]
    fn paths_are_quoted() {
        assert_eq!(
            json_path(&Path::Dotted("a.b".into())).unwrap(),
            "$.\"a\".\"b\""
        );
        assert_eq!(
            json_path(&Path::Keys(vec![Value::from("tags"), Value::from(0)])).unwrap(),
            "$.\"tags\"[0]"
        );
        assert!(json_path(&Path::Dotted("a..b".into())).is_err());
    }

    #[test]
    fn bad_queries_name_their_bad_part() {
        let e = q(r#"{"filters": [{"path": "n", "op": "like", "value": 1}]}"#).unwrap_err();
        assert!(e.contains("filters[0]") && e.contains("like"), "{e}");
        let e = q(r#"{"filters": [{"path": "n", "op": "between", "value": 1}]}"#).unwrap_err();
        assert!(e.contains("[low, high]"), "{e}");
        let e = q(r#"{"order_by": [{"key": "rank"}]}"#).unwrap_err();
        assert!(e.contains("fts"), "{e}");
        let e = q(r#"{"wat": 1}"#).unwrap_err();
        assert!(e.contains("wat"), "{e}");
        let e = q(r#"{"filters": [{"path": "n", "op": "in", "value": []}]}"#).unwrap_err();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn placeholders_match_values() {
        for json in [
            r#"{"fts": "x", "nodes": ["a"], "filters": [{"path": "n", "op": "gt", "value": 3},
                {"path": "t", "op": "overlap", "value": ["a", "b"]},
                {"path": "s", "op": "icontains", "value": "X"},
                {"path": "d", "op": "between", "value": ["2024-01-01", "2025-01-01"]}],
                "order_by": [{"key": "path", "path": "n", "desc": true}, {"key": "rank"}]}"#,
            r#"{"filters": [{"path": "n", "op": "not_in", "value": [1, 2]}]}"#,
        ] {
            let b = q(json).unwrap();
            assert_eq!(b.sql.matches('?').count(), b.values.len(), "{}", b.sql);
        }
    }
}
