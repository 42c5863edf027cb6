//! `inbox_prune`: deletes the callback keys older than `server.inbox_retention_days`.
//! Exactly-once needs a key only while WeCom may still retry its callback (seconds);
//! the retention period keeps days, for people looking into what arrived.

use crate::state::AppState;
use crate::store::inbox;

const DAY_MS: i64 = 24 * 3600 * 1000;

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let days = state.settings().server.inbox_retention_days;
    let before = state.clock.now_ms().saturating_sub(i64::try_from(days)?.saturating_mul(DAY_MS));
    let deleted = inbox::prune(&state.db, before).await?;
    Ok(format!("清理了 {deleted} 条超过 {days} 天的回调去重记录"))
}
