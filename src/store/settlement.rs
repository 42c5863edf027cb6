//! What a monthly settlement reads (confirmed records, targets achieved, PK payouts,
//! referrals) and the record of each settlement run.

use crate::domain::kind::RecordKind;
use crate::domain::org::DeptKind;
use crate::domain::record::Mode;
use crate::store::Conn;
use crate::store::records::Origin;
use crate::store::sql;

/// Whether a person (`p`) is a confirmer or a manager (经理 and above): their monthly
/// target is only the one configured for them.
const LEAD: &str = "(p.confirmer = 1 OR p.level IN ('manager', 'director', 'vp', 'gm'))";

/// A confirmed record of the month with everything its reward depends on, and what the
/// settlement shows about it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RewardRow {
    pub id: i64,
    pub kind: RecordKind,
    pub mode: Mode,
    pub reporter: String,
    pub reporter_name: String,
    pub reporter_no: Option<String>,
    pub reporter_lead: bool,
    pub reporter_class: DeptKind,
    pub reporter_dept_id: i64,
    pub reporter_dept: String,
    pub closer: Option<String>,
    pub closer_name: Option<String>,
    pub closer_no: Option<String>,
    pub closer_lead: Option<bool>,
    pub closer_class: Option<DeptKind>,
    pub closer_dept_id: Option<i64>,
    pub closer_dept: Option<String>,
    pub amount_fen: Option<i64>,
    /// For placements: NULL (self-recruited) or the channel's origin.
    pub channel_origin: Option<Origin>,
    pub occurred_at: i64,
    pub decided_at: Option<i64>,
    /// The name of who confirmed it (their userid if no longer in the directory).
    pub decided_by: Option<String>,
    /// A-class: 合同号 as reported.
    pub contract: Option<String>,
}
crate::direct_row!(RewardRow {
    id,
    kind,
    mode,
    reporter,
    reporter_name,
    reporter_no,
    reporter_lead,
    reporter_class,
    reporter_dept_id,
    reporter_dept,
    closer,
    closer_name,
    closer_no,
    closer_lead,
    closer_class,
    closer_dept_id,
    closer_dept,
    amount_fen,
    channel_origin,
    occurred_at,
    decided_at,
    decided_by,
    contract
});

