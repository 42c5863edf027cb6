//! PK contests: membership (configured teams kept in sync, 加入PK, 分配), standings
//! (live until final, the stored result afterwards) and finding a contest by name.

use crate::clock::format_ms;
use crate::config::Settings;
use crate::domain::contest::{self, ContestDef, ContestState, MemberScore, Payout, SplitRule, TeamDef, TeamStanding};
use crate::domain::money::Fen;
use crate::domain::org::{DeptKind, Level};
use crate::service::access::{self, Operation};
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::contests::{self as store, ContestRow, MemberSource, NewMember};
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use tracing::instrument;

/// Registers every configured contest and, while a contest is open (before its cut-off
/// and neither frozen nor final), its configured members (lists and departments), each
/// with the stake of their level. After the cut-off teams never change: someone who
/// joins a department later would otherwise change the pool and the payouts after the
/// audit group saw the preliminary ranking.
#[instrument(level = "debug", skip_all)]
pub async fn sync_all(conn: &mut Conn, settings: &Settings, now_ms: i64) -> Result<(), sqlx::Error> {
    for def in &settings.contests {
        store::sync(conn, def).await?;
        let open =
            now_ms < def.cutoff_ms && store::get(conn, &def.id).await?.is_some_and(|r| r.state == ContestState::Open);
        for team in &def.teams {
            let (people, source) = team_people(conn, def, team).await?;
            for (userid, level) in &people {
                if let Some(m) = store::membership(conn, &def.id, userid).await? {
                    if m.team != team.name {
                        // Moving someone would move their points and stake between
                        // teams: the team they are in stays until an admin decides.
                        tracing::warn!(contest = %def.id, userid, configured = %team.name, current = %m.team,
                            "contest member is configured in another team than the one they are in; kept in their team");
                    }
                    continue;
                }
                if !open {
                    // New people in a department team's department are expected; a
                    // name added to a member list after the cut-off is a mistake.
                    if source == MemberSource::Config {
                        tracing::warn!(contest = %def.id, userid, team = %team.name,
                            "contest is past its cut-off: configured member not added");
                    }
                    continue;
                }
                let stake = settings.stakes.for_level(*level).unwrap_or_default();
                let member = NewMember {
                    contest: &def.id,
                    userid,
                    team: &team.name,
                    stake_fen: stake.0,
                    joined_at: def.start_ms,
                    source,
                };
                store::add_member(conn, &member).await?;
            }
        }
    }
    super::board::ensure_links(conn, settings, now_ms).await
}

/// `(userid, level)` of the people a team is configured with, and where they come from.
async fn team_people(
    conn: &mut Conn,
    def: &ContestDef,
    team: &TeamDef,
) -> Result<(Vec<(String, Level)>, MemberSource), sqlx::Error> {
    if let Some(dept) = team.department {
        return Ok((store::department_people(conn, dept).await?, MemberSource::Department));
    }
    let mut people = Vec::new();
    for userid in &team.members {
        match directory::find(conn, userid).await? {
            Some(p) => people.push((p.userid, p.level)),
            None => tracing::warn!(contest = %def.id, userid, "contest member not in the directory (yet)"),
        }
    }
    Ok((people, MemberSource::Config))
}

/// Standings as served: shared, since the live ones are held in memory.
pub type Standings = Arc<Vec<TeamStanding>>;

/// The standings now: live until final, the stored result afterwards. This is what
/// `排行`, the daily leaderboard and the web board read; any connection will do (a
/// write transaction sees its own changes, a reader the last commit).
#[instrument(level = "debug", skip_all, fields(contest = %def.id))]
pub async fn standings(conn: &mut Conn, def: &ContestDef) -> Result<Standings, sqlx::Error> {
    let row = store::get(conn, &def.id).await?;
    standings_of(conn, def, row.as_ref()).await
}

/// [`standings`] for a contest whose row the caller has just read.
pub async fn standings_of(
    conn: &mut Conn,
    def: &ContestDef,
    row: Option<&ContestRow>,
) -> Result<Standings, sqlx::Error> {
    if let Some(result) = row.and_then(|r| r.result.as_deref()) {
        return serde_json::from_str(result).map(Arc::new).map_err(|e| sqlx::Error::Decode(e.into()));
    }
    live_standings(conn, def).await
}

