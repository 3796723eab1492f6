//! A plugin's database: the tables it declared, and nothing else.
//!
//! Why not hand plugins the `DatabaseConnection`: the profile table holds the sealed
//! account passwords, and one plugin's tables are no other's business. A
//! [`PluginStore`] is a sea-orm connection (it implements [`ConnectionTrait`] and
//! [`TransactionTrait`], so entity queries and raw statements work unchanged) over
//! the daemon's pool, which refuses any statement that touches a table the plugin
//! did not declare in [`crate::PluginInfo::tables`].
//!
//! How it knows, without `unsafe` (no SQLite authorizer): each distinct SQL text is
//! checked once, then its verdict is cached by text, so the hot path costs a hash
//! lookup. The check runs on a connection of its own, opened for it and closed
//! after, with nothing prepared to keep: not on the pool's, whose statement caches
//! would fill with `EXPLAIN`s of the cache's 250-row inserts (evicting the
//! statements the daemon runs) and would hand back an `EXPLAIN` prepared before a
//! migration, whose virtual-table pointers are stale; and not inside the caller's
//! transaction, so a check never waits for a pool connection the caller holds. It
//!
//! * refuses anything but one `SELECT`/`INSERT`/`UPDATE`/`DELETE`/`REPLACE`/`WITH`/
//!   `VALUES` statement (no DDL, `PRAGMA`, `ATTACH`, or a second statement behind a
//!   `;`) — before SQLite even parses it, since parsing a `PRAGMA` already acts;
//! * asks SQLite for the statement's program (`EXPLAIN`) and maps every table it opens
//!   (`OpenRead`/`OpenWrite`, root pages read from `sqlite_schema`; an index counts
//!   as its table, an FTS5 shadow table `x_data`, `x_idx`… as `x`) and every virtual
//!   table it uses (`VOpen`/`VUpdate`: its pointer, matched against the schema's
//!   virtual tables probed on the same connection) to a table name. SQL triggers'
//!   programs are listed too, so a write that fires one is judged with it;
//! * allows the plugin's tables, the table-valued JSON functions (`json_each`,
//!   `json_tree`: they read only their arguments), `sqlite_sequence` when the
//!   statement does not name it (SQLite's own bookkeeping of an `AUTOINCREMENT`
//!   table), and one exception: the parent of a
//!   foreign key declared on the plugin's tables (`profile(id)` with `ON DELETE
//!   CASCADE`) may be opened for reading by rowid only — what SQLite's own
//!   foreign-key check does — with none of its columns read and none of its indexes
//!   opened. So an insert that references a profile works, and `SELECT name FROM
//!   profile` is refused. What plugins need of the profile table goes through
//!   [`crate::Host::profile_id`] and [`crate::Host::profile_name`].
//!
//! The hot write paths may use sqlx itself, through a [`SqlxTransaction`] that runs
//! only [`CheckedSql`], text the store checked statement by statement.
//!
//! A refusal is a [`DbErr`] carrying a [`StoreDenied`] (see [`StoreDenied::of`]).
//! This is a boundary of the API, not a sandbox: plugins are Rust code in the
//! daemon's process.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, RuntimeErr, Statement, TransactionError,
    TransactionOptions, TransactionSession, TransactionTrait,
};
use sqlx::sqlite::SqliteConnectOptions;

use crate::db::portable_sql;

/// Where a check runs: each engine has its own way to list what a statement opens.
enum Checker {
    /// A connection of its own, opened with the pool's options, reading `EXPLAIN`.
    Sqlite(Arc<SqliteConnectOptions>),
    /// A connection of its own, opened with the pool's options, reading the generic
    /// plan of the prepared statement ([`crate::store_pg`]).
    Postgres(sqlx::PgPool),
}

/// What a refused statement tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// Not a single data statement: DDL, `PRAGMA`, `ATTACH`, several statements.
    Statement,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Statement => "run this kind of statement on",
        })
    }
}

