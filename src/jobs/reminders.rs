//! `reminders`: undecided handoffs chased, confirmers first, then the audit group.

use crate::service::{Ctx, reminders};
use crate::state::AppState;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let mut tx = state.db.begin().await?;
    let (reminded, escalated) = reminders::chase(&Ctx::system(&state.settings(), state.clock.now()), &mut tx).await?;
    tx.commit().await?;
    Ok(format!("提醒 {reminded} 条，升级 {escalated} 条"))
}
