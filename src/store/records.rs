//! Records, and the clients and channels (subjects) they claim.

use crate::domain::kind::RecordKind;
use crate::domain::lookalike::Space;
use crate::domain::names::{deletions, head, parts, prefix_end, windows};
use crate::domain::org::DeptKind;
use crate::domain::record::{LeadStages, Mode, RecordState};
use crate::store::directory::Person;
use crate::store::sql;
use crate::store::sql::Engine;
use crate::store::{Conn, names};
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

    /// The look-alike test's name space.
    pub fn space(self) -> Space {
        match self {
            Family::Client => Space::Client,
            Family::Channel => Space::Channel,
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
crate::direct_row!(Subject { id, name, credit_code, origin });

pub async fn subject_by_code(conn: &mut Conn, family: Family, code: &str) -> Result<Option<Subject>, sqlx::Error> {
    sql::query_as("SELECT id, name, credit_code, origin FROM subjects WHERE family = ? AND credit_code = ?")
        .bind(family)
        .bind(code)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn subject_by_name(conn: &mut Conn, family: Family, name_key: &str) -> Result<Option<Subject>, sqlx::Error> {
    sql::query_as("SELECT id, name, credit_code, origin FROM subjects WHERE family = ? AND name_key = ?")
        .bind(family)
        .bind(name_key)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn insert_subject(
    conn: &mut Conn,
    family: Family,
    name: &str,
    name_key: &str,
    credit_code: Option<&str>,
    origin: Origin,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    let id = sql::query_scalar(
        "INSERT INTO subjects (family, name, name_key, credit_code, origin, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(family)
    .bind(name)
    .bind(name_key)
    .bind(credit_code)
    .bind(origin)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    index_subject(conn, family.code(), id, name_key).await?;
    Ok(id)
}

pub async fn set_subject_code(conn: &mut Conn, id: i64, code: &str) -> Result<(), sqlx::Error> {
    sql::query("UPDATE subjects SET credit_code = ? WHERE id = ?").bind(code).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Whether a channel can be named by a placement: an existing (old) channel, or one
/// reported and not rejected or voided.
pub async fn channel_is_live(conn: &mut Conn, subject_id: i64) -> Result<bool, sqlx::Error> {
    sql::query_scalar(
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
pub async fn insert(conn: &mut Conn, r: &NewRecord) -> Result<i64, sqlx::Error> {
    let id = sql::query_scalar(
        "INSERT INTO records (kind, mode, reporter, reporter_dept, reporter_class, closer, closer_dept, closer_class,
             subject_id, claim_slot, channel_id, onboard_date, person_key, amount_fen, fields, points, stage_rule,
             state, occurred_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    .fetch_one(&mut *conn)
    .await?;
    if let Some(key) = &r.person_key {
        add_variants(conn, "person", id, key).await?;
    }
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
crate::direct_row!(Claim { record_id, reporter, reporter_name, occurred_at, state });

/// Who holds a claim, from `records r` joined with its reporter `p`.
const SELECT_CLAIM: &str = "SELECT r.id AS record_id, r.reporter, p.name AS reporter_name, r.occurred_at, r.state
     FROM records r JOIN people p ON p.userid = r.reporter";

#[instrument(level = "debug", skip(conn))]
/// The live claim of a subject and slot, other than record `except` (being edited).
pub async fn live_claim(
    conn: &mut Conn,
    subject_id: i64,
    slot: &str,
    except: Option<i64>,
) -> Result<Option<Claim>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_CLAIM} WHERE r.subject_id = ? AND r.claim_slot = ? AND r.id IS DISTINCT FROM ?
           AND r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')"
    )))
    .bind(subject_id)
    .bind(slot)
    .bind(except)
    .fetch_optional(&mut *conn)
    .await
}

/// The live placement of this person (core name) onboarding on this day, other than
/// record `except`.
pub async fn live_placement(
    conn: &mut Conn,
    person_key: &str,
    onboard_date: &str,
    except: Option<i64>,
) -> Result<Option<Claim>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_CLAIM} WHERE r.kind = 'placement' AND r.person_key = ? AND r.onboard_date = ? AND r.id IS DISTINCT FROM ?
           AND r.state IN ('onboarded', 'confirmed')"
    )))
    .bind(person_key)
    .bind(onboard_date)
    .bind(except)
    .fetch_optional(&mut *conn)
    .await
}

/// The first record that names a subject.
pub async fn first_record_of(conn: &mut Conn, subject_id: i64) -> Result<Option<i64>, sqlx::Error> {
    sql::query_scalar("SELECT MIN(id) FROM records WHERE subject_id = ?").bind(subject_id).fetch_one(conn).await
}

