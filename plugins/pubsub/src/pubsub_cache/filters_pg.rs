//! The cache's field filters and ordering by a field on PostgreSQL: the operators of
//! [`super::search`], written with `jsonb`, finding and ordering the same items as
//! the SQLite SQL does.
//!
//! Why a module of its own: SQLite's SQL leans on SQLite's rules (`json_extract`
//! gives numbers, text or NULL; a number sorts before any text; text compares by its
//! bytes; `julianday` reads dates), and PostgreSQL has none of them built in. The
//! rules are SQL functions, created by the pubsub migration
//! `m20261208_000060_pubsub_cache_pg_json` (its module doc lists them); this module
//! only puts them together. Kept apart from `search` so each engine's SQL reads on
//! its own, as [`super::fts_pg`] is for the full-text query.
//!
//! A field is `jsonb_path_query_first(parsed, 'strict $."a"[0]', '{}', true)`: the
//! path is SQLite's (`search::json_path`, prefixed `strict`) and bound, and strict
//! mode reads it as SQLite does (`[0]` indexes an array only, `"0"` is an object's
//! key only, a missing step is NULL — silently). Values are bound as JSON
//! (`?::jsonb`), so a number stays a number and a text a text, as SQLite's bound
//! values do. What differs from SQLite (arrays and objects as text, numbers written
//! with an exponent) is listed in `doc/storage.rst`.

use sea_orm::Value as Sql;
use serde_json::Value;

use super::search::{self, Filter, Path};

/// The filtered field, as `jsonb` (NULL when the item has no such field); its `?` is
/// the path.
const FIELD: &str = "jsonb_path_query_first(i.parsed::jsonb, ?::jsonpath, '{}'::jsonb, true)";

/// A bound value's `perch_json_key`, computed once per statement (a subquery), not
/// once per item.
const VALUE_KEY: &str = "(SELECT perch_json_key(?::jsonb))";

/// `path` as a PostgreSQL `jsonpath` reading it as SQLite reads `search::json_path`.
fn jsonpath(p: &Path) -> Result<String, String> {
    Ok(format!("strict {}", search::json_path(p)?))
}

/// One filter's clause and values.
pub fn filter(f: &Filter) -> Result<(String, Vec<Sql>), String> {
    let path = Sql::from(jsonpath(&f.path)?);
    let (op, ci) = search::split_op(&f.op);
    search::by_operator(&PgField { path, ci }, op, &f.value)
}

/// The ORDER BY term for a path and its value: items without the field last
/// whatever the direction, numbers (and dates) before text when ascending, text by
/// its bytes (`perch_json_key`).
pub fn order(p: &Path, desc: bool) -> Result<(String, Vec<Sql>), String> {
    let path = Sql::from(jsonpath(p)?);
    let dir = if desc { "DESC" } else { "ASC" };
    Ok((
        format!("perch_json_key({FIELD}) {dir} NULLS LAST"),
        vec![path],
    ))
}

/// A filter's value, bound as JSON: a scalar (as `search::scalar` takes it), its
/// text lowered if case is ignored. A text holding NUL is refused: PostgreSQL's
/// `jsonb` cannot hold it (`\u0000`), and the search would fail as a storage error.
fn value(v: &Value, ci: bool) -> Result<Value, String> {
    search::scalar(v)?;
    Ok(match v {
        Value::String(s) if s.contains('\0') => {
            return Err(format!(
                "value {s:?} holds a NUL character (not on PostgreSQL)"
            ));
        }
        Value::String(s) if ci => Value::String(s.to_lowercase()),
        other => other.clone(),
    })
}

/// The parsed field a filter tests (its bound path) and whether the test ignores
/// case.
struct PgField {
    path: Sql,
    ci: bool,
}

impl PgField {
    /// A JSON value as compared: itself, or its text lowered (a JSON string) if case
    /// is ignored, as SQLite's `lower(x)` makes any value a text.
    fn subject(&self, e: &str) -> String {
        if self.ci {
            format!("perch_json_lower({e})")
        } else {
            e.to_owned()
        }
    }

