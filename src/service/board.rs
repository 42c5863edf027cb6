//! The TV board (`/board/{contest}`): what it shows — a typed view of the same
//! standings as `排行` and the daily leaderboard, with the teams' points over time —
//! and its read-only links: a random token per contest, checked in constant time, shown
//! and rotated by admins (`看板链接 [比赛] [换新]`). The link is the board's only
//! permission: whoever has it may watch that one contest, nothing else.

use crate::clock::format_ms;
use crate::config::Settings;
use crate::domain::contest::{self, ContestDef, ContestState, TeamStanding};
use crate::domain::money::Fen;
use crate::service::access::Operation;
use crate::service::contest::{find, pool, standings, time_left};
use crate::service::leaderboard::day_start;
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::board as links;
use crate::store::contests as store;
use crate::store::events::{self, NewEvent};
use base64::Engine;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use subtle::ConstantTimeEq;

/// How many people the board lists.
const TOP_PEOPLE: usize = 5;
/// How many of today's newly counted records the board lists, the latest (the rest are
/// counted).
const TODAY_SHOWN: i64 = 6;
/// At most this many points per team in the chart (the contest, start to cut-off, is
/// cut into as many periods, and each shows the points at its end).
const CHART_POINTS: i64 = 60;

/// One team's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamLine {
    /// The team's place in the contest's configuration (a stable colour for it).
    pub slot: usize,
    pub rank: u32,
    pub name: String,
    pub points: i64,
    /// Current members.
    pub members: usize,
    pub stakes: Fen,
    pub owed: Fen,
}

/// One of the top individuals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonLine {
    pub rank: usize,
    pub name: String,
    pub team: String,
    pub points: i64,
}

/// A record that started counting today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub id: i64,
    pub who: String,
    pub team: String,
    pub kind: &'static str,
    pub what: Option<String>,
    pub points: i64,
}

/// A team's points over the contest: `(Unix ms, points by then)`, from 0 at the start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TeamSeries {
    /// As [`TeamLine::slot`].
    pub slot: usize,
    pub name: String,
    pub points: Vec<(i64, i64)>,
}

/// Everything one contest's board shows, as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardView {
    pub contest_id: String,
    pub name: String,
    pub now_ms: i64,
    pub start_ms: i64,
    pub cutoff_ms: i64,
    /// `距截止还有 2 天 3 小时（…）`, `已终审`, as `排行` says it.
    pub time_left: String,
    /// Before the cut-off (and not frozen or final): the countdown runs.
    pub running: bool,
    pub is_final: bool,
    pub teams: Vec<TeamLine>,
    pub pool: Fen,
    pub stakes: Fen,
    pub sponsorship: Fen,
    pub owed: Fen,
    /// How the pool goes (`第一名队伍获得全部奖池`), as `排行` says it.
    pub pool_rule: String,
    pub top: Vec<PersonLine>,
    pub today_count: i64,
    pub today: Vec<NewRecord>,
    pub series: Vec<TeamSeries>,
}

/// The token of a contest's board link (none before the contest has one).
pub async fn token(conn: &mut Conn, contest: &str) -> Result<Option<String>, sqlx::Error> {
    links::token(conn, contest).await
}

/// The version of everything the boards show: the latest event's id (each change
/// people can see appends one).
pub async fn version(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    events::latest_id(conn).await
}

/// Whether `key` is the board's token, compared in constant time.
pub fn key_matches(token: &str, key: &str) -> bool {
    bool::from(token.as_bytes().ct_eq(key.as_bytes()))
}

/// The board of `def` as of `now`.
pub async fn view(conn: &mut Conn, def: &ContestDef, now: DateTime<Utc>) -> Result<BoardView, sqlx::Error> {
    let now_ms = now.timestamp_millis();
    let row = store::get(conn, &def.id).await?;
    let standings = standings(conn, def).await?;
    let is_final = row.as_ref().is_some_and(|r| r.state == ContestState::Final);
    let running = now_ms < def.cutoff_ms && row.as_ref().is_none_or(|r| r.state == ContestState::Open);
    let (today_count, today) = store::confirmed_between(conn, &def.id, day_start(now), now_ms + 1, TODAY_SHOWN).await?;
    let today = today
        .into_iter()
        .map(|r| NewRecord {
            id: r.id,
            who: r.reporter_name,
            team: r.team,
            kind: r.kind.label(),
            what: r.subject.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
            points: r.points,
        })
        .collect();
    let timeline = store::counted_timeline(conn, &def.id).await?;
    let until = now_ms.clamp(def.start_ms, def.cutoff_ms.max(def.start_ms));
    Ok(BoardView {
        contest_id: def.id.clone(),
        name: def.name.clone(),
        now_ms,
        start_ms: def.start_ms,
        cutoff_ms: def.cutoff_ms,
        time_left: time_left(def, row.as_ref(), now),
        running,
        is_final,
        teams: standings.iter().map(|t| team_line(def, &standings, t)).collect(),
        pool: pool(def, &standings),
        stakes: standings.iter().map(TeamStanding::stakes).sum(),
        sponsorship: def.sponsorship,
        owed: contest::owed(&standings),
        pool_rule: pool_rule(&standings, is_final),
        top: top_people(&standings),
        today_count,
        today,
        series: series(def, &standings, &timeline, def.start_ms, until),
    })
}

