//! The end of a contest: at its cut-off the standings are frozen and the audit group
//! gets the preliminary ranking with a 终审 button; `终审` (typed or pressed) stores the
//! final ranking and payouts once, and broadcasts them.

use crate::clock::format_ms;
use crate::domain::contest::{self, ContestDef, ContestState, Payout, TeamStanding};
use crate::domain::money::Fen;
use crate::service::access::Operation;
use crate::service::cards::{Pressed, close_cards, send_finalise_card};
use crate::service::contest::{find, paid_members, pool, split_text, standings};
use crate::service::leaderboard::{broadcast, md, teams_only};
use crate::service::{Ctx, Outcome, refuse};
use crate::store::contests as store;
use crate::store::directory;
use crate::store::events::{self, NewEvent};
use sqlx::SqliteConnection;
use tracing::instrument;

/// Freezes every open contest whose cut-off has passed, snapshots its standings and
/// sends the audit group its 终审 card. Returns the names of the contests frozen.
#[instrument(level = "debug", skip_all)]
pub async fn freeze_due(ctx: &Ctx<'_>, conn: &mut SqliteConnection) -> Outcome<Vec<String>> {
    let now_ms = ctx.now_ms();
    let mut frozen = Vec::new();
    for def in ctx.settings.contests.iter().filter(|d| d.cutoff_ms <= now_ms) {
        if !store::freeze(conn, &def.id, now_ms).await? {
            continue;
        }
        let standings = standings(conn, def).await?;
        let snapshot = serde_json::to_string(&teams_only(&standings)).map_err(|e| sqlx::Error::Encode(e.into()))?;
        store::insert_snapshot(conn, &def.id, "cutoff", now_ms, &snapshot).await?;
        let pool = pool(def, &standings);
        send_finalise_card(ctx.settings, ctx.now, conn, def, &standings, pool).await?;
        let (from, to) = (ContestState::Open, ContestState::Frozen);
        let event = NewEvent::new(ctx.actor_id(), "contest", &def.id, "frozen").from(from.code()).to(to.code());
        events::append(conn, now_ms, event).await?;
        frozen.push(def.name.clone());
    }
    Ok(frozen)
}

/// `终审 比赛`: the contest named (by id or name).
pub async fn finalise_named(ctx: &Ctx<'_>, conn: &mut SqliteConnection, name: &str) -> Outcome {
    ctx.authorize(Operation::Finalise)?;
    let def = find(&ctx.settings.contests, Some(name), ctx.now)?.remove(0);
    finalise(ctx, conn, def, None).await
}

/// Finalises a contest once: stores the ranking and payouts, closes the 终审 cards,
/// broadcasts the result.
pub async fn finalise(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    def: &ContestDef,
    pressed: Option<Pressed<'_>>,
) -> Outcome {
    let auditor = ctx.authorize(Operation::Finalise)?;
    let row = store::get(conn, &def.id).await?;
    if let Some(row) = row.as_ref().filter(|r| r.state == ContestState::Final) {
        let who = match row.finalised_by.as_deref() {
            Some(id) => directory::find(conn, id).await?.map_or_else(|| id.to_owned(), |p| p.name),
            None => "审核组".into(),
        };
        let when = row.finalised_at.map(format_ms).unwrap_or_default();
        return refuse(format!("「{}」已于 {when} 由{who}终审，结果不再改变。", def.name));
    }
    if ctx.now_ms() < def.cutoff_ms {
        return refuse(format!("「{}」尚未截止（{}），截止后才能终审。", def.name, format_ms(def.cutoff_ms)));
    }
    let standings = standings(conn, def).await?;
    let pool = pool(def, &standings);
    let payouts = contest::payouts(pool, &standings, def.split);
    let result = serde_json::to_string(&standings).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let now = ctx.now_ms();
    if !store::finalise(conn, &def.id, &auditor.userid, now, pool.0, &result).await? {
        return refuse(format!("「{}」刚刚已被终审。", def.name));
    }
    for p in &payouts {
        store::insert_payout(conn, &def.id, &p.userid, &p.team, p.rank, p.amount.0).await?;
    }
    let event = NewEvent::new(&auditor.userid, "contest", &def.id, "finalised")
        .to(ContestState::Final.code())
        .data(serde_json::json!({ "pool": pool, "payouts": payouts }));
    events::append(conn, now, event).await?;
    let outcome = format!("已由{}终审", auditor.name);
    close_cards(ctx.settings, ctx.now, conn, None, Some(&def.id), &outcome, pressed).await?;
    let announcement = final_markdown(def, &standings, pool, &payouts);
    broadcast(ctx.now, conn, def, &announcement).await?;
    let winners: Vec<&str> = contest::winners(&standings).iter().map(|t| t.name.as_str()).collect();
    if winners.is_empty() {
        return Ok(format!(
            "「{}」终审完成：没有队伍得分，无第一名，奖池 {pool} 元不发放。排名已保存，结果已播报。",
            def.name
        ));
    }
    Ok(format!(
        "「{}」终审完成：第一名 {}，奖池 {pool} 元已按规则分配（{} 人），结果已播报。",
        def.name,
        winners.join("、"),
        payouts.len()
    ))
}

fn final_markdown(def: &ContestDef, standings: &[TeamStanding], pool: Fen, payouts: &[Payout]) -> String {
    let mut lines = vec![format!("## 🏆 {} 终审结果", md(&def.name)), String::new()];
    for t in standings {
        lines.push(format!("{}. **{}** {} 分", t.rank, md(&t.name), t.points));
    }
    lines.push(String::new());
    let winners = contest::winners(standings);
    if winners.is_empty() {
        lines.push(format!("没有队伍得分，本次比赛无第一名，奖池 **{pool}** 元不发放。"));
        return lines.join("\n");
    }
    lines.push(format!("奖池 **{pool}** 元，由第一名队伍{}分配：", split_text(def)));
    for (name, amount) in paid_members(standings, payouts) {
        lines.push(format!("> {} {amount} 元", md(name)));
    }
    lines.join("\n")
}
