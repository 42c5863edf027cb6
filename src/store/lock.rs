//! Work that one process at a time may do, across replicas on PostgreSQL: a session
//! advisory lock, held by a connection of its own for as long as the work goes on. A
//! replica that dies (SIGKILL, a lost machine) frees what it held the moment the server
//! sees its connection close, without waiting for any lease to expire.
//!
//! On SQLite there is one process per database file (the service, plus one-shot
//! commands that take the jobs' row leases), so nothing here is needed there.

use super::Db;
use super::sql::Pool;
use sqlx::{Connection, PgConnection};

/// A held session advisory lock on `key`; released by [`SessionLock::release`], or by
/// dropping it, which closes its connection.
#[derive(Debug)]
pub struct SessionLock {
    conn: PgConnection,
    key: String,
}

// The advisory lock's number for a key is a 64-bit hash of it, as for the inbox's
// per-callback locks; every key here starts with `leadboard:`.

impl SessionLock {
    /// Takes the lock on `key` if no other session holds it: `Ok(None)` when one does.
    /// `None` as well on SQLite, where the caller needs no lock (see the module).
    pub async fn try_take(db: &Db, key: &str) -> Result<Option<SessionLock>, sqlx::Error> {
        let Pool::Postgres(pool) = &db.writer else { return Ok(None) };
        // A connection of the lock's own: back in the pool it would keep the lock for
        // whoever took it next.
        let mut conn = pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if !taken {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(SessionLock { conn, key: key.to_owned() }))
    }

    /// Whether the lock is still held: its connection still answers (a server that
    /// dropped the connection has released the lock, and another session may hold it).
    pub async fn held(&mut self) -> bool {
        let held: Result<bool, _> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted)",
        )
        .fetch_one(&mut self.conn)
        .await;
        held.unwrap_or(false)
    }

    /// Releases the lock and closes its connection.
    pub async fn release(mut self) {
        let unlock = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))").bind(&self.key);
        let _ = unlock.execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

impl Db {
    /// Whether this database may be shared by several service processes (replicas on
    /// PostgreSQL), so that once-only work takes a [`SessionLock`].
    pub fn is_shared(&self) -> bool {
        matches!(self.writer, Pool::Postgres(_))
    }
}
