//! The tables a migration moves and their values.
//!
//! Why the target decides: both databases were just migrated by this binary, so they
//! hold the same tables, but SQLite keeps a value of any type in any column while
//! PostgreSQL's columns are typed. Each SQLite value is converted to what the target
//! column is, without loss, or refused naming the table, column and row (a boolean
//! that is neither 0 nor 1, text with a NUL character, an integer out of range):
//! nothing is rounded or dropped on the way.
//!
//! Checksums: each row's values, encoded with their type, hashed (SHA-256); a table's
//! checksum is the row count and the sum of the row hashes, so it does not depend on
//! the order rows come back in (the engines sort text differently) while a row lost,
//! doubled or changed changes it.

use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row, TypeInfo, ValueRef};

/// What a target column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int2,
    Int4,
    Int8,
    Bool,
    Float8,
    Text,
    Bytes,
}

impl Kind {
    /// The kind of a PostgreSQL type (its `udt_name`), if the migration moves it.
    pub(crate) fn of_udt(udt: &str) -> Option<Self> {
        Some(match udt {
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "bool" => Self::Bool,
            "float8" => Self::Float8,
            "text" | "varchar" | "bpchar" => Self::Text,
            "bytea" => Self::Bytes,
            _ => return None,
        })
    }
}

/// A column of a moved table.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub kind: Kind,
    /// Filled by a sequence (an identity column): the sequence is set past the
    /// largest value moved.
    pub serial: bool,
}

/// A moved table, its columns in the target's order.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

impl Table {
    /// `SELECT "a", "b" FROM "t"`.
    pub(crate) fn select(&self) -> String {
        format!("SELECT {} FROM {}", self.column_list(), quoted(&self.name))
    }

    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quoted(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows per INSERT: PostgreSQL binds at most 65,535 values a statement.
    pub(crate) fn batch_rows(&self) -> usize {
        (30_000 / self.columns.len().max(1)).clamp(1, 1_000)
    }
}

/// An identifier quoted for SQL (both engines read `"…"` with `""` inside).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Tables in an order where each comes after the tables its foreign keys name
/// (`edges`: child, parent), ties by name; a cycle keeps the rest in name order.
pub(crate) fn in_dependency_order(
    mut tables: Vec<Table>,
    edges: &[(String, String)],
) -> Vec<Table> {
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables.iter().position(|t| {
            !edges.iter().any(|(child, parent)| {
                child == &t.name && parent != child && tables.iter().any(|o| &o.name == parent)
            })
        });
        out.push(tables.remove(ready.unwrap_or(0)));
    }
    out
}

/// A value as SQLite stored it (its storage class).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A value as moved: converted to its column's kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Column `i` of a SQLite row, by the value's own storage class.
pub(crate) fn raw_of(row: &SqliteRow, i: usize) -> Result<Raw, sqlx::Error> {
    let value = row.try_get_raw(i)?;
    if value.is_null() {
        return Ok(Raw::Null);
    }
    let class = value.type_info().name().to_owned();
    Ok(match class.as_str() {
        "INTEGER" | "BOOLEAN" => Raw::Int(row.try_get(i)?),
        "REAL" => Raw::Real(row.try_get(i)?),
        "BLOB" => Raw::Blob(row.try_get(i)?),
        _ => Raw::Text(row.try_get(i)?),
    })
}

