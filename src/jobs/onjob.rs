//! `onjob_check`: the day-3 在岗/离职 cards to Talent Recruitment's confirmers.

use crate::service::{Ctx, onjob};
use crate::state::AppState;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let mut tx = state.db.begin().await?;
    let (sent, unsent) = onjob::send_due(&Ctx::system(&state.settings(), state.clock.now()), &mut tx).await?;
    tx.commit().await?;
    let unsent = match unsent {
        0 => String::new(),
        n => format!("；{n} 条因招商引才事业部没有可发送的确认人而未发送，配置确认人后下次运行时补发"),
    };
    Ok(format!("发送了 {sent} 张在岗确认卡片{unsent}"))
}
