//! Records, and the clients and channels (subjects) they claim.

use crate::domain::kind::RecordKind;
use crate::domain::org::DeptKind;
use crate::domain::record::{LeadStages, Mode, RecordState};
use crate::store::directory::Person;
use sqlx::SqliteConnection;
use tracing::instrument;

/// Clients and channels are separate name spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Client,
    Channel,
}

impl Family {
    pub fn code(self) -> &'static str {
        match self {
            Family::Client => "client",
            Family::Channel => "channel",
        }
    }

    pub fn parse(code: &str) -> Option<Family> {
        match code {
            "client" => Some(Family::Client),
            "channel" => Some(Family::Channel),
            _ => None,
        }
    }
}

/// Where a subject came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Reported through the bot.
    Reported,
    /// An old channel (老渠道) registered as existing before the programme.
    Existing,
}

impl Origin {
    pub fn code(self) -> &'static str {
        match self {
            Origin::Reported => "reported",
            Origin::Existing => "existing",
        }
    }

    pub fn parse(code: &str) -> Option<Origin> {
        match code {
            "reported" => Some(Origin::Reported),
            "existing" => Some(Origin::Existing),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subject {
    pub id: i64,
    pub name: String,
    pub credit_code: Option<String>,
    pub origin: Origin,
}

pub async fn subject_by_code(
    conn: &mut SqliteConnection,
    family: Family,
    code: &str,
) -> Result<Option<Subject>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, credit_code, origin FROM subjects WHERE family = ? AND credit_code = ?")
        .bind(family)
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
        .bind(family)
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
    origin: Origin,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query(
        "INSERT INTO subjects (family, name, name_key, credit_code, origin, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(family)
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
    pub reporter_class: DeptKind,
    /// A transfer's closer named at report, with the department they are in then.
    pub closer: Option<Person>,
    pub subject_id: Option<i64>,
    pub claim_slot: Option<&'static str>,
    pub channel_id: Option<i64>,
    pub onboard_date: Option<String>,
    /// A placement's placed person (normalised name), with `onboard_date` its identity.
    pub person_key: Option<String>,
    pub amount_fen: Option<i64>,
    pub fields: serde_json::Value,
    pub points: i64,
    pub stage_rule: LeadStages,
    pub state: RecordState,
    pub occurred_at: i64,
}

/// Inserts a record. A second live claim of the same subject and slot fails on the
/// `records_first_claim` unique index, a second live placement of the same person and
/// day on `records_placement_claim` (see [`crate::store::violated`]).
#[instrument(level = "debug", skip_all, fields(kind = r.kind.code()))]
pub async fn insert(conn: &mut SqliteConnection, r: &NewRecord) -> Result<i64, sqlx::Error> {
    let id = sqlx::query(
        "INSERT INTO records (kind, mode, reporter, reporter_dept, reporter_class, closer, closer_dept, closer_class,
             subject_id, claim_slot, channel_id, onboard_date, person_key, amount_fen, fields, points, stage_rule,
             state, occurred_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.kind)
    .bind(r.mode)
    .bind(&r.reporter)
    .bind(r.reporter_dept)
    .bind(r.reporter_class)
    .bind(r.closer.as_ref().map(|c| &c.userid))
    .bind(r.closer.as_ref().map(|c| c.department_id))
    .bind(r.closer.as_ref().map(|c| c.kind))
    .bind(r.subject_id)
    .bind(r.claim_slot)
    .bind(r.channel_id)
    .bind(&r.onboard_date)
    .bind(&r.person_key)
    .bind(r.amount_fen)
    .bind(r.fields.to_string())
    .bind(r.points)
    .bind(r.stage_rule)
    .bind(r.state)
    .bind(r.occurred_at)
    .execute(&mut *conn)
    .await?
    .last_insert_rowid();
    Ok(id)
}

/// Who holds a live claim.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claim {
    pub record_id: i64,
    pub reporter: String,
    pub reporter_name: String,
    pub occurred_at: i64,
    pub state: RecordState,
}

/// Who holds a claim, from `records r` joined with its reporter `p`.
const SELECT_CLAIM: &str = "SELECT r.id AS record_id, r.reporter, p.name AS reporter_name, r.occurred_at, r.state
     FROM records r JOIN people p ON p.userid = r.reporter";

#[instrument(level = "debug", skip(conn))]
pub async fn live_claim(
    conn: &mut SqliteConnection,
    subject_id: i64,
    slot: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_CLAIM} WHERE r.subject_id = ? AND r.claim_slot = ?
           AND r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')"
    )))
    .bind(subject_id)
    .bind(slot)
    .fetch_optional(&mut *conn)
    .await
}

