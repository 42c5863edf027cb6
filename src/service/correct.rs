//! Corrections on the record: a reporter withdraws (撤回) or edits (修改) their own
//! pending record, or appeals (申诉) a rejection; the audit group upholds (维持) or
//! overturns (改判) the appeal; a confirmer sees what waits for them (待办). Every
//! change is in the event log with its old and new values, and every card about the
//! record is updated for everyone who got it.

use crate::clock::format_ms;
use crate::domain::contest::local_ms;
use crate::domain::kind::RecordKind;
use crate::domain::record::RecordState;
use crate::service::access::{self, Operation};
use crate::service::cards::{Pressed, close_cards, send_appeal_card, send_record_card};
use crate::service::contest::final_note;
use crate::service::decide::{already_decided, follow_on, onjob_due};
use crate::service::report::{ReportInput, already_claimed, confirmers_for, prepare, store_flags};
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::appeals::{self, AppealState};
use crate::store::cards::{self as stored_cards, Purpose};
use crate::store::directory::Person;
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Content, Record};
use crate::store::violated;
use chrono::NaiveTime;
use serde_json::{Map, Value, json};

/// The record, if it exists and `op` is the actor's to do on it (their own record).
async fn own_record(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, op: Operation) -> Outcome<(Person, Record)> {
    let person = ctx.authorize(op)?.clone();
    let Some(record) = records::get(conn, id).await? else { return refuse(format!("没有找到记录 #{id}。")) };
    access::may_correct(&person, &record, op)?;
    Ok((person, record))
}

/// Refuses unless nobody has decided the record yet.
fn still_pending(r: &Record, op: Operation) -> Outcome<()> {
    if r.state.is_pending() {
        return Ok(());
    }
    let hint = match r.state {
        RecordState::Rejected => format!("如对驳回有异议，请发送「申诉 #{} 理由」。", r.id),
        RecordState::Withdrawn => String::new(),
        _ => "如需更正，请联系业绩审核组。".into(),
    };
    refuse(format!("#{} 当前状态是“{}”，已不能{}。{hint}", r.id, r.state.label(), op.label()))
}

/// `撤回 #N [原因]`: the reporter takes back a pending record; its claim is freed.
pub async fn withdraw(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, reason: Option<&str>) -> Outcome {
    let (person, record) = own_record(ctx, conn, id, Operation::Withdraw).await?;
    still_pending(&record, Operation::Withdraw)?;
    let (from, to) = (record.state, RecordState::Withdrawn);
    if !records::transition(conn, id, from, to, &person.userid, ctx.now_ms(), reason).await? {
        let now = records::get(conn, id).await?.unwrap_or(record);
        return refuse(already_decided(&now));
    }
    let event = NewEvent::record(&person.userid, id, "withdrawn").from(from.code()).to(to.code()).reason(reason);
    events::append(conn, ctx.now_ms(), event).await?;
    close_cards(ctx.settings, ctx.now, conn, Some(id), None, &format!("已由{}撤回", person.name), None).await?;
    Ok(format!("已撤回 #{id} {}「{}」，不计积分。", record.kind.label(), record.what()))
}

/// What `修改` needs to build the record's new content: the record, once the actor is
/// known to be its reporter and it is still pending.
pub async fn editable(ctx: &Ctx<'_>, conn: &mut Conn, id: i64) -> Outcome<Record> {
    let (_, record) = own_record(ctx, conn, id, Operation::Edit).await?;
    still_pending(&record, Operation::Edit)?;
    Ok(record)
}