/// `raw` as a value of `kind`, or why it cannot be one without loss.
pub(crate) fn convert(raw: Raw, kind: Kind) -> Result<Cell, String> {
    let int_in = |v: i64, lo: i64, hi: i64, name: &str| {
        if (lo..=hi).contains(&v) {
            Ok(Cell::Int(v))
        } else {
            Err(format!("{v} does not fit a {name} column"))
        }
    };
    match (raw, kind) {
        (Raw::Null, _) => Ok(Cell::Null),
        (Raw::Real(f), Kind::Int2 | Kind::Int4 | Kind::Int8) if f.fract() == 0.0 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            convert(Raw::Int(f as i64), kind).filter_exact(f)
        }
        (Raw::Int(v), Kind::Int2) => int_in(v, i16::MIN.into(), i16::MAX.into(), "smallint"),
        (Raw::Int(v), Kind::Int4) => int_in(v, i32::MIN.into(), i32::MAX.into(), "integer"),
        (Raw::Int(v), Kind::Int8) => Ok(Cell::Int(v)),
        (Raw::Int(0), Kind::Bool) => Ok(Cell::Bool(false)),
        (Raw::Int(1), Kind::Bool) => Ok(Cell::Bool(true)),
        (Raw::Int(v), Kind::Bool) => Err(format!("{v} is not a boolean (0 or 1)")),
        (Raw::Real(f), Kind::Float8) => Ok(Cell::Float(f)),
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        (Raw::Int(v), Kind::Float8) if (v as f64) as i64 == v => Ok(Cell::Float(v as f64)),
        (Raw::Text(s), Kind::Text) if s.contains('\0') => {
            Err("the text holds a NUL character, which PostgreSQL cannot store".into())
        }
        (Raw::Text(s), Kind::Text) => Ok(Cell::Text(s)),
        (Raw::Blob(b), Kind::Bytes) => Ok(Cell::Bytes(b)),
        (Raw::Text(s), Kind::Bytes) => Ok(Cell::Bytes(s.into_bytes())),
        (raw, kind) => Err(format!("{raw:?} cannot be stored in a {kind:?} column")),
    }
}

/// A conversion through `i64` of a real that must give back the same number.
trait FilterExact {
    fn filter_exact(self, f: f64) -> Self;
}

impl FilterExact for Result<Cell, String> {
    #[allow(clippy::cast_precision_loss)]
    fn filter_exact(self, f: f64) -> Self {
        match self {
            Ok(Cell::Int(v)) if v as f64 == f => Ok(Cell::Int(v)),
            Ok(_) => Err(format!("{f} is not an integer")),
            Err(e) => Err(e),
        }
    }
}

/// Column `i` of a PostgreSQL row, read as `kind`.
pub(crate) fn cell_of(row: &PgRow, i: usize, kind: Kind) -> Result<Cell, sqlx::Error> {
    let or_null = |c: Option<Cell>| c.unwrap_or(Cell::Null);
    Ok(or_null(match kind {
        Kind::Int2 => row
            .try_get::<Option<i16>, _>(i)?
            .map(|v| Cell::Int(v.into())),
        Kind::Int4 => row
            .try_get::<Option<i32>, _>(i)?
            .map(|v| Cell::Int(v.into())),
        Kind::Int8 => row.try_get::<Option<i64>, _>(i)?.map(Cell::Int),
        Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Cell::Bool),
        Kind::Float8 => row.try_get::<Option<f64>, _>(i)?.map(Cell::Float),
        Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Cell::Text),
        Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Cell::Bytes),
    }))
}

/// Binds `cell` as a value of `kind` (a NULL typed as the column).
pub(crate) fn bind(b: &mut Separated<'_, Postgres, &'static str>, cell: &Cell, kind: Kind) {
    #[allow(clippy::cast_possible_truncation)]
    match (cell, kind) {
        (Cell::Null, Kind::Int2) => b.push_bind(None::<i16>),
        (Cell::Null, Kind::Int4) => b.push_bind(None::<i32>),
        (Cell::Null, Kind::Int8) => b.push_bind(None::<i64>),
        (Cell::Null, Kind::Bool) => b.push_bind(None::<bool>),
        (Cell::Null, Kind::Float8) => b.push_bind(None::<f64>),
        (Cell::Null, Kind::Text) => b.push_bind(None::<String>),
        (Cell::Null, Kind::Bytes) => b.push_bind(None::<Vec<u8>>),
        // In range: `convert` checked it.
        (Cell::Int(v), Kind::Int2) => b.push_bind(*v as i16),
        (Cell::Int(v), Kind::Int4) => b.push_bind(*v as i32),
        (Cell::Int(v), _) => b.push_bind(*v),
        (Cell::Bool(v), _) => b.push_bind(*v),
        (Cell::Float(v), _) => b.push_bind(*v),
        (Cell::Text(v), _) => b.push_bind(v.as_str()),
        (Cell::Bytes(v), _) => b.push_bind(v.as_slice()),
    };
}

/// A table's checksum: its row count and the sum of its rows' hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Checksum {
    pub rows: u64,
    sum: u128,
}

