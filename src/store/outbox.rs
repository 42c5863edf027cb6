//! The outbox table: messages waiting to be delivered to WeCom, and their fate.

use super::Db;
use crate::store::Conn;
use crate::store::sql;
use serde_json::Value;
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
    /// Not sent by itself: a card merged into a digest (or the update of such a card).
    Merged,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Merged => "merged",
        }
    }

    pub fn parse(code: &str) -> Option<Status> {
        [Status::Pending, Status::Delivered, Status::Failed, Status::Merged].into_iter().find(|s| s.code() == code)
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
    /// For a record's card: its line in a digest, should the card be merged into one.
    pub digest: Option<DigestEntry>,
}

impl NewMessage {
    /// Whom the message reaches, as pacing counts them: `u:USERID` per member (sends
    /// and card updates), `chat:CHATID` per app chat, `robot:KEY` per group robot.
    pub fn lanes(&self) -> String {
        let members = |list: Vec<&str>| list.iter().map(|u| format!("u:{u}")).collect::<Vec<_>>().join("|");
        match self.api {
            Api::WebhookSend => format!("robot:{}", self.target.as_deref().unwrap_or_default()),
            Api::AppchatSend => format!("chat:{}", self.payload["chatid"].as_str().unwrap_or_default()),
            Api::UpdateTemplateCard => members(
                self.payload["userids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default(),
            ),
            Api::MessageSend | Api::FileSend => {
                members(self.payload["touser"].as_str().map(|t| t.split('|').collect()).unwrap_or_default())
            }
        }
    }
}

/// A record card's part of a digest: the line naming the record, and how to decide it
/// in chat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DigestEntry {
    pub line: String,
    pub hint: String,
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
    pub lanes: String,
}
crate::direct_row!(Pending { id, created_at, api, target, payload, attempts, lanes });

/// A pending message as the worker's scheduling sees it, without its payload.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Queued {
    pub id: i64,
    pub lanes: String,
    pub next_attempt_at: i64,
    /// Whether the message is a card that may be merged into a digest.
    pub digestible: bool,
}
crate::direct_row!(Queued { id, lanes, next_attempt_at, digestible });

