//! The outbox table: messages waiting to be delivered to WeCom, and their fate.

use super::Db;
use serde_json::Value;
use sqlx::SqliteConnection;
use tracing::instrument;

/// What a queued message is delivered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `message/send`: to members (text, markdown, template cards).
    MessageSend,
    /// `appchat/send`: to an app group chat.
    AppchatSend,
    /// A group robot's webhook (the key is the message's target).
    WebhookSend,
    /// `message/update_template_card`: a card's buttons replaced by the outcome.
    UpdateTemplateCard,
    /// A file: `media/upload`, then `message/send` of the media id.
    FileSend,
}

impl Api {
    pub const ALL: [Api; 5] =
        [Api::MessageSend, Api::AppchatSend, Api::WebhookSend, Api::UpdateTemplateCard, Api::FileSend];

    /// As stored, and (but for `file/send`) the API path under `/cgi-bin/`.
    pub fn code(self) -> &'static str {
        match self {
            Api::MessageSend => "message/send",
            Api::AppchatSend => "appchat/send",
            Api::WebhookSend => "webhook/send",
            Api::UpdateTemplateCard => "message/update_template_card",
            Api::FileSend => "file/send",
        }
    }

    pub fn parse(code: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.code() == code)
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Where a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Delivered,
    /// Given up (a permanent error, or retried past `outbox.give_up_after_secs`).
    Failed,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    pub fn parse(code: &str) -> Option<Status> {
        [Status::Pending, Status::Delivered, Status::Failed].into_iter().find(|s| s.code() == code)
    }
}

/// An outbox payload key of a card update: take `response_code` from the delivered
/// message with this reference (the card's send).
pub const RESPONSE_CODE_REF: &str = "response_code_ref";

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub api: Api,
    /// The webhook key for `webhook/send`.
    pub target: Option<String>,
    pub payload: Value,
    pub reference: Option<String>,
}

/// A queued message as the worker sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub created_at: i64,
    pub api: Api,
    pub target: Option<String>,
    pub payload: String,
    pub attempts: i64,
}

/// Queues a message in the caller's transaction, due immediately.
#[instrument(level = "debug", skip_all, fields(api = message.api.code()))]
pub async fn enqueue(conn: &mut SqliteConnection, now_ms: i64, message: &NewMessage) -> Result<i64, sqlx::Error> {
    let id = sqlx::query(
        "INSERT INTO outbox (created_at, api, target, payload, ref, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms)
    .bind(message.api)
    .bind(&message.target)
    .bind(message.payload.to_string())
    .bind(&message.reference)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(id)
}

/// The oldest message due at `now_ms`.
#[instrument(level = "debug", skip_all)]
pub async fn next_due(db: &Db, now_ms: i64) -> Result<Option<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, created_at, api, target, payload, attempts FROM outbox
         WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
    )
    .bind(now_ms)
    .fetch_optional(db.reader())
    .await
}

/// When the next pending message falls due, if any is pending.
pub async fn next_due_at(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'").fetch_one(db.reader()).await
}

#[instrument(level = "debug", skip_all)]
pub async fn mark_delivered(db: &Db, id: i64, now_ms: i64, response: &Value) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, response = ?, last_error = NULL
         WHERE id = ?",
    )
    .bind(now_ms)
    .bind(response.to_string())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[instrument(level = "debug", skip_all)]
pub async fn reschedule(db: &Db, id: i64, next_attempt_at: i64, error: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?")
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[instrument(level = "debug", skip_all)]
pub async fn mark_failed(db: &Db, id: i64, error: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?")
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Counts by status: (pending, failed).
pub async fn depth(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as("SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'failed'), 0) FROM outbox")
        .fetch_one(db.reader())
        .await
}

/// The newest outbox id (0 when empty).
pub async fn last_id(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox").fetch_one(db.reader()).await
}

/// `(api, payload)` of messages queued after `id`.
pub async fn since(db: &Db, id: i64) -> Result<Vec<(Api, String)>, sqlx::Error> {
    sqlx::query_as("SELECT api, payload FROM outbox WHERE id > ? ORDER BY id").bind(id).fetch_all(db.reader()).await
}

/// The status and WeCom response of the latest message with this reference.
pub async fn referenced(db: &Db, reference: &str) -> Result<Option<(Status, Option<Value>)>, sqlx::Error> {
    let row: Option<(Status, Option<String>)> =
        sqlx::query_as("SELECT status, response FROM outbox WHERE ref = ? ORDER BY id DESC LIMIT 1")
            .bind(reference)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map(|(status, response)| (status, response.and_then(|r| serde_json::from_str(&r).ok()))))
}
