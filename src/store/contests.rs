//! Contests: their state, members and stakes, scores kept current as records start or
//! stop counting, broadcast snapshots, and final results.

use crate::domain::contest::{ContestDef, ContestState, Payout};
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::org::Level;
use crate::store::Conn;
use crate::store::sql;
use tracing::instrument;

/// Where a contest stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContestRow {
    pub id: String,
    pub state: ContestState,
    pub frozen_at: Option<i64>,
    pub finalised_at: Option<i64>,
    pub finalised_by: Option<String>,
    pub pool_fen: Option<i64>,
    pub result: Option<String>,
}
crate::direct_row!(ContestRow { id, state, frozen_at, finalised_at, finalised_by, pool_fen, result });

#[instrument(level = "debug", skip(conn))]
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<ContestRow>, sqlx::Error> {
    sql::query_as(
        "SELECT id, state, frozen_at, finalised_at, finalised_by, pool_fen, result FROM contests WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Whether record `r` of a contest `c`'s kinds falls in stint `st` (and the contest's
/// window): it scores for that stint's team.
pub(crate) const IN_STINT: &str = "instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
       AND r.occurred_at >= MAX(c.start_at, st.from_at)
       AND r.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))";

/// The points a member's counting records carry for score row `s` (their stints in
/// its team).
fn score_points() -> String {
    format!(
        "SELECT CAST(COALESCE(SUM(r.points), 0) AS BIGINT) FROM contest_stints st, contests c, records r
         WHERE st.contest_id = s.contest_id AND st.userid = s.userid AND st.team = s.team AND c.id = st.contest_id
           AND r.reporter = st.userid AND r.counted = 1 AND {IN_STINT}"
    )
}