/// A statement refused because it reaches beyond the plugin's tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin} may not {access} {table:?}: not one of its declared tables")]
pub struct StoreDenied {
    pub plugin: &'static str,
    /// The table (for [`Access::Statement`], the statement's first word).
    pub table: String,
    pub access: Access,
}

impl StoreDenied {
    /// The refusal inside a database error, if that is what it is.
    pub fn of(err: &DbErr) -> Option<&StoreDenied> {
        match err {
            DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
                match e.as_ref() {
                    sqlx::Error::Database(d) => d.try_downcast_ref::<StoreDenied>(),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn into_db_err(self) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Database(
            Box::new(self),
        ))))
    }
}

impl sqlx::error::DatabaseError for StoreDenied {
    fn message(&self) -> &str {
        "statement refused: it reaches beyond the plugin's declared tables"
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn table(&self) -> Option<&str> {
        Some(&self.table)
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

/// Table-valued functions anyone may use: they read only their arguments.
const FREE_FUNCTIONS: &[&str] = &["json_each", "json_tree"];

/// The checker and its verdicts, shared by a store and its transactions.
struct Guard {
    plugin: &'static str,
    tables: &'static [&'static str],
    /// How to open the connection a check runs on (the pool's options); none for a
    /// store with no database ([`PluginStore::offline`]).
    checker: Option<Checker>,
    verdicts: RwLock<HashMap<String, Result<(), StoreDenied>>>,
}

/// A plugin's connection to the daemon's database, limited to its declared tables.
#[derive(Clone)]
pub struct PluginStore {
    db: DatabaseConnection,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for PluginStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginStore")
            .field("plugin", &self.guard.plugin)
            .field("tables", &self.guard.tables)
            .finish()
    }
}

impl PluginStore {
    /// The backend makes one per plugin, over its pool, for the tables the plugin
    /// declared.
    pub fn new(
        db: DatabaseConnection,
        plugin: &'static str,
        tables: &'static [&'static str],
    ) -> Self {
        let checker = Some(match db.get_database_backend() {
            DbBackend::Postgres => Checker::Postgres(db.get_postgres_connection_pool().clone()),
            _ => Checker::Sqlite(db.get_sqlite_connection_pool().connect_options()),
        });
        Self::with_checker(db, plugin, tables, checker)
    }

    /// A store with no database behind it: every statement fails, as on a closed
    /// connection (the offline host of doctests and unit tests).
    pub(crate) fn offline(plugin: &'static str) -> Self {
        Self::with_checker(DatabaseConnection::default(), plugin, &[], None)
    }

