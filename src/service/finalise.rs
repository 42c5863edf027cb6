//! The end of a contest: at its cut-off the standings are frozen and the audit group
//! gets the preliminary ranking with a 终审 button; `终审` (typed or pressed) stores the
//! final ranking and payouts once, and broadcasts them.

use crate::clock::format_ms;
use crate::domain::contest::{self, ContestDef, ContestState, Payout, TeamStanding};
use crate::domain::money::Fen;
use crate::service::access::Operation;
use crate::service::cards::{FinaliseStatus, Pressed, close_cards, send_finalise_card};
use crate::service::contest::{find, paid_members, pool, split_text, standings};
use crate::service::leaderboard::{broadcast, md, teams_only};
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::contests as store;
use crate::store::directory;
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, ReviewItem};
use tracing::instrument;

/// Freezes every open contest whose cut-off has passed, snapshots its standings and
/// sends the audit group its 终审 card. Returns the names of the contests frozen.
#[instrument(level = "debug", skip_all)]
pub async fn freeze_due(ctx: &Ctx<'_>, conn: &mut Conn) -> Outcome<Vec<String>> {
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
        let status = status(ctx, conn, def).await?;
        send_finalise_card(ctx.settings, ctx.now, conn, def, &standings, pool, &status).await?;
        let (from, to) = (ContestState::Open, ContestState::Frozen);
        let event = NewEvent::new(ctx.actor_id(), "contest", &def.id, "frozen").from(from.code()).to(to.code());
        events::append(conn, now_ms, event).await?;
        frozen.push(def.name.clone());
    }
    Ok(frozen)
}

/// What the 终审 card shows beside the ranking now.
async fn status(ctx: &Ctx<'_>, conn: &mut Conn, def: &ContestDef) -> Result<FinaliseStatus, sqlx::Error> {
    let undecided = records::contest_undecided(conn, &def.id).await?.len();
    let approved = store::approvals(conn, &def.id).await?.into_iter().map(|a| a.name).collect();
    Ok(FinaliseStatus { undecided, approved, quorum: ctx.settings.audit.finalise_quorum })
}

/// `终审 比赛 [待定=不计]`: the contest named (by id or name).
pub async fn finalise_named(ctx: &Ctx<'_>, conn: &mut Conn, name: &str, exclude_pending: bool) -> Outcome {
    ctx.authorize(Operation::Finalise)?;
    let def = find(&ctx.settings.contests, Some(name), ctx.now)?.remove(0);
    finalise(ctx, conn, def, exclude_pending, None).await
}

/// An auditor's 终审 of a contest (typed, or pressed on its card). It is refused while
/// records that could change the ranking are undecided, unless `exclude_pending`
/// (待定=不计) leaves them out, which is recorded. The approval is stored; once
/// `audit.finalise_quorum` different auditors approved the same ranking the contest is
/// final: the ranking and payouts are stored once, the cards closed, the result
/// broadcast.
pub async fn finalise(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    def: &ContestDef,
    exclude_pending: bool,
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
    let undecided = records::contest_undecided(conn, &def.id).await?;
    if !undecided.is_empty() && !exclude_pending {
        return refuse(undecided_refusal(def, &undecided));
    }
    let standings = standings(conn, def).await?;
    let pool = pool(def, &standings);
    let now = ctx.now_ms();
    let ranking = serde_json::to_string(&teams_only(&standings)).map_err(|e| sqlx::Error::Encode(e.into()))?;
    store::approve(conn, &def.id, &auditor.userid, &ranking, exclude_pending, now).await?;
    let excluded: Vec<i64> = if exclude_pending { undecided.iter().map(|r| r.id).collect() } else { Vec::new() };
    let event = NewEvent::new(&auditor.userid, "contest", &def.id, "approved")
        .data(serde_json::json!({ "ranking": ranking, "excluded": excluded }));
    events::append(conn, now, event).await?;
    // Approvals of another ranking (something changed since) do not count.
    let approvals: Vec<store::Approval> =
        store::approvals(conn, &def.id).await?.into_iter().filter(|a| a.ranking == ranking).collect();
    let quorum = ctx.settings.audit.finalise_quorum;
    if approvals.len() < quorum {
        let names: Vec<String> = approvals.iter().map(|a| a.name.clone()).collect();
        let outcome = format!("{}已同意（{}/{quorum}）", names.join("、"), names.len());
        close_cards(ctx.settings, ctx.now, conn, None, Some(&def.id), &outcome, pressed).await?;
        let status = FinaliseStatus { undecided: undecided.len(), approved: names.clone(), quorum };
        send_finalise_card(ctx.settings, ctx.now, conn, def, &standings, pool, &status).await?;
        return Ok(format!(
            "已记录您对「{}」初步排名的终审同意（{}/{quorum}），还需 {} 位业绩审核组其他成员终审后结果才生效。",
            def.name,
            names.len(),
            quorum - names.len()
        ));
    }
    let payouts = contest::payouts(pool, &standings, def.split);
    let result = serde_json::to_string(&standings).map_err(|e| sqlx::Error::Encode(e.into()))?;
    if !store::finalise(conn, &def.id, &auditor.userid, now, pool.0, &result).await? {
        return refuse(format!("「{}」刚刚已被终审。", def.name));
    }
    for p in &payouts {
        store::insert_payout(conn, &def.id, &p.userid, &p.team, p.rank, p.amount.0).await?;
    }
    let approvers: Vec<&str> = approvals.iter().map(|a| a.userid.as_str()).collect();
    let event = NewEvent::new(&auditor.userid, "contest", &def.id, "finalised")
        .to(ContestState::Final.code())
        .data(serde_json::json!({ "pool": pool, "payouts": payouts, "approved_by": approvers, "excluded": excluded }));
    events::append(conn, now, event).await?;
    let outcome = format!("已由{}终审", auditor.name);
    close_cards(ctx.settings, ctx.now, conn, None, Some(&def.id), &outcome, pressed).await?;
    for p in payouts.iter().filter(|p| p.amount.0 > 0) {
        let text = format!(
            "🏆「{}」终审结果：您所在的{}获得第一名，您分得PK奖金 {} 元。",
            def.name,
            p.team,
            p.amount.grouped()
        );
        ctx.notify(conn, &[&p.userid], &text).await?;
    }
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

/// Why a contest cannot be final yet: the records that could still change its ranking,
/// and how to finish.
fn undecided_refusal(def: &ContestDef, undecided: &[ReviewItem]) -> String {
    let mut lines = vec![format!("「{}」还有 {} 条记录未决定，可能改变排名，暂不能终审：", def.name, undecided.len())];
    for r in undecided.iter().take(10) {
        let state = if r.appealed { "申诉中" } else { r.state.label() };
        lines.push(format!(
            "#{} {}「{}」{} · {}分 · {state}",
            r.id,
            r.kind.label(),
            r.what.as_deref().unwrap_or_default(),
            r.reporter_name,
            r.points
        ));
    }
    if undecided.len() > 10 {
        lines.push(format!("……另有 {} 条，发送「待审 {}」查看。", undecided.len() - 10, def.name));
    }
    lines.push(format!(
        "请先处理这些记录；或发送「终审 比赛={} 待定=不计」不计这些记录直接终审（将记录在案）。",
        def.name
    ));
    lines.join("\n")
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