/// The records that count (`counting_records`: confirmed, not a channel's base
/// placement, and under the 'highest' stage rule only a client's highest confirmed
/// stage) that occurred in `[from, to)`: what is paid is exactly what counts for points.
pub async fn confirmed_in(conn: &mut Conn, from: i64, to: i64) -> Result<Vec<RewardRow>, sqlx::Error> {
    let closer_lead = LEAD.replace("p.", "c.");
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.id, r.kind, r.mode, r.reporter, p.name AS reporter_name, p.employee_no AS reporter_no,
                {LEAD} AS reporter_lead, r.reporter_class, r.reporter_dept AS reporter_dept_id,
                COALESCE(d.name, '') AS reporter_dept, r.closer, c.name AS closer_name, c.employee_no AS closer_no,
                CASE WHEN c.userid IS NULL THEN NULL ELSE {closer_lead} END AS closer_lead, r.closer_class,
                r.closer_dept AS closer_dept_id, cd.name AS closer_dept, r.amount_fen, ch.origin AS channel_origin,
                r.occurred_at, r.decided_at, COALESCE(dp.name, r.decided_by) AS decided_by,
                json_extract(r.fields, '$.合同号') AS contract
         FROM counting_records r JOIN people p ON p.userid = r.reporter
         LEFT JOIN departments d ON d.id = r.reporter_dept
         LEFT JOIN people c ON c.userid = r.closer LEFT JOIN departments cd ON cd.id = r.closer_dept
         LEFT JOIN subjects ch ON ch.id = r.channel_id
         LEFT JOIN people dp ON dp.userid = r.decided_by
         WHERE r.occurred_at >= ? AND r.occurred_at < ?
         ORDER BY r.id"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// Records of the month still waiting for a decision.
pub async fn pending_in(conn: &mut Conn, from: i64, to: i64) -> Result<i64, sqlx::Error> {
    sql::query_scalar(
        "SELECT COUNT(*) FROM records WHERE state IN ('reported', 'onboarded', 'agreed')
         AND occurred_at >= ? AND occurred_at < ?",
    )
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
}

/// `(userid, class, points)`: the points each person's counting records of their own
/// department's kinds carry this month (what monthly targets measure).
pub async fn achieved_in(conn: &mut Conn, from: i64, to: i64) -> Result<Vec<(String, DeptKind, i64)>, sqlx::Error> {
    sql::query_as(
        "SELECT reporter, reporter_class, CAST(SUM(points) AS BIGINT) FROM counting_records
         WHERE occurred_at >= ? AND occurred_at < ?
           AND ((reporter_class = 'cs' AND kind IN ('lead_c', 'lead_b', 'lead_a', 'referral'))
             OR (reporter_class = 'tr' AND kind IN ('channel_school', 'channel_agency', 'channel_person', 'placement')))
         GROUP BY reporter, reporter_class ORDER BY reporter",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// The points one person's counting records of `class`'s own kinds carry in `[from,
/// to)` (what their monthly target measures; see [`achieved_in`]).
pub async fn achieved_by(
    conn: &mut Conn,
    userid: &str,
    class: DeptKind,
    from: i64,
    to: i64,
) -> Result<i64, sqlx::Error> {
    sql::query_scalar(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM counting_records
         WHERE reporter = ? AND reporter_class = ? AND occurred_at >= ? AND occurred_at < ?
           AND ((reporter_class = 'cs' AND kind IN ('lead_c', 'lead_b', 'lead_a', 'referral'))
             OR (reporter_class = 'tr' AND kind IN ('channel_school', 'channel_agency', 'channel_person', 'placement')))",
    )
    .bind(userid)
    .bind(class)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
}

/// A PK payout of a contest finalised in the month.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PayoutRow {
    pub contest_id: String,
    pub userid: String,
    pub name: String,
    pub employee_no: Option<String>,
    pub lead: bool,
    pub class: DeptKind,
    pub department_id: i64,
    pub department: String,
    pub rank: i64,
    pub amount_fen: i64,
    pub finalised_at: Option<i64>,
    /// The name of who finalised the contest.
    pub finalised_by: Option<String>,
}
crate::direct_row!(PayoutRow {
    contest_id,
    userid,
    name,
    employee_no,
    lead,
    class,
    department_id,
    department,
    rank,
    amount_fen,
    finalised_at,
    finalised_by
});

pub async fn payouts_finalised_in(conn: &mut Conn, from: i64, to: i64) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT o.contest_id, o.userid, p.name, p.employee_no, {LEAD} AS lead, d.kind AS class,
                p.department_id, d.name AS department, o.rank, o.amount_fen, c.finalised_at,
                COALESCE(f.name, c.finalised_by) AS finalised_by
         FROM contest_payouts o JOIN contests c ON c.id = o.contest_id
         JOIN people p ON p.userid = o.userid JOIN departments d ON d.id = p.department_id
         LEFT JOIN people f ON f.userid = c.finalised_by
         WHERE c.finalised_at >= ? AND c.finalised_at < ? AND o.amount_fen > 0
         ORDER BY o.contest_id, o.userid"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// A confirmed referral: the old client earns the benefit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReferralRow {
    pub id: i64,
    pub old_client: String,
    pub new_client: String,
    pub reporter_name: String,
    pub occurred_at: i64,
}
crate::direct_row!(ReferralRow { id, old_client, new_client, reporter_name, occurred_at });

pub async fn referrals_in(conn: &mut Conn, from: i64, to: i64) -> Result<Vec<ReferralRow>, sqlx::Error> {
    sql::query_as(
        "SELECT r.id, COALESCE(json_extract(r.fields, '$.老客户'), '') AS old_client, s.name AS new_client,
                p.name AS reporter_name, r.occurred_at
         FROM records r JOIN people p ON p.userid = r.reporter JOIN subjects s ON s.id = r.subject_id
         WHERE r.kind = 'referral' AND r.state = 'confirmed' AND r.occurred_at >= ? AND r.occurred_at < ?
         ORDER BY r.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// `(run_at, rules, total_fen)` of every earlier run of a month, oldest first.
pub async fn earlier_runs(conn: &mut Conn, month: &str) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    sql::query_as("SELECT run_at, rules, total_fen FROM settlement_runs WHERE month = ? ORDER BY id")
        .bind(month)
        .fetch_all(conn)
        .await
}

/// A CS or TR member who may have a monthly target.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub userid: String,
    pub name: String,
    pub employee_no: Option<String>,
    pub lead: bool,
    pub department_id: i64,
    pub department: String,
    pub class: DeptKind,
}
crate::direct_row!(MemberRow { userid, name, employee_no, lead, department_id, department, class });

/// Active members of Customer Success and Talent Recruitment (and their
/// sub-departments), by userid.
pub async fn target_members(conn: &mut Conn) -> Result<Vec<MemberRow>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.userid, p.name, p.employee_no, {LEAD} AS lead, p.department_id, d.name AS department,
                d.kind AS class
         FROM people p JOIN departments d ON d.id = p.department_id
         WHERE p.active = 1 AND d.kind IN ('cs', 'tr') ORDER BY p.userid"
    )))
    .fetch_all(conn)
    .await
}