/// `修改 #N 字段=新值…`: the reporter's pending record gets `input` as its content,
/// checked as a new report is (first claim wins against everyone else's claims). The
/// confirmers' cards are replaced by a card with the new values.
pub async fn edit(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, input: &ReportInput) -> Outcome {
    let record = editable(ctx, conn, id).await?;
    let person = ctx.authorize(Operation::Edit)?;
    if input.kind != record.kind {
        return refuse(format!("#{id} 是{}，不能改成{}。", record.kind.label(), input.kind.label()));
    }
    let old: Value = serde_json::from_str(&record.fields).unwrap_or_else(|_| json!({}));
    let (before, after) = changes(&old, &input.fields);
    if after.is_empty() {
        return refuse(format!("#{id} 没有任何改动。"));
    }
    let claimed = prepare(ctx, conn, person, input, Some(id)).await?;
    let content = Content {
        mode: input.mode,
        closer: claimed.closer.as_ref(),
        subject_id: claimed.subject_id,
        channel_id: claimed.channel_id,
        onboard_date: claimed.onboard_date.as_deref(),
        person_key: claimed.person_key.as_deref(),
        amount_fen: input.amount.map(|a| a.0),
        fields: &input.fields,
    };
    match records::set_content(conn, id, record.state, &content).await {
        Ok(true) => {}
        Ok(false) => return refuse(already_decided(&records::get(conn, id).await?.unwrap_or(record))),
        Err(e) if violated(&e).is_some() => {
            return refuse(format!("「{}」刚刚已被他人报备，先报先得。", claimed.subject_name));
        }
        Err(e) => return Err(e.into()),
    }
    let summary = summary(&before, &after);
    let event = NewEvent::record(&person.userid, id, "edited")
        .reason(Some(summary.as_str()))
        .data(json!({ "old": before, "new": after }));
    events::append(conn, ctx.now_ms(), event).await?;
    records::clear_flags(conn, id).await?;
    store_flags(ctx, conn, id, &claimed.flags).await?;
    // Every open card about the record is replaced by one with the new values.
    let purposes: Vec<Purpose> =
        stored_cards::open_for(conn, Some(id), None).await?.into_iter().map(|c| c.purpose).collect();
    close_cards(ctx.settings, ctx.now, conn, Some(id), None, "已修改，请查看新卡片", None).await?;
    let updated = records::get(conn, id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let confirmers = confirmers_for(conn, ctx.settings, record.kind, &record.reporter).await?;
    let mut resent = false;
    for purpose in [Purpose::Confirm, Purpose::OnJob].into_iter().filter(|p| purposes.contains(p)) {
        resent |= send_record_card(ctx.settings, ctx.now, conn, &updated, purpose, &confirmers).await?;
    }
    let mut lines = vec![format!("已修改 #{id} {}：{summary}", record.kind.label())];
    lines.extend(claimed.flags.iter().map(|(_, _, detail)| format!("⚠️ {detail}")));
    if resent {
        lines.push("确认人已收到更新后的卡片。".into());
    }
    Ok(lines.join("\n"))
}

/// The fields that differ: their old and new values (a removed field's new value is "").
fn changes(old: &Value, new: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let empty = Map::new();
    let (old, new) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let (mut before, mut after) = (Map::new(), Map::new());
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (o, n) = (old.get(key), new.get(key));
        if o != n {
            before.insert(key.clone(), o.cloned().unwrap_or_else(|| json!("")));
            after.insert(key.clone(), n.cloned().unwrap_or_else(|| json!("")));
        }
    }
    (before, after)
}

/// `公司：A → B；金额：… → …`.
fn summary(before: &Map<String, Value>, after: &Map<String, Value>) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("（空）").to_owned();
    after
        .keys()
        .map(|k| format!("{k}：{} → {}", text(before.get(k)), text(after.get(k))))
        .collect::<Vec<_>>()
        .join("；")
}

/// `申诉 #N 理由`: the reporter appeals a rejection, once, within `audit.appeal_days`.
pub async fn appeal(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, reason: &str) -> Outcome {
    let (person, record) = own_record(ctx, conn, id, Operation::Appeal).await?;
    if let Some(earlier) = appeals::of_record(conn, id).await? {
        let outcome = match earlier.state {
            AppealState::Open => "审核组正在处理".to_owned(),
            state => format!("结果：{}", state.label()),
        };
        return refuse(format!(
            "#{id} 已于 {} 申诉过（{outcome}），每条记录只能申诉一次。",
            format_ms(earlier.created_at)
        ));
    }
    if record.state != RecordState::Rejected {
        return refuse(format!("#{id} 当前状态是“{}”：只有被驳回的记录可以申诉。", record.state.label()));
    }
    let days = ctx.settings.audit.appeal_days;
    let deadline = record.decided_at.unwrap_or(record.occurred_at) + i64::from(days) * 86_400_000;
    if ctx.now_ms() > deadline {
        return refuse(format!("#{id} 驳回已超过 {days} 天（截至 {}），不能再申诉。", format_ms(deadline)));
    }
    let rejection = record.reason.as_deref();
    let inserted =
        appeals::insert(conn, id, &person.userid, reason, record.decided_by.as_deref(), rejection, ctx.now_ms()).await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return refuse(format!("#{id} 刚刚已申诉过，每条记录只能申诉一次。"));
        }
        Err(e) => return Err(e.into()),
    }
    let event = NewEvent::record(&person.userid, id, "appealed").reason(Some(reason));
    events::append(conn, ctx.now_ms(), event).await?;
    let auditors: Vec<String> =
        ctx.settings.roles.audit_group.iter().filter(|a| **a != person.userid).cloned().collect();
    send_appeal_card(ctx.settings, ctx.now, conn, &record, reason, &auditors).await?;
    let who = if auditors.is_empty() { "（尚未配置业绩审核组，请联系管理员）" } else { "" };
    Ok(format!(
        "已提交对 #{id} {}「{}」的申诉，业绩审核组会尽快处理{who}，结果会通知您。",
        record.kind.label(),
        record.what()
    ))
}

/// The audit group's decision on an appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 维持: the rejection stands.
    Uphold,
    /// 改判: the record is confirmed, with the auditor as its decider.
    Overturn,
}

