//! Search over cached items: a JSON query checked and turned into one SQL statement.
//!
//! Why checked here: a malformed query must be refused naming the bad part (the
//! operator, the path, the value), never reach SQLite as a syntax error. Values are
//! always bound, never spliced. Parsed fields compare and sort by value: numbers as
//! numbers, dates (anything SQLite's `julianday` reads) as instants, other text as
//! text; items without parsed data simply do not match a field filter. The SQL here
//! is SQLite's; PostgreSQL's field filters and ordering by a field are written in
//! [`super::filters_pg`], with the same rules.

use sea_orm::{DbBackend, Value as Sql};
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

/// A SQLite JSON path (`$."a"."b"[0]`) from a path, refusing empty keys and NUL.
///
/// In a quoted key SQLite ends the key at the first `"` and reads `\` escapes (as in
/// a JSON string): both are escaped with a backslash. It reads the path as C text,
/// so a key holding NUL cannot be written; it is refused.
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
            Value::String(s) if s.contains('\0') => {
                return Err(format!("path element {s:?} holds a NUL character"));
            }
            Value::String(s) if !s.is_empty() => {
                let key = s.replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&format!(".\"{key}\""));
            }
            Value::Number(n) if n.is_u64() => out.push_str(&format!("[{n}]")),
            other => return Err(format!("bad path element {other}")),
        }
    }
    Ok(out)
}

/// A bound scalar from JSON (arrays and objects are refused by the callers).
pub(super) fn scalar(v: &Value) -> Result<Sql, String> {
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

/// Builds the statement for SQLite; profile names are already turned into ids.
pub fn build(q: &Query, profile_ids: &[i32]) -> Result<Built, String> {
    build_for(q, profile_ids, DbBackend::Sqlite)
}

/// Builds the statement for `backend`. On PostgreSQL the full-text query is
/// translated to a `tsquery` ([`super::fts_pg`]) and ranked by `ts_rank` (negated:
/// lower is better, as `bm25`'s); field filters and ordering by a field are written
/// with `jsonb` ([`super::filters_pg`]).
pub fn build_for(q: &Query, profile_ids: &[i32], backend: DbBackend) -> Result<Built, String> {
    let pg = backend == DbBackend::Postgres;
    let mut values: Vec<Sql> = Vec::new();
    let mut wheres: Vec<String> = Vec::new();
    let fts = q.fts.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let tsquery = match (pg, fts) {
        (true, Some(f)) => Some(super::fts_pg::to_tsquery(f).map_err(|e| format!("fts: {e}"))?),
        _ => None,
    };
    let mut sql = String::from(
        "SELECT i.id, i.item_id, i.publisher, i.parsed, i.created, i.updated, n.service, n.name AS node, \
         n.profile_id, n.type, n.subtype",
    );
    if q.with_xml {
        sql.push_str(", i.data");
    }
    // bm25 costs per matching row: only when the order needs it.
    let ranked = fts.is_some() && q.order_by.iter().any(|o| o.key == "rank");
    if let (true, Some(t)) = (ranked, &tsquery) {
        sql.push_str(", -ts_rank(pubsub_item_fts.tsv, to_tsquery('simple', ?))::float8 AS rank");
        values.push(t.clone().into());
    } else if ranked {
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
        match &tsquery {
            Some(t) => {
                wheres.push("pubsub_item_fts.tsv @@ to_tsquery('simple', ?)".into());
                values.push(t.clone().into());
            }
            None => {
                wheres.push("pubsub_item_fts MATCH ?".into());
                values.push(f.to_owned().into());
            }
        }
    }
    push_conditions(q, profile_ids, pg, &mut wheres, &mut values)?;
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&order_terms(q, by_id, ranked, pg, &mut values)?);
    let limit = q.limit.unwrap_or(100).min(10_000);
    sql.push_str(" LIMIT ? OFFSET ?");
    values.push(i64::try_from(limit).unwrap_or(100).into());
    // An index past what SQLite counts is past every item: no rows, not the first page.
    values.push(
        i64::try_from(q.index.unwrap_or(0))
            .unwrap_or(i64::MAX)
            .into(),
    );
    Ok(Built {
        sql,
        values,
        with_xml: q.with_xml,
    })
}

