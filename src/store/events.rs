//! The append-only event log: who changed what, when, from what to what, and why.

use crate::store::Conn;
use crate::store::sql;
use tracing::instrument;

/// One state change to append, built as `NewEvent::record(actor, id, "confirmed")
/// .from(old).to(new).reason(why)`.
#[derive(Debug, Clone)]
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

impl<'a> NewEvent<'a> {
    /// `actor` did `action` to the `entity` with this id.
    pub fn new(actor: &'a str, entity: &'a str, entity_id: impl ToString, action: &'a str) -> Self {
        NewEvent {
            actor,
            entity,
            entity_id: entity_id.to_string(),
            action,
            old_value: None,
            new_value: None,
            reason: None,
            data: None,
        }
    }

    /// `actor` did `action` to record `id`.
    pub fn record(actor: &'a str, id: i64, action: &'a str) -> Self {
        Self::new(actor, "record", id, action)
    }

    /// The value before the change.
    pub fn from(mut self, old: impl ToString) -> Self {
        self.old_value = Some(old.to_string());
        self
    }

    /// The value after the change.
    pub fn to(mut self, new: impl ToString) -> Self {
        self.new_value = Some(new.to_string());
        self
    }

    /// Why, when someone said.
    pub fn reason(mut self, reason: Option<impl ToString>) -> Self {
        self.reason = reason.map(|r| r.to_string());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// Appends an event in the caller's transaction.
#[instrument(level = "debug", skip_all, fields(entity = event.entity, action = event.action))]
pub async fn append(conn: &mut Conn, at_ms: i64, event: NewEvent<'_>) -> Result<i64, sqlx::Error> {
    let id = sql::query_scalar(
        "INSERT INTO events (at, actor, entity, entity_id, action, old_value, new_value, reason, data)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// The id of the latest event (0 for none): every change people can see appends one,
/// so a change of this number is what a live view waits for (an index lookup).
pub async fn latest_id(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sql::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events").fetch_one(conn).await
}