/// Live standings held in memory, per contest, with the standings token they were read
/// under (migration 0070). A held copy is served only when the token the connection
/// sees now is the same: every change to what standings are made of changes the token
/// in its own transaction (also in another process), and a token is random, so it is
/// never reused after a rollback nor shared by two databases. Copies are therefore
/// never ahead of or behind the database the reader sees, whatever transaction it is in.
static LIVE: LazyLock<Mutex<HashMap<String, VecDeque<Held>>>> = LazyLock::new(Mutex::default);

/// Copies held per contest: the newest, and a few older ones for other databases with
/// the same contest in this process (tests; a `leadboard` command beside the service).
const HELD_PER_CONTEST: usize = 4;

struct Held {
    token: i64,
    /// The configured teams the standings were ranked with (a reload may change them).
    teams: Vec<String>,
    standings: Standings,
}

async fn live_standings(conn: &mut Conn, def: &ContestDef) -> Result<Standings, sqlx::Error> {
    let token = store::standings_token(conn).await?;
    let teams = || def.teams.iter().map(|t| t.name.as_str());
    {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let held = live.get(&def.id).into_iter().flatten();
        if let Some(held) = held.filter(|h| h.token == token).find(|h| h.teams.iter().map(String::as_str).eq(teams())) {
            return Ok(held.standings.clone());
        }
    }
    let rows = store::scores(conn, &def.id).await?;
    let mut teams_of: Vec<(String, Vec<MemberScore>)> = teams().map(|t| (t.to_owned(), Vec::new())).collect();
    for (team, userid, name, points, stake, paid, current) in rows {
        let member = MemberScore { userid, name, points, stake: Fen(stake), paid, current };
        match teams_of.iter_mut().find(|(n, _)| *n == team) {
            Some((_, members)) => members.push(member),
            None => teams_of.push((team, vec![member])),
        }
    }
    let standings = Arc::new(contest::rank(teams_of));
    let held = Held { token, teams: teams().map(str::to_owned).collect(), standings: standings.clone() };
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let copies = live.entry(def.id.clone()).or_default();
    copies.retain(|h| h.token != token);
    copies.push_front(held);
    copies.truncate(HELD_PER_CONTEST);
    Ok(standings)
}

/// Reads every configured contest's standings into memory (at start), from the last
/// commit.
pub async fn warm(db: &crate::store::Db, settings: &Settings) -> Result<(), sqlx::Error> {
    let mut conn = db.reader().acquire().await?;
    for def in &settings.contests {
        standings(&mut conn, def).await?;
    }
    Ok(())
}

/// Everyone's stakes plus the company's sponsorship.
pub fn pool(def: &ContestDef, standings: &[TeamStanding]) -> Fen {
    standings.iter().map(TeamStanding::stakes).sum::<Fen>() + def.sponsorship
}

/// How the winning team shares the pool, as messages say it (`按PK金比例`).
pub fn split_text(def: &ContestDef) -> &'static str {
    match def.split {
        SplitRule::Stake => "按PK金比例",
        SplitRule::Equal => "按人数平均",
    }
}

/// Each paid member's name and amount, in the order of the standings (the names they
/// had in the contest).
pub fn paid_members<'s>(standings: &'s [TeamStanding], payouts: &[Payout]) -> Vec<(&'s str, Fen)> {
    contest::winners(standings)
        .into_iter()
        .flat_map(|t| t.members.iter().map(move |m| (t, m)))
        .map(|(t, m)| {
            let paid = payouts.iter().find(|p| p.userid == m.userid && p.team == t.name);
            (m.name.as_str(), paid.map(|p| p.amount).unwrap_or_default())
        })
        .collect()
}

/// The payouts a final contest stored (none before it is final).
pub async fn final_payouts(conn: &mut Conn, def: &ContestDef) -> Result<Vec<Payout>, sqlx::Error> {
    store::payouts_of(conn, &def.id).await
}

