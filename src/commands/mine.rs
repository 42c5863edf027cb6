//! `我的 [月份=YYYY-MM]`: the sender's records of a month, their states, and the points
//! that already count.

use crate::domain::month::Month;
use crate::domain::record::RecordState;
use crate::service::access::Operation;
use crate::service::decide::state_label;
use crate::service::{Ctx, Outcome, report};
use crate::store::records::Summary;
use chrono::NaiveDate;
use sqlx::SqliteConnection;

pub async fn run(ctx: &Ctx<'_>, conn: &mut SqliteConnection, month: Option<Month>) -> Outcome {
    let name = &ctx.authorize(Operation::Mine)?.name;
    let month = month.unwrap_or_else(|| Month::of(ctx.today()));
    let rows = report::of_month(ctx, conn, month).await?;
    let counted: i64 = rows.iter().filter(|r| r.counts).map(|r| r.points).sum();
    let waiting: i64 = rows.iter().filter(|r| r.state.is_open()).map(|r| r.points).sum();
    let mut lines = vec![
        format!("{name} · {}年{:02}月", month.year(), month.month()),
        format!("已计入：{counted} 分　待确认：{waiting} 分"),
    ];
    if rows.is_empty() {
        lines.push("本月还没有记录。发送「帮助」查看如何报备。".into());
    }
    lines.extend(rows.iter().map(|r| line(r, ctx.today())));
    Ok(lines.join("\n"))
}

fn line(r: &Summary, today: NaiveDate) -> String {
    let fields: serde_json::Value = serde_json::from_str(&r.fields).unwrap_or_default();
    let what = r.subject.clone().or_else(|| fields["姓名"].as_str().map(str::to_owned));
    let onboard = fields["入职"].as_str().and_then(|d| d.parse().ok());
    let state = state_label(r.state, onboard, today);
    let note = if r.state == RecordState::Confirmed && !r.counts { "（不重复计分）" } else { "" };
    format!("#{} {} {} · {}分 · {state}{note}", r.id, r.kind.label(), what.unwrap_or_default(), r.points)
}
