//! `daily_leaderboard`: the standings of every running contest to its chats.

use crate::service::{Ctx, leaderboard};
use crate::state::AppState;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let mut tx = state.db.begin().await?;
    let (contests, messages) =
        leaderboard::broadcast_daily(&Ctx::system(&state.settings(), state.clock.now()), &mut tx).await?;
    tx.commit().await?;
    Ok(format!("播报了 {contests} 个比赛，{messages} 条消息"))
}