/// The WHERE conditions on what the query names (profiles, services, nodes, types,
/// subtypes, item ids) and its field filters (PostgreSQL's if `pg`), with their values.
fn push_conditions(
    q: &Query,
    profile_ids: &[i32],
    pg: bool,
    wheres: &mut Vec<String>,
    values: &mut Vec<Sql>,
) -> Result<(), String> {
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
        let (clause, mut vals) = filter(f, pg)
            .map_err(|e| format!("filters[{n}] ({} {}): {e}", path_text(&f.path), f.op))?;
        wheres.push(clause);
        values.append(&mut vals);
    }
    Ok(())
}

/// What follows ORDER BY: the query's keys in order, newest first without any.
fn order_terms(
    q: &Query,
    by_id: &str,
    ranked: bool,
    pg: bool,
    values: &mut Vec<Sql>,
) -> Result<String, String> {
    let mut orders = Vec::new();
    for (n, o) in q.order_by.iter().enumerate() {
        orders.push(order_term(n, o, by_id, ranked, pg, values)?);
    }
    Ok(if orders.is_empty() {
        format!("{by_id} DESC")
    } else {
        orders.join(", ")
    })
}

/// One ORDER BY key (`order_by[n]`); a path's values are bound in `values`
/// (PostgreSQL's ordering by a path if `pg`).
fn order_term(
    n: usize,
    o: &Order,
    by_id: &str,
    ranked: bool,
    pg: bool,
    values: &mut Vec<Sql>,
) -> Result<String, String> {
    let dir = if o.desc { "DESC" } else { "ASC" };
    Ok(match o.key.as_str() {
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
            if pg {
                let (term, vals) = super::filters_pg::order(p, o.desc)
                    .map_err(|e| format!("order_by[{n}]: {e}"))?;
                values.extend(vals);
                return Ok(term);
            }
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
    })
}

fn path_text(p: &Path) -> String {
    match p {
        Path::Dotted(s) => s.clone(),
        Path::Keys(k) => Value::Array(k.clone()).to_string(),
    }
}

pub(super) fn array(v: &Value) -> Result<Vec<Sql>, String> {
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

/// An operator without its `i` prefix, and whether it ignores case.
pub(super) fn split_op(op: &str) -> (&str, bool) {
    match op.strip_prefix('i') {
        Some(base)
            if [
                "eq", "ne", "in", "not_in", "contains", "overlap", "disjoint",
            ]
            .contains(&base) =>
        {
            (base, true)
        }
        _ => (op, false),
    }
}

/// Each operator's SQL for one field, as an engine writes it (SQLite's here,
/// PostgreSQL's in `filters_pg`); [`by_operator`] picks the one a filter names.
pub(super) trait FieldOps {
    /// `eq`, `ne`, `gt`, `gte`, `lt`, `lte`.
    fn compare(&self, op: &str, value: &Value) -> Result<(String, Vec<Sql>), String>;
    fn between(&self, value: &Value) -> Result<(String, Vec<Sql>), String>;
    /// `in`, or `not_in` if `not`.
    fn one_of(&self, not: bool, value: &Value) -> Result<(String, Vec<Sql>), String>;
    /// `overlap` of an array field with the values, or `disjoint` if `not`.
    fn overlaps(&self, not: bool, value: &Value) -> Result<(String, Vec<Sql>), String>;
    /// An array field holding the value, or a text field holding it.
    fn contains(&self, value: &Value) -> Result<(String, Vec<Sql>), String>;
}

/// The clause of operator `op` (without its `i` prefix) on `field`.
pub(super) fn by_operator(
    field: &impl FieldOps,
    op: &str,
    value: &Value,
) -> Result<(String, Vec<Sql>), String> {
    match op {
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" => field.compare(op, value),
        "between" => field.between(value),
        "in" | "not_in" => field.one_of(op == "not_in", value),
        "overlap" | "disjoint" => field.overlaps(op == "disjoint", value),
        "contains" => field.contains(value),
        other => Err(format!(
            "unknown operator {other:?} (known: {})",
            OPERATORS.join(", ")
        )),
    }
}

/// `between`'s `[low, high]`.
pub(super) fn low_high(value: &Value) -> Result<(&Value, &Value), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([lo, hi]) => Ok((lo, hi)),
        _ => Err(format!("value must be [low, high], got {value}")),
    }
}