    fn with_checker(
        db: DatabaseConnection,
        plugin: &'static str,
        tables: &'static [&'static str],
        checker: Option<Checker>,
    ) -> Self {
        Self {
            db,
            guard: Arc::new(Guard {
                plugin,
                tables,
                checker,
                verdicts: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The tables this store reaches.
    pub fn tables(&self) -> &'static [&'static str] {
        self.guard.tables
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), as
    /// every transaction of a store does unless told otherwise: one that reads then
    /// writes would otherwise get `SQLITE_BUSY` without waiting when another
    /// connection writes meanwhile.
    pub async fn begin_immediate(&self) -> Result<StoreTransaction, DbErr> {
        self.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    }

    async fn check(&self, sql: &str) -> Result<(), DbErr> {
        self.guard.judge(sql).await
    }
}

impl Guard {
    fn cached(&self, sql: &str) -> Option<Result<(), StoreDenied>> {
        self.verdicts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sql)
            .cloned()
    }

    fn denied(&self, table: impl Into<String>, access: Access) -> StoreDenied {
        StoreDenied {
            plugin: self.plugin,
            table: table.into(),
            access,
        }
    }

    fn owns(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t.eq_ignore_ascii_case(table))
    }

    /// Judges `sql` and remembers the verdict (not a database error: the statement
    /// itself fails the same way, and may not next time).
    async fn judge(&self, sql: &str) -> Result<(), DbErr> {
        if let Some(v) = self.cached(sql) {
            return v.map_err(StoreDenied::into_db_err);
        }
        let verdict = match sql_shape(sql) {
            Err(word) => Err(self.denied(word, Access::Statement)),
            Ok(()) => self.judge_on_own_connection(sql).await.map_err(sqlx_err)?,
        };
        self.verdicts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sql.to_owned(), verdict.clone());
        verdict.map_err(StoreDenied::into_db_err)
    }

    /// Opens the check's connection, judges `sql` on it and closes it.
    async fn judge_on_own_connection(
        &self,
        sql: &str,
    ) -> Result<Result<(), StoreDenied>, sqlx::Error> {
        use sqlx::Connection as _;
        let options = match &self.checker {
            None => return Err(sqlx::Error::PoolClosed),
            Some(Checker::Postgres(pool)) => {
                return crate::store_pg::judge(
                    pool,
                    sql,
                    |t| self.owns(t),
                    |t, a| self.denied(t, a),
                )
                .await;
            }
            Some(Checker::Sqlite(options)) => options,
        };
        let mut conn = sqlx::SqliteConnection::connect_with(options).await?;
        // One read snapshot for the schema and the programs. The schema is read
        // first: that starts the snapshot (an `EXPLAIN` alone does not).
        run(&mut conn, "BEGIN").await?;
        let verdict = self.judge_program(&mut conn, sql).await;
        let closed = async {
            run(&mut conn, "ROLLBACK").await?;
            conn.close().await
        }
        .await;
        let verdict = verdict?;
        closed?;
        Ok(verdict)
    }

    /// Reads the statement's program and judges every table it opens.
    async fn judge_program(
        &self,
        conn: &mut sqlx::SqliteConnection,
        sql: &str,
    ) -> Result<Result<(), StoreDenied>, sqlx::Error> {
        let mut schema = Schema::read(conn, self).await?;
        let program = explain(conn, sql).await?;
        schema.implicit_sequence = !sql.to_ascii_lowercase().contains("sqlite_sequence");
        let vtabs = if program.iter().any(|op| op.opcode.starts_with('V')) {
            vtab_pointers(conn, &schema).await?
        } else {
            HashMap::new()
        };
        Ok(self.judge_ops(&program, &schema, &vtabs))
    }

    fn judge_ops(
        &self,
        program: &[Op],
        schema: &Schema,
        vtabs: &HashMap<String, String>,
    ) -> Result<(), StoreDenied> {
        // Cursors open on a foreign-key parent: rowid lookups only.
        let mut parent_cursors: HashMap<i64, String> = HashMap::new();
        for op in program {
            match op.opcode.as_str() {
                "OpenRead" | "OpenWrite" | "ReopenIdx" => {
                    let write = op.opcode == "OpenWrite";
                    let access = if write { Access::Write } else { Access::Read };
                    if op.p3 != 0 {
                        return Err(self.denied("temp or attached database", access));
                    }
                    let Some((table, is_index)) = schema.by_root.get(&op.p2) else {
                        return Err(self.denied(format!("root page {}", op.p2), access));
                    };
                    if self.owns(table) || (schema.implicit_sequence && table == "sqlite_sequence")
                    {
                        continue;
                    }
                    if !write && !is_index && schema.parents.contains(table) {
                        parent_cursors.insert(op.p1, table.clone());
                        continue;
                    }
                    return Err(self.denied(table.clone(), access));
                }
                // The opcodes whose P4 is the virtual table (VFilter, VColumn… use a
                // cursor VOpen opened).
                "VOpen" | "VUpdate" | "VBegin" => {
                    let access = if op.opcode == "VUpdate" {
                        Access::Write
                    } else {
                        Access::Read
                    };
                    let table = op.p4.as_deref().and_then(|p| vtabs.get(p));
                    match table {
                        Some(t) if self.owns(t) || FREE_FUNCTIONS.contains(&t.as_str()) => {}
                        Some(t) => return Err(self.denied(t.clone(), access)),
                        None => return Err(self.denied("an unknown virtual table", access)),
                    }
                }
                "VCreate" | "VDestroy" | "VRename" => {
                    return Err(self.denied(op.opcode.clone(), Access::Statement));
                }
                _ => {}
            }
        }
        for op in program {
            if matches!(op.opcode.as_str(), "Column" | "RowData" | "IdxRowid")
                && let Some(table) = parent_cursors.get(&op.p1)
            {
                return Err(self.denied(table.clone(), Access::Read));
            }
        }
        Ok(())
    }
}