/// Whether any record (other than `except`) names this subject.
pub async fn subject_has_records(conn: &mut Conn, subject_id: i64, except: Option<i64>) -> Result<bool, sqlx::Error> {
    sql::query_scalar("SELECT EXISTS (SELECT 1 FROM records WHERE subject_id = ? AND id IS DISTINCT FROM ?)")
        .bind(subject_id)
        .bind(except)
        .fetch_one(conn)
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
crate::direct_row!(Summary { id, kind, subject, fields, points, state, counts, occurred_at });

/// A reporter's records that occurred in `[from_ms, to_ms)`, oldest first, with whether
/// each counts now.
#[instrument(level = "debug", skip(conn))]
pub async fn reported_between(
    conn: &mut Conn,
    reporter: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Summary>, sqlx::Error> {
    sql::query_as(
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
crate::direct_row!(Closed { reporter_name, closer_class; flatten record });

/// The records `closer` closed as 接手 that occurred in `[from_ms, to_ms)`, oldest first.
#[instrument(level = "debug", skip(conn))]
pub async fn closed_between(
    conn: &mut Conn,
    closer: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Closed>, sqlx::Error> {
    sql::query_as(
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
    conn: &mut Conn,
    names: &[(String, String)],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for (name, key) in names {
        let added: Option<i64> = sql::query_scalar(
            "INSERT INTO subjects (family, name, name_key, origin, created_at) VALUES ('channel', ?, ?, 'existing', ?)
             ON CONFLICT (family, name_key) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(key)
        .bind(now_ms)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = added {
            index_subject(conn, "channel", id, key).await?;
        }
    }
    Ok(())
}

/// A record as stored, with its reporter's name and what it claims.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
crate::direct_row!(Record {
    id,
    kind,
    mode,
    reporter,
    reporter_name,
    closer,
    subject_id,
    subject,
    channel_id,
    onboard_date,
    fields,
    points,
    state,
    occurred_at,
    decided_by,
    decided_by_name,
    decided_at,
    reason,
    base_for,
    voided_from,
    voided_by_name,
    voided_at,
    void_reason
});

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
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Record>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!("{SELECT_RECORD} WHERE r.id = ?"))).bind(id).fetch_optional(conn).await
}

/// Moves a record from `from` to `to` if it is still in `from` (compare-and-set: of two
/// deciders, exactly one succeeds). Returns whether it moved.
#[instrument(level = "debug", skip(conn))]
pub async fn transition(
    conn: &mut Conn,
    id: i64,
    from: RecordState,
    to: RecordState,
    by: &str,
    at_ms: i64,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sql::query(
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
async fn recount_around(conn: &mut Conn, id: i64) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = sql::query_scalar(
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
pub async fn void(conn: &mut Conn, id: i64, by: &str, at_ms: i64, reason: &str) -> Result<bool, sqlx::Error> {
    let done = sql::query(
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
pub async fn restore(conn: &mut Conn, id: i64) -> Result<bool, sqlx::Error> {
    let done = sql::query(
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

pub async fn set_reason(conn: &mut Conn, id: i64, reason: &str) -> Result<(), sqlx::Error> {
    sql::query("UPDATE records SET reason = ? WHERE id = ?").bind(reason).bind(id).execute(conn).await?;
    Ok(())
}

/// Records a transfer's closer, with their department now, unless one is recorded;
/// whether it was set.
pub async fn set_closer(conn: &mut Conn, id: i64, closer: &Person) -> Result<bool, sqlx::Error> {
    let done =
        sql::query("UPDATE records SET closer = ?, closer_dept = ?, closer_class = ? WHERE id = ? AND closer IS NULL")
            .bind(&closer.userid)
            .bind(closer.department_id)
            .bind(closer.kind)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The live channel record (agreement) for a channel subject, if any.
pub async fn channel_record(conn: &mut Conn, subject_id: i64) -> Result<Option<Record>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_RECORD} WHERE r.subject_id = ? AND r.claim_slot = 'channel' AND r.state IN ('reported', 'agreed', 'confirmed')"
    )))
    .bind(subject_id)
    .fetch_optional(conn)
    .await
}

/// How many confirmed placements already serve as a channel record's base indicator.
pub async fn base_count(conn: &mut Conn, channel_record: i64) -> Result<i64, sqlx::Error> {
    sql::query_scalar("SELECT COUNT(*) FROM records WHERE base_for = ? AND state = 'confirmed'")
        .bind(channel_record)
        .fetch_one(conn)
        .await
}

pub async fn set_base_for(conn: &mut Conn, placement: i64, channel_record: i64) -> Result<(), sqlx::Error> {
    sql::query("UPDATE records SET base_for = ? WHERE id = ?")
        .bind(channel_record)
        .bind(placement)
        .execute(&mut *conn)
        .await?;
    // Its points are now the channel's: it stops counting as a placement.
    recount_around(conn, placement).await
}

/// Makes a placement count as a placement again (no longer a channel's base).
pub async fn clear_base_for(conn: &mut Conn, placement: i64) -> Result<(), sqlx::Error> {
    sql::query("UPDATE records SET base_for = NULL WHERE id = ?").bind(placement).execute(&mut *conn).await?;
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
pub async fn placements_due(conn: &mut Conn, due_onboard_date: &str) -> Result<Vec<Record>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
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
pub async fn undecided_since(conn: &mut Conn, since_ms: i64, stage: Stage) -> Result<Vec<Record>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
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

pub async fn mark_reminded(conn: &mut Conn, record_id: i64, stage: Stage, at_ms: i64) -> Result<(), sqlx::Error> {
    sql::query("INSERT INTO reminders (record_id, stage, sent_at) VALUES (?, ?, ?)")
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
    pub occurred_at: i64,
    pub escalated: bool,
    /// An appeal against its rejection is open.
    pub appealed: bool,
    /// It is flagged (a look-alike name, a credit code bound elsewhere).
    pub flagged: bool,
    /// The contests not yet final it counts in (ids, comma-separated), if any.
    pub contests: Option<String>,
}
crate::direct_row!(ReviewItem {
    id,
    kind,
    what,
    reporter_name,
    points,
    state,
    reason,
    occurred_at,
    escalated,
    appealed,
    flagged,
    contests
});

/// What review lists select, from `records r` with reporter `p` and subject `s`.
const SELECT_REVIEW: &str = "SELECT r.id, r.kind, COALESCE(s.name, json_extract(r.fields, '$.姓名')) AS what,
        p.name AS reporter_name, r.points, r.state, r.occurred_at,
        CASE r.state WHEN 'voided' THEN r.void_reason ELSE r.reason END AS reason,
        EXISTS (SELECT 1 FROM reminders m WHERE m.record_id = r.id AND m.stage = 'escalate') AS escalated,
        EXISTS (SELECT 1 FROM appeals a WHERE a.record_id = r.id AND a.state = 'open') AS appealed,
        (r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')
            AND EXISTS (SELECT 1 FROM record_flags f WHERE f.record_id = r.id)) AS flagged,
        (SELECT group_concat(DISTINCT c.id) FROM contest_stints st JOIN contests c ON c.id = st.contest_id
         WHERE st.userid = r.reporter AND c.state != 'final'
           AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
           AND r.occurred_at >= MAX(c.start_at, st.from_at)
           AND r.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))) AS contests
     FROM records r JOIN people p ON p.userid = r.reporter LEFT JOIN subjects s ON s.id = r.subject_id";

/// 待审 over the whole programme: records undecided since before `waiting_since_ms`
/// (a placement from its day-3 card), open appeals, records rejected or voided that
/// occurred since `closed_since_ms`, and flagged live claims.
pub async fn programme_review(
    conn: &mut Conn,
    waiting_since_ms: i64,
    closed_since_ms: i64,
) -> Result<Vec<ReviewItem>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_REVIEW}
         WHERE (r.state = 'reported' AND r.occurred_at < ?)
            OR (r.state = 'onboarded' AND EXISTS (SELECT 1 FROM cards c WHERE c.record_id = r.id
                AND c.purpose = 'onjob' AND c.created_at < ?))
            OR EXISTS (SELECT 1 FROM appeals a WHERE a.record_id = r.id AND a.state = 'open')
            OR (r.state IN ('rejected', 'voided') AND r.occurred_at >= ?)
            OR (r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')
                AND EXISTS (SELECT 1 FROM record_flags f WHERE f.record_id = r.id))
         ORDER BY r.id"
    )))
    .bind(waiting_since_ms)
    .bind(waiting_since_ms)
    .bind(closed_since_ms)
    .fetch_all(conn)
    .await
}

/// A contest's records that could still change its ranking: undecided (or waiting for
/// a channel's base indicator), or rejected with an appeal open.
pub async fn contest_undecided(conn: &mut Conn, contest: &str) -> Result<Vec<ReviewItem>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_REVIEW}
         JOIN contest_stints cm ON cm.userid = r.reporter AND cm.contest_id = ?
         JOIN contests cc ON cc.id = cm.contest_id
         WHERE (r.state IN ('reported', 'onboarded', 'agreed')
                OR EXISTS (SELECT 1 FROM appeals a WHERE a.record_id = r.id AND a.state = 'open'))
           AND instr(',' || cc.kinds || ',', ',' || r.kind || ',') > 0
           AND r.occurred_at >= MAX(cc.start_at, cm.from_at)
           AND r.occurred_at < MIN(cc.cutoff_at, COALESCE(cm.to_at, cc.cutoff_at))
         ORDER BY r.id"
    )))
    .bind(contest)
    .fetch_all(conn)
    .await
}

