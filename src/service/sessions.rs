//! The web console's sessions as operations, in the event log: a sign-in opens one for
//! someone active in the directory, signing out ends it, a person who left loses all
//! of theirs, and an admin can end a person's sessions (管理).

use crate::service::access::Operation;
use crate::service::{Ctx, Identity, Outcome, identify, refuse};
use crate::store::Conn;
use crate::store::directory::Person;
use crate::store::events::{self, NewEvent};
use crate::store::web::{self as store, Session};

/// Opens `session` for `person` (who signed in with WeCom just now).
pub async fn open(conn: &mut Conn, now_ms: i64, person: &Person, session: &Session) -> Result<(), sqlx::Error> {
    store::insert_session(conn, session, now_ms).await?;
    let event = NewEvent::new(&person.userid, "person", &person.userid, "console_signed_in");
    events::append(conn, now_ms, event.data(serde_json::json!({ "expires_at": session.expires_at }))).await?;
    Ok(())
}

/// Ends a session: its person signed out.
pub async fn sign_out(conn: &mut Conn, now_ms: i64, session: &Session) -> Result<(), sqlx::Error> {
    store::revoke_session(conn, &session.id, now_ms).await?;
    events::append(conn, now_ms, NewEvent::new(&session.userid, "person", &session.userid, "console_signed_out"))
        .await?;
    Ok(())
}

/// Ends every session of someone no longer active in the directory; how many were live.
pub async fn end_departed(conn: &mut Conn, now_ms: i64, userid: &str) -> Result<u64, sqlx::Error> {
    let ended = store::revoke_sessions_of(conn, userid, now_ms).await?;
    if ended > 0 {
        let event = NewEvent::new("system", "person", userid, "console_sessions_ended").reason(Some("离职或停用"));
        events::append(conn, now_ms, event).await?;
    }
    Ok(ended)
}

/// 管理 → 结束登录: an admin ends every console session of `userid`.
pub async fn revoke(ctx: &Ctx<'_>, conn: &mut Conn, userid: &str) -> Outcome {
    let admin = ctx.authorize(Operation::Manage)?.clone();
    let person = match identify(conn, userid).await? {
        Identity::Active(person) => person,
        _ => return refuse(format!("没有找到在职人员 {userid}。")),
    };
    let ended = store::revoke_sessions_of(conn, &person.userid, ctx.now_ms()).await?;
    let event = NewEvent::new(&admin.userid, "person", &person.userid, "console_sessions_ended").to(ended);
    events::append(conn, ctx.now_ms(), event).await?;
    Ok(format!("已结束{}的 {ended} 个网页控制台登录。", person.name))
}
