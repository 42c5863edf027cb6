//! `我的 [月份=YYYY-MM]`: the sender's records of a month, their states, and the points
//! that already count.

use crate::clock::TZ;
use crate::commands::parse::{Month, Parsed};
use crate::commands::{CommandResult, Ctx};
use crate::domain::kind::RecordKind;
use crate::domain::record::RecordState;
use crate::store::records;
use chrono::TimeZone;
use sqlx::SqliteConnection;

/// Unix milliseconds of midnight (Asia/Shanghai) starting `month`, and the next month.
pub fn month_range(month: Month) -> (i64, i64) {
    let start = |m: Month| {
        TZ.from_local_datetime(&m.first_day().and_hms_opt(0, 0, 0).expect("midnight"))
            .single()
            .expect("Asia/Shanghai has no DST")
            .timestamp_millis()
    };
    (start(month), start(month.next()))
}

pub async fn run(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> CommandResult {
    let month = p.month("月份").unwrap_or_else(|| Month::of(ctx.today()));
    let (from, to) = month_range(month);
    let rows = records::reported_between(conn, &ctx.sender.userid, from, to).await?;
    let counted: i64 = rows.iter().filter(|r| r.counts).map(|r| r.points).sum();
    let waiting: i64 =
        rows.iter().filter(|r| RecordState::parse(&r.state).is_some_and(RecordState::is_open)).map(|r| r.points).sum();
    let mut lines = vec![
        format!("{} · {}年{:02}月", ctx.sender.name, month.year(), month.month()),
        format!("已计入：{counted} 分　待确认：{waiting} 分"),
    ];
    if rows.is_empty() {
        lines.push("本月还没有记录。发送「帮助」查看如何报备。".into());
    }
    for r in &rows {
        lines.push(line(r));
    }
    Ok(lines.join("\n"))
}

fn line(r: &records::Summary) -> String {
    let kind = RecordKind::parse(&r.kind).map(RecordKind::label).unwrap_or_default();
    let state = RecordState::parse(&r.state).map(RecordState::label).unwrap_or_default();
    let what = r.subject.clone().or_else(|| {
        let fields: serde_json::Value = serde_json::from_str(&r.fields).ok()?;
        fields["姓名"].as_str().map(str::to_owned)
    });
    let note = if r.state == "confirmed" && !r.counts { "（不重复计分）" } else { "" };
    format!("#{} {kind} {} · {}分 · {state}{note}", r.id, what.unwrap_or_default(), r.points)
}