/// What an edit (修改) changes in a pending record: its claim and its fields.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub mode: Mode,
    pub closer: Option<&'a Person>,
    pub subject_id: Option<i64>,
    pub channel_id: Option<i64>,
    pub onboard_date: Option<&'a str>,
    pub person_key: Option<&'a str>,
    pub amount_fen: Option<i64>,
    pub fields: &'a serde_json::Value,
}

/// Rewrites a pending record's content (compare-and-set on its state). A claim taken
/// meanwhile fails on the first-claim indexes, as an insert does.
pub async fn set_content(conn: &mut Conn, id: i64, state: RecordState, c: &Content<'_>) -> Result<bool, sqlx::Error> {
    let done = sql::query(
        "UPDATE records SET mode = ?, closer = ?, closer_dept = ?, closer_class = ?, subject_id = ?, channel_id = ?,
             onboard_date = ?, person_key = ?, amount_fen = ?, fields = ?
         WHERE id = ? AND state = ?",
    )
    .bind(c.mode)
    .bind(c.closer.map(|p| &p.userid))
    .bind(c.closer.map(|p| p.department_id))
    .bind(c.closer.map(|p| p.kind))
    .bind(c.subject_id)
    .bind(c.channel_id)
    .bind(c.onboard_date)
    .bind(c.person_key)
    .bind(c.amount_fen)
    .bind(c.fields.to_string())
    .bind(id)
    .bind(state)
    .execute(&mut *conn)
    .await?;
    if let Some(key) = c.person_key.filter(|_| done.rows_affected() == 1) {
        add_variants(conn, "person", id, key).await?;
    }
    Ok(done.rows_affected() == 1)
}