/// How long until the cut-off, or where the contest stands after it.
pub fn time_left(def: &ContestDef, row: Option<&ContestRow>, now: DateTime<Utc>) -> String {
    if row.is_some_and(|r| r.state == ContestState::Final) {
        return "已终审".into();
    }
    let left = def.cutoff_ms - now.timestamp_millis();
    if left <= 0 {
        return format!("已于 {} 截止，等待业绩审核组终审", format_ms(def.cutoff_ms));
    }
    let hours = left / 3_600_000;
    let when = format_ms(def.cutoff_ms);
    match (hours / 24, hours % 24) {
        (0, 0) => format!("距截止不到 1 小时（{when}）"),
        (0, h) => format!("距截止还有 {h} 小时（{when}）"),
        (d, h) => format!("距截止还有 {d} 天 {h} 小时（{when}）"),
    }
}

/// Finds a contest by id or name; without one, the contests that are under way (or,
/// if none is, the latest that has started; none when no contest has started).
pub fn find<'a>(defs: &'a [ContestDef], name: Option<&str>, now: DateTime<Utc>) -> Outcome<Vec<&'a ContestDef>> {
    if defs.is_empty() {
        return refuse("目前没有PK比赛。");
    }
    match name {
        Some(name) => match defs.iter().find(|d| d.id.eq_ignore_ascii_case(name) || d.name == name) {
            Some(def) => Ok(vec![def]),
            None => {
                let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                refuse(format!("没有比赛“{name}”。现有比赛：{}。", names.join("、")))
            }
        },
        None => {
            let now = now.timestamp_millis();
            let running: Vec<&ContestDef> = defs.iter().filter(|d| d.start_ms <= now && now < d.cutoff_ms).collect();
            if running.is_empty() {
                Ok(defs.iter().filter(|d| d.start_ms <= now).max_by_key(|d| d.cutoff_ms).into_iter().collect())
            } else {
                Ok(running)
            }
        }
    }
}

/// One contest's standings as of now.
pub struct Board<'a> {
    pub def: &'a ContestDef,
    pub row: Option<ContestRow>,
    pub standings: Standings,
    pub pool: Fen,
}

/// `排行 [比赛]`: the standings of the named contest, or of those under way.
pub async fn boards<'a>(ctx: &Ctx<'a>, conn: &mut Conn, name: Option<&str>) -> Outcome<Vec<Board<'a>>> {
    let person = ctx.authorize(Operation::Standings)?;
    let mut chosen = find(&ctx.settings.contests, name, ctx.now)?;
    if name.is_none() {
        // Besides those under way: every started contest the person is in, and for the
        // audit group every one not yet final.
        let auditor = access::has_role(ctx.settings, person, access::Role::Audit);
        for def in ctx.settings.contests.iter().filter(|d| d.start_ms <= ctx.now_ms()) {
            if chosen.iter().any(|c| c.id == def.id) {
                continue;
            }
            let member = store::membership(conn, &def.id, &person.userid).await?.is_some();
            let open = store::get(conn, &def.id).await?.is_some_and(|r| r.state != ContestState::Final);
            if member || (auditor && open) {
                chosen.push(def);
            }
        }
    }
    if chosen.is_empty() {
        return refuse("PK比赛还没有开始。");
    }
    let mut boards = Vec::new();
    for def in chosen {
        let row = store::get(conn, &def.id).await?;
        let standings = standings_of(conn, def, row.as_ref()).await?;
        let pool = pool(def, &standings);
        boards.push(Board { def, row, standings, pool });
    }
    Ok(boards)
}

/// The receiving departments of what a contest scores: their people are grouped by
/// admins and cannot pick a team themselves.
fn scoring_departments(def: &ContestDef) -> Vec<DeptKind> {
    let mut kinds: Vec<_> = def.kinds.iter().map(|k| k.receiving_dept()).collect();
    kinds.dedup();
    kinds
}