/// Registers configured contests and their configured members. A contest whose scoring
/// (kinds, start, cut-off) changed has its scores rebuilt, unless it is final: a final
/// contest never changes.
pub async fn sync(conn: &mut Conn, def: &ContestDef) -> Result<(), sqlx::Error> {
    let changed = sql::query(
        "INSERT INTO contests (id, kinds, start_at, cutoff_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET kinds = excluded.kinds, start_at = excluded.start_at,
             cutoff_at = excluded.cutoff_at
         WHERE contests.state != 'final' AND (contests.kinds != excluded.kinds
             OR contests.start_at != excluded.start_at OR contests.cutoff_at != excluded.cutoff_at)",
    )
    .bind(&def.id)
    .bind(def.kinds_code())
    .bind(def.start_ms)
    .bind(def.cutoff_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed > 0 {
        rebuild_scores(conn, &def.id).await?;
    }
    Ok(())
}

/// Recomputes every member's score from the records.
pub async fn rebuild_scores(conn: &mut Conn, contest: &str) -> Result<(), sqlx::Error> {
    sql::query(sqlx::AssertSqlSafe(format!(
        "UPDATE contest_scores AS s SET points = ({}) WHERE s.contest_id = ?",
        score_points()
    )))
    .bind(contest)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes sure a member has a score row for a team (computed from the records).
async fn ensure_score(conn: &mut Conn, contest: &str, userid: &str, team: &str) -> Result<(), sqlx::Error> {
    sql::query("INSERT INTO contest_scores (contest_id, userid, team) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(contest)
        .bind(userid)
        .bind(team)
        .execute(&mut *conn)
        .await?;
    sql::query(sqlx::AssertSqlSafe(format!(
        "UPDATE contest_scores AS s SET points = ({}) WHERE s.contest_id = ? AND s.userid = ? AND s.team = ?",
        score_points()
    )))
    .bind(contest)
    .bind(userid)
    .bind(team)
    .execute(conn)
    .await?;
    Ok(())
}

/// How someone came to be in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSource {
    /// Named in the team's configured member list.
    Config,
    /// In the team's configured department.
    Department,
    /// `加入PK`.
    Join,
    /// `分配` by an admin.
    Assign,
}

impl MemberSource {
    pub fn code(self) -> &'static str {
        match self {
            MemberSource::Config => "config",
            MemberSource::Department => "department",
            MemberSource::Join => "join",
            MemberSource::Assign => "assign",
        }
    }

    pub fn parse(code: &str) -> Option<MemberSource> {
        [MemberSource::Config, MemberSource::Department, MemberSource::Join, MemberSource::Assign]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// A person's team in a contest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Membership {
    pub team: String,
    pub stake_fen: i64,
    pub source: MemberSource,
    /// When they left the contest (退出PK, 移出), if they did.
    pub left_at: Option<i64>,
}
crate::direct_row!(Membership { team, stake_fen, source, left_at });

pub async fn membership(conn: &mut Conn, contest: &str, userid: &str) -> Result<Option<Membership>, sqlx::Error> {
    sql::query_as("SELECT team, stake_fen, source, left_at FROM contest_members WHERE contest_id = ? AND userid = ?")
        .bind(contest)
        .bind(userid)
        .fetch_optional(conn)
        .await
}

/// A new member and the stake they pay.
pub struct NewMember<'a> {
    pub contest: &'a str,
    pub userid: &'a str,
    pub team: &'a str,
    pub stake_fen: i64,
    pub joined_at: i64,
    pub source: MemberSource,
}

/// Adds a member (one team per contest: a second team fails on the primary key) with
/// the score their records already carry. Returns false if they were already a member.
pub async fn add_member(conn: &mut Conn, m: &NewMember<'_>) -> Result<bool, sqlx::Error> {
    let added = sql::query(
        "INSERT INTO contest_members (contest_id, userid, team, stake_fen, joined_at, source) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (contest_id, userid) DO NOTHING",
    )
    .bind(m.contest)
    .bind(m.userid)
    .bind(m.team)
    .bind(m.stake_fen)
    .bind(m.joined_at)
    .bind(m.source)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if added {
        sql::query("INSERT INTO contest_stints (contest_id, userid, team, from_at) VALUES (?, ?, ?, ?)")
            .bind(m.contest)
            .bind(m.userid)
            .bind(m.team)
            .bind(m.joined_at)
            .execute(&mut *conn)
            .await?;
        ensure_score(conn, m.contest, m.userid, m.team).await?;
    }
    Ok(added)
}

/// Active people in a department and all departments below it.
pub async fn department_people(conn: &mut Conn, department: i64) -> Result<Vec<(String, Level)>, sqlx::Error> {
    sql::query_as(
        "WITH RECURSIVE tree (id) AS (SELECT ? UNION SELECT d.id FROM departments d JOIN tree ON d.parent_id = tree.id)
         SELECT p.userid, p.level FROM people p JOIN tree ON p.department_id = tree.id WHERE p.active = 1 ORDER BY p.userid",
    )
    .bind(department)
    .fetch_all(conn)
    .await
}

/// After records changed state: brings `records.counted` up to date for these records
/// and moves the scores of every non-final contest they belong to by the difference.
#[instrument(level = "debug", skip(conn))]
pub async fn recount(conn: &mut Conn, ids: &[i64]) -> Result<(), sqlx::Error> {
    for id in ids {
        let row: Option<(bool, bool, i64)> = sql::query_as(
            "SELECT r.counted <> 0, EXISTS (SELECT 1 FROM counting_records c WHERE c.id = r.id), r.points
             FROM records r WHERE r.id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((_, now, points)) = row.filter(|(was, now, _)| was != now) else { continue };
        sql::query("UPDATE records SET counted = ? WHERE id = ?").bind(now).bind(id).execute(&mut *conn).await?;
        sql::query(sqlx::AssertSqlSafe(format!(
            "UPDATE contest_scores SET points = points + ?
             WHERE (contest_id, userid, team) IN (
                 SELECT st.contest_id, st.userid, st.team FROM records r
                 JOIN contest_stints st ON st.userid = r.reporter
                 JOIN contests c ON c.id = st.contest_id
                 WHERE r.id = ? AND c.state != 'final' AND {IN_STINT})"
        )))
        .bind(if now { points } else { -points })
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// `(team, userid, name, points, stake_fen, stake paid, current)` of a member's score
/// in a team: `current` when it is the team they are in now (a member who moved has a
/// row for each team, one who left none current).
pub type ScoreRow = (String, String, String, i64, i64, bool, bool);

/// The standings token (migration 0070): changes, to a random value, with every change
/// to scores, memberships or people's names, in the changing transaction.
pub async fn standings_token(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sql::query_scalar("SELECT token FROM standings_token WHERE id = 1").fetch_one(conn).await
}

/// A [`ScoreRow`] for every member, by userid.
///
/// Fetched as one JSON array rather than one row per member: sqlx hands every row
/// from its worker thread to the caller separately, which for thousands of members
/// costs several times the query itself (see BENCHMARKS.md, "Contest standings").
#[instrument(level = "debug", skip(conn))]
pub async fn scores(conn: &mut Conn, contest: &str) -> Result<Vec<ScoreRow>, sqlx::Error> {
    let json: String = sql::query_scalar(
        "SELECT json_group_array(json_array(s.team, s.userid, p.name, s.points,
                 CASE WHEN current THEN m.stake_fen ELSE 0 END,
                 json(CASE WHEN m.stake_paid_at IS NULL THEN 'false' ELSE 'true' END),
                 json(CASE WHEN current THEN 'true' ELSE 'false' END)) ORDER BY s.userid, s.team)
         FROM (SELECT s.*, (m.team = s.team AND m.left_at IS NULL) AS current
               FROM contest_scores s JOIN contest_members m ON m.contest_id = s.contest_id AND m.userid = s.userid
               WHERE s.contest_id = ?) s
         JOIN contest_members m ON m.contest_id = s.contest_id AND m.userid = s.userid
         JOIN people p ON p.userid = s.userid",
    )
    .postgres(
        "SELECT COALESCE(json_agg(json_build_array(s.team, s.userid, p.name, s.points,
                 CASE WHEN current THEN m.stake_fen ELSE 0 END, m.stake_paid_at IS NOT NULL, current)
                 ORDER BY s.userid, s.team), '[]')::text
         FROM (SELECT s.*, (m.team = s.team AND m.left_at IS NULL) AS current
               FROM contest_scores s JOIN contest_members m ON m.contest_id = s.contest_id AND m.userid = s.userid
               WHERE s.contest_id = ?) s
         JOIN contest_members m ON m.contest_id = s.contest_id AND m.userid = s.userid
         JOIN people p ON p.userid = s.userid",
    )
    .bind(contest)
    .fetch_one(conn)
    .await?;
    serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Moves an open contest to frozen; false if it was not open.