/// The claims the look-alike test reads: live records of look-alike subjects of the
/// family, by their subjects' ids (on SQLite the index in memory found them,
/// `store::names`).
const LOOK_ALIKE_NAMES: &str = "SELECT MIN(r.id) AS record_id, s.name AS subject, s.name_key, p.name AS reporter_name
     FROM subjects s JOIN records r ON r.subject_id = s.id JOIN people p ON p.userid = r.reporter
     WHERE s.id IN (SELECT value FROM json_each(?3)) AND s.family = ?1 AND s.id != ?2
       AND r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')
     GROUP BY s.id ORDER BY s.id LIMIT 10";

/// On PostgreSQL: the same claims, found through the index tables (migration 0106), by
/// `DISTINCT ON` (PostgreSQL has no bare columns beside `MIN`).
const LOOK_ALIKE_NAMES_PG: &str = "SELECT DISTINCT ON (s.id) r.id AS record_id, s.name AS subject, s.name_key,
         p.name AS reporter_name
     FROM subjects s JOIN records r ON r.subject_id = s.id JOIN people p ON p.userid = r.reporter
     WHERE s.family = ?1 AND s.id != ?2 AND r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')
       AND s.id IN (
           SELECT owner FROM name_parts WHERE space = ?1 AND part >= ?3 AND part < ?6
           UNION SELECT id FROM subjects WHERE family = ?1
               AND substr(name_key, 1, 8) IN (SELECT value FROM json_each(?5))
           UNION SELECT owner FROM name_variants
               WHERE space = ?1 AND variant IN (SELECT value FROM json_each(?4)))
     ORDER BY s.id, r.id LIMIT 10";

/// A live claim of the same family, for the look-alike test: its record, what it
/// claims and the claimed name's core.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveName {
    pub record_id: i64,
    pub subject: String,
    pub name_key: String,
    pub reporter_name: String,
}
crate::direct_row!(LiveName { record_id, subject, name_key, reporter_name });

/// On SQLite: the owners in `space` whose name looks like `key` (from the index in
/// memory), as the JSON array the statements here take; None when there are none.
async fn look_alike_ids(conn: &mut Conn, space: Space, key: &str) -> Result<Option<String>, sqlx::Error> {
    let ids = names::look_alikes(conn, space, key).await?;
    Ok((!ids.is_empty()).then(|| serde_json::to_string(&ids).unwrap_or_default()))
}

