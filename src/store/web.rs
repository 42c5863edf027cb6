//! The web console's sign-in state: the cookie key, OAuth `state`s and sessions.

use crate::store::Conn;
use crate::store::sql;
use tracing::instrument;

/// The key the console's cookies are signed with, made on first use.
pub async fn cookie_key(conn: &mut Conn, fresh: &[u8; 64], now_ms: i64) -> Result<Vec<u8>, sqlx::Error> {
    sql::query("INSERT INTO web_keys (id, cookie_key, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING")
        .bind(&fresh[..])
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    sql::query_scalar("SELECT cookie_key FROM web_keys WHERE id = 1").fetch_one(conn).await
}

/// A console session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub userid: String,
    pub csrf: String,
    pub expires_at: i64,
}
crate::direct_row!(Session { id, userid, csrf, expires_at });

pub async fn insert_session(conn: &mut Conn, session: &Session, now_ms: i64) -> Result<(), sqlx::Error> {
    sql::query("INSERT INTO web_sessions (id, userid, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&session.id)
        .bind(&session.userid)
        .bind(&session.csrf)
        .bind(now_ms)
        .bind(session.expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The session with this id, if it is neither revoked nor expired.
#[instrument(level = "debug", skip_all)]
pub async fn live_session(conn: &mut Conn, id: &str, now_ms: i64) -> Result<Option<Session>, sqlx::Error> {
    sql::query_as(
        "SELECT id, userid, csrf, expires_at FROM web_sessions
         WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(id)
    .bind(now_ms)
    .fetch_optional(conn)
    .await
}

/// Ends a session (signing out).
pub async fn revoke_session(conn: &mut Conn, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sql::query("UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a person (one who left, or an admin's revocation); returns
/// how many were live.
pub async fn revoke_sessions_of(conn: &mut Conn, userid: &str, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sql::query("UPDATE web_sessions SET revoked_at = ? WHERE userid = ? AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(userid)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
