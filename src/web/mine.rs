//! 我的: the viewer's records of a month, their states and points, with 撤回 / 修改 /
//! 申诉 — the chat's `我的`, `撤回`, `修改` and `申诉`, through the same operations.

use super::session::{CsrfField, Posted, Viewer};
use super::{Nav, WebError, answer, render, run_op};
use crate::clock::format_ms;
use crate::commands::args::Command;
use crate::commands::table::{COMMANDS, CommandId};
use crate::commands::{corrections, mine as chat_mine, parse};
use crate::domain::month::Month;
use crate::domain::record::RecordState;
use crate::service::decide::state_label;
use crate::service::{correct, mine, refuse};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

struct Row {
    id: i64,
    kind: &'static str,
    what: String,
    when: String,
    points: String,
    state: &'static str,
    class: &'static str,
    pending: bool,
    rejected: bool,
    example: String,
}

#[derive(Template)]
#[template(path = "mine.html")]
struct Page {
    nav: Nav,
    month: String,
    prev: String,
    next: Option<String>,
    counted: i64,
    waiting: i64,
    /// (achieved, target, what it means)
    target: Option<(i64, i64, String)>,
    rows: Vec<Row>,
    closed: Vec<String>,
}

/// The CSS class of a state's badge.
pub fn state_class(state: RecordState) -> &'static str {
    match state {
        RecordState::Confirmed => "ok",
        RecordState::Rejected | RecordState::Left | RecordState::Voided | RecordState::Withdrawn => "bad",
        _ => "",
    }
}

/// `/ui/mine?month=YYYY-MM`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<MonthQuery>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let today = ctx.today();
    let this = Month::of(today);
    let month = q.month.as_deref().and_then(Month::parse).unwrap_or(this);
    let mut conn = state.db.reader().acquire().await?;
    let view = mine::month(&ctx, &mut conn, month).await?;
    let rows = view
        .own
        .iter()
        .map(|r| {
            let onboard = serde_json::from_str::<serde_json::Value>(&r.fields)
                .ok()
                .and_then(|f| f["入职"].as_str().and_then(|d| d.parse().ok()));
            let never = matches!(
                r.state,
                RecordState::Rejected | RecordState::Left | RecordState::Voided | RecordState::Withdrawn
            );
            let points = match (never, r.state == RecordState::Confirmed && !r.counts) {
                (true, _) => String::new(),
                (false, true) => format!("{} 分（不重复计分）", r.points),
                (false, false) => format!("{} 分", r.points),
            };
            let example = COMMANDS
                .iter()
                .find(|c| c.id == CommandId::Report(r.kind))
                .and_then(|c| c.fields.first())
                .map(|f| format!("{}=…", f.key))
                .unwrap_or_default();
            Row {
                id: r.id,
                kind: r.kind.label(),
                what: chat_mine::what(r).unwrap_or_default(),
                when: format_ms(r.occurred_at),
                points,
                state: state_label(r.state, onboard, today),
                class: state_class(r.state),
                pending: r.state.is_pending(),
                rejected: r.state == RecordState::Rejected,
                example,
            }
        })
        .collect();
    let closed = view
        .closed
        .iter()
        .map(|c| {
            let r = &c.record;
            let what = chat_mine::what(r).unwrap_or_default();
            format!("#{} {} {what}（{}报备）· {}", r.id, r.kind.label(), c.reporter_name, r.state.label())
        })
        .collect();
    let page = Page {
        nav: viewer.nav.at("mine"),
        month: view.month.to_string(),
        prev: view.month.previous().to_string(),
        next: (view.month < this).then(|| view.month.next().to_string()),
        counted: view.own.iter().filter(|r| r.counts).map(|r| r.points).sum(),
        waiting: view.own.iter().filter(|r| r.state.is_open()).map(|r| r.points).sum(),
        target: view
            .target
            .map(|(target, achieved)| (achieved, target, chat_mine::target_line(target, achieved, view.month < this))),
        rows,
        closed,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
}

impl CsrfField for ReasonForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: Option<String>,
    changes: String,
}

impl CsrfField for EditForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `撤回 #N [原因]`.
pub async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Posted { viewer, form, headers }: Posted<ReasonForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    let outcome = run_op!(&state, async |conn| correct::withdraw(&ctx, conn, id, reason).await)?;
    answer(&headers, &viewer.nav, "/ui/mine", outcome)
}

/// `申诉 #N 理由`.
pub async fn appeal(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Posted { viewer, form, headers }: Posted<ReasonForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let reason = form.reason.trim();
    let outcome = run_op!(&state, async |conn| {
        if reason.is_empty() {
            return refuse("请写明申诉理由。");
        }
        correct::appeal(&ctx, conn, id, reason).await
    })?;
    answer(&headers, &viewer.nav, "/ui/mine", outcome)
}

/// `修改 #N 字段=新值…`: the changes are read by the chat's own parser, so that a
/// page and a message accept exactly the same edits.
pub async fn edit(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Posted { viewer, form, headers }: Posted<EditForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let text = format!("修改 #{id} {}", form.changes.trim());
    let outcome = run_op!(&state, async |conn| match parse::parse(&text, ctx.today()) {
        Ok(parsed) => match parsed.command {
            Command::Edit { id: parsed_id, changes } if parsed_id == id => {
                corrections::edit(&ctx, conn, id, &changes).await
            }
            _ => refuse("请按「字段=新值」填写要修改的内容。"),
        },
        Err(e) => refuse(e.explain(ctx.today())),
    })?;
    answer(&headers, &viewer.nav, "/ui/mine", outcome)
}
