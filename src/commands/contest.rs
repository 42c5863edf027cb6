//! PK contests in chat: standings (排行), joining (加入PK) and assignment (分配), and the
//! audit group's review (待审), finalisation (终审, also by card button); plus the
//! shared pieces the contest jobs use: membership sync, standings, rendering.

use crate::clock::{TZ, format_ms};
use crate::commands::parse::Parsed;
use crate::commands::{CommandError, CommandResult, Ctx, cards, refuse};
use crate::config::Settings;
use crate::domain::contest::{self, ContestDef, MemberScore, TeamStanding};
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::org::Level;
use crate::store::contests::{self as store, ContestRow, NewMember};
use crate::store::directory;
use crate::store::events::{self, NewEvent};
use crate::wecom::message::Chat;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

/// Registers every configured contest and, while a contest is open (before its cut-off
/// and neither frozen nor final), its configured members (lists and departments), each
/// with the stake of their level. After the cut-off teams never change: someone who
/// joins a department later would otherwise change the pool and the payouts after the
/// audit group saw the preliminary ranking.
pub async fn sync_all(conn: &mut SqliteConnection, settings: &Settings, now_ms: i64) -> Result<(), sqlx::Error> {
    for def in settings.contest_defs() {
        store::sync(conn, &def).await?;
        let open = now_ms < def.cutoff_ms && store::get(conn, &def.id).await?.is_some_and(|r| r.state == "open");
        for team in &def.teams {
            let (people, source) = team_people(conn, &def, team).await?;
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
                    if source == "config" {
                        tracing::warn!(contest = %def.id, userid, team = %team.name,
                            "contest is past its cut-off: configured member not added");
                    }
                    continue;
                }
                let stake = Level::parse(level).and_then(|l| settings.stakes.for_level(l)).unwrap_or_default();
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
    Ok(())
}

/// `(userid, level)` of the people a team is configured with, and where they come from.
async fn team_people(
    conn: &mut SqliteConnection,
    def: &ContestDef,
    team: &contest::TeamDef,
) -> Result<(Vec<(String, String)>, &'static str), sqlx::Error> {
    if let Some(dept) = team.department {
        return Ok((store::department_people(conn, dept).await?, "department"));
    }
    let mut people = Vec::new();
    for userid in &team.members {
        match directory::find(conn, userid).await? {
            Some(p) => people.push((p.userid, p.level.as_str().to_owned())),
            None => tracing::warn!(contest = %def.id, userid, "contest member not in the directory (yet)"),
        }
    }
    Ok((people, "config"))
}

/// The standings now: live until final, the stored result afterwards.
pub async fn standings(conn: &mut SqliteConnection, def: &ContestDef) -> Result<Vec<TeamStanding>, sqlx::Error> {
    if let Some(row) = store::get(conn, &def.id).await?
        && let Some(result) = row.result.as_deref()
    {
        return Ok(serde_json::from_str(result).unwrap_or_default());
    }
    let rows = store::scores(conn, &def.id).await?;
    let mut teams: Vec<(String, Vec<MemberScore>)> = def.teams.iter().map(|t| (t.name.clone(), Vec::new())).collect();
    for (team, userid, name, points, stake) in rows {
        let member = MemberScore { userid, name, points, stake: Fen(stake) };
        match teams.iter_mut().find(|(n, _)| *n == team) {
            Some((_, members)) => members.push(member),
            None => teams.push((team, vec![member])),
        }
    }
    Ok(contest::rank(teams))
}

/// Everyone's stakes plus the company's sponsorship.
pub fn pool(def: &ContestDef, standings: &[TeamStanding]) -> Fen {
    standings.iter().map(TeamStanding::stakes).sum::<Fen>() + def.sponsorship
}

/// Escapes what WeCom markdown would interpret in names people typed.
pub fn md(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '*' => '＊',
            '`' => '｀',
            '[' => '［',
            ']' => '］',
            '<' => '＜',
            '>' => '＞',
            '#' => '＃',
            _ => c,
        })
        .collect()
}

