//! Storage durability: every connection the service opens syncs each commit to disk
//! (SQLite's `synchronous = FULL`, PostgreSQL's `synchronous_commit = on`), so nothing
//! WeCom got an answer for is lost to a power cut.

use crate::helpers::TestApp;
use leadboard::store::sql;

/// SQLite's code for `synchronous = FULL`.
const FULL: i64 = 2;

/// How the connection `conn` commits: SQLite's `synchronous` code, or 2 on PostgreSQL
/// when `synchronous_commit` is `on` (0 otherwise).
async fn sync_level(conn: &mut leadboard::store::Conn) -> i64 {
    if conn.engine() == leadboard::store::sql::Engine::Postgres {
        let level: String = sql::query_scalar("SHOW synchronous_commit").fetch_one(conn).await.unwrap();
        return if level == "on" { FULL } else { 0 };
    }
    sql::query_scalar("PRAGMA synchronous").fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn every_connection_syncs_each_commit_to_disk() {
    let app = TestApp::spawn().await;

    let mut tx = app.state.db.begin().await.unwrap();
    let writer = sync_level(&mut *tx).await;
    tx.rollback().await.unwrap();
    assert_eq!(writer, FULL, "the writer connection");

    let reader = app.state.db.reader();
    let mut readers = Vec::new();
    for _ in 0..reader.max_connections() {
        readers.push(reader.acquire().await.unwrap());
    }
    for conn in &mut readers {
        let level = sync_level(conn).await;
        assert_eq!(level, FULL, "a reader connection");
    }
}