/// Whether `sql` is one data statement: `Err(first word)` when it is not.
fn sql_shape(sql: &str) -> Result<(), String> {
    let pieces = split_statements(sql);
    let first = pieces.first().map(|p| first_word(p)).unwrap_or_default();
    if pieces.len() != 1 {
        return Err(if pieces.is_empty() {
            "an empty statement".into()
        } else {
            "several statements".into()
        });
    }
    const DATA: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES",
    ];
    if DATA.iter().any(|w| w.eq_ignore_ascii_case(&first)) {
        Ok(())
    } else {
        Err(first)
    }
}

/// The first keyword of a statement (after comments and whitespace).
fn first_word(sql: &str) -> String {
    strip_leading_comments(sql)
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect()
}

fn strip_leading_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return s;
        }
    }
}

/// Splits SQL text into its statements, the way SQLite's tokenizer sees `;`: not
/// inside a string, a quoted name or a comment. Empty statements are dropped.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i + 1, q),
            b'[' => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(b.len(), |p| i + p + 1)
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
            b';' => {
                out.push(&sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push(&sql[start..]);
    out.retain(|s| !strip_leading_comments(s).is_empty());
    out
}

/// The index after a quoted run opened by `q` (a doubled `q` is one character).
fn skip_quoted(b: &[u8], mut i: usize, q: u8) -> usize {
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// One instruction of a statement's program.
struct Op {
    opcode: String,
    p1: i64,
    p2: i64,
    p3: i64,
    p4: Option<String>,
}

/// A database error of the check's own connection, as sea-orm reports one.
fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

/// Runs `sql` on the check's connection without preparing it to keep.
async fn run(conn: &mut sqlx::SqliteConnection, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    conn.execute(sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false))
        .await
        .map(drop)
}

/// The rows of `sql` on the check's connection (not prepared to keep).
async fn rows(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
    arg: Option<&str>,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
    use sqlx::Executor as _;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    if let Some(a) = arg {
        q = q.bind(a);
    }
    conn.fetch_all(q).await
}

async fn explain(conn: &mut sqlx::SqliteConnection, sql: &str) -> Result<Vec<Op>, sqlx::Error> {
    use sqlx::Row as _;
    rows(conn, &format!("EXPLAIN {sql}"), None)
        .await?
        .iter()
        .map(|r| {
            Ok(Op {
                opcode: r.try_get(1)?,
                p1: r.try_get(2)?,
                p2: r.try_get(3)?,
                p3: r.try_get(4)?,
                p4: r.try_get::<Option<String>, _>(5).unwrap_or(None),
            })
        })
        .collect()
}

/// What the check needs of the schema.
struct Schema {
    /// Root page → (the table it belongs to, whether it is an index).
    by_root: HashMap<i64, (String, bool)>,
    /// The virtual tables (their pointers are probed when one is used, so a refusal
    /// names the table).
    vtabs: Vec<String>,
    /// Tables the plugin's tables reference by foreign key.
    parents: HashSet<String>,
    /// The statement does not name `sqlite_sequence`: what it does to it is SQLite's
    /// `AUTOINCREMENT` bookkeeping.
    implicit_sequence: bool,
}

impl Schema {
    async fn read(conn: &mut sqlx::SqliteConnection, guard: &Guard) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        let schema = rows(
            conn,
            "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema",
            None,
        )
        .await?;
        let mut all = Vec::new();
        for r in &schema {
            let kind: String = r.try_get(0)?;
            let name: String = r.try_get(1)?;
            let table: String = r.try_get(2)?;
            let root: Option<i64> = r.try_get(3)?;
            let sql: Option<String> = r.try_get(4)?;
            all.push((
                kind,
                name,
                table,
                root.unwrap_or(0),
                sql.unwrap_or_default(),
            ));
        }
        let virtuals: Vec<String> = all
            .iter()
            .filter(|(k, _, _, _, sql)| {
                k == "table" && sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL TABLE")
            })
            .map(|(_, n, _, _, _)| n.clone())
            .collect();
        let mut by_root = HashMap::from([(1, ("sqlite_schema".to_owned(), false))]);
        for (kind, name, table, root, _) in &all {
            if *root <= 0 {
                continue;
            }
            // An FTS5 (or other virtual table's) shadow table belongs to its table.
            let owner = virtuals
                .iter()
                .find(|v| name.len() > v.len() + 1 && name.starts_with(&format!("{v}_")))
                .cloned()
                .unwrap_or_else(|| table.clone());
            by_root.insert(*root, (owner, kind == "index"));
        }
        let mut parents = HashSet::new();
        for t in guard.tables {
            let fks = rows(
                conn,
                "SELECT \"table\" FROM pragma_foreign_key_list(?)",
                Some(t),
            )
            .await?;
            for r in &fks {
                let parent: String = r.try_get(0)?;
                if !guard.owns(&parent) {
                    parents.insert(parent);
                }
            }
        }
        Ok(Self {
            by_root,
            vtabs: virtuals,
            parents,
            implicit_sequence: false,
        })
    }
}

