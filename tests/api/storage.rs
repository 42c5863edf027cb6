//! Storage durability: every connection the service opens syncs each commit to disk
//! (`synchronous = FULL`), so nothing WeCom got an answer for is lost to a power cut.

use crate::helpers::TestApp;
use leadboard::store::sql;

/// SQLite's code for `synchronous = FULL`.
const FULL: i64 = 2;

#[tokio::test]
async fn every_connection_syncs_each_commit_to_disk() {
    let app = TestApp::spawn().await;

    let mut tx = app.state.db.begin().await.unwrap();
    let writer: i64 = sql::query_scalar("PRAGMA synchronous").fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(writer, FULL, "the writer connection");

    let reader = app.state.db.reader();
    let mut readers = Vec::new();
    for _ in 0..reader.max_connections() {
        readers.push(reader.acquire().await.unwrap());
    }
    for conn in &mut readers {
        let level: i64 = sql::query_scalar("PRAGMA synchronous").fetch_one(conn).await.unwrap();
        assert_eq!(level, FULL, "a reader connection");
    }
}
