//! `排行` and `待审` as chat text.

use crate::domain::contest::{self, ContestState};
use crate::domain::record::RecordState;
use crate::service::contest::{Board, boards, final_payouts, paid_members, split_text, time_left};
use crate::service::review::review as contest_review;
use crate::service::{Ctx, Outcome};
use crate::store::Conn;
use crate::store::records::ReviewItem;

/// `排行 [比赛]`.
pub async fn standings(ctx: &Ctx<'_>, conn: &mut Conn, contest: Option<&str>) -> Outcome {
    let boards = boards(ctx, conn, contest).await?;
    let mut texts = Vec::new();
    for board in &boards {
        let mut text = standings_text(ctx, board);
        text.push('\n');
        text.push_str(&pool_text(conn, board).await?);
        texts.push(text);
    }
    Ok(texts.join("\n\n"))
}

/// Who takes the pool: the rule while the contest runs, what each winner was paid once
/// it is final (the payouts the finalisation stored).
async fn pool_text(conn: &mut Conn, board: &Board<'_>) -> Outcome {
    let pool = board.pool;
    let winners = contest::winners(&board.standings).len();
    let is_final = board.row.as_ref().is_some_and(|r| r.state == ContestState::Final);
    let owed = contest::owed(&board.standings);
    let unpaid = if owed.0 > 0 { format!("\nPK金未缴 {owed} 元") } else { String::new() };
    if !is_final {
        let rule = match winners {
            0 => format!("奖池：{pool} 元（第一名队伍获得全部奖池，目前还没有队伍得分）"),
            1 => format!("奖池：{pool} 元（第一名队伍获得全部奖池）"),
            n => format!("奖池：{pool} 元（目前 {n} 队并列第一，终审时平分）"),
        };
        return Ok(format!("{rule}{unpaid}"));
    }
    if winners == 0 {
        return Ok(format!("奖池：{pool} 元：没有队伍得分，不发放"));
    }
    let payouts = final_payouts(conn, board.def).await?;
    let who =
        if winners > 1 { format!("{winners} 队并列第一平分，队内") } else { "由第一名队伍".into() };
    let mut lines = vec![format!("奖池：{pool} 元，{who}{}分配：", split_text(board.def))];
    lines.extend(
        paid_members(&board.standings, &payouts).into_iter().map(|(name, amount)| format!("· {name} {amount} 元")),
    );
    Ok(lines.join("\n"))
}

/// Plain-text standings for a chat answer.
fn standings_text(ctx: &Ctx<'_>, board: &Board<'_>) -> String {
    let mut lines = vec![format!("🏆 {} 排行", board.def.name), time_left(board.def, board.row.as_ref(), ctx.now)];
    for t in board.standings.iter() {
        let top: Vec<String> =
            t.members.iter().filter(|m| m.points > 0).take(3).map(|m| format!("{}{}", m.name, m.points)).collect();
        let top = if top.is_empty() { String::new() } else { format!("（{}）", top.join("、")) };
        lines.push(format!("第{}名 {} {} 分{top}", t.rank, t.name, t.points));
    }
    lines.join("\n")
}

/// How many records one page of `待审` shows (a phone screen's worth).
const REVIEW_PAGE: usize = 8;

/// `待审 [比赛] [页=N]`: counts first, then the records, grouped by contest and paged.
pub async fn review(ctx: &Ctx<'_>, conn: &mut Conn, contest: Option<&str>, page: u32) -> Outcome {
    let review = contest_review(ctx, conn, contest).await?;
    let items: Vec<&ReviewItem> = review.items().collect();
    let count = |f: &dyn Fn(&ReviewItem) -> bool| items.iter().filter(|i| f(i)).count();
    let waiting = count(&|i| i.state.is_pending() && !i.appealed);
    let appealed = count(&|i| i.appealed);
    let closed = count(&|i| matches!(i.state, RecordState::Rejected | RecordState::Voided) && !i.appealed);
    let flagged = count(&|i| i.flagged);
    let mut lines = vec![format!("📋 待审 {} 条", items.len())];
    lines.push(format!("待确认超时 {waiting} · 申诉中 {appealed} · 驳回/作废 {closed} · 需核实 {flagged}"));
    let pages = items.len().div_ceil(REVIEW_PAGE).max(1);
    let page = (page as usize).clamp(1, pages);
    let shown = (page - 1) * REVIEW_PAGE..page * REVIEW_PAGE;
    let mut at = 0;
    for group in &review.groups {
        let heading = match group.def {
            Some(def) => format!("【{}】{} · {} 条", def.name, group.time_left, group.items.len()),
            None => format!("【未计入PK比赛】{} 条", group.items.len()),
        };
        let visible: Vec<&ReviewItem> =
            group.items.iter().enumerate().filter(|(i, _)| shown.contains(&(at + i))).map(|(_, r)| r).collect();
        at += group.items.len();
        if visible.is_empty() && !(group.items.is_empty() && page == 1) {
            continue;
        }
        lines.push(heading);
        if group.items.is_empty() {
            lines.push("没有待处理的记录。".into());
        }
        for r in visible {
            lines.push(item_line(r));
            for flag in review.flags.iter().filter(|f| f.record_id == r.id) {
                lines.push(format!("  ⚠️ {}", flag.detail));
            }
        }
    }
    if pages > 1 {
        let next =
            if page < pages { format!("，发送「待审 页={}」看下一页", page + 1) } else { String::new() };
        lines.push(format!("第 {page}/{pages} 页{next}"));
    }
    Ok(lines.join("\n"))
}

fn item_line(r: &ReviewItem) -> String {
    let flag = if r.escalated { "⏰" } else { "" };
    let state = if r.appealed { "申诉中".to_owned() } else { r.state.label().to_owned() };
    let reason = r.reason.as_ref().map(|x| format!("，{x}")).unwrap_or_default();
    format!(
        "{flag}#{} {}「{}」{} · {}分 · {state}{reason}",
        r.id,
        r.kind.label(),
        r.what.as_deref().unwrap_or_default(),
        r.reporter_name,
        r.points,
    )
}