/// `维持 #N` / `改判 #N` (typed or pressed on the appeal card).
pub async fn judge(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    id: i64,
    verdict: Verdict,
    note: Option<&str>,
    pressed: Option<Pressed<'_>>,
) -> Outcome {
    let auditor = ctx.authorize(Operation::Judge)?;
    let Some(record) = records::get(conn, id).await? else { return refuse(format!("没有找到记录 #{id}。")) };
    access::may_audit(auditor, &record)?;
    let Some(appeal) = appeals::of_record(conn, id).await? else {
        return refuse(format!("#{id} 没有申诉。"));
    };
    if appeal.state != AppealState::Open {
        let who = appeal.decided_by_name.as_deref().unwrap_or("审核组");
        let when = appeal.decided_at.map(format_ms).unwrap_or_default();
        return refuse(format!("#{id} 的申诉已由{who}于 {when} 处理（{}），无需重复操作。", appeal.state.label()));
    }
    let what = format!("#{id} {}「{}」", record.kind.label(), record.what());
    let (state, outcome, told) = match verdict {
        Verdict::Uphold => {
            let reason = record.reason.as_deref().unwrap_or("未填写原因");
            (AppealState::Upheld, format!("已由{}维持驳回", auditor.name), format!("维持驳回（原因：{reason}）"))
        }
        Verdict::Overturn => {
            let to = overturned_state(ctx, &record);
            let why = note.unwrap_or("申诉改判");
            match records::transition(conn, id, RecordState::Rejected, to, &auditor.userid, ctx.now_ms(), Some(why))
                .await
            {
                Ok(true) => {}
                Ok(false) => return refuse(already_decided(&records::get(conn, id).await?.unwrap_or(record))),
                Err(e) if violated(&e).is_some() => {
                    let holder = match record.subject_id.zip(record.kind.claim_slot()) {
                        Some((subject, slot)) => records::live_claim(conn, subject, slot, Some(id)).await?,
                        None => None,
                    };
                    let taken = match holder {
                        Some(h) => already_claimed(auditor, record.kind, &record.what(), &h),
                        None => format!("「{}」已有新的有效报备（先报先得）。", record.what()),
                    };
                    return refuse(format!("无法改判 #{id}：{taken}"));
                }
                Err(e) => return Err(e.into()),
            }
            let event =
                NewEvent::record(&auditor.userid, id, to.code()).from("rejected").to(to.code()).reason(Some(why));
            events::append(conn, ctx.now_ms(), event).await?;
            follow_on(ctx, conn, &record, to).await?;
            let counts = match to {
                RecordState::Confirmed => format!("记录已确认，{} 分已计入", record.points),
                _ => format!("记录恢复为“{}”", to.label()),
            };
            (AppealState::Overturned, format!("已由{}改判", auditor.name), format!("改判：{counts}"))
        }
    };
    if !appeals::decide(conn, appeal.id, state, &auditor.userid, ctx.now_ms()).await? {
        return refuse(format!("#{id} 的申诉刚刚已被处理。"));
    }
    let action = if state == AppealState::Upheld { "appeal_upheld" } else { "appeal_overturned" };
    events::append(conn, ctx.now_ms(), NewEvent::record(&auditor.userid, id, action).reason(note)).await?;
    close_cards(ctx.settings, ctx.now, conn, Some(id), None, &outcome, pressed).await?;
    ctx.notify(conn, &[&record.reporter], &format!("您对 {what}的申诉已由业绩审核组处理：{told}。")).await?;
    Ok(format!(
        "{what}（{}）的申诉：{told}，已通知报备人。{}",
        record.reporter_name,
        final_note(conn, ctx.settings, id).await?
    ))
}

/// What an overturned rejection becomes: what a 确认 would have made of it (an
/// agreement for a channel that needs its base indicator; a placement waits for its
/// day-3 check when that is not due yet).
fn overturned_state(ctx: &Ctx<'_>, r: &Record) -> RecordState {
    match r.kind {
        RecordKind::ChannelAgency | RecordKind::ChannelPerson => RecordState::Agreed,
        RecordKind::Placement => {
            let due = r.onboard_date.as_deref().and_then(|d| d.parse().ok()).map(onjob_due);
            match due {
                Some(due) if ctx.today() < due => RecordState::Onboarded,
                _ => RecordState::Confirmed,
            }
        }
        _ => RecordState::Confirmed,
    }
}

/// `待办`: what waits for this confirmer, oldest first, with when it began to wait.
pub async fn todo(ctx: &Ctx<'_>, conn: &mut Conn) -> Outcome<Vec<(Record, i64)>> {
    let person = ctx.authorize(Operation::Todo)?;
    let due =
        ctx.today().checked_sub_days(chrono::Days::new(crate::service::decide::ONJOB_DAYS)).unwrap_or(ctx.today());
    let kinds: Vec<RecordKind> = RecordKind::ALL.into_iter().filter(|k| k.receiving_dept() == person.kind).collect();
    let waiting = records::waiting_for(conn, &kinds, &person.userid, &due.to_string()).await?;
    let mut waiting: Vec<(Record, i64)> = waiting
        .into_iter()
        .map(|r| {
            let since = match (r.kind, r.onboard_date.as_deref().and_then(|d| d.parse().ok())) {
                (RecordKind::Placement, Some(day)) => local_ms(onjob_due(day), NaiveTime::MIN),
                _ => r.occurred_at,
            };
            (r, since)
        })
        .collect();
    waiting.sort_by_key(|(r, since)| (*since, r.id));
    Ok(waiting)
}