/// The pointers (as `EXPLAIN` prints them) of the virtual tables and of the free
/// functions, on this connection.
async fn vtab_pointers(
    conn: &mut sqlx::SqliteConnection,
    schema: &Schema,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut probes: Vec<(String, String)> = schema
        .vtabs
        .iter()
        .map(|v| {
            (
                v.clone(),
                format!("SELECT 1 FROM \"{}\"", v.replace('"', "\"\"")),
            )
        })
        .collect();
    for f in FREE_FUNCTIONS {
        probes.push(((*f).to_owned(), format!("SELECT 1 FROM {f}('[]')")));
    }
    let mut out = HashMap::new();
    for (name, probe) in probes {
        for op in explain(conn, &probe).await? {
            if op.opcode == "VOpen"
                && let Some(p) = op.p4
            {
                out.insert(p, name.clone());
            }
        }
    }
    Ok(out)
}

pub use crate::store_sqlx::{CheckedQuery, CheckedRow, CheckedSql, SqlxTransaction};

impl PluginStore {
    /// Checks every statement of `sql` (written with `?` placeholders: numbered for
    /// PostgreSQL here).
    pub async fn check_sql(&self, sql: impl Into<Arc<str>>) -> Result<CheckedSql, DbErr> {
        let sql: Arc<str> = sql.into();
        let backend = self.db.get_database_backend();
        let sql: Arc<str> = match portable_sql(backend, &sql) {
            std::borrow::Cow::Owned(s) => s.into(),
            std::borrow::Cow::Borrowed(_) => sql.clone(),
        };
        let pieces = split_statements(&sql);
        if pieces.is_empty() {
            return Err(self
                .guard
                .denied("an empty statement", Access::Statement)
                .into_db_err());
        }
        for piece in pieces {
            self.check(piece).await?;
        }
        Ok(CheckedSql::new(sql, backend))
    }