/// One person, as a monthly target sees them (`我的`).
pub async fn member(conn: &mut Conn, userid: &str) -> Result<Option<MemberRow>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.userid, p.name, p.employee_no, {LEAD} AS lead, p.department_id, d.name AS department,
                d.kind AS class
         FROM people p JOIN departments d ON d.id = p.department_id WHERE p.userid = ?"
    )))
    .bind(userid)
    .fetch_optional(conn)
    .await
}

/// `(id, name, parent)` of every department, to find each one's business unit.
pub async fn departments(conn: &mut Conn) -> Result<Vec<(i64, String, Option<i64>)>, sqlx::Error> {
    sql::query_as("SELECT id, name, parent_id FROM departments ORDER BY id").fetch_all(conn).await
}

/// What a run used and produced.
pub struct Run<'a> {
    pub month: &'a str,
    pub run_at: i64,
    pub run_by: &'a str,
    pub rules: &'a str,
    pub rule_set: &'a str,
    pub total_fen: i64,
    pub lines: i64,
    pub pending: i64,
}

pub async fn record_run(conn: &mut Conn, run: &Run<'_>) -> Result<(), sqlx::Error> {
    sql::query(
        "INSERT INTO settlement_runs (month, run_at, run_by, rules, rule_set, total_fen, lines, pending)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run.month)
    .bind(run.run_at)
    .bind(run.run_by)
    .bind(run.rules)
    .bind(run.rule_set)
    .bind(run.total_fen)
    .bind(run.lines)
    .bind(run.pending)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps a rule set (once: the first time it is seen) and returns when it was first seen.
pub async fn note_rule_set(conn: &mut Conn, id: &str, rules: &str, now_ms: i64) -> Result<i64, sqlx::Error> {
    sql::query("INSERT INTO rule_sets (id, rules, first_seen_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(rules)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    let last: Option<String> = sql::query_scalar("SELECT rule_set FROM rule_set_periods ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    if last.as_deref() != Some(id) {
        sql::query("INSERT INTO rule_set_periods (rule_set, from_ms) VALUES (?, ?)")
            .bind(id)
            .bind(if last.is_some() { now_ms } else { 0 })
            .execute(&mut *conn)
            .await?;
    }
    sql::query_scalar("SELECT first_seen_at FROM rule_sets WHERE id = ?").bind(id).fetch_one(conn).await
}

/// `(from_ms, rule_set)` of every period of a rule set in force, oldest first (see
/// [`note_rule_set`]).
pub async fn rule_set_periods(conn: &mut Conn) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sql::query_as("SELECT from_ms, rule_set FROM rule_set_periods ORDER BY id").fetch_all(conn).await
}

/// `(rules, first_seen_at)` of a rule set.
pub async fn rule_set(conn: &mut Conn, id: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
    sql::query_as("SELECT rules, first_seen_at FROM rule_sets WHERE id = ?").bind(id).fetch_optional(conn).await
}

/// A closed month, without its files.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CloseRow {
    pub month: String,
    pub closed_at: i64,
    pub closed_by: String,
    pub rule_set: String,
    pub pending: i64,
    pub total_fen: i64,
    pub lines: i64,
    /// Computed period by period (each record under the rule set it was reported in);
    /// false for months closed before periods were kept, computed under `rule_set`.
    pub by_period: bool,
}
crate::direct_row!(CloseRow { month, closed_at, closed_by, rule_set, pending, total_fen, lines, by_period });

/// Every closed month, oldest first.
pub async fn closed_months(conn: &mut Conn) -> Result<Vec<CloseRow>, sqlx::Error> {
    sql::query_as(
        "SELECT month, closed_at, closed_by, rule_set, pending, total_fen, lines, by_period <> 0 AS by_period
         FROM month_closes ORDER BY month",
    )
    .fetch_all(conn)
    .await
}

/// A closed month's files as stored: `(csv, csv_sha256, xlsx, xlsx_sha256)`.
pub async fn closed_files(
    conn: &mut Conn,
    month: &str,
) -> Result<Option<(Vec<u8>, String, Vec<u8>, String)>, sqlx::Error> {
    sql::query_as("SELECT csv, csv_sha256, xlsx, xlsx_sha256 FROM month_closes WHERE month = ?")
        .bind(month)
        .fetch_optional(conn)
        .await
}

/// What closing a month stores.
pub struct NewClose<'a> {
    pub close: &'a CloseRow,
    pub csv: &'a [u8],
    pub xlsx: &'a [u8],
    /// Every line it pays, in order.
    pub lines: Vec<ClosedLine>,
}