/// Live claims of a family (other than `except_subject`'s) whose core name looks like
/// `key` (contains it, is inside it, or is one edit apart): the look-alike test's
/// candidates, all by index (on PostgreSQL also some that do not look alike; the caller
/// checks each with `names::looks_alike`).
pub async fn look_alike_names(
    conn: &mut Conn,
    family: Family,
    key: &str,
    except_subject: i64,
) -> Result<Vec<LiveName>, sqlx::Error> {
    if conn.engine() == Engine::Sqlite {
        let Some(ids) = look_alike_ids(conn, family.space(), key).await? else { return Ok(Vec::new()) };
        return sql::query_as(LOOK_ALIKE_NAMES).bind(family).bind(except_subject).bind(ids).fetch_all(conn).await;
    }
    let head = head(key);
    sql::query_as(LOOK_ALIKE_NAMES_PG)
        .bind(family)
        .bind(except_subject)
        .bind(&head)
        .bind(serde_json::to_string(&deletions(key)).unwrap_or_default())
        .bind(serde_json::to_string(&parts(key)).unwrap_or_default())
        .bind(head.as_deref().map(prefix_end))
        .fetch_all(conn)
        .await
}

const LOOK_ALIKE_SUBJECTS: &str = "SELECT id, name, name_key FROM subjects
         WHERE id IN (SELECT value FROM json_each(?2)) AND family = ?1 ORDER BY id LIMIT 10";

const LOOK_ALIKE_SUBJECTS_PG: &str = "SELECT id, name, name_key FROM subjects
         WHERE family = ?1 AND id IN (
             SELECT owner FROM name_parts WHERE space = ?1 AND part >= ?2 AND part < ?5
             UNION SELECT id FROM subjects WHERE family = ?1
                 AND substr(name_key, 1, 8) IN (SELECT value FROM json_each(?4))
             UNION SELECT owner FROM name_variants WHERE space = ?1
                 AND variant IN (SELECT value FROM json_each(?3)))
         ORDER BY id LIMIT 10";

/// A known subject with a similar name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SimilarSubject {
    pub id: i64,
    pub name: String,
    pub name_key: String,
}
crate::direct_row!(SimilarSubject { id, name, name_key });

/// Subjects of a family (claimed or not, e.g. old channels) whose core name looks like
/// `key` (on PostgreSQL also some that do not: the caller checks).
pub async fn look_alike_subjects(
    conn: &mut Conn,
    family: Family,
    key: &str,
) -> Result<Vec<SimilarSubject>, sqlx::Error> {
    if conn.engine() == Engine::Sqlite {
        let Some(ids) = look_alike_ids(conn, family.space(), key).await? else { return Ok(Vec::new()) };
        return sql::query_as(LOOK_ALIKE_SUBJECTS).bind(family).bind(ids).fetch_all(conn).await;
    }
    let head = head(key);
    sql::query_as(LOOK_ALIKE_SUBJECTS_PG)
        .bind(family)
        .bind(&head)
        .bind(serde_json::to_string(&deletions(key)).unwrap_or_default())
        .bind(serde_json::to_string(&parts(key)).unwrap_or_default())
        .bind(head.as_deref().map(prefix_end))
        .fetch_all(conn)
        .await
}

