//! The append-only event log: who changed what, when, from what to what, and why.

use sqlx::SqliteConnection;

/// One state change to append.
#[derive(Debug, Default, Clone)]
pub struct NewEvent<'a> {
    pub actor: &'a str,
    pub entity: &'a str,
    pub entity_id: String,
    pub action: &'a str,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
    pub data: Option<serde_json::Value>,
}

/// Appends an event in the caller's transaction.
pub async fn append(conn: &mut SqliteConnection, at_ms: i64, event: NewEvent<'_>) -> Result<i64, sqlx::Error> {
    let id = sqlx::query(
        "INSERT INTO events (at, actor, entity, entity_id, action, old_value, new_value, reason, data)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(at_ms)
    .bind(event.actor)
    .bind(event.entity)
    .bind(event.entity_id)
    .bind(event.action)
    .bind(event.old_value)
    .bind(event.new_value)
    .bind(event.reason)
    .bind(event.data.map(|d| d.to_string()))
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(id)
}
