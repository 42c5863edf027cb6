//! Appeals (申诉) against rejections: one per record, decided by the audit group.

use crate::store::Conn;
use crate::store::sql;

/// Where an appeal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppealState {
    Open,
    /// 维持: the rejection stands.
    Upheld,
    /// 改判: the record is confirmed.
    Overturned,
}

impl AppealState {
    pub fn code(self) -> &'static str {
        match self {
            AppealState::Open => "open",
            AppealState::Upheld => "upheld",
            AppealState::Overturned => "overturned",
        }
    }

    pub fn parse(code: &str) -> Option<AppealState> {
        [AppealState::Open, AppealState::Upheld, AppealState::Overturned].into_iter().find(|s| s.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            AppealState::Open => "申诉中",
            AppealState::Upheld => "维持驳回",
            AppealState::Overturned => "已改判",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Appeal {
    pub id: i64,
    pub record_id: i64,
    pub reporter: String,
    pub reason: String,
    pub rejection: Option<String>,
    pub created_at: i64,
    pub state: AppealState,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<i64>,
}
crate::direct_row!(Appeal {
    id,
    record_id,
    reporter,
    reason,
    rejection,
    created_at,
    state,
    decided_by_name,
    decided_at
});

const SELECT: &str = "SELECT a.id, a.record_id, a.reporter, a.reason, a.rejection, a.created_at, a.state,
        d.name AS decided_by_name, a.decided_at
     FROM appeals a LEFT JOIN people d ON d.userid = a.decided_by";

/// Stores an appeal; fails on the unique index when the record was appealed before.
pub async fn insert(
    conn: &mut Conn,
    record_id: i64,
    reporter: &str,
    reason: &str,
    rejected_by: Option<&str>,
    rejection: Option<&str>,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    let id = sql::query_scalar(
        "INSERT INTO appeals (record_id, reporter, reason, rejected_by, rejection, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(record_id)
    .bind(reporter)
    .bind(reason)
    .bind(rejected_by)
    .bind(rejection)
    .bind(now_ms)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn of_record(conn: &mut Conn, record_id: i64) -> Result<Option<Appeal>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE a.record_id = ?")))
        .bind(record_id)
        .fetch_optional(conn)
        .await
}

/// Decides an open appeal (compare-and-set: of two auditors, one decides).
pub async fn decide(conn: &mut Conn, id: i64, to: AppealState, by: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let done =
        sql::query("UPDATE appeals SET state = ?, decided_by = ?, decided_at = ? WHERE id = ? AND state = 'open'")
            .bind(to)
            .bind(by)
            .bind(now_ms)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
