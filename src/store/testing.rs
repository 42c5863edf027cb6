//! Databases for tests: a fresh SQLite file, or a fresh database on the PostgreSQL
//! server `LEADBOARD_TEST_POSTGRES` names (`.ci/postgres start` starts a throwaway one).
//! The test suite runs on PostgreSQL when that variable is set.

use sqlx::{ConnectOptions, Connection};

/// The variable naming the PostgreSQL server tests run on.
pub const POSTGRES_VAR: &str = "LEADBOARD_TEST_POSTGRES";

/// The PostgreSQL server tests run on, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_VAR).ok().filter(|url| !url.is_empty())
}

/// Creates an empty database on the PostgreSQL server at `server` and returns its URL.
pub async fn fresh_postgres_database(server: &str) -> Result<String, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = server.parse()?;
    let mut conn = options.clone().database("postgres").connect().await?;
    let name = format!("t_{:016x}", rand::random::<u64>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    conn.close().await?;
    let mut url = url::Url::parse(server).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// A fresh database for a store test: on PostgreSQL when [`POSTGRES_VAR`] names a
/// server, else an SQLite file in the returned directory (kept while the test runs).
#[cfg(test)]
pub(crate) async fn test_db() -> (super::Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let timeout = std::time::Duration::from_secs(5);
    let db = match postgres_server() {
        Some(server) => {
            let url = fresh_postgres_database(&server).await.expect("a fresh PostgreSQL database");
            super::Db::open_postgres(&url, timeout).await
        }
        None => super::Db::open(&dir.path().join("test.db"), timeout).await,
    };
    (db.expect("the test database opens"), dir)
}