/// A team's place in the configuration (teams only in the store come after).
fn slot(def: &ContestDef, standings: &[TeamStanding], team: &str) -> usize {
    def.teams.iter().position(|t| t.name == team).unwrap_or_else(|| {
        def.teams.len()
            + standings.iter().filter(|t| def.team(&t.name).is_none()).position(|t| t.name == team).unwrap_or(0)
    })
}

fn team_line(def: &ContestDef, standings: &[TeamStanding], t: &TeamStanding) -> TeamLine {
    TeamLine {
        slot: slot(def, standings, &t.name),
        rank: t.rank,
        name: t.name.clone(),
        points: t.points,
        members: t.members.iter().filter(|m| m.current).count(),
        stakes: t.stakes(),
        owed: t.owed(),
    }
}

fn pool_rule(standings: &[TeamStanding], is_final: bool) -> String {
    match (contest::winners(standings).len(), is_final) {
        (0, true) => "没有队伍得分，不发放".into(),
        (0, false) => "第一名队伍获得全部奖池".into(),
        (1, true) => "已由第一名队伍分配".into(),
        (1, false) => "第一名队伍获得全部奖池".into(),
        (n, true) => format!("{n} 队并列第一，已平分"),
        (n, false) => format!("目前 {n} 队并列第一，终审时平分"),
    }
}

/// The people with the most points (ties share a rank), as the daily leaderboard
/// lists them.
fn top_people(standings: &[TeamStanding]) -> Vec<PersonLine> {
    let mut people: Vec<(&str, &str, i64)> = standings
        .iter()
        .flat_map(|t| t.members.iter().map(move |m| (m.name.as_str(), t.name.as_str(), m.points)))
        .filter(|p| p.2 > 0)
        .collect();
    people.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    let mut lines: Vec<PersonLine> = Vec::new();
    for (i, (name, team, points)) in people.into_iter().take(TOP_PEOPLE).enumerate() {
        let rank = match lines.last() {
            Some(prev) if prev.points == points => prev.rank,
            _ => i + 1,
        };
        lines.push(PersonLine { rank, name: name.into(), team: team.into(), points });
    }
    lines
}

/// Each team's points at the end of each period of the contest so far, from
/// `(team, at, points)` in time order.
fn series(
    def: &ContestDef,
    standings: &[TeamStanding],
    timeline: &[(String, i64, i64)],
    start: i64,
    until: i64,
) -> Vec<TeamSeries> {
    // Periods of the whole contest, so that they do not move as time passes: only the
    // last point of each team is now.
    let step = ((def.cutoff_ms - start) / CHART_POINTS).max(60_000);
    let mut series: Vec<TeamSeries> = standings
        .iter()
        .map(|t| {
            let mut points = vec![(start, 0)];
            let mut total = 0;
            for (_, at, p) in timeline.iter().filter(|(team, ..)| *team == t.name) {
                total += p;
                // The end of the period the record falls in (never past `until`).
                let end = (start + ((at - start).max(0) / step + 1) * step).min(until);
                match points.last_mut() {
                    Some(last) if last.0 == end => last.1 = total,
                    _ => points.push((end, total)),
                }
            }
            if points.last().is_some_and(|l| l.0 < until) {
                points.push((until, total));
            }
            TeamSeries { slot: slot(def, standings, &t.name), name: t.name.clone(), points }
        })
        .collect();
    series.sort_by_key(|s| s.slot);
    series
}