    fn json(&self, v: &Value) -> Result<Sql, String> {
        Ok(Sql::from(value(v, self.ci)?.to_string()))
    }

    /// The values of `in`, `overlap`…, as one bound JSON array.
    fn list(&self, v: &Value) -> Result<Sql, String> {
        search::array(v)?;
        let items = v.as_array().into_iter().flatten();
        let items: Result<Vec<Value>, String> = items.map(|i| value(i, self.ci)).collect();
        Ok(Sql::from(Value::Array(items?).to_string()))
    }
}

impl search::FieldOps for PgField {
    /// `eq`, `ne`, `gt`, `gte`, `lt`, `lte`: by value; `ieq`, `ine`: as lowered text,
    /// equal to a text only.
    fn compare(&self, op: &str, v: &Value) -> Result<(String, Vec<Sql>), String> {
        let vals = vec![self.path.clone(), self.json(v)?];
        if self.ci {
            let not = if op == "ne" { "NOT " } else { "" };
            let field = self.subject(FIELD);
            return Ok((format!("{not}perch_json_raw_eq({field}, ?::jsonb)"), vals));
        }
        let sym = match op {
            "eq" => "=",
            "ne" => "<>",
            "gt" => ">",
            "gte" => ">=",
            "lt" => "<",
            _ => "<=",
        };
        Ok((format!("perch_json_key({FIELD}) {sym} {VALUE_KEY}"), vals))
    }

    fn between(&self, v: &Value) -> Result<(String, Vec<Sql>), String> {
        let (lo, hi) = search::low_high(v)?;
        let (lo, hi) = (self.json(lo)?, self.json(hi)?);
        Ok((
            format!("perch_json_key({FIELD}) BETWEEN {VALUE_KEY} AND {VALUE_KEY}"),
            vec![self.path.clone(), lo, hi],
        ))
    }