/// The live placement of this person (normalised name) onboarding on this day.
pub async fn live_placement(
    conn: &mut SqliteConnection,
    person_key: &str,
    onboard_date: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_CLAIM} WHERE r.kind = 'placement' AND r.person_key = ? AND r.onboard_date = ?
           AND r.state IN ('onboarded', 'confirmed')"
    )))
    .bind(person_key)
    .bind(onboard_date)
    .fetch_optional(&mut *conn)
    .await
}

/// One line of someone's records.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Summary {
    pub id: i64,
    pub kind: RecordKind,
    pub subject: Option<String>,
    pub fields: String,
    pub points: i64,
    pub state: RecordState,
    pub counts: bool,
    pub occurred_at: i64,
}

/// A reporter's records that occurred in `[from_ms, to_ms)`, oldest first, with whether
/// each counts now.
#[instrument(level = "debug", skip(conn))]
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

/// A record someone closed for a colleague (their 接手), with who reported it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Closed {
    #[sqlx(flatten)]
    pub record: Summary,
    pub reporter_name: String,
    pub closer_class: Option<DeptKind>,
}

/// The records `closer` closed as 接手 that occurred in `[from_ms, to_ms)`, oldest first.
#[instrument(level = "debug", skip(conn))]
pub async fn closed_between(
    conn: &mut SqliteConnection,
    closer: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Closed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.kind, s.name AS subject, r.fields, r.points, r.state,
                EXISTS (SELECT 1 FROM counting_records c WHERE c.id = r.id) AS counts, r.occurred_at,
                p.name AS reporter_name, r.closer_class
         FROM records r JOIN people p ON p.userid = r.reporter LEFT JOIN subjects s ON s.id = r.subject_id
         WHERE r.closer = ? AND r.occurred_at >= ? AND r.occurred_at < ?
         ORDER BY r.occurred_at, r.id",
    )
    .bind(closer)
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

/// A record as stored, with its reporter's name and what it claims.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Record {
    pub id: i64,
    pub kind: RecordKind,
    pub mode: Mode,
    pub reporter: String,
    pub reporter_name: String,
    pub closer: Option<String>,
    pub subject_id: Option<i64>,
    pub subject: Option<String>,
    pub channel_id: Option<i64>,
    pub onboard_date: Option<String>,
    pub fields: String,
    pub points: i64,
    pub state: RecordState,
    pub occurred_at: i64,
    pub decided_by: Option<String>,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
    pub base_for: Option<i64>,
    pub voided_from: Option<RecordState>,
    pub voided_by_name: Option<String>,
    pub voided_at: Option<i64>,
    pub void_reason: Option<String>,
}

impl Record {
    pub fn field(&self, key: &str) -> Option<String> {
        let fields: serde_json::Value = serde_json::from_str(&self.fields).ok()?;
        fields[key].as_str().map(str::to_owned)
    }

    /// What the record is about: the client or channel, or the placed person's name.
    pub fn what(&self) -> String {
        self.subject.clone().or_else(|| self.field("姓名")).unwrap_or_default()
    }
}

const SELECT_RECORD: &str = "SELECT r.id, r.kind, r.mode, r.reporter, p.name AS reporter_name, r.closer, r.subject_id,
        s.name AS subject, r.channel_id, r.onboard_date, r.fields, r.points, r.state, r.occurred_at, r.decided_by,
        d.name AS decided_by_name, r.decided_at, r.reason, r.base_for, r.voided_from, v.name AS voided_by_name,
        r.voided_at, r.void_reason
     FROM records r JOIN people p ON p.userid = r.reporter
     LEFT JOIN subjects s ON s.id = r.subject_id
     LEFT JOIN people d ON d.userid = r.decided_by
     LEFT JOIN people v ON v.userid = r.voided_by";