/// One filter's clause and values (PostgreSQL's if `pg`).
fn filter(f: &Filter, pg: bool) -> Result<(String, Vec<Sql>), String> {
    if pg {
        return super::filters_pg::filter(f);
    }
    let path = json_path(&f.path)?;
    let (op, ci) = split_op(&f.op);
    by_operator(&FilteredField { path, ci }, op, &f.value)
}

/// The parsed field a filter tests (its JSON path, bound wherever `?` stands for
/// it) and whether the test ignores case.
struct FilteredField {
    path: String,
    ci: bool,
}

impl FilteredField {
    const FIELD: &'static str = "json_extract(i.parsed, ?)";
    const EACH: &'static str = "SELECT value FROM json_each(i.parsed, ?)";

    fn p(&self) -> Sql {
        Sql::from(self.path.clone())
    }

    /// An SQL expression, lowered if case is ignored.
    fn fv(&self, s: &str) -> String {
        if self.ci {
            format!("lower({s})")
        } else {
            s.to_owned()
        }
    }

    /// A bound value, lowered if case is ignored.
    fn cv(&self, v: Sql) -> Sql {
        if self.ci { lower(v) } else { v }
    }
}

impl FieldOps for FilteredField {
    /// `eq`, `ne`, `gt`, `gte`, `lt`, `lte`: by value, or as lowered text if case is
    /// ignored.
    fn compare(&self, op: &str, value: &Value) -> Result<(String, Vec<Sql>), String> {
        let sym = match op {
            "eq" => "=",
            "ne" => "<>",
            "gt" => ">",
            "gte" => ">=",
            "lt" => "<",
            _ => "<=",
        };
        let v = self.cv(scalar(value)?);
        Ok(if self.ci {
            (
                format!("{} {sym} ?", self.fv(Self::FIELD)),
                vec![self.p(), v],
            )
        } else {
            let mut vals = rep(&self.p(), NORM_USES);
            vals.extend(rep(&v, NORM_USES));
            (format!("{} {sym} {}", norm(Self::FIELD), norm("?")), vals)
        })
    }

    fn between(&self, value: &Value) -> Result<(String, Vec<Sql>), String> {
        let (lo, hi) = low_high(value)?;
        let (lo, hi) = (scalar(lo)?, scalar(hi)?);
        let mut vals = rep(&self.p(), NORM_USES);
        vals.extend(rep(&lo, NORM_USES));
        vals.extend(rep(&hi, NORM_USES));
        Ok((
            format!(
                "{} BETWEEN {} AND {}",
                norm(Self::FIELD),
                norm("?"),
                norm("?")
            ),
            vals,
        ))
    }

    /// `in`, or `not_in` if `not`.
    fn one_of(&self, not: bool, value: &Value) -> Result<(String, Vec<Sql>), String> {
        let vals: Vec<Sql> = array(value)?.into_iter().map(|v| self.cv(v)).collect();
        let marks = vec!["?"; vals.len()].join(",");
        let not = if not { "NOT " } else { "" };
        let mut v = vec![self.p()];
        v.extend(vals);
        Ok((format!("{} {not}IN ({marks})", self.fv(Self::FIELD)), v))
    }

    /// `overlap` of an array field with the values, or `disjoint` if `not`.
    fn overlaps(&self, not: bool, value: &Value) -> Result<(String, Vec<Sql>), String> {
        let vals: Vec<Sql> = array(value)?.into_iter().map(|v| self.cv(v)).collect();
        let marks = vec!["?"; vals.len()].join(",");
        let not = if not { "NOT " } else { "" };
        let mut v = vec![self.p()];
        v.extend(vals);
        // Only items that have the field: a missing field is not "disjoint".
        let has = "json_type(i.parsed, ?) IS NOT NULL AND ";
        let mut all = vec![self.p()];
        all.extend(v);
        Ok((
            format!(
                "({has}{not}EXISTS ({} WHERE {} IN ({marks})))",
                Self::EACH,
                self.fv("value")
            ),
            all,
        ))
    }

    /// An array field holding the value, or a text field holding it as a substring.
    fn contains(&self, value: &Value) -> Result<(String, Vec<Sql>), String> {
        let v = self.cv(scalar(value)?);
        let p = self.p();
        Ok((
            format!(
                "(CASE json_type(i.parsed, ?) WHEN 'array' THEN EXISTS ({} WHERE {} = ?) \
                 ELSE instr({}, ?) > 0 END)",
                Self::EACH,
                self.fv("value"),
                self.fv(Self::FIELD)
            ),
            vec![p.clone(), p.clone(), v.clone(), p, v],
        ))
    }
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

