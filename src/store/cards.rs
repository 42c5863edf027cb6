//! Interactive cards the bot sent, so that a button press can be traced to its card
//! and every recipient's copy updated once the matter is decided.

use crate::store::Conn;
use crate::store::sql;

/// What a card asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// 确认 / 驳回 a handoff.
    Confirm,
    /// 在岗 / 离职 on a placement's day-3 check.
    OnJob,
    /// 终审 of a contest.
    Finalise,
    /// 维持 / 改判 of an appeal against a rejection.
    Appeal,
}

impl Purpose {
    pub fn code(self) -> &'static str {
        match self {
            Purpose::Confirm => "confirm",
            Purpose::OnJob => "onjob",
            Purpose::Finalise => "finalise",
            Purpose::Appeal => "appeal",
        }
    }

    pub fn parse(code: &str) -> Option<Purpose> {
        [Purpose::Confirm, Purpose::OnJob, Purpose::Finalise, Purpose::Appeal].into_iter().find(|p| p.code() == code)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Card {
    pub task_id: String,
    pub purpose: Purpose,
    pub record_id: Option<i64>,
    pub contest_id: Option<String>,
    pub recipients: String,
    pub closed_at: Option<i64>,
}
crate::direct_row!(Card { task_id, purpose, record_id, contest_id, recipients, closed_at });

impl Card {
    pub fn recipients(&self) -> Vec<String> {
        serde_json::from_str(&self.recipients).unwrap_or_default()
    }
}

pub struct NewCard<'a> {
    pub task_id: &'a str,
    pub purpose: Purpose,
    pub record_id: Option<i64>,
    pub contest_id: Option<&'a str>,
    pub recipients: &'a [String],
}

/// The statement recording a card, for a [`sql::Batch`] beside its message's
/// ([`crate::store::outbox::enqueuing`]).
pub fn inserting(card: &NewCard<'_>, now_ms: i64) -> sql::Query<(), ()> {
    sql::query(
        "INSERT INTO cards (task_id, purpose, record_id, contest_id, recipients, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(card.task_id)
    .bind(card.purpose)
    .bind(card.record_id)
    .bind(card.contest_id)
    .bind(serde_json::to_string(card.recipients).unwrap_or_default())
    .bind(now_ms)
}

pub async fn find(conn: &mut Conn, task_id: &str) -> Result<Option<Card>, sqlx::Error> {
    sql::query_as("SELECT task_id, purpose, record_id, contest_id, recipients, closed_at FROM cards WHERE task_id = ?")
        .bind(task_id)
        .fetch_optional(conn)
        .await
}

/// Cards about a record (or a contest) whose buttons still show.
pub async fn open_for(
    conn: &mut Conn,
    record_id: Option<i64>,
    contest_id: Option<&str>,
) -> Result<Vec<Card>, sqlx::Error> {
    sql::query_as(
        "SELECT task_id, purpose, record_id, contest_id, recipients, closed_at FROM cards
         WHERE closed_at IS NULL AND (record_id = ? OR contest_id = ?) ORDER BY created_at",
    )
    .bind(record_id)
    .bind(contest_id)
    .fetch_all(conn)
    .await
}

pub async fn close(conn: &mut Conn, task_id: &str, outcome: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sql::query("UPDATE cards SET closed_at = ?, outcome = ? WHERE task_id = ? AND closed_at IS NULL")
        .bind(now_ms)
        .bind(outcome)
        .bind(task_id)
        .execute(conn)
        .await?;
    Ok(())
}