impl Checksum {
    /// Counts a row.
    pub(crate) fn add(&mut self, row: &[Cell]) {
        let mut h = Sha256::new();
        for cell in row {
            match cell {
                Cell::Null => h.update(b"n"),
                Cell::Int(v) => {
                    h.update(b"i");
                    h.update(v.to_le_bytes());
                }
                Cell::Bool(v) => h.update(if *v { b"b1" } else { b"b0" }),
                Cell::Float(v) => {
                    h.update(b"f");
                    h.update(v.to_bits().to_le_bytes());
                }
                Cell::Text(s) => tagged(&mut h, b't', s.as_bytes()),
                Cell::Bytes(b) => tagged(&mut h, b'x', b),
            }
        }
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
    }

    /// The sum, as 32 hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// A tag, the length, then the bytes: no two different values encode alike.
fn tagged(h: &mut Sha256, tag: u8, bytes: &[u8]) {
    h.update([tag]);
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Table {
        Table {
            name: name.into(),
            columns: vec![],
        }
    }

    #[test]
    fn parents_come_before_children() {
        let edges = [
            ("message".to_owned(), "profile".to_owned()),
            ("pubsub_item".to_owned(), "pubsub_node".to_owned()),
            ("pubsub_node".to_owned(), "profile".to_owned()),
            ("job_progress".to_owned(), "job".to_owned()),
            ("tree".to_owned(), "tree".to_owned()),
        ];
        let names: Vec<String> = in_dependency_order(
            [
                "pubsub_item",
                "message",
                "tree",
                "job_progress",
                "pubsub_node",
                "profile",
                "job",
            ]
            .into_iter()
            .map(table)
            .collect(),
            &edges,
        )
        .into_iter()
        .map(|t| t.name)
        .collect();
        assert_eq!(
            names,
            [
                "job",
                "job_progress",
                "profile",
                "message",
                "pubsub_node",
                "pubsub_item",
                "tree"
            ]
        );
    }

    #[test]
    fn values_convert_without_loss_or_are_refused() {
        assert_eq!(convert(Raw::Int(1), Kind::Bool), Ok(Cell::Bool(true)));
        assert_eq!(convert(Raw::Int(0), Kind::Bool), Ok(Cell::Bool(false)));
        assert!(
            convert(Raw::Int(2), Kind::Bool)
                .unwrap_err()
                .contains("not a boolean")
        );
        assert_eq!(convert(Raw::Int(-5), Kind::Int4), Ok(Cell::Int(-5)));
        let big = i64::from(i32::MAX) + 1;
        assert!(
            convert(Raw::Int(big), Kind::Int4)
                .unwrap_err()
                .contains("integer")
        );
        assert_eq!(convert(Raw::Real(3.0), Kind::Int8), Ok(Cell::Int(3)));
        assert!(convert(Raw::Real(3.5), Kind::Int8).is_err());
        assert_eq!(convert(Raw::Int(3), Kind::Float8), Ok(Cell::Float(3.0)));
        assert!(
            convert(Raw::Text("a\0b".into()), Kind::Text)
                .unwrap_err()
                .contains("NUL")
        );
        assert!(convert(Raw::Blob(vec![1]), Kind::Text).is_err());
        assert!(convert(Raw::Int(1), Kind::Text).is_err());
        assert_eq!(convert(Raw::Null, Kind::Bool), Ok(Cell::Null));
        assert_eq!(
            convert(Raw::Text("é".into()), Kind::Bytes),
            Ok(Cell::Bytes("é".as_bytes().to_vec()))
        );
    }

    #[test]
    fn checksums_ignore_order_and_see_every_change() {
        let a = vec![Cell::Int(1), Cell::Text("x".into())];
        let b = vec![Cell::Int(2), Cell::Null];
        let (mut one, mut two) = (Checksum::default(), Checksum::default());
        one.add(&a);
        one.add(&b);
        two.add(&b);
        two.add(&a);
        assert_eq!(one, two);
        assert_eq!(one.rows, 2);
        for changed in [
            vec![Cell::Int(1), Cell::Text("y".into())],
            vec![Cell::Int(1), Cell::Null],
            vec![Cell::Int(1), Cell::Bytes(b"x".to_vec())],
            vec![Cell::Bool(true), Cell::Text("x".into())],
        ] {
            let mut other = Checksum::default();
            other.add(&changed);
            other.add(&b);
            assert_ne!(other, one, "{changed:?}");
        }
        // The same row twice is not the row once.
        let mut twice = Checksum::default();
        twice.add(&a);
        twice.add(&a);
        let mut once = Checksum::default();
        once.add(&a);
        assert_ne!(twice.hex(), once.hex());
    }
}