/// Live placements (other than `except`) among the records the first argument names,
/// for [`look_alike_people`].
macro_rules! look_alike_placements {
    ($owners:literal) => {
        concat!(
            "SELECT r.id AS record_id, json_extract(r.fields, '$.姓名') AS subject, r.person_key AS name_key,
                    p.name AS reporter_name
             FROM records r JOIN people p ON p.userid = r.reporter
             WHERE r.id IN (",
            $owners,
            ") AND r.kind = 'placement' AND r.person_key IS NOT NULL AND r.state IN ('onboarded', 'confirmed')
               AND r.id IS DISTINCT FROM ?
             ORDER BY r.id LIMIT 10"
        )
    };
}

/// Live placements (other than `except`) whose placed person's core name looks like
/// `key` (on PostgreSQL: shares one of its deletions; the caller checks).
pub async fn look_alike_people(conn: &mut Conn, key: &str, except: Option<i64>) -> Result<Vec<LiveName>, sqlx::Error> {
    let (statement, owners) = match conn.engine() {
        Engine::Sqlite => {
            let Some(ids) = look_alike_ids(conn, Space::Person, key).await? else { return Ok(Vec::new()) };
            (look_alike_placements!("SELECT value FROM json_each(?)"), ids)
        }
        Engine::Postgres => (
            look_alike_placements!(
                "SELECT owner FROM name_variants WHERE space = 'person' AND variant IN (SELECT value FROM json_each(?))"
            ),
            serde_json::to_string(&deletions(key)).unwrap_or_default(),
        ),
    };
    sql::query_as(statement).bind(owners).bind(except).fetch_all(conn).await
}

/// Indexes a claimed core name for the look-alike test (on PostgreSQL: on SQLite,
/// `name_log`'s triggers tell the index in memory).
async fn add_variants(conn: &mut Conn, space: &str, owner: i64, key: &str) -> Result<(), sqlx::Error> {
    if conn.engine() == Engine::Sqlite {
        return Ok(());
    }
    let mut batch = sql::Batch::new();
    push_variants(&mut batch, space, owner, key);
    batch.execute(conn).await.map(drop)
}

fn push_variants(batch: &mut sql::Batch, space: &str, owner: i64, key: &str) {
    let insert = "INSERT INTO name_variants (space, variant, owner) SELECT ?, value, ? FROM json_each(?)";
    push_each(batch, insert, space, owner, &deletions(key));
}

/// One row `(space, value, owner)` for each of `values`, by `insert` in one statement.
fn push_each(batch: &mut sql::Batch, insert: &'static str, space: &str, owner: i64, values: &[String]) {
    if !values.is_empty() {
        let values = serde_json::to_string(values).unwrap_or_default();
        batch.push(sql::query(insert).bind(space).bind(owner).bind(values));
    }
}

/// Indexes a subject's core name for the look-alike test: its one-edit variants and
/// its windows (the containment index), in one call (on PostgreSQL, as above).
async fn index_subject(conn: &mut Conn, family: &str, owner: i64, key: &str) -> Result<(), sqlx::Error> {
    if conn.engine() == Engine::Sqlite {
        return Ok(());
    }
    let mut batch = sql::Batch::new();
    push_variants(&mut batch, family, owner, key);
    let insert = "INSERT INTO name_parts (space, part, owner) SELECT ?, value, ? FROM json_each(?)";
    push_each(&mut batch, insert, family, owner, &windows(key));
    batch.execute(conn).await.map(drop)
}

/// Rebuilds the look-alike index from the stored core names.
async fn rebuild_variants(conn: &mut Conn) -> Result<(), sqlx::Error> {
    sql::query("DELETE FROM name_variants").execute(&mut *conn).await?;
    sql::query("DELETE FROM name_parts").execute(&mut *conn).await?;
    let subjects: Vec<(String, i64, String)> =
        sql::query_as("SELECT family, id, name_key FROM subjects").fetch_all(&mut *conn).await?;
    for (family, id, key) in subjects {
        index_subject(conn, &family, id, &key).await?;
    }
    let people: Vec<(i64, String)> =
        sql::query_as("SELECT id, person_key FROM records WHERE kind = 'placement' AND person_key IS NOT NULL")
            .fetch_all(&mut *conn)
            .await?;
    for (id, key) in people {
        add_variants(conn, "person", id, &key).await?;
    }
    Ok(())
}

/// Why a record was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// Its name looks like an earlier live claim's.
    LookAlike,
    /// Its credit code is bound to a different company name.
    CreditCode,
    /// A referral whose old client no record knows (it may predate the programme).
    UnknownClient,
}

impl FlagKind {
    pub fn code(self) -> &'static str {
        match self {
            FlagKind::LookAlike => "lookalike",
            FlagKind::CreditCode => "credit_code",
            FlagKind::UnknownClient => "unknown_client",
        }
    }

    pub fn parse(code: &str) -> Option<FlagKind> {
        [FlagKind::LookAlike, FlagKind::CreditCode, FlagKind::UnknownClient].into_iter().find(|k| k.code() == code)
    }
}

/// A flag on a record, naming the earlier record it is about.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Flag {
    pub record_id: i64,
    pub other_id: Option<i64>,
    pub kind: FlagKind,
    pub detail: String,
}
crate::direct_row!(Flag { record_id, other_id, kind, detail });