    /// A sqlx write transaction (`BEGIN IMMEDIATE` on SQLite, waiting for the lock as
    /// [`crate::db::begin_write_sqlx`] does; a plain transaction on PostgreSQL).
    pub async fn begin_sqlx_immediate(&self) -> Result<SqlxTransaction<'_>, sqlx::Error> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let pool = self.db.get_postgres_connection_pool();
            return Ok(SqlxTransaction::Postgres(pool.begin().await?));
        }
        let pool = self.db.get_sqlite_connection_pool();
        let tx = crate::db::begin_write_sqlx(pool, self.guard.plugin, "").await?;
        Ok(SqlxTransaction::Sqlite(tx))
    }
}

/// A transaction of a [`PluginStore`], checked the same way.
pub struct StoreTransaction {
    txn: DatabaseTransaction,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for StoreTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTransaction")
            .field("plugin", &self.guard.plugin)
            .finish()
    }
}

impl StoreTransaction {
    async fn check(&self, sql: &str) -> Result<(), DbErr> {
        self.guard.judge(sql).await
    }
}

/// `ConnectionTrait` for a store or a transaction: every statement is checked with
/// `self.check`, then run on `self.$conn`.
macro_rules! checked_connection {
    ($ty:ty, $conn:ident) => {
        #[async_trait::async_trait]
        impl ConnectionTrait for $ty {
            fn get_database_backend(&self) -> DbBackend {
                self.$conn.get_database_backend()
            }

            async fn execute_raw(&self, mut stmt: Statement) -> Result<ExecResult, DbErr> {
                self.portable(&mut stmt);
                self.check(&stmt.sql).await?;
                self.$conn.execute_raw(stmt).await
            }

            /// Several statements are checked (and run) one by one.
            async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
                let pieces = split_statements(sql);
                for piece in &pieces {
                    self.check(piece).await?;
                }
                let mut last = None;
                for piece in pieces {
                    last = Some(self.$conn.execute_unprepared(piece).await?);
                }
                match last {
                    Some(r) => Ok(r),
                    None => self.$conn.execute_unprepared("").await,
                }
            }

            async fn query_one_raw(
                &self,
                mut stmt: Statement,
            ) -> Result<Option<QueryResult>, DbErr> {
                self.portable(&mut stmt);
                self.check(&stmt.sql).await?;
                self.$conn.query_one_raw(stmt).await
            }

            async fn query_all_raw(&self, mut stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
                self.portable(&mut stmt);
                self.check(&stmt.sql).await?;
                self.$conn.query_all_raw(stmt).await
            }
        }
    };
}

impl PluginStore {
    /// The statement's SQL, written once with `?`, as this engine wants it.
    fn portable(&self, stmt: &mut Statement) {
        let backend = self.db.get_database_backend();
        if let std::borrow::Cow::Owned(sql) = portable_sql(backend, &stmt.sql) {
            stmt.sql = sql;
        }
        stmt.db_backend = backend;
    }
}

impl StoreTransaction {
    fn portable(&self, stmt: &mut Statement) {
        let backend = self.txn.get_database_backend();
        if let std::borrow::Cow::Owned(sql) = portable_sql(backend, &stmt.sql) {
            stmt.sql = sql;
        }
        stmt.db_backend = backend;
    }
}

checked_connection!(PluginStore, db);
checked_connection!(StoreTransaction, txn);

/// Runs `callback` in `txn`: committed on `Ok`, rolled back on `Err`.
async fn run_in<F, T, E>(txn: StoreTransaction, callback: F) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(
            &'c StoreTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
        + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let out = callback(&txn).await;
    match out {
        Ok(v) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            Ok(v)
        }
        Err(e) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(e))
        }
    }
}