    /// `in`, or `not_in` if `not`: SQLite's plain `=` (no dates), a missing field in
    /// neither.
    fn one_of(&self, not: bool, v: &Value) -> Result<(String, Vec<Sql>), String> {
        let list = self.list(v)?;
        let any = format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(?::jsonb) AS v(x) \
             WHERE perch_json_raw_eq({}, v.x))",
            self.subject(FIELD)
        );
        Ok(if not {
            (
                format!("(jsonb_typeof({FIELD}) <> 'null' AND NOT {any})"),
                vec![self.path.clone(), list, self.path.clone()],
            )
        } else {
            (any, vec![list, self.path.clone()])
        })
    }

    /// `overlap` of the field's values (`json_each`'s: an array's elements, an
    /// object's values, or a scalar) with the list, or `disjoint` if `not`. Only items
    /// that have the field (JSON null included, as SQLite's `json_type`).
    fn overlaps(&self, not: bool, v: &Value) -> Result<(String, Vec<Sql>), String> {
        let list = self.list(v)?;
        let not = if not { "NOT " } else { "" };
        Ok((
            format!(
                "({FIELD} IS NOT NULL AND {not}EXISTS (SELECT 1 FROM perch_json_each({FIELD}) AS e(x), \
                 jsonb_array_elements(?::jsonb) AS v(y) WHERE perch_json_raw_eq({}, v.y)))",
                self.subject("e.x")
            ),
            vec![self.path.clone(), self.path.clone(), list],
        ))
    }

    /// An array field holding the value, or any other field whose text holds the
    /// value's text (SQLite's `instr`).
    fn contains(&self, v: &Value) -> Result<(String, Vec<Sql>), String> {
        let val = self.json(v)?;
        let text = if self.ci {
            format!("lower(perch_json_str({FIELD}) COLLATE \"C\")")
        } else {
            format!("perch_json_str({FIELD})")
        };
        let p = self.path.clone();
        Ok((
            format!(
                "(CASE jsonb_typeof({FIELD}) WHEN 'array' THEN EXISTS (SELECT 1 FROM \
                 jsonb_array_elements({FIELD}) AS e(x) WHERE perch_json_raw_eq({}, ?::jsonb)) \
                 ELSE strpos({text}, perch_json_str(?::jsonb)) > 0 END)",
                self.subject("e.x")
            ),
            vec![p.clone(), p.clone(), val.clone(), p, val],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbBackend;

    fn pg(json: &str) -> Result<search::Built, String> {
        let query: search::Query = serde_json::from_str(json).map_err(|e| e.to_string())?;
        search::build_for(&query, &[], DbBackend::Postgres)
    }

    /// Every operator, and ordering by a path, gives as many values as placeholders,
    /// with the path bound (never in the text).
    #[test]
    fn every_operator_binds_its_values() {
        for op in search::OPERATORS {
            let value = match *op {
                "between" => "[1, 2]",
                "in" | "not_in" | "iin" | "inot_in" | "overlap" | "disjoint" | "ioverlap"
                | "idisjoint" => r#"["a", 1]"#,
                _ => r#""a""#,
            };
            let json = format!(
                r#"{{"filters": [{{"path": ["k'ey", 0], "op": "{op}", "value": {value}}}],
                    "order_by": [{{"key": "path", "path": "n", "desc": true}}]}}"#
            );
            let b = pg(&json).unwrap();
            assert_eq!(
                b.sql.matches('?').count(),
                b.values.len(),
                "{op}: {}",
                b.sql
            );
            assert!(!b.sql.contains("k'ey"), "{}", b.sql);
            assert!(
                b.values
                    .contains(&Sql::from(r#"strict $."k'ey"[0]"#.to_owned())),
                "{op}: {:?}",
                b.values
            );
        }
    }

    /// A case-ignoring operator lowers text values, not numbers; lists are one JSON
    /// array.
    #[test]
    fn values_are_bound_as_json() {
        let b =
            pg(r#"{"filters": [{"path": "t", "op": "iin", "value": ["ÉA", 2, true]}]}"#).unwrap();
        assert!(
            b.values.contains(&Sql::from(r#"["éa",2,true]"#.to_owned())),
            "{:?}",
            b.values
        );
        let b = pg(r#"{"filters": [{"path": "t", "op": "eq", "value": "A"}]}"#).unwrap();
        assert!(
            b.values.contains(&Sql::from(r#""A""#.to_owned())),
            "{:?}",
            b.values
        );
    }

    /// The same refusals as on SQLite, naming the bad part.
    #[test]
    fn bad_filters_are_refused_as_on_sqlite() {
        for (json, part) in [
            (
                r#"{"filters": [{"path": "n", "op": "like", "value": 1}]}"#,
                "like",
            ),
            (
                r#"{"filters": [{"path": "n", "op": "between", "value": 1}]}"#,
                "[low, high]",
            ),
            (
                r#"{"filters": [{"path": "n", "op": "in", "value": []}]}"#,
                "empty",
            ),
            (
                r#"{"filters": [{"path": "n", "op": "eq", "value": null}]}"#,
                "null",
            ),
            (
                r#"{"filters": [{"path": "n", "op": "in", "value": [[1]]}]}"#,
                "single",
            ),
            (
                r#"{"filters": [{"path": "a..b", "op": "eq", "value": 1}]}"#,
                "bad path",
            ),
            (r#"{"order_by": [{"key": "path"}]}"#, "needs a path"),
            (
                r#"{"filters": [{"path": ["a\u0000"], "op": "eq", "value": 1}]}"#,
                "NUL",
            ),
        ] {
            let e = pg(json).unwrap_err();
            assert!(e.contains(part), "{json}: {e}");
            let q: search::Query = serde_json::from_str(json).unwrap();
            assert_eq!(search::build(&q, &[]).unwrap_err(), e, "{json}");
        }
        let nul = r#"{"filters": [{"path": "t", "op": "in", "value": ["a\u0000"]}]}"#;
        let e = pg(nul).unwrap_err();
        assert!(e.contains("filters[0]") && e.contains("NUL"), "{e}");
    }
}
