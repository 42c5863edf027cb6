//! Inbound deduplication: one row per callback key, with the answer a retry gets.

use sqlx::SqliteConnection;
use tracing::instrument;

/// The stored answer to a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredReply {
    /// HTTP 200 with an empty body (anything to say went through the outbox).
    Empty,
    Text(String),
}

/// The answer already given to this key, if the callback was seen before.
#[instrument(level = "debug", skip(conn))]
pub async fn find(conn: &mut SqliteConnection, key: &str) -> Result<Option<StoredReply>, sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT reply_kind, reply FROM inbox WHERE dedup_key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(kind, reply)| match (kind.as_deref(), reply) {
        (Some("text"), Some(text)) => StoredReply::Text(text),
        _ => StoredReply::Empty,
    }))
}

/// Records a processed callback and its answer (in the transaction of its effects).
#[instrument(level = "debug", skip(conn, reply))]
pub async fn insert(
    conn: &mut SqliteConnection,
    key: &str,
    from_user: &str,
    kind: &str,
    received_at: i64,
    reply: &StoredReply,
) -> Result<(), sqlx::Error> {
    let (reply_kind, text) = match reply {
        StoredReply::Empty => (None, None),
        StoredReply::Text(t) => (Some("text"), Some(t.as_str())),
    };
    sqlx::query(
        "INSERT INTO inbox (dedup_key, from_user, kind, received_at, reply_kind, reply) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(key)
    .bind(from_user)
    .bind(kind)
    .bind(received_at)
    .bind(reply_kind)
    .bind(text)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