/// The contest a team name (and optionally a contest name) points at.
fn contest_of_team<'a>(ctx: &Ctx<'a>, team: &str, contest: Option<&str>) -> Outcome<&'a ContestDef> {
    let defs = &ctx.settings.contests;
    let now = ctx.now_ms();
    let def = match contest {
        Some(name) => find(defs, Some(name), ctx.now)?.remove(0),
        None => {
            let with_team: Vec<&ContestDef> = defs.iter().filter(|d| d.team(team).is_some()).collect();
            let open: Vec<&ContestDef> = with_team.iter().copied().filter(|d| now < d.cutoff_ms).collect();
            match (with_team.len(), open.len()) {
                (0, _) => {
                    let open: Vec<String> = defs
                        .iter()
                        .filter(|d| now < d.cutoff_ms)
                        .map(|d| {
                            let teams: Vec<&str> = d.teams.iter().map(|t| t.name.as_str()).collect();
                            format!("「{}」：{}", d.name, teams.join("、"))
                        })
                        .collect();
                    if open.is_empty() {
                        return refuse(format!("没有队伍“{team}”，目前也没有可加入的PK比赛。"));
                    }
                    return refuse(format!("没有队伍“{team}”。可加入的队伍：\n{}", open.join("\n")));
                }
                (1, _) => with_team[0],
                (_, 1) => open[0],
                _ => return refuse("有多个比赛有这支队伍，请写明 比赛=…。"),
            }
        }
    };
    if def.team(team).is_none() {
        let teams: Vec<&str> = def.teams.iter().map(|t| t.name.as_str()).collect();
        return refuse(format!("「{}」没有队伍“{team}”。可选：{}。", def.name, teams.join("、")));
    }
    Ok(def)
}

/// `加入PK 队伍 [比赛]`: the actor joins a team (people outside the scoring departments).
pub async fn join(ctx: &Ctx<'_>, conn: &mut Conn, team: &str, contest: Option<&str>) -> Outcome {
    let person = ctx.authorize(Operation::Join)?.clone();
    let def = contest_of_team(ctx, team, contest)?;
    ensure_open(ctx, conn, def, "不能再加入").await?;
    add(ctx, conn, def, team, &person, MemberSource::Join).await
}

/// `分配 人员 队伍 [比赛]`: an admin puts someone in a team.
pub async fn assign(ctx: &Ctx<'_>, conn: &mut Conn, person: &str, team: &str, contest: Option<&str>) -> Outcome {
    ctx.authorize(Operation::Assign)?;
    let def = contest_of_team(ctx, team, contest)?;
    ensure_open(ctx, conn, def, "不能再加入").await?;
    let person = only_person(conn, person).await?;
    add(ctx, conn, def, team, &person, MemberSource::Assign).await
}

/// `缴费 人员 [比赛]`: an admin records a member's stake as paid.
pub async fn mark_paid(ctx: &Ctx<'_>, conn: &mut Conn, person: &str, contest: Option<&str>) -> Outcome {
    let admin = ctx.authorize(Operation::MarkPaid)?.clone();
    let person = only_person(conn, person).await?;
    let def = contest_of_member(ctx, conn, &person, contest).await?;
    let m = store::membership(conn, &def.id, &person.userid).await?.ok_or(sqlx::Error::RowNotFound)?;
    if !store::mark_paid(conn, &def.id, &person.userid, &admin.userid, ctx.now_ms()).await? {
        let when = store::paid_at(conn, &def.id, &person.userid).await?.map(format_ms).unwrap_or_default();
        return refuse(format!("{}在「{}」的PK金已于 {when} 登记为已缴，无需重复登记。", person.name, def.name));
    }
    let stake = Fen(m.stake_fen);
    let event = NewEvent::new(&admin.userid, "contest", &def.id, "stake_paid")
        .to(&person.userid)
        .data(serde_json::json!({ "stake": stake }));
    events::append(conn, ctx.now_ms(), event).await?;
    let standings = standings(conn, def).await?;
    let owed = contest::owed(&standings);
    Ok(format!(
        "已登记{}（{}）在「{}」的PK金 {stake} 元为已缴。本比赛PK金未缴合计 {owed} 元。",
        person.name, m.team, def.name
    ))
}

