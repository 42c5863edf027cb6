//! 结算: the months, a month's settlement per person and per department, its CSV and
//! XLSX — the very bytes `leadboard settle` writes (`service::settlement`, and a
//! closed month's stored files) — closing a month, and the unpaid PK stakes with 缴费.
//! Who may: `结算`'s role (finance and admins).

use super::session::{CsrfField, Posted, Viewer};
use super::{Nav, WebError, answer, render, run_op};
use crate::domain::month::Month;
use crate::service::access::Operation;
use crate::service::settlement::{self, Report, compute};
use crate::service::{Outcome, ServiceError, contest};
use crate::state::AppState;
use crate::store::settlement as store;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// How many months back the month list goes.
const MONTHS_LISTED: usize = 12;

struct Preview {
    summary: String,
    closed: bool,
    /// (name, department, target, total)
    people: Vec<(String, String, String, String)>,
    /// (unit, department, total)
    departments: Vec<(String, String, String)>,
}

/// A PK stake not yet recorded as paid: (contest, team, name, userid, stake).
type Stake = (String, String, String, String, String);

fn stakes(report: &Report) -> Vec<Stake> {
    let stake = |s: &settlement::UnpaidStake| {
        (s.contest.clone(), s.team.clone(), s.name.clone(), s.userid.clone(), s.stake.to_string())
    };
    report.unpaid_stakes.iter().map(stake).collect()
}

#[derive(Template)]
#[template(path = "settle.html")]
struct Page {
    nav: Nav,
    month: String,
    /// (month, closed)
    months: Vec<(String, bool)>,
    preview: Option<Preview>,
    refused: Option<String>,
    stakes: Vec<Stake>,
}

#[derive(Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

fn parse_month(text: &str) -> Result<Month, WebError> {
    Month::parse(text)
        .ok_or_else(|| WebError::Refused(StatusCode::BAD_REQUEST, format!("月份格式应为 YYYY-MM（收到“{text}”）")))
}

fn preview(report: &Report) -> Preview {
    let people = report
        .settlement
        .people
        .iter()
        .map(|p| {
            let target = p.target.map(|(t, a)| format!("{a}/{t}")).unwrap_or_default();
            (p.payee.name.clone(), p.payee.department.clone(), target, p.total.to_string())
        })
        .collect();
    let departments = report
        .settlement
        .units
        .iter()
        .flat_map(|u| u.departments.iter().map(|(d, total)| (u.unit.clone(), d.clone(), total.to_string())))
        .collect();
    Preview { summary: report.summary(), closed: report.closed.is_some(), people, departments }
}

/// A month computed as `leadboard settle` computes it, in a transaction that is rolled
/// back (a preview leaves nothing behind).
async fn computed(state: &AppState, viewer: &Viewer, month: Month) -> Result<Outcome<Report>, WebError> {
    let mut tx = state.db.begin().await?;
    let report = compute(&mut tx, &viewer.settings, month, state.clock.now_ms()).await;
    if let Err(ServiceError::Db(e)) = report {
        return Err(e.into());
    }
    Ok(report)
}

/// `/ui/settle?month=YYYY-MM` (last month by default).
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<MonthQuery>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    ctx.authorize(Operation::Settle)?;
    let this = Month::of(ctx.today());
    let month = match q.month.as_deref() {
        Some(text) => parse_month(text)?,
        None => this.previous(),
    };
    let closed: Vec<String> = {
        let mut conn = state.db.reader().acquire().await?;
        store::closed_months(&mut conn).await?.into_iter().map(|c| c.month).collect()
    };
    let mut months: Vec<Month> =
        std::iter::successors(Some(this), |m| Some(m.previous())).take(MONTHS_LISTED).collect();
    if !months.contains(&month) {
        months.push(month);
    }
    let months = months.into_iter().map(|m| (m.to_string(), closed.contains(&m.to_string()))).collect();
    let (preview, refused, stakes) = match computed(&state, &viewer, month).await? {
        Ok(report) if report.is_empty() => {
            (None, Some(format!("{month} 没有可结算的记录（待确认 {} 条）。", report.pending)), stakes(&report))
        }
        Ok(report) => (Some(preview(&report)), None, stakes(&report)),
        Err(e) => (None, Some(e.to_string()), Vec::new()),
    };
    render(&Page { nav: viewer.nav.at("settle"), month: month.to_string(), months, preview, refused, stakes })
}

/// `/ui/settle/{month}/download/{csv|xlsx}`: the file `leadboard settle` writes, with
/// the run recorded as the command records it.
pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((month, format)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    ctx.authorize(Operation::Settle)?;
    let month = parse_month(&month)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let report = compute(&mut tx, &viewer.settings, month, now).await?;
    if report.is_empty() {
        return Err(WebError::Refused(StatusCode::NOT_FOUND, format!("{month} 没有可结算的记录。")));
    }
    let (bytes, kind) = match format.as_str() {
        "csv" => (report.csv()?, "text/csv; charset=utf-8"),
        "xlsx" => (report.xlsx()?, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        _ => return Err(WebError::Refused(StatusCode::NOT_FOUND, "没有这种文件格式。".into())),
    };
    report.record(&mut tx, &viewer.person.userid, now).await?;
    tx.commit().await?;
    let disposition = format!("attachment; filename=\"{}.{format}\"", report.file_stem());
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    force: Option<String>,
}

impl CsrfField for CloseForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /ui/settle/{month}/close`: `leadboard settle --close --by <the viewer>`.
pub async fn close(
    State(state): State<AppState>,
    Path(month): Path<String>,
    Posted { viewer, form, headers }: Posted<CloseForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let person = ctx.authorize(Operation::Settle)?;
    let month = parse_month(&month)?;
    let now = state.clock.now_ms();
    let by = format!("{}（{}）", person.name, person.userid);
    let mut tx = state.db.begin().await?;
    let outcome = match settlement::close(&mut tx, &viewer.settings, month, &by, form.force.is_some(), now).await {
        Ok(report) => {
            report.record(&mut tx, &by, now).await?;
            tx.commit().await?;
            Ok(report.summary())
        }
        Err(e) => Err(e),
    };
    answer(&headers, &viewer.nav, &format!("/ui/settle?month={month}"), outcome)
}

#[derive(Deserialize)]
pub struct StakeForm {
    #[serde(default)]
    csrf: Option<String>,
    person: String,
    contest: String,
}

impl CsrfField for StakeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /ui/settle/stake`: 缴费 for an unpaid stake the page lists.
pub async fn mark_paid(
    State(state): State<AppState>,
    Posted { viewer, form, headers }: Posted<StakeForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let outcome = run_op!(&state, async |conn| {
        contest::mark_paid(&ctx, conn, form.person.trim(), Some(form.contest.trim())).await
    })?;
    answer(&headers, &viewer.nav, "/ui/settle", outcome)
}
