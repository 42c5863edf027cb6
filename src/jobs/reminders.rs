//! `reminders`: confirmers are reminded of handoffs still undecided after the first
//! delay, and the audit group is told of those still undecided after the second. Each
//! record is reminded once and escalated once.

use crate::app::AppState;
use crate::clock::format_ms;
use crate::commands::queue_text;
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
    escalate(state, &mut tx, &late).await?;
    tx.commit().await?;
    Ok(format!("提醒 {reminded} 条，升级 {} 条", late.len()))
}

fn hours(h: u64) -> i64 {
    h as i64 * 3_600_000
}

fn line(r: &Record) -> String {
    format!("#{} {}「{}」（{}，{}）", r.id, r.kind().label(), r.what(), r.reporter_name, format_ms(r.occurred_at))
}

/// One digest per confirmer, listing the records they may decide.
async fn remind(state: &AppState, tx: &mut Tx, due: &[Record]) -> anyhow::Result<usize> {
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut confirmers: BTreeMap<&'static str, Vec<Person>> = BTreeMap::new();
    for kind in [DeptKind::Cs, DeptKind::Tr] {
        confirmers.insert(kind.as_str(), directory::confirmers(tx, kind).await?);
    }
    for r in due {
        let dept = r.kind().receiving_dept().as_str();
        for c in confirmers.get(dept).into_iter().flatten().filter(|c| c.userid != r.reporter) {
            digests.entry(c.userid.clone()).or_default().push(line(r));
        }
        mark(state, tx, r, "remind").await?;
    }
    let hours = state.settings.reminders.first_after_hours;
    for (userid, lines) in &digests {
        let text = format!(
            "⏰ 以下记录已超过 {hours} 小时未处理：\n{}\n请在卡片上操作，或回复「确认 #编号」/「驳回 #编号 原因」。",
            lines.join("\n")
        );
        notify(state, tx, &[userid], &text).await?;
    }
    Ok(due.len())
}

async fn escalate(state: &AppState, tx: &mut Tx, late: &[Record]) -> anyhow::Result<()> {
    for r in late {
        mark(state, tx, r, "escalate").await?;
    }
    let auditors: Vec<&str> = state.settings.roles.audit_group.iter().map(String::as_str).collect();
    if late.is_empty() || auditors.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = late.iter().map(line).collect();
    let text = format!(
        "⚠️ 以下交接已超过 {} 小时仍未确认，请督促接收部门处理：\n{}",
        state.settings.reminders.escalate_after_hours,
        lines.join("\n")
    );
    notify(state, tx, &auditors, &text).await
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