pub async fn freeze(conn: &mut Conn, contest: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let done = sql::query("UPDATE contests SET state = 'frozen', frozen_at = ? WHERE id = ? AND state = 'open'")
        .bind(now_ms)
        .bind(contest)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the final result; false if the contest was already final.
pub async fn finalise(
    conn: &mut Conn,
    contest: &str,
    by: &str,
    now_ms: i64,
    pool_fen: i64,
    result: &str,
) -> Result<bool, sqlx::Error> {
    let done = sql::query(
        "UPDATE contests SET state = 'final', finalised_at = ?, finalised_by = ?, pool_fen = ?, result = ?,
             frozen_at = COALESCE(frozen_at, ?)
         WHERE id = ? AND state != 'final'",
    )
    .bind(now_ms)
    .bind(by)
    .bind(pool_fen)
    .bind(result)
    .bind(now_ms)
    .bind(contest)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_payout(
    conn: &mut Conn,
    contest: &str,
    userid: &str,
    team: &str,
    rank: u32,
    amount_fen: i64,
) -> Result<(), sqlx::Error> {
    sql::query("INSERT INTO contest_payouts (contest_id, userid, team, rank, amount_fen) VALUES (?, ?, ?, ?, ?)")
        .bind(contest)
        .bind(userid)
        .bind(team)
        .bind(i64::from(rank))
        .bind(amount_fen)
        .execute(conn)
        .await?;
    Ok(())
}

/// The payouts stored when the contest was finalised, by team and userid.
pub async fn payouts_of(conn: &mut Conn, contest: &str) -> Result<Vec<Payout>, sqlx::Error> {
    let rows: Vec<(String, String, i64, i64)> = sql::query_as(
        "SELECT userid, team, rank, amount_fen FROM contest_payouts WHERE contest_id = ? ORDER BY team, userid",
    )
    .bind(contest)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(userid, team, rank, amount)| Payout { userid, team, rank: rank as u32, amount: Fen(amount) })
        .collect())
}

pub async fn latest_snapshot(conn: &mut Conn, contest: &str, kind: &str) -> Result<Option<String>, sqlx::Error> {
    sql::query_scalar(
        "SELECT standings FROM contest_snapshots WHERE contest_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(contest)
    .bind(kind)
    .fetch_optional(conn)
    .await
}

pub async fn insert_snapshot(
    conn: &mut Conn,
    contest: &str,
    kind: &str,
    at_ms: i64,
    standings: &str,
) -> Result<(), sqlx::Error> {
    sql::query("INSERT INTO contest_snapshots (contest_id, kind, at, standings) VALUES (?, ?, ?, ?)")
        .bind(contest)
        .bind(kind)
        .bind(at_ms)
        .bind(standings)
        .execute(conn)
        .await?;
    Ok(())
}

/// A record that started counting in a period, for broadcasts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewlyCounted {
    pub id: i64,
    pub kind: RecordKind,
    pub reporter_name: String,
    pub team: String,
    /// The client or channel, or a placement's person.
    pub subject: Option<String>,
    pub fields: String,
    pub points: i64,
}
crate::direct_row!(NewlyCounted { id, kind, reporter_name, team, subject, fields, points });