#[instrument(level = "debug", skip(conn))]
pub async fn get(conn: &mut SqliteConnection, id: i64) -> Result<Option<Record>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_RECORD} WHERE r.id = ?"))).bind(id).fetch_optional(conn).await
}

/// Moves a record from `from` to `to` if it is still in `from` (compare-and-set: of two
/// deciders, exactly one succeeds). Returns whether it moved.
#[instrument(level = "debug", skip(conn))]
pub async fn transition(
    conn: &mut SqliteConnection,
    id: i64,
    from: RecordState,
    to: RecordState,
    by: &str,
    at_ms: i64,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE records SET state = ?, decided_by = ?, decided_at = ?, reason = COALESCE(?, reason)
         WHERE id = ? AND state = ?",
    )
    .bind(to)
    .bind(by)
    .bind(at_ms)
    .bind(reason)
    .bind(id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    let moved = done.rows_affected() == 1;
    if moved {
        recount_around(conn, id).await?;
    }
    Ok(moved)
}

/// Updates whether this record, the other stages of its client (which the 'highest'
/// rule ties to it) and, for a channel, its base placements count; contest scores follow.
async fn recount_around(conn: &mut SqliteConnection, id: i64) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT ? UNION SELECT o.id FROM records r JOIN records o ON o.subject_id = r.subject_id
         WHERE r.id = ? AND r.claim_slot IN ('lead_c', 'lead_b', 'lead_a') AND o.claim_slot IN ('lead_c', 'lead_b', 'lead_a')
         UNION SELECT id FROM records WHERE base_for = ?",
    )
    .bind(id)
    .bind(id)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    crate::store::contests::recount(conn, &ids).await
}

/// Voids a record (remembering its state and decision for a restore); false if already
/// voided.
#[instrument(level = "debug", skip(conn))]
pub async fn void(
    conn: &mut SqliteConnection,
    id: i64,
    by: &str,
    at_ms: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE records SET voided_from = state, state = 'voided', voided_by = ?, voided_at = ?, void_reason = ?
         WHERE id = ? AND state != 'voided'",
    )
    .bind(by)
    .bind(at_ms)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let moved = done.rows_affected() == 1;
    if moved {
        recount_around(conn, id).await?;
    }
    Ok(moved)
}

/// Restores a voided record to the state (and decision) it had; the restore itself is
/// in the event log. Fails with a unique violation when its client or channel has since
/// been claimed again.
#[instrument(level = "debug", skip(conn))]
pub async fn restore(conn: &mut SqliteConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE records SET state = voided_from, voided_from = NULL, voided_by = NULL, voided_at = NULL,
             void_reason = NULL
         WHERE id = ? AND state = 'voided' AND voided_from IS NOT NULL",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let moved = done.rows_affected() == 1;
    if moved {
        recount_around(conn, id).await?;
    }
    Ok(moved)
}

pub async fn set_reason(conn: &mut SqliteConnection, id: i64, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE records SET reason = ? WHERE id = ?").bind(reason).bind(id).execute(conn).await?;
    Ok(())
}

/// Records a transfer's closer, with their department now, unless one is recorded;
/// whether it was set.
pub async fn set_closer(conn: &mut SqliteConnection, id: i64, closer: &Person) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE records SET closer = ?, closer_dept = ?, closer_class = ? WHERE id = ? AND closer IS NULL")
            .bind(&closer.userid)
            .bind(closer.department_id)
            .bind(closer.kind)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The live channel record (agreement) for a channel subject, if any.
pub async fn channel_record(conn: &mut SqliteConnection, subject_id: i64) -> Result<Option<Record>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_RECORD} WHERE r.subject_id = ? AND r.claim_slot = 'channel' AND r.state IN ('reported', 'agreed', 'confirmed')"
    )))
    .bind(subject_id)
    .fetch_optional(conn)
    .await
}

