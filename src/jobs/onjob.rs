//! `onjob_check`: from the morning of the 3rd day after onboarding, a 在岗/离职 card
//! for each placement to Talent Recruitment's confirmers. Each placement gets one; a
//! placement nobody can confirm yet gets its card on the first run after there is
//! someone.

use crate::app::AppState;
use crate::commands::cards::{Purpose, send_record_card};
use crate::commands::decide::ONJOB_DAYS;
use crate::domain::org::DeptKind;
use crate::store::directory;
use crate::store::events::{self, NewEvent};
use crate::store::records;
use chrono::Days;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let now = state.clock.now();
    let today = state.clock.now_local().date_naive();
    let onboarded_by = today.checked_sub_days(Days::new(ONJOB_DAYS)).unwrap_or(today);
    let mut tx = state.db.begin().await?;
    let due = records::placements_due(&mut tx, &onboarded_by.to_string()).await?;
    let confirmers = directory::confirmers(&mut tx, DeptKind::Tr).await?;
    let mut sent = 0;
    for record in &due {
        let recipients: Vec<_> = confirmers.iter().filter(|c| c.userid != record.reporter).cloned().collect();
        if !send_record_card(&state.settings, now, &mut tx, record, Purpose::OnJob, &recipients).await? {
            continue;
        }
        sent += 1;
        let event = NewEvent {
            actor: "system",
            entity: "record",
            entity_id: record.id.to_string(),
            action: "onjob_check_sent",
            data: Some(serde_json::json!({ "to": recipients.iter().map(|p| &p.userid).collect::<Vec<_>>() })),
            ..Default::default()
        };
        events::append(&mut tx, now.timestamp_millis(), event).await?;
    }
    tx.commit().await?;
    let unsent = match due.len() - sent {
        0 => String::new(),
        n => format!("；{n} 条因招商引才事业部没有可发送的确认人而未发送，配置确认人后下次运行时补发"),
    };
    Ok(format!("发送了 {sent} 张在岗确认卡片{unsent}"))
}
