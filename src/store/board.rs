//! The TV boards' read-only links: one random token per contest.

use crate::store::Conn;
use crate::store::sql;

/// Gives a contest a board token unless it has one; true when it was added.
pub async fn ensure_link(conn: &mut Conn, contest: &str, token: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let done =
        sql::query("INSERT INTO board_links (contest_id, token, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(contest)
            .bind(token)
            .bind(now_ms)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The contest's board token, if it has one.
pub async fn token(conn: &mut Conn, contest: &str) -> Result<Option<String>, sqlx::Error> {
    sql::query_scalar("SELECT token FROM board_links WHERE contest_id = ?").bind(contest).fetch_optional(conn).await
}

/// Replaces the contest's board token (the old one stops working).
pub async fn replace(conn: &mut Conn, contest: &str, token: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sql::query(
        "INSERT INTO board_links (contest_id, token, created_at) VALUES (?, ?, ?)
         ON CONFLICT (contest_id) DO UPDATE SET token = excluded.token, created_at = excluded.created_at",
    )
    .bind(contest)
    .bind(token)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}