pub async fn insert_flag(conn: &mut Conn, flag: &Flag, now_ms: i64) -> Result<(), sqlx::Error> {
    sql::query("INSERT INTO record_flags (record_id, other_id, kind, detail, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(flag.record_id)
        .bind(flag.other_id)
        .bind(flag.kind)
        .bind(&flag.detail)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn flags_of(conn: &mut Conn, record_id: i64) -> Result<Vec<Flag>, sqlx::Error> {
    sql::query_as("SELECT record_id, other_id, kind, detail FROM record_flags WHERE record_id = ? ORDER BY rowid")
        .bind(record_id)
        .fetch_all(conn)
        .await
}

/// Drops a record's flags (its claim changed; the new one is flagged afresh).
pub async fn clear_flags(conn: &mut Conn, record_id: i64) -> Result<(), sqlx::Error> {
    sql::query("DELETE FROM record_flags WHERE record_id = ?").bind(record_id).execute(conn).await?;
    Ok(())
}

/// Recomputes the stored core names of subjects and placed people with `key` (after
/// the normaliser changed). Where two subjects now share a core name the earlier one
/// keeps it and the later one is keyed apart (`core#id`), so neither's history
/// changes; such a later placement gets no key (it is not compared, as placements
/// recorded before keys existed). PostgreSQL's look-alike index is rebuilt when
/// anything changed (or was never built); on SQLite `name_log` has the new names.
/// Returns how many rows changed.
pub async fn rekey(conn: &mut Conn, key: impl Fn(&str) -> String) -> Result<u64, sqlx::Error> {
    let mut changed = 0;
    let subjects: Vec<(i64, String, String, String)> =
        sql::query_as("SELECT id, family, name, name_key FROM subjects ORDER BY id").fetch_all(&mut *conn).await?;
    let mut taken = std::collections::HashSet::new();
    for (_, family, _, stored) in &subjects {
        taken.insert((family.clone(), stored.clone()));
    }
    for (id, family, name, stored) in subjects {
        let mut new = key(&name);
        if new == stored {
            continue;
        }
        if taken.contains(&(family.clone(), new.clone())) {
            new = format!("{new}#{id}");
        }
        sql::query("UPDATE subjects SET name_key = ? WHERE id = ?").bind(&new).bind(id).execute(&mut *conn).await?;
        taken.remove(&(family.clone(), stored));
        taken.insert((family, new));
        changed += 1;
    }
    let people: Vec<(i64, String, String)> = sql::query_as(
        "SELECT id, json_extract(fields, '$.姓名'), person_key FROM records
         WHERE kind = 'placement' AND person_key IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, name, stored) in people {
        let new = key(&name);
        if new == stored {
            continue;
        }
        let moved = sql::query("UPDATE OR IGNORE records SET person_key = ? WHERE id = ?")
            .bind(&new)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        if moved.rows_affected() == 0 {
            sql::query("UPDATE records SET person_key = NULL WHERE id = ?").bind(id).execute(&mut *conn).await?;
        }
        changed += 1;
    }
    if conn.engine() == Engine::Sqlite {
        // The changed names are in `name_log`, by its triggers.
        return Ok(changed);
    }
    let indexed: bool = sql::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM name_variants) AND EXISTS (SELECT 1 FROM name_parts)
             OR NOT EXISTS (SELECT 1 FROM subjects WHERE length(name_key) >= 2)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let claimed: bool = sql::query_scalar("SELECT EXISTS (SELECT 1 FROM subjects)").fetch_one(&mut *conn).await?;
    if changed > 0 || (claimed && !indexed) {
        rebuild_variants(conn).await?;
    }
    Ok(changed)
}

/// A channel record's confirmed placements through its channel that are not the base of
/// any channel yet, oldest first (to take a voided base placement's place).
pub async fn spare_placements(conn: &mut Conn, channel_record: i64) -> Result<Vec<i64>, sqlx::Error> {
    sql::query_scalar(
        "SELECT p.id FROM records p JOIN records c ON c.id = ?
         WHERE p.kind = 'placement' AND p.channel_id = c.subject_id AND p.state = 'confirmed' AND p.base_for IS NULL
         ORDER BY p.decided_at, p.id",
    )
    .bind(channel_record)
    .fetch_all(conn)
    .await
}

/// Records any live record of `subject_id` other than `except` claims, with the slot.
pub async fn other_live_claims(
    conn: &mut Conn,
    subject_id: i64,
    except: Option<i64>,
) -> Result<Vec<(String, Claim)>, sqlx::Error> {
    let rows: Vec<(String, i64, String, String, i64, RecordState)> = sql::query_as(
        "SELECT r.claim_slot, r.id, r.reporter, p.name, r.occurred_at, r.state
         FROM records r JOIN people p ON p.userid = r.reporter
         WHERE r.subject_id = ? AND r.claim_slot IS NOT NULL AND r.id IS DISTINCT FROM ?
           AND r.state IN ('reported', 'onboarded', 'agreed', 'confirmed')
         ORDER BY r.id",
    )
    .bind(subject_id)
    .bind(except)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(slot, record_id, reporter, reporter_name, occurred_at, state)| {
            (slot, Claim { record_id, reporter, reporter_name, occurred_at, state })
        })
        .collect())
}