/// How long until the cut-off, or where the contest stands after it.
pub fn time_left(def: &ContestDef, row: Option<&ContestRow>, now: DateTime<Utc>) -> String {
    if row.is_some_and(|r| r.state == "final") {
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

/// Plain-text standings for a chat answer.
pub fn standings_text(def: &ContestDef, standings: &[TeamStanding], pool: Fen, time_left: &str) -> String {
    let mut lines = vec![format!("🏆 {} 排行", def.name), time_left.to_owned()];
    for t in standings {
        let top: Vec<String> =
            t.members.iter().filter(|m| m.points > 0).take(3).map(|m| format!("{}{}", m.name, m.points)).collect();
        let top = if top.is_empty() { String::new() } else { format!("（{}）", top.join("、")) };
        lines.push(format!("第{}名 {} {} 分{top}", t.rank, t.name, t.points));
    }
    lines.push(format!("奖池：{pool} 元（第一名队伍获得全部奖池）"));
    lines.join("\n")
}

/// Finds a contest by id or name; without one, the contests that are under way (or,
/// if none is, the latest).
pub fn find<'a>(
    defs: &'a [ContestDef],
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<&'a ContestDef>, CommandError> {
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

/// The answer when no contest has started yet: when the first one starts.
fn not_started(defs: &[ContestDef]) -> String {
    match defs.iter().min_by_key(|d| d.start_ms) {
        Some(first) => format!("PK比赛还没有开始，暂无待审内容（最早的「{}」于 {} 开始）。", first.name, first.start),
        None => "目前没有PK比赛。".into(),
    }
}

/// `排行 [比赛]`.
pub async fn standings_command(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> CommandResult {
    let defs = ctx.settings.contest_defs();
    let chosen = find(&defs, p.text("比赛").map(|t| t.as_str()), ctx.now)?;
    if chosen.is_empty() {
        return refuse("PK比赛还没有开始。");
    }
    let mut parts = Vec::new();
    for def in chosen {
        let row = store::get(conn, &def.id).await?;
        let standings = standings(conn, def).await?;
        let pool = pool(def, &standings);
        parts.push(standings_text(def, &standings, pool, &time_left(def, row.as_ref(), ctx.now)));
    }
    Ok(parts.join("\n\n"))
}

/// The receiving departments of what a contest scores: their people are grouped by
/// admins and cannot pick a team themselves.
fn scoring_departments(def: &ContestDef) -> Vec<crate::domain::org::DeptKind> {
    let mut kinds: Vec<_> = def.kinds.iter().map(|k| k.receiving_dept()).collect();
    kinds.dedup();
    kinds
}

/// `加入PK 队伍 [比赛]` and `分配 人员 队伍 [比赛]`.
pub async fn join_command(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed, assign: bool) -> CommandResult {
    let team_name = p.text("队伍").map(|t| t.to_string()).unwrap_or_default();
    let defs = ctx.settings.contest_defs();
    let now = ctx.now.timestamp_millis();
    let def = match p.text("比赛") {
        Some(name) => find(&defs, Some(name.as_str()), ctx.now)?.remove(0),
        None => {
            let with_team: Vec<&ContestDef> = defs.iter().filter(|d| d.team(&team_name).is_some()).collect();
            let open: Vec<&ContestDef> = with_team.iter().copied().filter(|d| now < d.cutoff_ms).collect();
            match (with_team.len(), open.len()) {
                (0, _) => return refuse(format!("没有比赛有队伍“{team_name}”。")),
                (1, _) => with_team[0],
                (_, 1) => open[0],
                _ => return refuse("有多个比赛有这支队伍，请写明 比赛=…。"),
            }
        }
    };
    if def.team(&team_name).is_none() {
        let teams: Vec<&str> = def.teams.iter().map(|t| t.name.as_str()).collect();
        return refuse(format!("「{}」没有队伍“{team_name}”。可选：{}。", def.name, teams.join("、")));
    }
    if now >= def.cutoff_ms || store::get(conn, &def.id).await?.is_some_and(|r| r.state != "open") {
        return refuse(format!("「{}」已截止，不能再加入。", def.name));
    }
    let person = if assign { assignee(conn, p).await? } else { ctx.sender.clone() };
    if !assign && scoring_departments(def).contains(&person.kind) {
        return refuse(format!("{}成员的PK分组由管理员安排，请联系管理员。", person.kind.label()));
    }
    if let Some(m) = store::membership(conn, &def.id, &person.userid).await? {
        return refuse(format!("{}已在「{}」的{}，每人只能加入一支队伍。", person.name, def.name, m.team));
    }
    let Some(stake) = ctx.settings.stakes.for_level(person.level) else {
        return refuse(format!("{}级暂不参加PK（未设置PK金）。", person.level.label()));
    };
    let source = if assign { "assign" } else { "join" };
    let member = NewMember {
        contest: &def.id,
        userid: &person.userid,
        team: &team_name,
        stake_fen: stake.0,
        joined_at: now,
        source,
    };
    store::add_member(conn, &member).await?;
    let event = NewEvent {
        actor: &ctx.sender.userid,
        entity: "contest",
        entity_id: def.id.clone(),
        action: if assign { "assigned" } else { "joined" },
        new_value: Some(team_name.clone()),
        data: Some(serde_json::json!({ "userid": person.userid, "stake": stake })),
        ..Default::default()
    };
    events::append(conn, now, event).await?;
    let how =
        format!("「{}」{team_name}，PK金 {stake} 元（{}级），自加入起的业绩计入本队", def.name, person.level.label());
    if assign {
        ctx.notify(conn, &[&person.userid], &format!("管理员已将您分配到{how}。")).await?;
        Ok(format!("已将{}分配到{how}。", person.name))
    } else {
        Ok(format!("已加入{how}。请按要求缴纳PK金。"))
    }
}

async fn assignee(conn: &mut SqliteConnection, p: &Parsed) -> Result<directory::Person, CommandError> {
    let name = p.text("人员").map(|t| t.to_string()).unwrap_or_default();
    let mut found = directory::find_by_name(conn, &name).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => refuse(format!("通讯录中没有“{name}”。")),
        _ => {
            let ids: Vec<String> = found.iter().map(|p| p.userid.clone()).collect();
            refuse(format!("“{name}”有重名，请写账号：{}。", ids.join("、")))
        }
    }
}

/// `终审` by text or card: stores the final ranking and payouts once, and broadcasts.
pub async fn finalise(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    def: &ContestDef,
    pressed: Option<(&str, &str)>,
) -> CommandResult {
    let row = store::get(conn, &def.id).await?;
    if let Some(row) = row.as_ref().filter(|r| r.state == "final") {
        let who = match row.finalised_by.as_deref() {
            Some(id) => directory::find(conn, id).await?.map_or_else(|| id.to_owned(), |p| p.name),
            None => "审核组".into(),
        };
        let when = row.finalised_at.map(format_ms).unwrap_or_default();
        return refuse(format!("「{}」已于 {when} 由{who}终审，结果不再改变。", def.name));
    }
    if ctx.now.timestamp_millis() < def.cutoff_ms {
        return refuse(format!("「{}」尚未截止（{}），截止后才能终审。", def.name, format_ms(def.cutoff_ms)));
    }
    let standings = standings(conn, def).await?;
    let pool = pool(def, &standings);
    let payouts = contest::payouts(pool, &standings, def.split);
    let result = serde_json::to_string(&standings).unwrap_or_default();
    let now = ctx.now.timestamp_millis();
    if !store::finalise(conn, &def.id, &ctx.sender.userid, now, pool.0, &result).await? {
        return refuse(format!("「{}」刚刚已被终审。", def.name));
    }
    for p in &payouts {
        store::insert_payout(conn, &def.id, &p.userid, &p.team, p.rank, p.amount.0).await?;
    }
    let event = NewEvent {
        actor: &ctx.sender.userid,
        entity: "contest",
        entity_id: def.id.clone(),
        action: "finalised",
        new_value: Some("final".into()),
        data: Some(serde_json::json!({ "pool": pool, "payouts": payouts })),
        ..Default::default()
    };
    events::append(conn, now, event).await?;
    cards::close_cards(
        ctx.settings,
        ctx.now,
        conn,
        None,
        Some(&def.id),
        &format!("已由{}终审", ctx.sender.name),
        pressed,
    )
    .await?;
    let announcement = final_markdown(def, &standings, pool, &payouts);
    broadcast(ctx.now, conn, def, &announcement).await?;
    let winners: Vec<&str> = contest::winners(&standings).iter().map(|t| t.name.as_str()).collect();
    if winners.is_empty() {
        return Ok(format!(
            "「{}」终审完成：没有队伍得分，无第一名，奖池 {pool} 元不发放。排名已保存，结果已播报。",
            def.name
        ));
    }
    Ok(format!(
        "「{}」终审完成：第一名 {}，奖池 {pool} 元已按规则分配（{} 人），结果已播报。",
        def.name,
        winners.join("、"),
        payouts.len()
    ))
}

/// Queues markdown to every chat of a contest.
pub async fn broadcast(
    now: DateTime<Utc>,
    conn: &mut SqliteConnection,
    def: &ContestDef,
    markdown: &str,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    for chat in def.chats.iter().filter_map(|c| Chat::parse(c)) {
        for msg in chat.markdown(markdown) {
            crate::store::outbox::enqueue(conn, now.timestamp_millis(), &msg).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

fn final_markdown(def: &ContestDef, standings: &[TeamStanding], pool: Fen, payouts: &[contest::Payout]) -> String {
    let mut lines = vec![format!("## 🏆 {} 终审结果", md(&def.name)), String::new()];
    for t in standings {
        lines.push(format!("{}. **{}** {} 分", t.rank, md(&t.name), t.points));
    }
    lines.push(String::new());
    let winners = contest::winners(standings);
    if winners.is_empty() {
        lines.push(format!("没有队伍得分，本次比赛无第一名，奖池 **{pool}** 元不发放。"));
        return lines.join("\n");
    }
    lines.push(format!(
        "奖池 **{pool}** 元，由第一名队伍按{}分配：",
        if def.split == crate::config::SplitRule::Stake { "PK金比例" } else { "人数平均" }
    ));
    for t in winners {
        for m in &t.members {
            let amount = payouts.iter().find(|p| p.userid == m.userid).map(|p| p.amount).unwrap_or_default();
            lines.push(format!("> {} {} 元", md(&m.name), amount));
        }
    }
    lines.join("\n")
}

/// `待审 [比赛]`: what is still undecided in a contest, and recent voids.
pub async fn review_command(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> CommandResult {
    let defs = ctx.settings.contest_defs();
    let chosen = find(&defs, p.text("比赛").map(|t| t.as_str()), ctx.now)?;
    if chosen.is_empty() {
        return refuse(not_started(&defs));
    }
    let mut lines = Vec::new();
    for def in chosen {
        let items = crate::store::records::contest_review(conn, &def.id).await?;
        lines.push(format!("【{}】{}", def.name, time_left(def, store::get(conn, &def.id).await?.as_ref(), ctx.now)));
        if items.is_empty() {
            lines.push("没有待处理或已作废的记录。".into());
        }
        for r in items {
            let kind = RecordKind::parse(&r.kind).map(RecordKind::label).unwrap_or_default();
            let state = crate::domain::record::RecordState::parse(&r.state).map(|s| s.label()).unwrap_or_default();
            let flag = if r.escalated { "⚠️" } else { "" };
            let reason = r.reason.map(|x| format!("，{x}")).unwrap_or_default();
            lines.push(format!(
                "{flag}#{} {kind}「{}」{} · {}分 · {state}{reason}",
                r.id,
                r.what.unwrap_or_default(),
                r.reporter_name,
                r.points
            ));
        }
    }
    Ok(lines.join("\n"))
}

/// Which contests a record change affects, for the audit group's answer.
pub async fn final_note(conn: &mut SqliteConnection, settings: &Settings, record: i64) -> Result<String, sqlx::Error> {
    let finals = store::final_contests_of(conn, record).await?;
    let names: Vec<String> =
        settings.contest_defs().into_iter().filter(|d| finals.contains(&d.id)).map(|d| d.name).collect();
    Ok(if names.is_empty() {
        String::new()
    } else {
        format!("\n注意：该记录属于已终审的比赛「{}」，比赛结果不变。", names.join("、"))
    })
}

/// The contest a finalise card is about, for the button press.
pub fn def_by_id(settings: &Settings, id: &str) -> Option<ContestDef> {
    settings.contest_defs().into_iter().find(|d| d.id == id)
}

/// Local-time midnight of `now`'s day, Unix ms.
pub fn day_start(now: DateTime<Utc>) -> i64 {
    let local = now.with_timezone(&TZ).date_naive();
    use chrono::TimeZone;
    TZ.from_local_datetime(&local.and_time(chrono::NaiveTime::MIN)).single().map_or(0, |t| t.timestamp_millis())
}
