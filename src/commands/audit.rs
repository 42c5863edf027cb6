//! The audit group's 作废 and 恢复: any record, with a reason, logged, the reporter told.
//! A finalised contest's result is never changed by them; the answer says so.

use crate::commands::cards::close_cards;
use crate::commands::contest::final_note;
use crate::commands::parse::Parsed;
use crate::commands::{CommandError, CommandResult, Ctx, refuse};
use crate::domain::record::RecordState;
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Record};
use sqlx::SqliteConnection;

pub async fn void(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> CommandResult {
    let id = p.record_no("编号").ok_or_else(|| CommandError::User("缺少编号".into()))?;
    let reason = p.text("原因").map(|t| t.to_string()).unwrap_or_default();
    let record = auditable(ctx, conn, id).await?;
    if record.state() == RecordState::Voided {
        return refuse(crate::commands::decide::already_decided(&record));
    }
    if !records::void(conn, id, &ctx.sender.userid, ctx.now_ms(), &reason).await? {
        return refuse(format!("#{id} 刚刚已被作废。"));
    }
    log(ctx, conn, id, "voided", record.state().code(), "voided", Some(&reason)).await?;
    close_cards(ctx.settings, ctx.now, conn, Some(id), None, &format!("已由{}作废", ctx.sender.name), None).await?;
    let what = format!("#{} {}「{}」", id, record.kind().label(), record.what());
    ctx.notify(conn, &[&record.reporter], &format!("您报备的 {what}已被业绩审核组作废，原因：{reason}。")).await?;
    Ok(format!(
        "已作废 {what}（{}），已通知报备人。{}",
        record.reporter_name,
        final_note(conn, ctx.settings, id).await?
    ))
}

pub async fn restore(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> CommandResult {
    let id = p.record_no("编号").ok_or_else(|| CommandError::User("缺少编号".into()))?;
    let reason = p.text("原因").map(|t| t.to_string());
    let record = auditable(ctx, conn, id).await?;
    if record.state() != RecordState::Voided {
        return refuse(format!("#{id} 没有被作废（当前：{}），无需恢复。", record.state().label()));
    }
    let back = record.voided_from.clone().unwrap_or_default();
    match records::restore(conn, id).await {
        Ok(true) => {}
        Ok(false) => return refuse(format!("#{id} 刚刚已被恢复。")),
        Err(e) if records::is_unique_violation(&e) => {
            return refuse(format!("无法恢复 #{id}：「{}」已有新的有效报备（先报先得）。", record.what()));
        }
        Err(e) => return Err(e.into()),
    }
    log(ctx, conn, id, "restored", "voided", &back, reason.as_deref()).await?;
    let state = RecordState::parse(&back).map(|s| s.label()).unwrap_or_default();
    let what = format!("#{} {}「{}」", id, record.kind().label(), record.what());
    ctx.notify(conn, &[&record.reporter], &format!("您报备的 {what}已被业绩审核组恢复为“{state}”。")).await?;
    Ok(format!("已恢复 {what}（{}）为“{state}”。{}", record.reporter_name, final_note(conn, ctx.settings, id).await?))
}

/// The record, unless it does not exist or the auditor reported it (nobody audits
/// their own record).
async fn auditable(ctx: &Ctx<'_>, conn: &mut SqliteConnection, id: i64) -> Result<Record, CommandError> {
    let Some(record) = records::get(conn, id).await? else { return refuse(format!("没有找到记录 #{id}。")) };
    if record.reporter == ctx.sender.userid {
        return refuse(format!("#{id} 是您本人报备的，不能由自己作废或恢复，请由审核组其他成员处理。"));
    }
    Ok(record)
}

async fn log(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    id: i64,
    action: &str,
    old: &str,
    new: &str,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    let event = NewEvent {
        actor: &ctx.sender.userid,
        entity: "record",
        entity_id: id.to_string(),
        action,
        old_value: Some(old.to_owned()),
        new_value: Some(new.to_owned()),
        reason: reason.map(str::to_owned),
        ..Default::default()
    };
    events::append(conn, ctx.now_ms(), event).await?;
    Ok(())
}