/// Teams change only while the contest is open.
async fn ensure_open(ctx: &Ctx<'_>, conn: &mut Conn, def: &ContestDef, refusal: &str) -> Outcome<()> {
    if ctx.now_ms() >= def.cutoff_ms || store::get(conn, &def.id).await?.is_some_and(|r| r.state != ContestState::Open)
    {
        return refuse(format!("「{}」已截止，{refusal}。", def.name));
    }
    Ok(())
}

/// `调队 人员 队伍 [比赛]`: an admin moves a member to another team. Their records from
/// now on score for the new team; what they reported before stays with the old one.
pub async fn move_team(ctx: &Ctx<'_>, conn: &mut Conn, person: &str, team: &str, contest: Option<&str>) -> Outcome {
    let admin = ctx.authorize(Operation::Move)?.clone();
    let def = contest_of_team(ctx, team, contest)?;
    ensure_open(ctx, conn, def, "队伍不再变动").await?;
    let person = only_person(conn, person).await?;
    let Some(m) = store::membership(conn, &def.id, &person.userid).await?.filter(|m| m.left_at.is_none()) else {
        return refuse(format!("{}不在「{}」的队伍中：请用「分配」把他加入队伍。", person.name, def.name));
    };
    if m.team == team {
        return refuse(format!("{}已在「{}」的{team}。", person.name, def.name));
    }
    if !store::move_member(conn, &def.id, &person.userid, team, ctx.now_ms()).await? {
        return refuse(format!("{}刚刚已不在「{}」的队伍中。", person.name, def.name));
    }
    let event = NewEvent::new(&admin.userid, "contest", &def.id, "moved")
        .from(&m.team)
        .to(team)
        .data(serde_json::json!({ "userid": person.userid }));
    events::append(conn, ctx.now_ms(), event).await?;
    let how = format!("「{}」从{}调到{team}：此后的业绩计入{team}，之前的仍计入{}", def.name, m.team, m.team);
    ctx.notify(conn, &[&person.userid], &format!("管理员已将您在{how}。")).await?;
    Ok(format!("已将{}在{how}。", person.name))
}

/// `退出PK [比赛]`: a member leaves a contest before its cut-off.
pub async fn leave(ctx: &Ctx<'_>, conn: &mut Conn, contest: Option<&str>) -> Outcome {
    let person = ctx.authorize(Operation::Leave)?.clone();
    let def = contest_of_member(ctx, conn, &person, contest).await?;
    remove_from(ctx, conn, def, &person).await
}

/// `移出 人员 [比赛]`: an admin takes a member out of a contest.
pub async fn remove(ctx: &Ctx<'_>, conn: &mut Conn, person: &str, contest: Option<&str>) -> Outcome {
    ctx.authorize(Operation::Remove)?;
    let person = only_person(conn, person).await?;
    let def = contest_of_member(ctx, conn, &person, contest).await?;
    let answer = remove_from(ctx, conn, def, &person).await?;
    ctx.notify(conn, &[&person.userid], &format!("管理员已将您移出「{}」。", def.name)).await?;
    Ok(answer)
}

/// The contest `person` is a current member of (the one named, or their only one).
async fn contest_of_member<'a>(
    ctx: &Ctx<'a>,
    conn: &mut Conn,
    person: &Person,
    contest: Option<&str>,
) -> Outcome<&'a ContestDef> {
    let candidates: Vec<&ContestDef> = match contest {
        Some(name) => find(&ctx.settings.contests, Some(name), ctx.now)?,
        None => ctx.settings.contests.iter().collect(),
    };
    let mut member_of = Vec::new();
    for def in candidates {
        if store::membership(conn, &def.id, &person.userid).await?.is_some_and(|m| m.left_at.is_none()) {
            member_of.push(def);
        }
    }
    match member_of.as_slice() {
        [one] => Ok(*one),
        [] => refuse(format!("{}没有参加{}。", person.name, contest.map_or("PK比赛".into(), |c| format!("「{c}」")))),
        _ => refuse(format!("{}参加了多个比赛，请写明 比赛=…。", person.name)),
    }
}