/// The contest's counting records confirmed in `[from_ms, to_ms)`, scanned through
/// `records_decided` (a day's confirmations, not every confirmed record), which covers
/// every column of `records` this reads (migration 0090): the count reads no record row.
// `CROSS JOIN` keeps the day's records (by `records_decided`) the outer loop: with a
// plain join SQLite may put the contest's stints outside and walk the day's records
// once per stint (5,000 × 21,775 rows in the standings bench: minutes, not ms).
const CONFIRMED_FROM: &str = "FROM records r INDEXED BY records_decided
     CROSS JOIN contest_stints st ON st.userid = r.reporter AND st.contest_id = ?
     JOIN contests c ON c.id = st.contest_id";
const CONFIRMED_WHERE: &str = "WHERE r.state = 'confirmed' AND r.counted = 1 AND r.decided_at >= ? AND r.decided_at < ?
       AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
       AND r.occurred_at >= MAX(c.start_at, st.from_at)
       AND r.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))";

/// What the shown records add to [`CONFIRMED_FROM`]: the reporter's name and the
/// subject. Not in the count: every reporter is a person (a foreign key) and a subject
/// is joined by its primary key, so neither join changes how many rows there are.
const CONFIRMED_SHOWN_JOINS: &str =
    "JOIN people p ON p.userid = r.reporter LEFT JOIN subjects s ON s.id = r.subject_id";

/// A day of `contest_day_counts` (migration 0100): midnight in Asia/Shanghai (UTC+8,
/// no daylight saving), as its triggers compute it.
const DAY_MS: i64 = 86_400_000;
const DAY_OFFSET_MS: i64 = 8 * 3_600_000;

/// The day `[from_ms, from_ms + DAY_MS)` of `contest_day_counts` that holds
/// `[from_ms, to_ms)`, if one does.
fn counted_day(from_ms: i64, to_ms: i64) -> Option<i64> {
    ((from_ms + DAY_OFFSET_MS).rem_euclid(DAY_MS) == 0 && from_ms >= 0 && to_ms <= from_ms + DAY_MS).then_some(from_ms)
}

/// How many of the contest's records were confirmed in `[from_ms, to_ms)`, and the
/// latest `limit` of them, newest first (a board on a screen and a broadcast both show
/// what just happened; the count says how many more there are).
///
/// When the range is the start of a day, the count is the day's kept count
/// (`contest_day_counts`, migration 0100) less the exact count of the rest of the day
/// (`[to_ms, day's end)`: none but records decided after `to_ms`), in one statement;
/// without a kept count, or for any other range, it is the exact count.
pub async fn confirmed_between(
    conn: &mut Conn,
    contest: &str,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> Result<(i64, Vec<NewlyCounted>), sqlx::Error> {
    let exact = format!("SELECT COUNT(*) {CONFIRMED_FROM} {CONFIRMED_WHERE}");
    let count: i64 = match counted_day(from_ms, to_ms) {
        Some(day) => {
            sql::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM contest_day_counts WHERE contest_id = ? AND day_start = ?)
                 THEN (SELECT n FROM contest_day_counts WHERE contest_id = ? AND day_start = ?) - ({exact})
                 ELSE ({exact}) END"
            )))
            .bind(contest)
            .bind(day)
            .bind(contest)
            .bind(day)
            .bind(contest)
            .bind(to_ms)
            .bind(day + DAY_MS)
            .bind(contest)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&mut *conn)
            .await?
        }
        None => {
            sql::query_scalar(sqlx::AssertSqlSafe(exact))
                .bind(contest)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let first = sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.id, r.kind, p.name AS reporter_name, st.team,
                COALESCE(s.name, json_extract(r.fields, '$.姓名')) AS subject, r.fields, r.points
          {CONFIRMED_FROM} {CONFIRMED_SHOWN_JOINS} {CONFIRMED_WHERE} ORDER BY r.decided_at DESC, r.id DESC LIMIT ?"
    )))
    .bind(contest)
    .bind(from_ms)
    .bind(to_ms)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok((count, first))
}

/// `(team, decided_at, points)` of every record counting for the contest, by the team
/// of the stint it scores for, in the order they were decided: the teams' points over
/// time (their sums are the teams' points).
pub async fn counted_timeline(conn: &mut Conn, contest: &str) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT st.team, COALESCE(r.decided_at, r.occurred_at) AS at, r.points
         FROM contest_stints st JOIN contests c ON c.id = st.contest_id
         JOIN records r ON r.reporter = st.userid
         WHERE st.contest_id = ? AND r.counted = 1 AND {IN_STINT}
         ORDER BY at, r.id"
    )))
    .bind(contest)
    .fetch_all(conn)
    .await
}