/// How many confirmed placements already serve as a channel record's base indicator.
pub async fn base_count(conn: &mut SqliteConnection, channel_record: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE base_for = ? AND state = 'confirmed'")
        .bind(channel_record)
        .fetch_one(conn)
        .await
}

pub async fn set_base_for(conn: &mut SqliteConnection, placement: i64, channel_record: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE records SET base_for = ? WHERE id = ?")
        .bind(channel_record)
        .bind(placement)
        .execute(&mut *conn)
        .await?;
    // Its points are now the channel's: it stops counting as a placement.
    recount_around(conn, placement).await
}

/// The reminders a record gets: once to its confirmers, once to the audit group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Remind,
    Escalate,
}

impl Stage {
    pub fn code(self) -> &'static str {
        match self {
            Stage::Remind => "remind",
            Stage::Escalate => "escalate",
        }
    }

    pub fn parse(code: &str) -> Option<Stage> {
        [Stage::Remind, Stage::Escalate].into_iter().find(|s| s.code() == code)
    }
}

/// Placements onboarded on or before `due_onboard_date` (ISO date) that have had no
/// day-3 card yet.
pub async fn placements_due(conn: &mut SqliteConnection, due_onboard_date: &str) -> Result<Vec<Record>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_RECORD} WHERE r.kind = 'placement' AND r.state = 'onboarded' AND r.onboard_date <= ?
         AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.record_id = r.id AND c.purpose = 'onjob')
         ORDER BY r.id"
    )))
    .bind(due_onboard_date)
    .fetch_all(conn)
    .await
}

/// Handoffs waiting for a decision since before `since_ms`, with no reminder at
/// `stage` yet. A placement waits from its day-3 card, anything else from its report.
pub async fn undecided_since(
    conn: &mut SqliteConnection,
    since_ms: i64,
    stage: Stage,
) -> Result<Vec<Record>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_RECORD} WHERE NOT EXISTS (SELECT 1 FROM reminders m WHERE m.record_id = r.id AND m.stage = ?)
         AND ((r.state = 'reported' AND r.occurred_at < ?)
              OR (r.state = 'onboarded' AND EXISTS (SELECT 1 FROM cards c WHERE c.record_id = r.id
                  AND c.purpose = 'onjob' AND c.created_at < ?)))
         ORDER BY r.id"
    )))
    .bind(stage)
    .bind(since_ms)
    .bind(since_ms)
    .fetch_all(conn)
    .await
}

pub async fn mark_reminded(
    conn: &mut SqliteConnection,
    record_id: i64,
    stage: Stage,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO reminders (record_id, stage, sent_at) VALUES (?, ?, ?)")
        .bind(record_id)
        .bind(stage)
        .bind(at_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// A record the audit group should look at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewItem {
    pub id: i64,
    pub kind: RecordKind,
    pub what: Option<String>,
    pub reporter_name: String,
    pub points: i64,
    pub state: RecordState,
    pub reason: Option<String>,
    pub escalated: bool,
}

/// A contest's records still waiting for a decision, and its voided ones.
pub async fn contest_review(conn: &mut SqliteConnection, contest: &str) -> Result<Vec<ReviewItem>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.kind, COALESCE(s.name, json_extract(r.fields, '$.姓名')) AS what, p.name AS reporter_name,
                r.points, r.state, CASE r.state WHEN 'voided' THEN r.void_reason ELSE r.reason END AS reason,
                EXISTS (SELECT 1 FROM reminders m WHERE m.record_id = r.id AND m.stage = 'escalate') AS escalated
         FROM records r JOIN contest_members m ON m.userid = r.reporter AND m.contest_id = ?
         JOIN contests c ON c.id = m.contest_id JOIN people p ON p.userid = r.reporter
         LEFT JOIN subjects s ON s.id = r.subject_id
         WHERE r.state IN ('reported', 'onboarded', 'agreed', 'voided')
           AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
           AND r.occurred_at >= MAX(c.start_at, m.joined_at) AND r.occurred_at < c.cutoff_at
         ORDER BY r.state = 'voided', r.id",
    )
    .bind(contest)
    .fetch_all(conn)
    .await
}
