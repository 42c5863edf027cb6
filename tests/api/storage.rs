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
    // On SQLite the group-commit writer's own connection, which writes the callbacks.
    if let Some(direct) = app.state.db.take_direct() {
        let mut direct = direct.unwrap();
        assert_eq!(sync_level(&mut direct).await, FULL, "the callback writer's connection");
        let journal: String = sql::query_scalar("PRAGMA journal_mode").fetch_one(&mut direct).await.unwrap();
        assert_eq!(journal, "wal");
        let foreign_keys: i64 = sql::query_scalar("PRAGMA foreign_keys").fetch_one(&mut direct).await.unwrap();
        assert_eq!(foreign_keys, 1);
        app.state.db.put_direct(direct);
    }

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

/// Memory: on SQLite sqlx's writer connection (jobs, the console, the outbox) and its
/// readers keep a page cache of 512 KiB each, not SQLite's 2 MiB: the outbox's merge of
/// a backlog of cards into one digest filled the larger ones (the writer's while it
/// merges, the readers' while it reads the cards), and took the load bench's peak RSS
/// over 50 MB (BENCHMARKS.md).
#[tokio::test]
async fn on_sqlite_the_jobs_writer_and_the_readers_keep_a_small_page_cache() {
    let app = TestApp::builder().sqlite().spawn().await;
    let mut tx = app.state.db.begin().await.unwrap();
    let cache: i64 = sql::query_scalar("PRAGMA cache_size").fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(cache, -512, "512 KiB");
    let readers = app.state.db.reader();
    let caches = futures::future::join_all((0..4).map(|_| async {
        let mut conn = readers.acquire().await.unwrap();
        let cache: i64 = sql::query_scalar("PRAGMA cache_size").fetch_one(&mut conn).await.unwrap();
        (cache, conn)
    }))
    .await;
    assert!(caches.iter().all(|(cache, _)| *cache == -512), "every reader: 512 KiB");
}

/// On PostgreSQL the connection can be encrypted (`sslmode=require` in
/// `database.url`, as managed servers ask): the server sees TLS.
#[tokio::test]
async fn a_postgresql_database_url_asking_for_tls_gets_an_encrypted_connection() {
    let Some(server) = crate::helpers::postgres_or_skip("TLS to PostgreSQL") else { return };
    let url = leadboard::store::testing::fresh_postgres_database(&server).await.unwrap();
    let plain = leadboard::store::Db::connect(&url, std::time::Duration::from_secs(5)).await.unwrap();
    let offered: String = sql::query_scalar("SHOW ssl").fetch_one(plain.reader()).await.unwrap();
    if offered != "on" {
        eprintln!("SKIPPED: the PostgreSQL server offers no TLS (.ci/postgres starts one that does)");
        return;
    }
    let tls_url = format!("{url}?sslmode=require");
    let tls =
        leadboard::store::Db::connect(&tls_url, std::time::Duration::from_secs(5)).await.expect("connects with TLS");
    let encrypted: Vec<i64> = sql::query_scalar(
        "SELECT CAST(CASE WHEN ssl THEN 1 ELSE 0 END AS BIGINT) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_all(tls.reader())
    .await
    .unwrap();
    assert_eq!(encrypted, [1], "the connection is encrypted");
}