/// Final contests whose result includes this record's points.
pub async fn final_contests_of(conn: &mut Conn, record: i64) -> Result<Vec<String>, sqlx::Error> {
    sql::query_scalar(
        "SELECT DISTINCT c.id FROM records r JOIN contest_stints st ON st.userid = r.reporter
         JOIN contests c ON c.id = st.contest_id
         WHERE r.id = ? AND c.state = 'final' AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
           AND r.occurred_at >= MAX(c.start_at, st.from_at)
           AND r.occurred_at < MIN(c.cutoff_at, COALESCE(st.to_at, c.cutoff_at))",
    )
    .bind(record)
    .fetch_all(conn)
    .await
}

/// One auditor's approval of a contest's preliminary ranking.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Approval {
    pub userid: String,
    pub name: String,
    pub ranking: String,
    pub exclude_pending: bool,
    pub approved_at: i64,
}
crate::direct_row!(Approval { userid, name, ranking, exclude_pending, approved_at });

/// Records (or renews) an auditor's approval of `ranking`.
pub async fn approve(
    conn: &mut Conn,
    contest: &str,
    userid: &str,
    ranking: &str,
    exclude_pending: bool,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sql::query(
        "INSERT INTO finalise_approvals (contest_id, userid, ranking, exclude_pending, approved_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (contest_id, userid) DO UPDATE SET ranking = excluded.ranking,
             exclude_pending = excluded.exclude_pending, approved_at = excluded.approved_at",
    )
    .bind(contest)
    .bind(userid)
    .bind(ranking)
    .bind(exclude_pending)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// A contest's approvals, oldest first.
pub async fn approvals(conn: &mut Conn, contest: &str) -> Result<Vec<Approval>, sqlx::Error> {
    sql::query_as(
        "SELECT a.userid, p.name, a.ranking, a.exclude_pending <> 0 AS exclude_pending, a.approved_at
         FROM finalise_approvals a JOIN people p ON p.userid = a.userid
         WHERE a.contest_id = ? ORDER BY a.approved_at, a.userid",
    )
    .bind(contest)
    .fetch_all(conn)
    .await
}

/// Records a member's stake as paid; false if it was already (or they are no member).
pub async fn mark_paid(
    conn: &mut Conn,
    contest: &str,
    userid: &str,
    by: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sql::query(
        "UPDATE contest_members SET stake_paid_at = ?, stake_paid_by = ?
         WHERE contest_id = ? AND userid = ? AND stake_paid_at IS NULL",
    )
    .bind(now_ms)
    .bind(by)
    .bind(contest)
    .bind(userid)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// When a member's stake was recorded as paid, if it was.
pub async fn paid_at(conn: &mut Conn, contest: &str, userid: &str) -> Result<Option<i64>, sqlx::Error> {
    Ok(sql::query_scalar("SELECT stake_paid_at FROM contest_members WHERE contest_id = ? AND userid = ?")
        .bind(contest)
        .bind(userid)
        .fetch_optional(conn)
        .await?
        .flatten())
}

/// Moves a member to another team from `at_ms`: their stint in the old team ends, one in
/// the new team begins. False if they are not a current member.
pub async fn move_member(
    conn: &mut Conn,
    contest: &str,
    userid: &str,
    team: &str,
    at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let moved =
        sql::query("UPDATE contest_members SET team = ? WHERE contest_id = ? AND userid = ? AND left_at IS NULL")
            .bind(team)
            .bind(contest)
            .bind(userid)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    if !moved {
        return Ok(false);
    }
    end_stint(conn, contest, userid, at_ms).await?;
    sql::query("INSERT INTO contest_stints (contest_id, userid, team, from_at) VALUES (?, ?, ?, ?)")
        .bind(contest)
        .bind(userid)
        .bind(team)
        .bind(at_ms)
        .execute(&mut *conn)
        .await?;
    ensure_score(conn, contest, userid, team).await?;
    rescore_member(conn, contest, userid).await?;
    Ok(true)
}

/// A member leaves (退出PK, 移出) from `at_ms`: their stint ends, their stake leaves the
/// pool, and they are no longer paid; their points so far stay with their team.
pub async fn remove_member(conn: &mut Conn, contest: &str, userid: &str, at_ms: i64) -> Result<bool, sqlx::Error> {
    let left =
        sql::query("UPDATE contest_members SET left_at = ? WHERE contest_id = ? AND userid = ? AND left_at IS NULL")
            .bind(at_ms)
            .bind(contest)
            .bind(userid)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    if left {
        end_stint(conn, contest, userid, at_ms).await?;
        rescore_member(conn, contest, userid).await?;
    }
    Ok(left)
}

async fn end_stint(conn: &mut Conn, contest: &str, userid: &str, at_ms: i64) -> Result<(), sqlx::Error> {
    sql::query("UPDATE contest_stints SET to_at = ? WHERE contest_id = ? AND userid = ? AND to_at IS NULL")
        .bind(at_ms)
        .bind(contest)
        .bind(userid)
        .execute(conn)
        .await?;
    Ok(())
}

/// Recomputes a member's score rows from their stints.
async fn rescore_member(conn: &mut Conn, contest: &str, userid: &str) -> Result<(), sqlx::Error> {
    sql::query(sqlx::AssertSqlSafe(format!(
        "UPDATE contest_scores AS s SET points = ({}) WHERE s.contest_id = ? AND s.userid = ?",
        score_points()
    )))
    .bind(contest)
    .bind(userid)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-30 00:00 in Asia/Shanghai, Unix ms.
    const DAY: i64 = 1_774_800_000_000;
    const HOUR: i64 = 3_600_000;

    /// The exact count of the contest's records confirmed in `[from, to)`.
    async fn exact(conn: &mut Conn, contest: &str, from: i64, to: i64) -> i64 {
        sql::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {CONFIRMED_FROM} {CONFIRMED_WHERE}")))
            .bind(contest)
            .bind(from)
            .bind(to)
            .fetch_one(conn)
            .await
            .unwrap()
    }

    async fn kept(conn: &mut Conn, contest: &str, day: i64) -> Option<i64> {
        sql::query_scalar("SELECT n FROM contest_day_counts WHERE contest_id = ? AND day_start = ?")
            .bind(contest)
            .bind(day)
            .fetch_optional(conn)
            .await
            .unwrap()
    }

    /// A contest as configured: what `sync` stores of it.
    fn def(id: &str, kinds: Vec<RecordKind>, start_ms: i64, cutoff_ms: i64) -> ContestDef {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
        ContestDef {
            id: id.into(),
            name: "PK".into(),
            kinds,
            start: date,
            end: date,
            cutoff_time: chrono::NaiveTime::MIN,
            start_ms,
            cutoff_ms,
            sponsorship: Fen(0),
            split: crate::domain::contest::SplitRule::Stake,
            chats: vec![],
            teams: vec![],
        }
    }

    async fn exec(conn: &mut Conn, sql: &str) {
        sql::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(conn).await.unwrap();
    }

    /// Every day of both contests: a kept count, where there is one, equals the exact
    /// count, and so does `confirmed_between` for the whole day and for part of it.
    async fn check(conn: &mut Conn, step: &str) {
        for contest in ["a", "b"] {
            for day in [DAY - 86_400_000, DAY, DAY + 86_400_000] {
                let exact_day = exact(conn, contest, day, day + 86_400_000).await;
                if let Some(kept) = kept(conn, contest, day).await {
                    assert_eq!(kept, exact_day, "{step}: kept count of {contest} on {day}");
                }
                for to in [day + 12 * HOUR, day + 86_400_000] {
                    let (count, _) = confirmed_between(conn, contest, day, to, 10).await.unwrap();
                    assert_eq!(count, exact(conn, contest, day, to).await, "{step}: {contest} on {day} to {to}");
                }
            }
        }
    }

    /// A record by `reporter` of `kind` reported at `occurred`, in `state`, decided at
    /// `decided`, its `counted` brought up to date by `recount`.
    async fn record(conn: &mut Conn, reporter: &str, kind: &str, occurred: i64, decided: i64) -> i64 {
        let id: i64 = sql::query_scalar(
            "INSERT INTO records (kind, mode, reporter, reporter_dept, reporter_class, fields, points, state,
                 occurred_at, decided_at)
             VALUES (?, 'direct', ?, 1, 'cs', '{}', 1, 'confirmed', ?, ?) RETURNING id",
        )
        .bind(kind)
        .bind(reporter)
        .bind(occurred)
        .bind(decided)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        recount(conn, &[id]).await.unwrap();
        id
    }

    async fn set_state(conn: &mut Conn, id: i64, state: &str, decided: i64) {
        sql::query("UPDATE records SET state = ?, decided_at = ? WHERE id = ?")
            .bind(state)
            .bind(decided)
            .bind(id)
            .execute(&mut *conn)
            .await
            .unwrap();
        recount(conn, &[id]).await.unwrap();
    }

    /// The kept count of each contest's day (migration 0100) stays the exact count
    /// through every change that moves a record in or out of it, and the daily
    /// leaderboard reads it.
    #[tokio::test]
    async fn the_kept_day_count_is_the_exact_count_after_every_change() {
        let (db, _dir) = crate::store::testing::test_db().await;
        let mut tx = db.begin().await.unwrap();
        let c = &mut *tx;
        exec(c, "INSERT INTO departments (id, name, kind) VALUES (1, '一部', 'cs')").await;
        exec(
            c,
            "INSERT INTO people (userid, name, department_id, level) VALUES
                 ('u1', '甲', 1, 'staff'), ('u2', '乙', 1, 'staff'), ('u3', '丙', 1, 'staff')",
        )
        .await;
        let (start, cutoff) = (DAY - 10 * 86_400_000, DAY + 10 * 86_400_000);
        sync(c, &def("a", vec![RecordKind::LeadC, RecordKind::LeadB], start, cutoff)).await.unwrap();
        sync(c, &def("b", vec![RecordKind::LeadB], start, cutoff)).await.unwrap();
        for (contest, userid, team) in [("a", "u1", "红"), ("a", "u2", "蓝"), ("b", "u1", "绿")] {
            let m = NewMember { contest, userid, team, stake_fen: 0, joined_at: start, source: MemberSource::Config };
            assert!(add_member(c, &m).await.unwrap());
        }
        check(c, "no records").await;
        assert_eq!(kept(c, "a", DAY).await, None, "no row before a record counts");

        // Confirmed today: the day's row is made, then moved.
        let r1 = record(c, "u1", "lead_c", DAY - 5 * HOUR, DAY + HOUR).await;
        assert_eq!(kept(c, "a", DAY).await, Some(1));
        assert_eq!(kept(c, "b", DAY).await, None, "lead_c is not b's");
        let r2 = record(c, "u1", "lead_b", DAY - 4 * HOUR, DAY + 2 * HOUR).await;
        let r3 = record(c, "u2", "lead_b", DAY - 3 * HOUR, DAY + 13 * HOUR).await;
        let r4 = record(c, "u2", "lead_c", DAY - 30 * HOUR, DAY - 20 * HOUR).await;
        let _r5 = record(c, "u3", "lead_c", DAY - 2 * HOUR, DAY + 3 * HOUR).await;
        assert_eq!(kept(c, "a", DAY).await, Some(3));
        assert_eq!(kept(c, "b", DAY).await, Some(1), "u2 is not in b");
        check(c, "confirmed").await;

        // Reported, then confirmed (as 确认 does).
        let pending = record(c, "u2", "lead_c", DAY - HOUR, DAY).await;
        set_state(c, pending, "reported", DAY).await;
        check(c, "back to reported").await;
        set_state(c, pending, "confirmed", DAY + 4 * HOUR).await;
        assert_eq!(kept(c, "a", DAY).await, Some(4));
        check(c, "confirmed later").await;

        // Void and restore.
        set_state(c, r2, "voided", DAY + 2 * HOUR).await;
        assert_eq!(kept(c, "a", DAY).await, Some(3));
        assert_eq!(kept(c, "b", DAY).await, Some(0));
        check(c, "voided").await;
        set_state(c, r2, "confirmed", DAY + 2 * HOUR).await;
        check(c, "restored").await;

        // Re-decided (an appeal's 改判, a re-decision): rejected, then confirmed on
        // another day, and back.
        set_state(c, r1, "rejected", DAY + HOUR).await;
        check(c, "rejected").await;
        set_state(c, r1, "confirmed", DAY + 86_400_000 + HOUR).await;
        check(c, "confirmed tomorrow").await;
        set_state(c, r1, "confirmed", DAY + 5 * HOUR).await;
        check(c, "re-decided today").await;
        set_state(c, r4, "confirmed", DAY + 6 * HOUR).await;
        check(c, "yesterday's re-decided today").await;

        // No longer counted without a change of state (a placement becoming a
        // channel's base), and counted again.
        exec(c, &format!("UPDATE records SET counted = 0 WHERE id = {r3}")).await;
        check(c, "uncounted").await;
        exec(c, &format!("UPDATE records SET counted = 1 WHERE id = {r3}")).await;
        check(c, "counted again").await;

        // A record edited: its kind, its report time, its reporter.
        exec(c, &format!("UPDATE records SET kind = 'lead_b' WHERE id = {r1}")).await;
        check(c, "kind edited").await;
        exec(c, &format!("UPDATE records SET occurred_at = {} WHERE id = {r1}", start - HOUR)).await;
        check(c, "report time edited out of the window").await;
        exec(c, &format!("UPDATE records SET occurred_at = {}, reporter = 'u2' WHERE id = {r1}", DAY - HOUR)).await;
        check(c, "reporter edited").await;

        // Stints: a member moves (one stint closed, one opened), leaves, joins;
        // a stint edited and deleted.
        assert!(move_member(c, "a", "u2", "红", DAY - 3 * HOUR - 1).await.unwrap());
        check(c, "moved").await;
        assert!(remove_member(c, "a", "u1", DAY - 4 * HOUR).await.unwrap());
        check(c, "left").await;
        let m = NewMember {
            contest: "b",
            userid: "u2",
            team: "绿",
            stake_fen: 0,
            joined_at: DAY - 5 * HOUR,
            source: MemberSource::Join,
        };
        assert!(add_member(c, &m).await.unwrap());
        assert_eq!(kept(c, "b", DAY).await, Some(exact(c, "b", DAY, DAY + 86_400_000).await));
        check(c, "joined").await;
        exec(
            c,
            &format!("UPDATE contest_stints SET from_at = {} WHERE contest_id = 'b' AND userid = 'u2'", DAY - 2 * HOUR),
        )
        .await;
        check(c, "stint edited").await;
        exec(c, "DELETE FROM contest_stints WHERE contest_id = 'b' AND userid = 'u2'").await;
        check(c, "stint deleted").await;

        // A record inserted as it counts, and deleted.
        let direct: i64 = sql::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO records (kind, mode, reporter, reporter_dept, reporter_class, fields, points, state,
                 occurred_at, decided_at, counted)
             VALUES ('lead_b', 'direct', 'u1', 1, 'cs', '{{}}', 1, 'confirmed', {}, {}, 1) RETURNING id",
            DAY - 6 * HOUR,
            DAY + 7 * HOUR
        )))
        .fetch_one(&mut *c)
        .await
        .unwrap();
        check(c, "inserted counting").await;
        exec(c, &format!("DELETE FROM records WHERE id = {direct}")).await;
        check(c, "deleted").await;

        // The contest's kinds, start and cut-off changed by a reload (`sync`): its kept counts go, the
        // exact count is used, and the next record to count makes the day's again.
        let before = kept(c, "b", DAY).await;
        assert!(before.is_some());
        // A reload that changes nothing of the contest keeps them.
        sync(c, &def("b", vec![RecordKind::LeadB], start, cutoff)).await.unwrap();
        assert_eq!(kept(c, "b", DAY).await, before, "an unchanged contest keeps its counts");
        sync(c, &def("b", vec![RecordKind::LeadC, RecordKind::LeadB], start, cutoff)).await.unwrap();
        assert_eq!(kept(c, "b", DAY).await, None);
        check(c, "kinds changed").await;
        record(c, "u1", "lead_c", DAY - 7 * HOUR, DAY + 8 * HOUR).await;
        assert_eq!(kept(c, "b", DAY).await, Some(exact(c, "b", DAY, DAY + 86_400_000).await));
        check(c, "kept again").await;
        let kinds_a = vec![RecordKind::LeadC, RecordKind::LeadB];
        sync(c, &def("a", kinds_a.clone(), DAY - 3 * HOUR, cutoff)).await.unwrap();
        check(c, "start changed").await;
        record(c, "u2", "lead_c", DAY - HOUR, DAY + 9 * HOUR).await;
        sync(c, &def("a", kinds_a, DAY - 3 * HOUR, DAY - 2 * HOUR)).await.unwrap();
        check(c, "cut-off changed").await;
        record(c, "u2", "lead_c", DAY - 3 * HOUR + 1, DAY + 10 * HOUR).await;
        check(c, "after the cut-off change").await;
        assert!(kept(c, "a", DAY).await.is_some());

        // The leaderboard reads the kept count: a wrong one would show.
        exec(c, "UPDATE contest_day_counts SET n = n + 1000").await;
        let (count, _) = confirmed_between(c, "a", DAY, DAY + 12 * HOUR, 10).await.unwrap();
        assert_eq!(count, exact(c, "a", DAY, DAY + 12 * HOUR).await + 1000);
    }

    /// The daily leaderboard's count reads `records_decided` alone (migration 0090):
    /// before it, each of the day's entries cost a read of its record row.
    #[tokio::test]
    async fn the_days_count_reads_only_the_covering_index() {
        let plan = crate::store::query_plan(&format!("SELECT COUNT(*) {CONFIRMED_FROM} {CONFIRMED_WHERE}")).await;
        let records: Vec<&String> = plan.iter().filter(|d| d.contains(" r ")).collect();
        assert_eq!(records.len(), 1, "{plan:?}");
        assert!(records[0].contains("USING COVERING INDEX records_decided"), "{plan:?}");
    }
}
