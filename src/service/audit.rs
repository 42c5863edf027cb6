//! The audit group's 作废 and 恢复: any record but their own, with a reason, logged, the
//! reporter told. A finalised contest's result is never changed by them; the answer
//! says so.

use crate::clock::TZ;
use crate::domain::kind::RecordKind;
use crate::domain::month::Month;
use crate::domain::record::RecordState;
use crate::service::access::{self, Operation};
use crate::service::cards::close_cards;
use crate::service::cards::send_record_card;
use crate::service::contest::final_note;
use crate::service::decide::onjob_due;
use crate::service::decide::{already_decided, recheck_channel};
use crate::service::report::confirmers_for;
use crate::service::settlement;
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::cards::Purpose;
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Record};
use crate::store::{Constraint, violated};

/// `作废`: voids record `id` with `reason`.
pub async fn void(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, reason: &str) -> Outcome {
    let auditor = ctx.authorize(Operation::Void)?;
    let record = auditable(ctx, conn, id, Operation::Void).await?;
    if record.state == RecordState::Voided {
        return refuse(already_decided(&record));
    }
    if !records::void(conn, id, &auditor.userid, ctx.now_ms(), reason).await? {
        return refuse(format!("#{id} 刚刚已被作废。"));
    }
    let event =
        NewEvent::record(&auditor.userid, id, "voided").from(record.state.code()).to("voided").reason(Some(reason));
    events::append(conn, ctx.now_ms(), event).await?;
    close_cards(ctx.settings, ctx.now, conn, Some(id), None, &format!("已由{}作废", auditor.name), None).await?;
    let what = format!("#{} {}「{}」", id, record.kind.label(), record.what());
    ctx.notify(conn, &[&record.reporter], &format!("您报备的 {what}已被业绩审核组作废，原因：{reason}。")).await?;
    let channel = recheck_channel(ctx, conn, &record).await?;
    Ok(format!(
        "已作废 {what}（{}），已通知报备人。{channel}{}{}",
        record.reporter_name,
        final_note(conn, ctx.settings, id).await?,
        closed_month_note(conn, &record, "扣回").await?
    ))
}

/// For a record of a closed (paid) month: its files do not change, and what the change
/// does to its pay is an adjustment (补发 / 扣回) in the first open month after it.
async fn closed_month_note(conn: &mut Conn, record: &Record, kind: &str) -> Outcome {
    let Some(at) = chrono::DateTime::from_timestamp_millis(record.occurred_at) else { return Ok(String::new()) };
    let month = Month::of(at.with_timezone(&TZ).date_naive());
    Ok(match settlement::adjusted_in(conn, month).await? {
        Some(due_in) => format!(
            "\n注意：#{} 属于已结账的 {month}，该月的结算文件不变；如影响已发奖励，将在 {due_in} 的结算中生成{kind}。",
            record.id
        ),
        None => String::new(),
    })
}

/// `恢复`: puts a voided record back in the state (and decision) it had.
pub async fn restore(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, reason: Option<&str>) -> Outcome {
    let auditor = ctx.authorize(Operation::Restore)?;
    let record = auditable(ctx, conn, id, Operation::Restore).await?;
    let Some(back) = record.voided_from.filter(|_| record.state == RecordState::Voided) else {
        return refuse(format!("#{id} 没有被作废（当前：{}），无需恢复。", record.state.label()));
    };
    match records::restore(conn, id).await {
        Ok(true) => {}
        Ok(false) => return refuse(format!("#{id} 刚刚已被恢复。")),
        Err(e) if violated(&e).is_some_and(|c| matches!(c, Constraint::FirstClaim | Constraint::PlacementClaim)) => {
            return refuse(format!("无法恢复 #{id}：「{}」已有新的有效报备（先报先得）。", record.what()));
        }
        Err(e) => return Err(e.into()),
    }
    let event = NewEvent::record(&auditor.userid, id, "restored").from("voided").to(back.code()).reason(reason);
    events::append(conn, ctx.now_ms(), event).await?;
    let state = back.label();
    let what = format!("#{} {}「{}」", id, record.kind.label(), record.what());
    ctx.notify(conn, &[&record.reporter], &format!("您报备的 {what}已被业绩审核组恢复为“{state}”。")).await?;
    let channel = recheck_channel(ctx, conn, &record).await?;
    let card = resend_card(ctx, conn, id, back).await?;
    Ok(format!(
        "已恢复 {what}（{}）为“{state}”。{card}{channel}{}{}",
        record.reporter_name,
        final_note(conn, ctx.settings, id).await?,
        closed_month_note(conn, &record, "补发").await?
    ))
}

/// A record restored to a state that waits for its confirmers gets a fresh card (its
/// cards were closed when it was voided). Returns a line for the auditor.
async fn resend_card(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, back: RecordState) -> Outcome {
    let Some(record) = records::get(conn, id).await? else { return Ok(String::new()) };
    let due = record.onboard_date.as_deref().and_then(|d| d.parse().ok()).map(onjob_due);
    let purpose = match (record.kind, back) {
        (RecordKind::Placement, RecordState::Onboarded) if due.is_some_and(|d| d <= ctx.today()) => Purpose::OnJob,
        (RecordKind::Placement, _) => return Ok(String::new()),
        (_, RecordState::Reported) => Purpose::Confirm,
        _ => return Ok(String::new()),
    };
    let confirmers = confirmers_for(conn, ctx.settings, record.kind, &record.reporter).await?;
    if send_record_card(ctx.settings, ctx.now, conn, &record, purpose, &confirmers).await? {
        let names: Vec<&str> = confirmers.iter().map(|p| p.name.as_str()).collect();
        return Ok(format!("已重新发送确认卡片给{}。", names.join("、")));
    }
    Ok(String::new())
}

/// The record, unless it does not exist or the auditor reported it.
async fn auditable(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, op: Operation) -> Outcome<Record> {
    let auditor = ctx.authorize(op)?;
    let Some(record) = records::get(conn, id).await? else { return refuse(format!("没有找到记录 #{id}。")) };
    access::may_audit(auditor, &record)?;
    Ok(record)
}
