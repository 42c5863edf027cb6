//! 管理 (admins): each running contest's teams and members, with 缴费, 调队, 移出 and
//! 分配; 登记老渠道; the people with their levels and confirmer flags, and 结束登录
//! (ending a person's console sessions). Every action is
//! the chat command's service operation.

use super::session::{CsrfField, Posted, Viewer};
use super::{Nav, WebError, answer, render, run_op};
use crate::commands::args::Command;
use crate::commands::parse;
use crate::domain::contest::ContestState;
use crate::domain::org::Level;
use crate::service::access::Operation;
use crate::service::contest::{self, standings, time_left};
use crate::service::{channels, directory, refuse, sessions};
use crate::state::AppState;
use crate::store::contests as contests_store;
use crate::store::directory as people;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

struct Member {
    userid: String,
    name: String,
    points: i64,
    stake: String,
    paid: bool,
    current: bool,
}

struct Team {
    name: String,
    points: i64,
    members: Vec<Member>,
}

struct Contest {
    id: String,
    name: String,
    time_left: String,
    team_names: Vec<String>,
    teams: Vec<Team>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Page {
    nav: Nav,
    contests: Vec<Contest>,
    people: Vec<PersonRow>,
    /// (code, label) of every level.
    levels: Vec<(&'static str, &'static str)>,
}

struct PersonRow {
    name: String,
    userid: String,
    department: String,
    level: &'static str,
    confirmer: bool,
    /// What the console set: a level's code, "1"/"0", or "" for none.
    set_level: String,
    set_confirmer: String,
}

/// `/ui/admin`.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    ctx.authorize(Operation::Manage)?;
    let mut conn = state.db.reader().acquire().await?;
    let mut contests = Vec::new();
    for def in &viewer.settings.contests {
        let row = contests_store::get(&mut conn, &def.id).await?;
        if !row.as_ref().is_some_and(|r| r.state != ContestState::Final) {
            continue;
        }
        let teams: Vec<Team> = std::sync::Arc::unwrap_or_clone(standings(&mut conn, def).await?)
            .into_iter()
            .map(|t| Team {
                name: t.name,
                points: t.points,
                members: t
                    .members
                    .into_iter()
                    .map(|m| Member {
                        userid: m.userid,
                        name: m.name,
                        points: m.points,
                        stake: m.stake.to_string(),
                        paid: m.paid,
                        current: m.current,
                    })
                    .collect(),
            })
            .collect();
        contests.push(Contest {
            id: def.id.clone(),
            name: def.name.clone(),
            time_left: time_left(def, row.as_ref(), ctx.now),
            team_names: def.teams.iter().map(|t| t.name.clone()).collect(),
            teams,
        });
    }
    let set = people::console_settings(&mut conn).await?;
    let people = people::active(&mut conn)
        .await?
        .into_iter()
        .map(|p| {
            let s = set.iter().find(|s| s.userid == p.userid);
            PersonRow {
                set_level: s.and_then(|s| s.level).map(|l| l.as_str().to_owned()).unwrap_or_default(),
                set_confirmer: s
                    .and_then(|s| s.confirmer)
                    .map(|c| if c { "1" } else { "0" }.to_owned())
                    .unwrap_or_default(),
                level: p.level.label(),
                confirmer: p.confirmer,
                name: p.name,
                userid: p.userid,
                department: p.department,
            }
        })
        .collect();
    let levels = Level::ALL.iter().map(|l| (l.as_str(), l.label())).collect();
    render(&Page { nav: viewer.nav.at("admin"), contests, people, levels })
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: Option<String>,
    op: String,
    #[serde(default)]
    contest: Option<String>,
    #[serde(default)]
    person: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    confirmer: String,
}

impl CsrfField for ActForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /ui/admin/act` with `op` = paid, move, remove, assign, channel or revoke.
pub async fn act(
    State(state): State<AppState>,
    Posted { viewer, form, headers }: Posted<ActForm>,
) -> Result<Response, WebError> {
    let ctx = viewer.ctx();
    let (person, team, contest) = (form.person.trim(), form.team.trim(), form.contest.as_deref());
    let outcome = run_op!(&state, async |conn| match form.op.as_str() {
        "paid" => contest::mark_paid(&ctx, conn, person, contest).await,
        "move" => contest::move_team(&ctx, conn, person, team, contest).await,
        "remove" => contest::remove(&ctx, conn, person, contest).await,
        "assign" => contest::assign(&ctx, conn, person, team, contest).await,
        "revoke" => sessions::revoke(&ctx, conn, person).await,
        "person" => {
            let level = Level::parse(form.level.trim());
            let confirmer = match form.confirmer.trim() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            };
            directory::set_person(&ctx, conn, person, level, confirmer).await
        }
        // Read by the chat's parser, so the page accepts the names chat accepts.
        "channel" => match parse::parse(&format!("登记老渠道 {person}"), ctx.today()).map(|p| p.command) {
            Ok(Command::RegisterChannel { name }) => channels::register_old(&ctx, conn, &name).await,
            Ok(_) => refuse("请填写渠道名称。"),
            Err(e) => refuse(e.explain(ctx.today())),
        },
        _ => refuse("无法识别的操作。"),
    })?;
    answer(&headers, &viewer.nav, "/ui/admin", outcome)
}
