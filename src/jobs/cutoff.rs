//! `contest_cutoff`: freezes each contest whose cut-off has passed and sends the audit
//! group the preliminary ranking with a 终审 button.

use crate::service::{Ctx, finalise};
use crate::state::AppState;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let mut tx = state.db.begin().await?;
    let frozen = finalise::freeze_due(&Ctx::system(&state.settings(), state.clock.now()), &mut tx).await?;
    tx.commit().await?;
    Ok(if frozen.is_empty() {
        "没有到截止时间的比赛".into()
    } else {
        format!("已截止：{}", frozen.join("、"))
    })
}