/// `TransactionTrait` for a store or a transaction: `self.$conn` begins the
/// underlying sea-orm transaction, wrapped with the same guard.
macro_rules! checked_transactions {
    ($ty:ty, $conn:ident) => {
        #[async_trait::async_trait]
        impl TransactionTrait for $ty {
            type Transaction = StoreTransaction;

            async fn begin(&self) -> Result<StoreTransaction, DbErr> {
                self.begin_with_options(TransactionOptions::default()).await
            }

            async fn begin_with_config(
                &self,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<StoreTransaction, DbErr> {
                self.begin_with_options(TransactionOptions {
                    isolation_level,
                    access_mode,
                    sqlite_transaction_mode: None,
                })
                .await
            }

            /// Without a mode, `IMMEDIATE`: the check of a statement not seen yet
            /// reads the schema inside the transaction, and a deferred transaction
            /// that has read cannot write once another connection wrote
            /// (`SQLITE_BUSY_SNAPSHOT`).
            async fn begin_with_options(
                &self,
                mut options: TransactionOptions,
            ) -> Result<StoreTransaction, DbErr> {
                if options.sqlite_transaction_mode.is_none()
                    && options.access_mode != Some(AccessMode::ReadOnly)
                {
                    options.sqlite_transaction_mode =
                        Some(sea_orm::SqliteTransactionMode::Immediate);
                }
                Ok(StoreTransaction {
                    txn: self.begin_inner(options).await?,
                    guard: self.guard.clone(),
                })
            }

            async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(
                        &'c StoreTransaction,
                    )
                        -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
                    + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let txn = self.begin().await.map_err(TransactionError::Connection)?;
                run_in(txn, callback).await
            }

            async fn transaction_with_config<F, T, E>(
                &self,
                callback: F,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(
                        &'c StoreTransaction,
                    )
                        -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
                    + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let txn = self
                    .begin_with_config(isolation_level, access_mode)
                    .await
                    .map_err(TransactionError::Connection)?;
                run_in(txn, callback).await
            }
        }
    };
}

checked_transactions!(PluginStore, db);
checked_transactions!(StoreTransaction, txn);

impl PluginStore {
    /// A top-level transaction: one that writes waits for the write lock as every
    /// writer of the daemon does ([`crate::db::begin_write`]).
    async fn begin_inner(&self, options: TransactionOptions) -> Result<DatabaseTransaction, DbErr> {
        if options.sqlite_transaction_mode == Some(sea_orm::SqliteTransactionMode::Immediate)
            && options.isolation_level.is_none()
            && options.access_mode.is_none()
        {
            return crate::db::begin_write(&self.db, self.guard.plugin, "").await;
        }
        self.db.begin_with_options(options).await
    }
}

impl StoreTransaction {
    /// A nested transaction (a savepoint).
    async fn begin_inner(&self, options: TransactionOptions) -> Result<DatabaseTransaction, DbErr> {
        self.txn.begin_with_options(options).await
    }
}

#[async_trait::async_trait]
impl TransactionSession for StoreTransaction {
    async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_where_sqlite_splits_them() {
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
        assert_eq!(split_statements("SELECT 1;  "), ["SELECT 1"]);
        assert_eq!(
            split_statements("DELETE FROM a; DELETE FROM b;"),
            ["DELETE FROM a", " DELETE FROM b"]
        );
        assert_eq!(split_statements("SELECT ';' -- ;\n"), ["SELECT ';' -- ;\n"]);
        assert_eq!(
            split_statements("SELECT \"a;\", [b;], `c;`, 'd'';' /* ; */"),
            ["SELECT \"a;\", [b;], `c;`, 'd'';' /* ; */"]
        );
        assert_eq!(
            split_statements("SELECT 1; -- only a comment"),
            ["SELECT 1"]
        );
    }

    #[test]
    fn only_one_data_statement_passes_the_shape_test() {
        assert_eq!(sql_shape("  /* x */ select * from t"), Ok(()));
        assert_eq!(sql_shape("WITH x AS (SELECT 1) SELECT * FROM x"), Ok(()));
        assert_eq!(sql_shape("PRAGMA foreign_keys = OFF"), Err("PRAGMA".into()));
        assert_eq!(sql_shape("ATTACH 'x' AS y"), Err("ATTACH".into()));
        assert_eq!(sql_shape("DROP TABLE profile"), Err("DROP".into()));
        assert_eq!(
            sql_shape("SELECT 1; DELETE FROM profile"),
            Err("several statements".into())
        );
    }
}