/// The statement queueing a message (the same SQL with `RETURNING id` in [`enqueue`]).
macro_rules! enqueue_sql {
    () => {
        "INSERT INTO outbox (created_at, api, target, payload, ref, next_attempt_at, lanes, digest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    };
}

fn bind_message<O: 'static, M: 'static>(
    query: sql::Query<O, M>,
    now_ms: i64,
    message: &NewMessage,
) -> sql::Query<O, M> {
    let digest = message.digest.as_ref().map(|d| serde_json::to_string(d).expect("a digest entry serialises"));
    query
        .bind(now_ms)
        .bind(message.api)
        .bind(&message.target)
        .bind(message.payload.to_string())
        .bind(&message.reference)
        .bind(now_ms)
        .bind(message.lanes())
        .bind(digest)
}

/// Queues a message in the caller's transaction, due immediately; returns its id.
#[instrument(level = "debug", skip_all, fields(api = message.api.code()))]
pub async fn enqueue(conn: &mut Conn, now_ms: i64, message: &NewMessage) -> Result<i64, sqlx::Error> {
    bind_message(sql::query_scalar(concat!(enqueue_sql!(), " RETURNING id")), now_ms, message).fetch_one(conn).await
}

/// The statement of [`enqueue`], for a [`sql::Batch`] (the id is not read).
pub fn enqueuing(now_ms: i64, message: &NewMessage) -> sql::Query<(), ()> {
    bind_message(sql::query(enqueue_sql!()), now_ms, message)
}

const QUEUE: &str = "SELECT id, lanes, next_attempt_at, digest IS NOT NULL AS digestible FROM outbox
     WHERE status = 'pending' ORDER BY id LIMIT ?";
const DEPTH: &str = "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending'), (SELECT COUNT(*) FROM outbox WHERE status = 'failed')";

/// The oldest `limit` pending messages, in queue order, read from the covering index
/// `outbox_pending_in_order` alone (migration 0105).
#[instrument(level = "debug", skip_all)]
pub async fn queue(db: &Db, limit: i64) -> Result<Vec<Queued>, sqlx::Error> {
    sql::query_as(QUEUE).bind(limit).fetch_all(db.reader()).await
}

/// A pending message, whole.
pub async fn pending(db: &Db, id: i64) -> Result<Option<Pending>, sqlx::Error> {
    sql::query_as(
        "SELECT id, created_at, api, target, payload, attempts, lanes FROM outbox WHERE id = ? AND status = 'pending'",
    )
    .bind(id)
    .fetch_optional(db.reader())
    .await
}

/// `(lanes, delivered_at)` of the messages delivered since `since_ms`: what pacing
/// counts after a restart.
pub async fn delivered_since(db: &Db, since_ms: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sql::query_as("SELECT lanes, delivered_at FROM outbox WHERE delivered_at >= ? ORDER BY delivered_at")
        .bind(since_ms)
        .fetch_all(db.reader())
        .await
}

/// Merges pending cards into a digest: the cards (and any queued update of them) are
/// marked 'merged', their `cards` rows closed with `outcome`, and the digest's parts are
/// queued. Returns the first part's id, or None when a card was no longer pending
/// (nothing changes).
#[instrument(level = "debug", skip_all, fields(cards = ids.len()))]
pub async fn merge(
    db: &Db,
    ids: &[i64],
    digest: &[NewMessage],
    outcome: &str,
    now_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut refs = Vec::with_capacity(ids.len());
    for &id in ids {
        let reference: Option<Option<String>> = sql::query_scalar(
            "UPDATE outbox SET status = 'merged' WHERE id = ? AND status = 'pending' AND digest IS NOT NULL RETURNING ref",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        match reference {
            Some(reference) => refs.extend(reference),
            None => return Ok(None),
        }
    }
    for reference in &refs {
        sql::query(
            "UPDATE outbox SET status = 'merged' WHERE status = 'pending' AND api = ?
             AND json_extract(payload, '$.response_code_ref') = ?",
        )
        .bind(Api::UpdateTemplateCard)
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        if let Some(task) = reference.strip_prefix("card:") {
            super::cards::close(&mut tx, task, outcome, now_ms).await?;
        }
    }
    let mut first = None;
    for part in digest {
        first = first.or(Some(enqueue(&mut tx, now_ms, part).await?));
    }
    tx.commit().await?;
    Ok(first)
}

/// Closes the pending card update `id` as merged if the card it updates was merged into
/// a digest; true when it was.
pub async fn updates_a_merged_card(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let merged: i64 = sql::query_scalar(
        "SELECT COUNT(*) FROM outbox u JOIN outbox c ON c.ref = json_extract(u.payload, '$.response_code_ref')
         WHERE u.id = ? AND c.status = 'merged'",
    )
    .bind(id)
    .fetch_one(db.reader())
    .await?;
    if merged == 0 {
        return Ok(false);
    }
    let mut tx = db.begin().await?;
    let closed = sql::query("UPDATE outbox SET status = 'merged' WHERE id = ? AND status = 'pending'")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(closed == 1)
}

/// The digest entries of pending messages, in queue order.
pub async fn digest_entries(db: &Db, ids: &[i64]) -> Result<Vec<DigestEntry>, sqlx::Error> {
    let mut entries = Vec::with_capacity(ids.len());
    for &id in ids {
        let entry: Option<Option<String>> =
            sql::query_scalar("SELECT digest FROM outbox WHERE id = ?").bind(id).fetch_optional(db.reader()).await?;
        if let Some(entry) = entry.flatten().and_then(|e| serde_json::from_str(&e).ok()) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[instrument(level = "debug", skip_all)]
pub async fn mark_delivered(db: &Db, id: i64, now_ms: i64, response: &Value) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::query(
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
    sql::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?")
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
    sql::query("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?")
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Counts by status: (pending, failed), each from its partial index (migration 0105).
pub async fn depth(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    sql::query_as(DEPTH).fetch_one(db.reader()).await
}

/// The newest outbox id (0 when empty).
pub async fn last_id(db: &Db) -> Result<i64, sqlx::Error> {
    sql::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox").fetch_one(db.reader()).await
}

/// `(api, payload)` of messages queued after `id`.
pub async fn since(db: &Db, id: i64) -> Result<Vec<(Api, String)>, sqlx::Error> {
    sql::query_as("SELECT api, payload FROM outbox WHERE id > ? ORDER BY id").bind(id).fetch_all(db.reader()).await
}

/// The status and WeCom response of the latest message with this reference.
pub async fn referenced(db: &Db, reference: &str) -> Result<Option<(Status, Option<Value>)>, sqlx::Error> {
    let row: Option<(Status, Option<String>)> =
        sql::query_as("SELECT status, response FROM outbox WHERE ref = ? ORDER BY id DESC LIMIT 1")
            .bind(reference)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map(|(status, response)| (status, response.and_then(|r| serde_json::from_str(&r).ok()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's queue read and the gauges' counts touch no table row: in a rush of
    /// paced cards they run at every wake over thousands of pending messages.
    #[tokio::test]
    async fn the_queue_and_its_depth_read_only_covering_indexes() {
        for sql in [QUEUE, DEPTH] {
            let plan = super::super::query_plan(sql).await;
            let reads: Vec<&String> = plan.iter().filter(|d| d.contains("outbox")).collect();
            assert!(!reads.is_empty(), "{plan:?}");
            assert!(reads.iter().all(|d| d.contains("USING COVERING INDEX")), "{sql}: {plan:?}");
        }
    }
}
