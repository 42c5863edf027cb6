//! 审核 (the audit group): records filtered by contest, state, kind, department, dates
//! and look-alike flags; 作废 / 恢复, appeals (维持 / 改判), the preliminary ranking of
//! each contest and 终审 with the guard and quorum of `service::finalise` — the
//! chat's operations, through the same permission table.

use super::mine::state_class;
use super::session::{CsrfField, Posted, Viewer};
use super::{Nav, WebError, answer, render, run_op};
use crate::clock::format_ms;
use crate::domain::contest::{ContestState, local_ms};
use crate::domain::kind::RecordKind;
use crate::domain::record::RecordState;
use crate::service::access::Operation;
use crate::service::contest::{standings, time_left};
use crate::service::correct::{self, Verdict};
use crate::service::{audit, finalise, refuse, review};
use crate::state::AppState;
use crate::store::contests as contests_store;
use crate::store::directory as people;
use crate::store::records::AuditFilter;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;

/// How many records the page lists at most.
const SHOWN: i64 = 200;

#[derive(Deserialize, Default)]
pub struct FilterQuery {
    #[serde(default)]
    contest: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    flagged: Option<String>,
}

struct Row {
    id: i64,
    kind: &'static str,
    what: String,
    reporter: String,
    when: String,
    points: i64,
    state: &'static str,
    class: &'static str,
    reason: String,
    appealed: bool,
    flagged: bool,
    voided: bool,
}

struct Ranking {
    id: String,
    name: String,
    time_left: String,
    /// (rank, team, points)
    teams: Vec<(u32, String, i64)>,
}

/// The filter as typed, shown back in the form.
struct Shown {
    contest: String,
    state: String,
    kind: String,
    department: String,
    from: String,
    to: String,
    flagged: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Page {
    nav: Nav,
    f: Shown,
    contests: Vec<(String, String)>,
    states: Vec<(&'static str, &'static str)>,
    kinds: Vec<(&'static str, &'static str)>,
    departments: Vec<(i64, String)>,
    rows: Vec<Row>,
    rankings: Vec<Ranking>,
}

fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

impl FilterQuery {
    fn filter(&self) -> AuditFilter {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        AuditFilter {
            contest: some(&self.contest),
            state: RecordState::parse(self.state.trim()),
            kind: RecordKind::parse(self.kind.trim()),
            department: self.department.trim().parse().ok(),
            from_ms: day(&self.from).map(|d| local_ms(d, NaiveTime::MIN)),
            to_ms: day(&self.to).and_then(|d| d.succ_opt()).map(|d| local_ms(d, NaiveTime::MIN)),
            flagged: self.flagged.is_some(),
        }
    }

    fn shown(self) -> Shown {
        Shown {
            flagged: self.flagged.is_some(),
            contest: self.contest,
            state: self.state,
            kind: self.kind,
            department: self.department,
            from: self.from,
            to: self.to,
        }
    }
}

/// `/ui/audit?contest=&state=&kind=&department=&from=&to=&flagged=1`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<FilterQuery>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let mut conn = state.db.reader().acquire().await?;
    let found = review::search(&ctx, &mut conn, &q.filter(), SHOWN).await?;
    let rows = found
        .into_iter()
        .map(|r| Row {
            id: r.id,
            kind: r.kind.label(),
            what: r.what.unwrap_or_default(),
            reporter: r.reporter_name,
            when: format_ms(r.occurred_at),
            points: r.points,
            state: r.state.label(),
            class: state_class(r.state),
            reason: r.reason.unwrap_or_default(),
            appealed: r.appealed,
            flagged: r.flagged,
            voided: r.state == RecordState::Voided,
        })
        .collect();
    let mut rankings = Vec::new();
    let mut contests = Vec::new();
    for def in &viewer.settings.contests {
        let row = contests_store::get(&mut conn, &def.id).await?;
        let live = row.as_ref().is_some_and(|r| r.state != ContestState::Final) && def.start_ms <= ctx.now_ms();
        if !live {
            continue;
        }
        contests.push((def.id.clone(), def.name.clone()));
        let teams = std::sync::Arc::unwrap_or_clone(standings(&mut conn, def).await?)
            .into_iter()
            .map(|t| (t.rank, t.name, t.points))
            .collect();
        rankings.push(Ranking {
            id: def.id.clone(),
            name: def.name.clone(),
            time_left: time_left(def, row.as_ref(), ctx.now),
            teams,
        });
    }
    let mut departments: Vec<(i64, String)> = people::department_names(&mut conn).await?.into_iter().collect();
    departments.sort();
    let page = Page {
        nav: viewer.nav.at("audit"),
        f: q.shown(),
        contests,
        states: RecordState::ALL.iter().map(|s| (s.code(), s.label())).collect(),
        kinds: RecordKind::ALL.iter().map(|k| (k.code(), k.label())).collect(),
        departments,
        rows,
        rankings,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    exclude_pending: Option<String>,
}

impl CsrfField for ActForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /ui/audit/{id}/{void|restore|uphold|overturn}`.
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Posted { viewer, form, headers }: Posted<ActForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let reason = form.reason.trim();
    let note = Some(reason).filter(|r| !r.is_empty());
    let outcome = run_op!(&state, async |conn| match action.as_str() {
        "void" if reason.is_empty() => {
            ctx.authorize(Operation::Void)?;
            refuse("请写明作废原因。")
        }
        "void" => audit::void(&ctx, conn, id, reason).await,
        "restore" => audit::restore(&ctx, conn, id, note).await,
        "uphold" => correct::judge(&ctx, conn, id, Verdict::Uphold, note, None).await,
        "overturn" => correct::judge(&ctx, conn, id, Verdict::Overturn, note, None).await,
        _ => refuse("无法识别的操作。"),
    })?;
    answer(&headers, &viewer.nav, "/ui/audit", outcome)
}

/// `POST /ui/audit/finalise/{contest}`: this auditor's 终审 approval of the ranking.
pub async fn finalise(
    State(state): State<AppState>,
    Path(contest): Path<String>,
    Posted { viewer, form, headers }: Posted<ActForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let exclude = form.exclude_pending.is_some();
    let outcome = run_op!(&state, async |conn| {
        ctx.authorize(Operation::Finalise)?;
        let Some(def) = ctx.settings.contest(&contest) else { return refuse("这个比赛已不在配置中。") };
        finalise::finalise(&ctx, conn, def, exclude, None).await
    })?;
    answer(&headers, &viewer.nav, "/ui/audit", outcome)
}
