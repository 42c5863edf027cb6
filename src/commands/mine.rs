//! `我的 [月份]`: the sender's records of a month, their states, the points that already
//! count, where they stand against their monthly target, and what they closed for
//! colleagues as 接手. Months are named as people say them (本月, 上月, 11月).

use crate::domain::month::Month;
use crate::domain::record::RecordState;
use crate::service::decide::state_label;
use crate::service::mine::{self, MonthView};
use crate::service::{Ctx, Outcome};
use crate::store::Conn;
use crate::store::records::Summary;
use chrono::NaiveDate;

pub async fn run(ctx: &Ctx<'_>, conn: &mut Conn, month: Option<Month>) -> Outcome {
    let this = Month::of(ctx.today());
    let view = mine::month(ctx, conn, month.unwrap_or(this)).await?;
    Ok(text(&view, ctx.today()))
}

fn text(view: &MonthView, today: NaiveDate) -> String {
    let this = Month::of(today);
    let past = view.month < this;
    let spoken = view.month.spoken(today);
    let month = match spoken.as_str() {
        "本月" | "上月" => format!("{spoken}（{}月）", view.month.month()),
        _ => spoken.clone(),
    };
    let counted: i64 = view.own.iter().filter(|r| r.counts).map(|r| r.points).sum();
    let waiting: i64 = view.own.iter().filter(|r| r.state.is_open()).map(|r| r.points).sum();
    let mut lines = vec![format!("{} · {month}", view.name), format!("已计入：{counted} 分　待确认：{waiting} 分")];
    if let Some((target, achieved)) = view.target {
        lines.push(target_line(target, achieved, past));
    }
    if view.own.is_empty() {
        lines.push(if past {
            format!("{month}没有记录。")
        } else if view.month == this {
            "本月还没有记录。发送「帮助」查看如何报备。".into()
        } else {
            format!("{month}还没有记录。")
        });
    }
    lines.extend(view.own.iter().map(|r| line(r, today)));
    if !view.closed.is_empty() {
        lines.push("我接手的（转接促成）：".into());
        for c in &view.closed {
            let r = &c.record;
            let what = what(r).unwrap_or_default();
            lines.push(format!("#{} {} {what}（{}报备）· {}", r.id, r.kind.label(), c.reporter_name, r.state.label()));
        }
    }
    lines.join("\n")
}

/// `月度任务：3/5 分，还差 2 分`.
pub fn target_line(target: i64, achieved: i64, past: bool) -> String {
    let missing = target - achieved;
    let state = match (missing <= 0, past) {
        (true, _) => "已完成 ✅".to_owned(),
        (false, false) => format!("还差 {missing} 分"),
        (false, true) => format!("未完成（差 {missing} 分）"),
    };
    format!("月度任务：{achieved}/{target} 分，{state}")
}

/// The client or channel, or a placement's person.
pub fn what(r: &Summary) -> Option<String> {
    r.subject.clone().or_else(|| {
        let fields: serde_json::Value = serde_json::from_str(&r.fields).ok()?;
        fields["姓名"].as_str().map(str::to_owned)
    })
}

fn line(r: &Summary, today: NaiveDate) -> String {
    let what = what(r).unwrap_or_default();
    let onboard = serde_json::from_str::<serde_json::Value>(&r.fields)
        .ok()
        .and_then(|f| f["入职"].as_str().and_then(|d| d.parse().ok()));
    let note = if r.state == RecordState::Confirmed && !r.counts { "（不重复计分）" } else { "" };
    // What never counts shows no points.
    let points = match r.state {
        RecordState::Rejected | RecordState::Left | RecordState::Voided | RecordState::Withdrawn => String::new(),
        _ => format!(" · {}分", r.points),
    };
    format!("#{} {} {what}{points} · {}{note}", r.id, r.kind.label(), state_label(r.state, onboard, today))
}