/// A line a closed month paid.
pub struct ClosedLine {
    /// The month the pay belongs to: the closed month, or the one an adjustment corrects.
    pub for_month: String,
    pub userid: String,
    pub record: Option<i64>,
    pub contest: Option<String>,
    pub amount_fen: i64,
    /// The whole line as JSON.
    pub line: String,
}

/// Stores a month's close; false (and nothing stored) when the month is closed already.
pub async fn close_month(conn: &mut Conn, close: &NewClose<'_>) -> Result<bool, sqlx::Error> {
    let c = close.close;
    let inserted = sql::query(
        "INSERT INTO month_closes (month, closed_at, closed_by, rule_set, pending, total_fen, lines, by_period, csv,
                                   csv_sha256, xlsx, xlsx_sha256)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&c.month)
    .bind(c.closed_at)
    .bind(&c.closed_by)
    .bind(&c.rule_set)
    .bind(c.pending)
    .bind(c.total_fen)
    .bind(c.lines)
    .bind(c.by_period)
    .bind(close.csv)
    .bind(sha256_hex(close.csv))
    .bind(close.xlsx)
    .bind(sha256_hex(close.xlsx))
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
        other => other?,
    };
    for (seq, l) in close.lines.iter().enumerate() {
        sql::query(
            "INSERT INTO month_close_lines (month, seq, for_month, userid, record_id, contest_id, amount_fen, line)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.month)
        .bind(seq as i64)
        .bind(&l.for_month)
        .bind(&l.userid)
        .bind(l.record)
        .bind(&l.contest)
        .bind(l.amount_fen)
        .bind(&l.line)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// What has been paid for `for_month` by closed months (its own lines, and the
/// adjustments later closed months carried), each line as JSON, in the order stored.
pub async fn paid_for(conn: &mut Conn, for_month: &str) -> Result<Vec<String>, sqlx::Error> {
    sql::query_scalar("SELECT line FROM month_close_lines WHERE for_month = ? ORDER BY month, seq")
        .bind(for_month)
        .fetch_all(conn)
        .await
}

/// The state (as stored) of each of these records.
pub async fn record_states(
    conn: &mut Conn,
    ids: &[i64],
) -> Result<Vec<(i64, crate::domain::record::RecordState)>, sqlx::Error> {
    let mut states = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(state) =
            sql::query_scalar("SELECT state FROM records WHERE id = ?").bind(id).fetch_optional(&mut *conn).await?
        {
            states.push((*id, state));
        }
    }
    Ok(states)
}

/// SHA-256 of a file's bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A member's PK stake not yet recorded as paid (缴费).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StakeRow {
    pub contest_id: String,
    pub userid: String,
    pub name: String,
    pub employee_no: Option<String>,
    pub department_id: i64,
    pub department: String,
    pub team: String,
    pub stake_fen: i64,
}
crate::direct_row!(StakeRow { contest_id, userid, name, employee_no, department_id, department, team, stake_fen });

/// Every current member's stake above 0 not recorded as paid, by contest, team and
/// userid (members who left owe nothing).
pub async fn unpaid_stakes(conn: &mut Conn) -> Result<Vec<StakeRow>, sqlx::Error> {
    sql::query_as(
        "SELECT m.contest_id, m.userid, p.name, p.employee_no, p.department_id, COALESCE(d.name, '') AS department,
                m.team, m.stake_fen
         FROM contest_members m JOIN people p ON p.userid = m.userid
         LEFT JOIN departments d ON d.id = p.department_id
         WHERE m.left_at IS NULL AND m.stake_fen > 0 AND m.stake_paid_at IS NULL
         ORDER BY m.contest_id, m.team, m.userid",
    )
    .fetch_all(conn)
    .await
}
