//! Chasing undecided handoffs: confirmers are reminded of handoffs still undecided
//! after the first delay, and the audit group is told of those still undecided after
//! the second. Each record is reminded once and escalated once.

use crate::clock::format_ms;
use crate::domain::kind::RecordKind;
use crate::domain::org::DeptKind;
use crate::service::{Ctx, Outcome};
use crate::store::Conn;
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Record, Stage};
use std::collections::BTreeMap;
use tracing::instrument;

/// Sends what is due; returns (reminded, escalated).
#[instrument(level = "debug", skip_all)]
pub async fn chase(ctx: &Ctx<'_>, conn: &mut Conn) -> Outcome<(usize, usize)> {
    let settings = &ctx.settings.reminders;
    let now = ctx.now_ms();
    let due = records::undecided_since(conn, now - hours(settings.first_after_hours), Stage::Remind).await?;
    let reminded = remind(ctx, conn, &due).await?;
    let late = records::undecided_since(conn, now - hours(settings.escalate_after_hours), Stage::Escalate).await?;
    let escalated = escalate(ctx, conn, &late).await?;
    Ok((reminded, escalated))
}

fn hours(h: u64) -> i64 {
    h as i64 * 3_600_000
}

fn line(r: &Record) -> String {
    format!("#{} {}「{}」（{}，{}）", r.id, r.kind.label(), r.what(), r.reporter_name, format_ms(r.occurred_at))
}

/// One digest per confirmer, listing the records they may decide. A record nobody can
/// decide is not marked: it is reminded once there is a confirmer (and escalated anyway).
async fn remind(ctx: &Ctx<'_>, conn: &mut Conn, due: &[Record]) -> Outcome<usize> {
    let mut digests: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut confirmers: BTreeMap<DeptKind, Vec<Person>> = BTreeMap::new();
    for kind in [DeptKind::Cs, DeptKind::Tr] {
        confirmers.insert(kind, directory::confirmers(conn, kind).await?);
    }
    let mut reminded = 0;
    for r in due {
        let to: Vec<String> = confirmers
            .get(&r.kind.receiving_dept())
            .into_iter()
            .flatten()
            .filter(|c| c.userid != r.reporter)
            .map(|c| c.userid.clone())
            .collect();
        if to.is_empty() {
            tracing::warn!(record = r.id, "no confirmer to remind");
            continue;
        }
        for userid in to {
            digests.entry(userid).or_default().push(r);
        }
        mark(ctx, conn, r, Stage::Remind).await?;
        reminded += 1;
    }
    let hours = ctx.settings.reminders.first_after_hours;
    for (userid, records) in &digests {
        let lines: Vec<String> = records.iter().map(|r| line(r)).collect();
        let mut how = vec!["请在卡片上操作"];
        if records.iter().any(|r| r.kind != RecordKind::Placement) {
            how.push("或回复「确认 #编号」/「驳回 #编号 原因」");
        }
        if records.iter().any(|r| r.kind == RecordKind::Placement) {
            how.push("上岗记录回复「在岗 #编号」/「离职 #编号」");
        }
        let text = format!(
            "⏰ 以下记录已超过 {hours} 小时未处理：\n{}\n{}。\n网页处理：{}",
            lines.join("\n"),
            how.join("，"),
            ctx.settings.web.link("/ui/todo")
        );
        ctx.notify(conn, &[userid], &text).await?;
    }
    Ok(reminded)
}

/// Tells the audit group; without one, nothing is marked, so the escalation happens
/// once an audit group is configured.
async fn escalate(ctx: &Ctx<'_>, conn: &mut Conn, late: &[Record]) -> Outcome<usize> {
    let auditors: Vec<&str> = ctx.settings.roles.audit_group.iter().map(String::as_str).collect();
    if late.is_empty() || auditors.is_empty() {
        return Ok(0);
    }
    for r in late {
        mark(ctx, conn, r, Stage::Escalate).await?;
    }
    let lines: Vec<String> = late.iter().map(line).collect();
    let text = format!(
        "⚠️ 以下交接已超过 {} 小时仍未确认，请督促接收部门处理：\n{}\n网页审核：{}",
        ctx.settings.reminders.escalate_after_hours,
        lines.join("\n"),
        ctx.settings.web.link("/ui/audit")
    );
    ctx.notify(conn, &auditors, &text).await?;
    Ok(late.len())
}

async fn mark(ctx: &Ctx<'_>, conn: &mut Conn, r: &Record, stage: Stage) -> Outcome<()> {
    let now = ctx.now_ms();
    records::mark_reminded(conn, r.id, stage, now).await?;
    let action = match stage {
        Stage::Remind => "reminded",
        Stage::Escalate => "escalated",
    };
    events::append(conn, now, NewEvent::record(ctx.actor_id(), r.id, action)).await?;
    Ok(())
}
