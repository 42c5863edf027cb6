//! `reminders`: confirmers are reminded of handoffs still undecided after the first
//! delay, and the audit group is told of those still undecided after the second. Each
//! record is reminded once and escalated once.

use crate::app::AppState;
use crate::clock::format_ms;
use crate::commands::queue_text;
use crate::domain::kind::RecordKind;
use crate::domain::org::DeptKind;
use crate::store::Tx;
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Record};
use std::collections::BTreeMap;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let settings = &state.settings.reminders;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let due = records::undecided_since(&mut tx, now - hours(settings.first_after_hours), "remind").await?;
    let reminded = remind(state, &mut tx, &due).await?;
    let late = records::undecided_since(&mut tx, now - hours(settings.escalate_after_hours), "escalate").await?;
    let escalated = escalate(state, &mut tx, &late).await?;
    tx.commit().await?;
    Ok(format!("提醒 {reminded} 条，升级 {escalated} 条"))
}

fn hours(h: u64) -> i64 {
    h as i64 * 3_600_000
}

fn line(r: &Record) -> String {
    format!("#{} {}「{}」（{}，{}）", r.id, r.kind().label(), r.what(), r.reporter_name, format_ms(r.occurred_at))
}

/// One digest per confirmer, listing the records they may decide. A record nobody can
/// decide is not marked: it is reminded once there is a confirmer (and escalated anyway).
async fn remind(state: &AppState, tx: &mut Tx, due: &[Record]) -> anyhow::Result<usize> {
    let mut digests: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut confirmers: BTreeMap<&'static str, Vec<Person>> = BTreeMap::new();
    for kind in [DeptKind::Cs, DeptKind::Tr] {
        confirmers.insert(kind.as_str(), directory::confirmers(tx, kind).await?);
    }
    let mut reminded = 0;
    for r in due {
        let dept = r.kind().receiving_dept().as_str();
        let to: Vec<String> = confirmers
            .get(dept)
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
        mark(state, tx, r, "remind").await?;
        reminded += 1;
    }
    let hours = state.settings.reminders.first_after_hours;
    for (userid, records) in &digests {
        let lines: Vec<String> = records.iter().map(|r| line(r)).collect();
        let mut how = vec!["请在卡片上操作"];
        if records.iter().any(|r| r.kind() != RecordKind::Placement) {
            how.push("或回复「确认 #编号」/「驳回 #编号 原因」");
        }
        if records.iter().any(|r| r.kind() == RecordKind::Placement) {
            how.push("上岗记录回复「在岗 #编号」/「离职 #编号」");
        }
        let text = format!("⏰ 以下记录已超过 {hours} 小时未处理：\n{}\n{}。", lines.join("\n"), how.join("，"));
        notify(state, tx, &[userid], &text).await?;
    }
    Ok(reminded)
}

/// Tells the audit group; without one, nothing is marked, so the escalation happens
/// once an audit group is configured.
async fn escalate(state: &AppState, tx: &mut Tx, late: &[Record]) -> anyhow::Result<usize> {
    let auditors: Vec<&str> = state.settings.roles.audit_group.iter().map(String::as_str).collect();
    if late.is_empty() || auditors.is_empty() {
        return Ok(0);
    }
    for r in late {
        mark(state, tx, r, "escalate").await?;
    }
    let lines: Vec<String> = late.iter().map(line).collect();
    let text = format!(
        "⚠️ 以下交接已超过 {} 小时仍未确认，请督促接收部门处理：\n{}",
        state.settings.reminders.escalate_after_hours,
        lines.join("\n")
    );
    notify(state, tx, &auditors, &text).await?;
    Ok(late.len())
}

async fn mark(state: &AppState, tx: &mut Tx, r: &Record, stage: &'static str) -> anyhow::Result<()> {
    let now = state.clock.now_ms();
    records::mark_reminded(tx, r.id, stage, now).await?;
    let action = if stage == "remind" { "reminded" } else { "escalated" };
    let event =
        NewEvent { actor: "system", entity: "record", entity_id: r.id.to_string(), action, ..Default::default() };
    events::append(tx, now, event).await?;
    Ok(())
}

async fn notify(state: &AppState, tx: &mut Tx, users: &[&str], text: &str) -> anyhow::Result<()> {
    Ok(queue_text(tx, &state.settings, state.clock.now_ms(), users, text).await?)
}
