//! `排行` and `待审` as chat text.

use crate::domain::contest::{self, ContestState};
use crate::service::contest::{Board, boards, final_payouts, paid_members, split_text, time_left};
use crate::service::review::review as contest_review;
use crate::service::{Ctx, Outcome};
use sqlx::SqliteConnection;

/// `排行 [比赛]`.
pub async fn standings(ctx: &Ctx<'_>, conn: &mut SqliteConnection, contest: Option<&str>) -> Outcome {
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
async fn pool_text(conn: &mut SqliteConnection, board: &Board<'_>) -> Outcome {
    let pool = board.pool;
    let winners = contest::winners(&board.standings).len();
    let is_final = board.row.as_ref().is_some_and(|r| r.state == ContestState::Final);
    if !is_final {
        return Ok(match winners {
            0 => format!("奖池：{pool} 元（第一名队伍获得全部奖池，目前还没有队伍得分）"),
            1 => format!("奖池：{pool} 元（第一名队伍获得全部奖池）"),
            n => format!("奖池：{pool} 元（目前 {n} 队并列第一，终审时平分）"),
        });
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
    for t in &board.standings {
        let top: Vec<String> =
            t.members.iter().filter(|m| m.points > 0).take(3).map(|m| format!("{}{}", m.name, m.points)).collect();
        let top = if top.is_empty() { String::new() } else { format!("（{}）", top.join("、")) };
        lines.push(format!("第{}名 {} {} 分{top}", t.rank, t.name, t.points));
    }
    lines.join("\n")
}

/// `待审 [比赛]`: what is still undecided in a contest, and recent voids.
pub async fn review(ctx: &Ctx<'_>, conn: &mut SqliteConnection, contest: Option<&str>) -> Outcome {
    let mut lines = Vec::new();
    for review in contest_review(ctx, conn, contest).await? {
        lines.push(format!("【{}】{}", review.def.name, review.time_left));
        if review.items.is_empty() {
            lines.push("没有待处理或已作废的记录。".into());
        }
        for r in review.items {
            let flag = if r.escalated { "⚠️" } else { "" };
            let reason = r.reason.map(|x| format!("，{x}")).unwrap_or_default();
            lines.push(format!(
                "{flag}#{} {}「{}」{} · {}分 · {}{reason}",
                r.id,
                r.kind.label(),
                r.what.unwrap_or_default(),
                r.reporter_name,
                r.points,
                r.state.label()
            ));
        }
    }
    Ok(lines.join("\n"))
}
