//! The pool never hands out a connection stuck in a transaction SQLite already
//! rolled back. Measured on a full disk before the guard (`db::sane_after_use`):
//! of 40 write transactions, 8 reported committed and none was in the database,
//! and the rest failed with "database is locked".

use perch_backend::db::open_sqlite;
use perch_tests::tinyfs::TinyFs;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};

async fn count(db: &DatabaseConnection) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT count(*) AS n FROM t",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

#[tokio::test]
async fn on_a_full_disk_every_commit_reported_is_in_the_database() {
    let fs = TinyFs::mount("4m").expect("mounting a tmpfs");
    let path = fs.path().join("perch.db");
    let db = open_sqlite(&path).await.unwrap();
    db.execute_unprepared("CREATE TABLE t (x TEXT)")
        .await
        .unwrap();
    fs.fill().unwrap();
    let big = "q".repeat(16 * 1024);
    let mut committed = 0;
    for i in 0..40 {
        // As the cache writes: BEGIN IMMEDIATE, then statements, then COMMIT.
        let Ok(tx) = db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        else {
            continue;
        };
        if tx
            .execute_unprepared(&format!("INSERT INTO t VALUES ('{i} {big}')"))
            .await
            .is_ok()
            && tx.commit().await.is_ok()
        {
            committed += 1;
        }
    }
    fs.free().unwrap();
    // Read by another pool: only what was really committed.
    let other = open_sqlite(&path).await.unwrap();
    assert_eq!(
        count(&other).await,
        committed,
        "transactions reported committed vs rows in the database"
    );
}
