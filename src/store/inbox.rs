//! Inbound deduplication: one row per callback key, with the answer a retry gets.
//! Keys are bounded: one longer than [`MAX_KEY_BYTES`] is stored as its SHA-256, so that
//! a retry (same key, same hash) is still found and different keys stay apart. Rows
//! are kept for the retention period and pruned by [`prune`].

use super::Db;
use crate::store::Conn;
use crate::store::sql;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use tracing::instrument;

/// Keys up to this long are stored as they are (WeCom's MsgIds and event keys are far
/// shorter); longer ones as `sha256:` and the hash's hex.
pub const MAX_KEY_BYTES: usize = 128;

/// The sender is stored for people reading the table, cut to this many bytes.
const MAX_FROM_BYTES: usize = 128;

/// Rows deleted per transaction when pruning, so callbacks get the writer in between.
const PRUNE_BATCH: i64 = 2000;

/// The form a key is stored and looked up in.
fn stored_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_BYTES {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes()))))
    }
}

/// The stored answer to a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredReply {
    /// HTTP 200 with an empty body (anything to say went through the outbox).
    Empty,
    Text(String),
}

/// The answer already given to this key, if the callback was seen before.
///
/// On PostgreSQL, where replicas take callbacks at the same time, it first takes a
/// lock on the key for the rest of the transaction: a replica handling the same retry
/// waits until the first commits (or rolls back), then finds its answer (read
/// committed: the next statement sees the commit) instead of repeating the effects.
/// On SQLite the one writer connection already serialises callbacks.
///
/// `opening` (a parameterless statement such as `SAVEPOINT x`) runs first: on SQLite
/// sent with the lookup ([`sql::Query::preceded_by`]), on PostgreSQL before the lock,
/// so that a lock that times out fails only what follows the savepoint.
#[instrument(level = "debug", skip(conn, key))]
pub async fn find(conn: &mut Conn, key: &str, opening: &'static str) -> Result<Option<StoredReply>, sqlx::Error> {
    let lookup = sql::query_as("SELECT reply_kind, reply FROM inbox WHERE dedup_key = ?");
    let lookup = if conn.engine() == sql::Engine::Postgres {
        sql::statements(conn, opening).await?;
        sql::query("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))")
            .bind(stored_key(key))
            .execute(&mut *conn)
            .await?;
        lookup
    } else {
        lookup.preceded_by(opening)
    };
    let row: Option<(Option<String>, Option<String>)> = lookup.bind(stored_key(key)).fetch_optional(&mut *conn).await?;
    Ok(row.map(|(kind, reply)| match (kind.as_deref(), reply) {
        (Some("text"), Some(text)) => StoredReply::Text(text),
        _ => StoredReply::Empty,
    }))
}

/// Records a processed callback and its answer (in the transaction of its effects).
/// `closing` (a parameterless statement such as `RELEASE x`) is sent with the insert,
/// just after it ([`sql::Query::followed_by`]).
#[instrument(level = "debug", skip(conn, key, from_user, reply))]
pub async fn insert(
    conn: &mut Conn,
    key: &str,
    from_user: &str,
    kind: &str,
    received_at: i64,
    reply: &StoredReply,
    closing: &'static str,
) -> Result<(), sqlx::Error> {
    let (reply_kind, text) = match reply {
        StoredReply::Empty => (None, None),
        StoredReply::Text(t) => (Some("text"), Some(t.as_str())),
    };
    sql::query_scalar::<i64>(
        "INSERT INTO inbox (dedup_key, from_user, kind, received_at, reply_kind, reply) VALUES (?, ?, ?, ?, ?, ?)
         RETURNING CAST(1 AS BIGINT)",
    )
    .followed_by(closing)
    .bind(stored_key(key))
    .bind(&from_user[..from_user.floor_char_boundary(MAX_FROM_BYTES)])
    .bind(kind)
    .bind(received_at)
    .bind(reply_kind)
    .bind(text)
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes the rows received before `before_ms`, in batches of their own transactions;
/// returns how many.
#[instrument(level = "debug", skip(db))]
pub async fn prune(db: &Db, before_ms: i64) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let mut tx = db.begin().await?;
        let n = sql::query(
            "DELETE FROM inbox WHERE rowid IN (SELECT rowid FROM inbox WHERE received_at < ? ORDER BY received_at LIMIT ?)",
        )
        .postgres(
            "DELETE FROM inbox WHERE dedup_key IN
                 (SELECT dedup_key FROM inbox WHERE received_at < ? ORDER BY received_at LIMIT ?)",
        )
        .bind(before_ms)
        .bind(PRUNE_BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        deleted += n;
        if n < PRUNE_BATCH as u64 {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_stored_as_they_are_and_long_ones_hashed_apart() {
        assert_eq!(stored_key("msg:7300000000000000001"), "msg:7300000000000000001");
        let long = format!("msg:{}", "9".repeat(40_000));
        let other = format!("{long}8");
        assert_eq!(stored_key(&long).len(), "sha256:".len() + 64);
        assert_eq!(stored_key(&long), stored_key(&long.clone()));
        assert_ne!(stored_key(&long), stored_key(&other));
        assert_eq!(stored_key(&"k".repeat(MAX_KEY_BYTES)).len(), MAX_KEY_BYTES);
    }
}
