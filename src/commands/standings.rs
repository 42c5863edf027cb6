//! `排行` and `待审` as chat text.

use crate::service::contest::{Board, boards, time_left};
use crate::service::review::review as contest_review;
use crate::service::{Ctx, Outcome};
use sqlx::SqliteConnection;

/// `排行 [比赛]`.
pub async fn standings(ctx: &Ctx<'_>, conn: &mut SqliteConnection, contest: Option<&str>) -> Outcome {
    let boards = boards(ctx, conn, contest).await?;
    Ok(boards.iter().map(|b| standings_text(ctx, b)).collect::<Vec<_>>().join("\n\n"))
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
    lines.push(format!("奖池：{} 元（第一名队伍获得全部奖池）", board.pool));
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