/// A new random board token: 24 bytes from the operating system's generator (through
/// `rand`'s thread generator, a CSPRNG), base64url.
fn new_token() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Gives every configured contest a board link unless it has one (at start and on a
/// reload, after the contests are registered).
pub async fn ensure_links(conn: &mut Conn, settings: &Settings, now_ms: i64) -> Result<(), sqlx::Error> {
    for def in &settings.contests {
        links::ensure_link(conn, &def.id, &new_token(), now_ms).await?;
    }
    Ok(())
}

/// What a path segment may contain unescaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The board's path with its key: `/board/{contest}?key=…`.
pub fn path(contest: &str, token: &str) -> String {
    format!("/board/{}?key={token}", utf8_percent_encode(contest, SEGMENT))
}

/// The board's address: the public base URL and the path (the path alone when no base
/// URL is configured).
pub fn url(settings: &Settings, contest: &str, token: &str) -> String {
    format!("{}{}", settings.public_url().unwrap_or_default(), path(contest, token))
}

/// The link of a contest's board, for messages (none before the contest has one).
pub async fn link_of(conn: &mut Conn, settings: &Settings, contest: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(links::token(conn, contest).await?.map(|token| url(settings, contest, &token)))
}

/// `看板链接 [比赛] [换新]`: an admin gets the read-only board link of the named contest
/// (or of those under way), or replaces it: the old link stops working at once, and
/// boards open with it go blank.
pub async fn link(ctx: &Ctx<'_>, conn: &mut Conn, contest: Option<&str>, rotate: bool) -> Outcome {
    let admin = ctx.authorize(Operation::BoardLink)?.clone();
    let chosen = find(&ctx.settings.contests, contest, ctx.now)?;
    if chosen.is_empty() {
        return refuse("PK比赛还没有开始，请写明比赛：看板链接 比赛=…。");
    }
    if rotate && chosen.len() > 1 {
        return refuse("有多个比赛在进行，请写明要换新链接的比赛：看板链接 比赛=… 换新。");
    }
    let mut lines = Vec::new();
    for def in chosen {
        let token = match (rotate, links::token(conn, &def.id).await?) {
            (false, Some(token)) => token,
            (true, _) | (false, None) => {
                let token = new_token();
                links::replace(conn, &def.id, &token, ctx.now_ms()).await?;
                let action = if rotate { "board_link_rotated" } else { "board_link_created" };
                events::append(conn, ctx.now_ms(), NewEvent::new(&admin.userid, "contest", &def.id, action)).await?;
                token
            }
        };
        let url = url(ctx.settings, &def.id, &token);
        lines.push(if rotate {
            format!("已为「{}」换新看板链接，旧链接已失效：\n{url}", def.name)
        } else {
            format!("「{}」看板（只读，可投到电视或投影）：\n{url}", def.name)
        });
    }
    if ctx.settings.public_url().is_none() {
        lines.push("（未设置 web.public_url：请在链接前加上服务的地址。）".into());
    }
    if !rotate {
        lines.push(format!(
            "链接外泄时发送「看板链接 比赛=… 换新」换新，旧链接立即失效。更新于 {}。",
            format_ms(ctx.now_ms())
        ));
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contest::{MemberScore, rank};

    fn member(name: &str, points: i64) -> MemberScore {
        MemberScore {
            userid: name.into(),
            name: name.into(),
            points,
            stake: Fen::from_yuan(100),
            paid: false,
            current: true,
        }
    }

    #[test]
    fn the_series_ends_at_each_teams_points() {
        let standings =
            rank(vec![("甲队".into(), vec![member("a", 3), member("b", 2)]), ("乙队".into(), vec![member("c", 1)])]);
        let hour = 3_600_000;
        let timeline = vec![("甲队".into(), hour, 3), ("乙队".into(), 2 * hour, 1), ("甲队".into(), 2 * hour + 5, 2)];
        let def = ContestDef {
            id: "pk".into(),
            name: "PK".into(),
            kinds: vec![],
            start: chrono::NaiveDate::from_ymd_opt(2023, 7, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2023, 7, 31).unwrap(),
            cutoff_time: chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            start_ms: 0,
            cutoff_ms: 10 * hour,
            sponsorship: Fen(0),
            split: crate::domain::contest::SplitRule::Stake,
            chats: vec![],
            teams: vec![],
        };
        let series = series(&def, &standings, &timeline, 0, 10 * hour);
        let last = |name: &str| series.iter().find(|s| s.name == name).unwrap().points.last().copied().unwrap();
        assert_eq!(last("甲队"), (10 * hour, 5));
        assert_eq!(last("乙队"), (10 * hour, 1));
        for s in &series {
            assert_eq!(s.points[0], (0, 0), "every team starts at 0");
            assert!(s.points.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{s:?} rises in time");
            assert!(s.points.len() as i64 <= CHART_POINTS + 2);
        }
    }

    #[test]
    fn tied_people_share_a_rank() {
        let standings = rank(vec![("甲队".into(), vec![member("a", 3), member("b", 3), member("c", 1)])]);
        let ranks: Vec<usize> = top_people(&standings).iter().map(|p| p.rank).collect();
        assert_eq!(ranks, [1, 1, 3]);
    }

    #[test]
    fn only_the_token_opens_the_board() {
        assert!(key_matches("AbC-123", "AbC-123"));
        assert!(!key_matches("AbC-123", "AbC-12"));
        assert!(!key_matches("AbC-123", ""));
        assert!(!key_matches("AbC-123", "abc-123"));
    }

    #[test]
    fn a_board_path_escapes_the_contest() {
        assert_eq!(path("client-pk", "abc"), "/board/client-pk?key=abc");
        assert_eq!(path("春季 PK", "k"), "/board/%E6%98%A5%E5%AD%A3%20PK?key=k");
    }
}
