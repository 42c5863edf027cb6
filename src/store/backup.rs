//! Online backups: `VACUUM INTO` writes a consistent snapshot of the live database to a
//! new file while the service keeps reading and writing (WAL readers do not block
//! writers), and `PRAGMA integrity_check` verifies the copy before anyone relies on it.
//! The source is opened read-only and never migrated: a backup taken by a newer binary
//! must not change the schema under the older service that is running.

use crate::store::sql;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::time::Duration;

/// Writes a consistent copy of the database file at `source` to `out`, which must not
/// exist or be empty. The path is bound as a parameter, never spliced into the SQL.
pub async fn vacuum_into(source: &Path, out: &Path, busy_timeout: Duration) -> Result<(), sqlx::Error> {
    let out = out.to_str().ok_or_else(|| sqlx::Error::Protocol("backup path is not valid UTF-8".into()))?;
    let mut conn =
        SqliteConnectOptions::new().filename(source).read_only(true).busy_timeout(busy_timeout).connect().await?;
    let copied = sql::query("VACUUM INTO ?").bind(out).execute(&mut conn).await.map(|_| ());
    conn.close().await?;
    copied
}

/// Runs `PRAGMA integrity_check` on the database file at `path` and returns the
/// problems it reports; an empty list means the file is intact.
pub async fn integrity_check(path: &Path) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = SqliteConnectOptions::new().filename(path).read_only(true).connect().await?;
    let rows: Vec<String> = sql::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await?;
    conn.close().await?;
    Ok(rows.into_iter().filter(|row| row != "ok").collect())
}
