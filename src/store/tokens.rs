//! WeCom's access token, shared through the database by every process on it
//! (migration 0110): replicas on PostgreSQL, and `leadboard` commands beside the
//! service. One process at a time refreshes it: on PostgreSQL the refresh holds a
//! transaction-level advisory lock on the token's key, so the others wait for it and
//! then use the token it stored. On SQLite one service runs per file and the client's
//! own lock is enough; a command beside it may fetch a token of its own, which WeCom
//! allows (a new token does not end the old one).

use super::Db;
use super::sql::{self, Tx};
use sha2::{Digest, Sha256};

/// What the database holds for one app credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Shared {
    pub value: Option<String>,
    /// Unix ms: refresh from then on.
    pub refresh_at: i64,
    /// Unix ms: a refused gettoken is not asked again before then.
    pub refused_until: i64,
    pub refused_code: Option<i64>,
    pub refused_message: Option<String>,
}
crate::direct_row!(Shared { value, refresh_at, refused_until, refused_code, refused_message });

/// The row's key for an app credential: the corp id and a digest of its secret, so that
/// a changed secret never uses the old secret's token.
pub fn key(corp_id: &str, secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{corp_id}:{hex}")
}

const SELECT: &str =
    "SELECT value, refresh_at, refused_until, refused_code, refused_message FROM access_tokens WHERE key = ?";

/// The shared token and cool-down, if any process stored one.
pub async fn get(db: &Db, key: &str) -> Result<Option<Shared>, sqlx::Error> {
    sql::query_as(SELECT).bind(key).fetch_optional(db.reader()).await
}

/// A refresh of the token `key`, begun after [`get`] found none fresh: on PostgreSQL a
/// transaction holding the key's lock (waiting at most the lock timeout for another
/// process's refresh), with the row as it is once the lock is held, since that process
/// may have stored a token meanwhile; on SQLite no transaction and nothing read again
/// (see the module). Store the outcome with [`Refresh::store_token`] or
/// [`Refresh::store_refusal`].
pub struct Refresh<'a> {
    db: &'a Db,
    key: String,
    tx: Option<Tx<'static>>,
    /// On PostgreSQL the row once the refresh may go ahead.
    pub found: Option<Shared>,
}

impl<'a> Refresh<'a> {
    pub async fn begin(db: &'a Db, key: &str) -> Result<Refresh<'a>, sqlx::Error> {
        if !db.is_shared() {
            return Ok(Refresh { db, key: key.to_owned(), tx: None, found: None });
        }
        let mut tx = db.begin().await?;
        sql::query("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))")
            .bind(format!("leadboard:token:{key}"))
            .execute(&mut *tx)
            .await?;
        let found = sql::query_as(SELECT).bind(key).fetch_optional(&mut *tx).await?;
        Ok(Refresh { db, key: key.to_owned(), tx: Some(tx), found })
    }

    /// Stores a fetched token (and ends any cool-down), releasing the lock.
    pub async fn store_token(self, value: &str, refresh_at: i64, now_ms: i64) -> Result<(), sqlx::Error> {
        let statement = sql::query(
            "INSERT INTO access_tokens (key, value, refresh_at, fetched_at, refused_until) VALUES (?, ?, ?, ?, 0)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, refresh_at = excluded.refresh_at,
                 fetched_at = excluded.fetched_at, refused_until = 0, refused_code = NULL, refused_message = NULL",
        )
        .bind(&self.key)
        .bind(value)
        .bind(refresh_at)
        .bind(now_ms);
        self.finish(statement).await
    }

    /// Stores a refused gettoken's cool-down, releasing the lock.
    pub async fn store_refusal(self, until: i64, code: i64, message: &str) -> Result<(), sqlx::Error> {
        let statement = sql::query(
            "INSERT INTO access_tokens (key, refused_until, refused_code, refused_message) VALUES (?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET refused_until = excluded.refused_until,
                 refused_code = excluded.refused_code, refused_message = excluded.refused_message",
        )
        .bind(&self.key)
        .bind(until)
        .bind(code)
        .bind(message);
        self.finish(statement).await
    }

    async fn finish(self, statement: sql::Query<(), ()>) -> Result<(), sqlx::Error> {
        match self.tx {
            Some(mut tx) => {
                statement.execute(&mut *tx).await?;
                tx.commit().await
            }
            None => {
                let mut tx = self.db.begin().await?;
                statement.execute(&mut *tx).await?;
                tx.commit().await
            }
        }
    }
}

/// Marks the token `stale` as due for refresh, if it is still the one stored: WeCom
/// said it is invalid or expired.
pub async fn invalidate(db: &Db, key: &str, stale: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::query("UPDATE access_tokens SET refresh_at = 0 WHERE key = ? AND value = ?")
        .bind(key)
        .bind(stale)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