/// Ends a membership: the points so far stay with the team; the stake leaves the pool
/// and the person is not paid from it.
async fn remove_from(ctx: &Ctx<'_>, conn: &mut Conn, def: &ContestDef, person: &Person) -> Outcome {
    ensure_open(ctx, conn, def, "队伍不再变动").await?;
    let m = store::membership(conn, &def.id, &person.userid).await?.ok_or(sqlx::Error::RowNotFound)?;
    if !store::remove_member(conn, &def.id, &person.userid, ctx.now_ms()).await? {
        return refuse(format!("{}刚刚已退出「{}」。", person.name, def.name));
    }
    let event = NewEvent::new(ctx.actor_id(), "contest", &def.id, "left")
        .from(&m.team)
        .data(serde_json::json!({ "userid": person.userid, "stake": Fen(m.stake_fen) }));
    events::append(conn, ctx.now_ms(), event).await?;
    Ok(format!(
        "{}已退出「{}」的{}：此前的业绩仍计入{}，PK金 {} 元不再计入奖池（已缴的由管理员退还），不参与奖金分配，不能再次加入。",
        person.name,
        def.name,
        m.team,
        m.team,
        Fen(m.stake_fen)
    ))
}

async fn add(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    def: &ContestDef,
    team: &str,
    person: &Person,
    source: MemberSource,
) -> Outcome {
    let assign = source == MemberSource::Assign;
    let now = ctx.now_ms();
    if let Some(m) = store::membership(conn, &def.id, &person.userid).await? {
        if let Some(left) = m.left_at {
            return refuse(format!("{}已于 {} 退出「{}」，不能再次加入。", person.name, format_ms(left), def.name));
        }
        return refuse(format!("{}已在「{}」的{}，每人只能加入一支队伍。", person.name, def.name, m.team));
    }
    if !assign && scoring_departments(def).contains(&person.kind) {
        return refuse(format!("{}成员的PK分组由管理员安排，请联系管理员。", person.kind.label()));
    }
    let Some(stake) = ctx.settings.stakes.for_level(person.level) else {
        return refuse(format!("{}级暂不参加PK（未设置PK金）。", person.level.label()));
    };
    let member =
        NewMember { contest: &def.id, userid: &person.userid, team, stake_fen: stake.0, joined_at: now, source };
    store::add_member(conn, &member).await?;
    let event = NewEvent::new(ctx.actor_id(), "contest", &def.id, if assign { "assigned" } else { "joined" })
        .to(team)
        .data(serde_json::json!({ "userid": person.userid, "stake": stake }));
    events::append(conn, now, event).await?;
    let how = format!("「{}」{team}，PK金 {stake} 元（{}级），自加入起的业绩计入本队", def.name, person.level.label());
    if assign {
        ctx.notify(conn, &[&person.userid], &format!("管理员已将您分配到{how}。")).await?;
        Ok(format!("已将{}分配到{how}。", person.name))
    } else {
        Ok(format!("已加入{how}。请缴纳PK金 {stake} 元：{}。", ctx.settings.stakes.payment_note))
    }
}

/// The one active person with this name or userid.
async fn only_person(conn: &mut Conn, name: &str) -> Outcome<Person> {
    let mut found = directory::find_by_name(conn, name).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => refuse(format!("通讯录中没有“{name}”。")),
        _ => {
            let ids: Vec<String> = found.iter().map(|p| p.userid.clone()).collect();
            refuse(format!("“{name}”有重名，请写账号：{}。", ids.join("、")))
        }
    }
}

/// Which finalised contests a record change does not affect, for the audit group's answer.
pub async fn final_note(conn: &mut Conn, settings: &Settings, record: i64) -> Result<String, sqlx::Error> {
    let finals = store::final_contests_of(conn, record).await?;
    let names: Vec<&str> =
        settings.contests.iter().filter(|d| finals.contains(&d.id)).map(|d| d.name.as_str()).collect();
    Ok(if names.is_empty() {
        String::new()
    } else {
        format!("\n注意：该记录属于已终审的比赛「{}」，比赛结果不变。", names.join("、"))
    })
}