    /// A key holding `"` was written `""`, which SQLite refuses ("bad JSON path"): the
    /// search failed as a storage error (found by
    /// `every_search_runs_or_is_refused_as_a_bad_query`, backend/tests/search_sql.rs,
    /// which also runs these on SQLite).
    #[test]
    fn quotes_and_backslashes_in_keys_are_escaped() {
        let keys = |k: &[&str]| Path::Keys(k.iter().map(|s| Value::from(*s)).collect());
        assert_eq!(json_path(&keys(&["a\"b"])).unwrap(), r#"$."a\"b""#);
        assert_eq!(json_path(&keys(&["a\\b"])).unwrap(), r#"$."a\\b""#);
        let e = json_path(&keys(&["a\0b"])).unwrap_err();
        assert!(e.contains("NUL"), "{e}");
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

    /// An index beyond i64 was bound as 0: the first page instead of none (found by
    /// `every_search_runs_or_is_refused_as_a_bad_query`, backend/tests/search_sql.rs).
    #[test]
    fn huge_index_is_past_the_end() {
        let b = q(r#"{"index": 9223372036854775808}"#).unwrap();
        assert_eq!(b.values.last(), Some(&Sql::from(i64::MAX)));
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

/// Generators of searches, shared with the tests that run them on SQLite.
#[cfg(test)]
pub(crate) mod arb {
    use proptest::option::of;
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::{Value, json};

    /// A word that must never reach the SQL text: values are bound, not spliced.
    pub const MARK: &str = "Zq'\"; DROP";

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z]{1,6}",
            1 => Just(MARK.to_owned()),
            1 => perch_codec::dom::arb::any_text(),
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            text().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => scalar(),
            1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::from),
            1 => Just(json!({"a": 1})),
        ]
    }

    fn path() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-z.]{0,8}".prop_map(Value::from),
            text().prop_map(Value::from),
            prop::collection::vec(
                prop_oneof![
                    text().prop_map(Value::from),
                    any::<u64>().prop_map(Value::from),
                    Just(Value::Null)
                ],
                0..4
            )
            .prop_map(Value::from),
        ]
    }

    fn op() -> impl Strategy<Value = String> {
        prop_oneof![
            9 => select(super::OPERATORS).prop_map(str::to_owned),
            1 => text(),
        ]
    }

    /// A search as a frontend may send it: mostly well-formed, with every kind of
    /// wrong part.
    pub fn query() -> impl Strategy<Value = Value> {
        let filter =
            (path(), op(), value()).prop_map(|(p, o, v)| json!({"path": p, "op": o, "value": v}));
        let order = (
            prop_oneof![
                select(&["creation", "modification", "item_id", "rank", "path"][..])
                    .prop_map(str::to_owned),
                text()
            ],
            of(path()),
            any::<bool>(),
        )
            .prop_map(|(k, p, d)| json!({"key": k, "path": p, "desc": d}));
        (
            of(prop_oneof![
                "[a-z]{1,6}",
                "[a-z]{1,6} (AND|OR|NOT) [a-z*]{1,6}",
                text()
            ]),
            prop::collection::vec(text(), 0..2),
            prop::collection::vec(filter, 0..4),
            prop::collection::vec(order, 0..3),
            (of(any::<u64>()), of(any::<u64>()), any::<bool>()),
        )
            .prop_map(
                |(fts, nodes, filters, order_by, (limit, index, with_xml))| {
                    json!({
                        "fts": fts, "nodes": nodes, "item_ids": [], "filters": filters,
                        "order_by": order_by, "limit": limit, "index": index, "with_xml": with_xml,
                    })
                },
            )
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(perch_codec::dom::arb::config())]

        /// Any search gives a statement whose placeholders match its values and
        /// whose text holds none of the frontend's strings, or an error naming the
        /// bad part; never a panic.
        #[test]
        fn any_search_builds_a_bound_statement_or_an_error(json in arb::query()) {
            let Ok(q) = serde_json::from_value::<Query>(json) else {
                return Ok(());
            };
            match build(&q, &[1, 2]) {
                Ok(b) => {
                    prop_assert_eq!(b.sql.matches('?').count(), b.values.len(), "{}", b.sql);
                    prop_assert!(!b.sql.contains("DROP"), "{}", b.sql);
                }
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
    }
}