/// What waits for a confirmer: handoffs of `kinds` reported by others, and placements
/// onboarded on or before `due_onboard_date` (their day-3 check is due), oldest first.
pub async fn waiting_for(
    conn: &mut Conn,
    kinds: &[RecordKind],
    confirmer: &str,
    due_onboard_date: &str,
) -> Result<Vec<Record>, sqlx::Error> {
    let codes: Vec<&str> = kinds.iter().map(|k| k.code()).collect();
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_RECORD} WHERE r.reporter != ? AND instr(?, ',' || r.kind || ',') > 0
         AND ((r.state = 'reported' AND r.kind != 'placement')
              OR (r.state = 'onboarded' AND r.onboard_date <= ?))
         ORDER BY r.id"
    )))
    .bind(confirmer)
    .bind(format!(",{},", codes.join(",")))
    .bind(due_onboard_date)
    .fetch_all(conn)
    .await
}

/// What the console's 审核 page filters on; `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A contest id (not final): records that count in it.
    pub contest: Option<String>,
    pub state: Option<RecordState>,
    pub kind: Option<RecordKind>,
    /// The reporter's department.
    pub department: Option<i64>,
    /// Occurred in `[from_ms, to_ms)`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only claims flagged as look-alikes (or otherwise flagged).
    pub flagged: bool,
}

/// Records matching `filter`, newest first, at most `limit`.
#[instrument(level = "debug", skip(conn))]
pub async fn audit_search(conn: &mut Conn, filter: &AuditFilter, limit: i64) -> Result<Vec<ReviewItem>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({SELECT_REVIEW}
            WHERE (?1 IS NULL OR r.state = ?1) AND (?2 IS NULL OR r.kind = ?2)
              AND (?3 IS NULL OR p.department_id = ?3)
              AND (?4 IS NULL OR r.occurred_at >= ?4) AND (?5 IS NULL OR r.occurred_at < ?5)) AS found
         WHERE (?6 IS NULL OR instr(',' || COALESCE(found.contests, '') || ',', ',' || ?6 || ',') > 0)
           AND (?7 = 0 OR found.flagged)
         ORDER BY found.id DESC LIMIT ?8"
    )))
    .bind(filter.state.map(RecordState::code))
    .bind(filter.kind.map(RecordKind::code))
    .bind(filter.department)
    .bind(filter.from_ms)
    .bind(filter.to_ms)
    .bind(filter.contest.as_deref())
    .bind(filter.flagged)
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The look-alike test finds its candidates by index: it ran on every report, and a
    /// scan of every claimed name grows with the programme.
    #[tokio::test]
    async fn the_look_alike_candidates_are_found_without_a_scan_of_the_names() {
        for sql in [LOOK_ALIKE_NAMES, LOOK_ALIKE_SUBJECTS] {
            let plan = crate::store::query_plan(sql).await;
            let scans: Vec<&String> = plan.iter().filter(|d| d.starts_with("SCAN")).collect();
            assert!(scans.iter().all(|d| d.contains("json_each")), "{sql}: {plan:?}");
        }
    }

    /// Names stored before the look-alike index was held are found: on PostgreSQL a
    /// database from before the containment index gets it at startup (`rekey` runs
    /// then); on SQLite a process builds its index from `name_log` (here: the index
    /// this process held is forgotten, as a new process has none).
    #[tokio::test]
    async fn the_look_alike_index_is_built_for_names_stored_before_it() {
        let (db, _dir) = crate::store::testing::test_db().await;
        let mut conn = db.begin().await.unwrap();
        for key in ["杭州职业技术学院", "宁波大学"] {
            insert_subject(&mut conn, Family::Channel, key, key, None, Origin::Existing, 0).await.unwrap();
        }
        let key = "职业技术学院";
        match conn.engine() {
            Engine::Postgres => {
                sql::query("DELETE FROM name_parts").execute(&mut *conn).await.unwrap();
                // Inside a stored name: found through the stored name's parts only.
                assert!(look_alike_subjects(&mut conn, Family::Channel, key).await.unwrap().is_empty());
            }
            Engine::Sqlite => {
                conn.commit().await.unwrap();
                names::forget_all();
                conn = db.begin().await.unwrap();
            }
        }
        assert_eq!(rekey(&mut conn, |name| name.to_owned()).await.unwrap(), 0);
        let similar = look_alike_subjects(&mut conn, Family::Channel, key).await.unwrap();
        assert_eq!(similar.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["杭州职业技术学院"]);
    }
}
