//! `contest_cutoff`: freezes each contest whose cut-off has passed and sends the audit
//! group the preliminary ranking with a 终审 button.

use crate::app::AppState;
use crate::commands::cards::send_finalise_card;
use crate::commands::contest;
use crate::store::contests as store;
use crate::store::events::{self, NewEvent};

pub async fn run(state: &AppState) -> anyhow::Result<String> {
    let now = state.clock.now();
    let now_ms = now.timestamp_millis();
    let mut tx = state.db.begin().await?;
    let mut frozen = Vec::new();
    for def in state.settings.contest_defs().into_iter().filter(|d| d.cutoff_ms <= now_ms) {
        if !store::freeze(&mut tx, &def.id, now_ms).await? {
            continue;
        }
        let standings = contest::standings(&mut tx, &def).await?;
        let snapshot = serde_json::to_string(&crate::jobs::leaderboard::teams_only(&standings))?;
        store::insert_snapshot(&mut tx, &def.id, "cutoff", now_ms, &snapshot).await?;
        let pool = contest::pool(&def, &standings);
        send_finalise_card(&state.settings, now, &mut tx, &def, &standings, pool).await?;
        let event = NewEvent {
            actor: "system",
            entity: "contest",
            entity_id: def.id.clone(),
            action: "frozen",
            old_value: Some("open".into()),
            new_value: Some("frozen".into()),
            ..Default::default()
        };
        events::append(&mut tx, now_ms, event).await?;
        frozen.push(def.name);
    }
    tx.commit().await?;
    Ok(if frozen.is_empty() {
        "没有到截止时间的比赛".into()
    } else {
        format!("已截止：{}", frozen.join("、"))
    })
}
