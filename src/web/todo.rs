//! 待办: what waits for the viewer as a confirmer, oldest first, with 确认 / 驳回 and,
//! for placements, 在岗 / 离职 — `service::decide`, the call a typed 确认 makes, so the
//! reporter's answer and every card about the record change exactly as in chat.

use super::session::{CsrfField, Posted, Viewer};
use super::{Nav, WebError, answer, render, run_op};
use crate::clock::format_ms;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::service::decide::{self, Action, Via, state_label};
use crate::service::{correct, refuse};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

struct Row {
    id: i64,
    kind: &'static str,
    what: String,
    reporter: String,
    when: String,
    age: String,
    state: &'static str,
    details: String,
    placement: bool,
}

#[derive(Template)]
#[template(path = "todo.html")]
struct Page {
    nav: Nav,
    rows: Vec<Row>,
}

/// `3天`, `5小时`, `不到1小时`.
fn age(ms: i64) -> String {
    let hours = ms.max(0) / 3_600_000;
    match (hours / 24, hours % 24) {
        (0, 0) => "不到1小时".into(),
        (0, h) => format!("{h}小时"),
        (d, _) => format!("{d}天"),
    }
}

/// The record's fields as reported, `键：值` joined, but for `what` (in the title); an
/// amount as chat shows it (`120,000.00 元`).
fn details(fields: &str, what: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(fields) else {
        return String::new();
    };
    let shown = |key: &str, value: &str| match Fen::parse_yuan(value) {
        Ok(fen) if key == "金额" => format!("{key}：{} 元", fen.grouped()),
        _ => format!("{key}：{value}"),
    };
    map.iter()
        .filter_map(|(k, v)| v.as_str().filter(|v| *v != what).map(|v| shown(k, v)))
        .collect::<Vec<_>>()
        .join("　")
}

/// `/ui/todo`.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let mut conn = state.db.reader().acquire().await?;
    let waiting = correct::todo(&ctx, &mut conn).await?;
    let today = ctx.today();
    let rows = waiting
        .into_iter()
        .map(|(r, since)| {
            let onboard = r.onboard_date.as_deref().and_then(|d| d.parse().ok());
            Row {
                id: r.id,
                kind: if r.kind == RecordKind::Placement { "在岗确认" } else { r.kind.label() },
                what: r.what(),
                reporter: r.reporter_name.clone(),
                when: format_ms(r.occurred_at),
                age: age(ctx.now_ms() - since),
                state: state_label(r.state, onboard, today),
                details: details(&r.fields, &r.what()),
                placement: r.kind == RecordKind::Placement,
            }
        })
        .collect();
    render(&Page { nav: viewer.nav.at("todo"), rows })
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
}

impl CsrfField for DecideForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /ui/todo/{id}/{confirm|reject|onjob|left}`.
pub async fn decide(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Posted { viewer, form, headers }: Posted<DecideForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let action = match action.as_str() {
        "confirm" => Some(Action::Confirm { closer: None }),
        "reject" => Some(Action::Reject { reason }),
        "onjob" => Some(Action::OnJob),
        "left" => Some(Action::Left { reason }),
        _ => None,
    };
    let outcome = run_op!(&state, async |conn| match action {
        Some(Action::Reject { reason: None }) => refuse("请写明驳回原因。"),
        Some(action) => decide::decide(&ctx, conn, id, action, Via::Text).await,
        None => refuse("无法识别的操作。"),
    })?;
    answer(&headers, &viewer.nav, "/ui/todo", outcome)
}

#[cfg(test)]
mod tests {
    use super::details;

    #[test]
    fn an_amount_is_shown_as_chat_shows_it() {
        let fields = r#"{"公司":"远景物流","金额":"120000.00","合同号":"HT-1"}"#;
        assert_eq!(details(fields, "远景物流"), "合同号：HT-1　金额：120,000.00 元");
    }
}
