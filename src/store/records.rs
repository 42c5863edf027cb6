//! Records, and the clients and channels (subjects) they claim.

use crate::domain::kind::RecordKind;
use crate::domain::record::{Mode, RecordState};
use sqlx::SqliteConnection;

/// Clients and channels are separate name spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Client,
    Channel,
}

impl Family {
    fn code(self) -> &'static str {
        match self {
            Family::Client => "client",
            Family::Channel => "channel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subject {
    pub id: i64,
    pub name: String,
    pub credit_code: Option<String>,
    pub origin: String,
}

pub async fn subject_by_code(
    conn: &mut SqliteConnection,
    family: Family,
    code: &str,
) -> Result<Option<Subject>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, credit_code, origin FROM subjects WHERE family = ? AND credit_code = ?")
        .bind(family.code())
        .bind(code)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn subject_by_name(
    conn: &mut SqliteConnection,
    family: Family,
    name_key: &str,
) -> Result<Option<Subject>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, credit_code, origin FROM subjects WHERE family = ? AND name_key = ?")
        .bind(family.code())
        .bind(name_key)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn insert_subject(
    conn: &mut SqliteConnection,
    family: Family,
    name: &str,
    name_key: &str,
    credit_code: Option<&str>,
    origin: &str,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query(
        "INSERT INTO subjects (family, name, name_key, credit_code, origin, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(family.code())
    .bind(name)
    .bind(name_key)
    .bind(credit_code)
    .bind(origin)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(id)
}

pub async fn set_subject_code(conn: &mut SqliteConnection, id: i64, code: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE subjects SET credit_code = ? WHERE id = ?").bind(code).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Whether a channel can be named by a placement: an existing (old) channel, or one
/// reported and not rejected or voided.
pub async fn channel_is_live(conn: &mut SqliteConnection, subject_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM subjects s WHERE s.id = ? AND (s.origin = 'existing' OR EXISTS (
             SELECT 1 FROM records r WHERE r.subject_id = s.id AND r.claim_slot = 'channel'
             AND r.state IN ('reported', 'agreed', 'confirmed'))))",
    )
    .bind(subject_id)
    .fetch_one(&mut *conn)
    .await
}

/// A record about to be created.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub kind: RecordKind,
    pub mode: Mode,
    pub reporter: String,
    pub reporter_dept: i64,
    pub reporter_class: &'static str,
    pub closer: Option<String>,
    pub subject_id: Option<i64>,
    pub claim_slot: Option<&'static str>,
    pub channel_id: Option<i64>,
    pub onboard_date: Option<String>,
    pub amount_fen: Option<i64>,
    pub fields: serde_json::Value,
    pub points: i64,
    pub stage_rule: &'static str,
    pub state: RecordState,
    pub occurred_at: i64,
}

/// Inserts a record. A second live claim of the same subject and slot fails on the
/// `records_first_claim` unique index (see `is_unique_violation`).
pub async fn insert(conn: &mut SqliteConnection, r: &NewRecord) -> Result<i64, sqlx::Error> {
    let id = sqlx::query(
        "INSERT INTO records (kind, mode, reporter, reporter_dept, reporter_class, closer, subject_id, claim_slot,
             channel_id, onboard_date, amount_fen, fields, points, stage_rule, state, occurred_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.kind.code())
    .bind(r.mode.code())
    .bind(&r.reporter)
    .bind(r.reporter_dept)
    .bind(r.reporter_class)
    .bind(&r.closer)
    .bind(r.subject_id)
    .bind(r.claim_slot)
    .bind(r.channel_id)
    .bind(&r.onboard_date)
    .bind(r.amount_fen)
    .bind(r.fields.to_string())
    .bind(r.points)
    .bind(r.stage_rule)
    .bind(r.state.code())
    .bind(r.occurred_at)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(id)
}

/// Whether an error is a UNIQUE constraint failing (a lost race for a claim).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Who holds a live claim.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claim {
    pub record_id: i64,
    pub reporter: String,
    pub reporter_name: String,
    pub occurred_at: i64,
    pub state: String,
}

pub async fn live_claim(
    conn: &mut SqliteConnection,
    subject_id: i64,
    slot: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id AS record_id, r.reporter, p.name AS reporter_name, r.occurred_at, r.state
         FROM records r JOIN people p ON p.userid = r.reporter
         WHERE r.subject_id = ? AND r.claim_slot = ? AND r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')",
    )
    .bind(subject_id)
    .bind(slot)
    .fetch_optional(&mut *conn)
    .await
}

/// One line of someone's records.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Summary {
    pub id: i64,
    pub kind: String,
    pub subject: Option<String>,
    pub fields: String,
    pub points: i64,
    pub state: String,
    pub counts: bool,
    pub occurred_at: i64,
}

/// A reporter's records that occurred in `[from_ms, to_ms)`, oldest first, with whether
/// each counts now.
pub async fn reported_between(
    conn: &mut SqliteConnection,
    reporter: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Summary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.kind, s.name AS subject, r.fields, r.points, r.state,
                EXISTS (SELECT 1 FROM counting_records c WHERE c.id = r.id) AS counts, r.occurred_at
         FROM records r LEFT JOIN subjects s ON s.id = r.subject_id
         WHERE r.reporter = ? AND r.occurred_at >= ? AND r.occurred_at < ?
         ORDER BY r.occurred_at, r.id",
    )
    .bind(reporter)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await
}

/// Registers old channels (老渠道) from configuration; names already known are kept.
pub async fn ensure_existing_channels(
    conn: &mut SqliteConnection,
    names: &[(String, String)],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for (name, key) in names {
        sqlx::query(
            "INSERT INTO subjects (family, name, name_key, origin, created_at) VALUES ('channel', ?, ?, 'existing', ?)
             ON CONFLICT (family, name_key) DO NOTHING",
        )
        .bind(name)
        .bind(key)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
