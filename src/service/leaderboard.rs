//! The daily leaderboard: the standings of every running contest to its chats, as
//! WeCom markdown — team ranking with the change since the previous broadcast, top
//! individuals, today's new valid records, the pool and the time left — and the
//! pieces other broadcasts share (escaping, sending to a contest's chats).

use crate::clock::{TZ, format_ms};
use crate::domain::contest::{ContestDef, ContestState, TeamStanding};
use crate::domain::money::Fen;
use crate::service::contest::{pool, standings_of, time_left};
use crate::service::{Ctx, Outcome};
use crate::store::Conn;
use crate::store::contests::{self as store, NewlyCounted};
use crate::store::outbox;
use crate::wecom::message::Chat;
use chrono::{DateTime, TimeZone, Utc};
use tracing::instrument;

/// Broadcasts continue for a day after the cut-off (the final day's result), until the
/// contest is finalised.
const AFTER_CUTOFF_MS: i64 = 24 * 3_600_000;

/// Broadcasts every running contest's standings; returns (contests, messages) queued.
#[instrument(level = "debug", skip_all)]
pub async fn broadcast_daily(ctx: &Ctx<'_>, conn: &mut Conn) -> Outcome<(usize, usize)> {
    let (now, now_ms) = (ctx.now, ctx.now_ms());
    let (mut contests, mut messages) = (0, 0);
    for def in &ctx.settings.contests {
        let row = store::get(conn, &def.id).await?;
        let running = def.start_ms <= now_ms && now_ms < def.cutoff_ms + AFTER_CUTOFF_MS;
        if !running || row.as_ref().is_some_and(|r| r.state == ContestState::Final) {
            continue;
        }
        let standings = standings_of(conn, def, row.as_ref()).await?;
        let previous: Option<Vec<TeamStanding>> =
            store::latest_snapshot(conn, &def.id, "broadcast").await?.and_then(|s| serde_json::from_str(&s).ok());
        let today = store::confirmed_between(conn, &def.id, day_start(now), now_ms + 1, TODAY_SHOWN).await?;
        let header = format!("{} · {}", format_ms(now_ms), time_left(def, row.as_ref(), now));
        let mut text = daily_markdown(def, &standings, previous.as_deref(), today, pool(def, &standings), &header);
        if let Some(link) = links(ctx, conn, def).await? {
            text.push_str(&link);
        }
        messages += broadcast(now, conn, def, &text).await?;
        let snapshot = serde_json::to_string(&teams_only(&standings)).map_err(|e| sqlx::Error::Encode(e.into()))?;
        store::insert_snapshot(conn, &def.id, "broadcast", now_ms, &snapshot).await?;
        contests += 1;
    }
    Ok((contests, messages))
}

/// The board's and the console's links after the broadcast, when the public base URL is
/// configured (a path alone cannot be tapped).
async fn links(ctx: &Ctx<'_>, conn: &mut Conn, def: &ContestDef) -> Result<Option<String>, sqlx::Error> {
    if ctx.settings.public_url().is_none() {
        return Ok(None);
    }
    let console = format!("[📋 我的记录与待办]({})", ctx.settings.web.link("/ui/"));
    Ok(Some(match crate::service::board::link_of(conn, ctx.settings, &def.id).await? {
        Some(url) => format!("\n\n[📺 打开实时看板]({url}) · {console}"),
        None => format!("\n\n{console}"),
    }))
}

/// Queues markdown to every chat of a contest; returns the messages queued.
pub async fn broadcast(
    now: DateTime<Utc>,
    conn: &mut Conn,
    def: &ContestDef,
    markdown: &str,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    for chat in def.chats.iter().filter_map(|c| Chat::parse(c)) {
        for msg in chat.markdown(markdown) {
            outbox::enqueue(conn, now.timestamp_millis(), &msg).await?;
            sent += 1;
        }
    }
    Ok(sent)
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

/// Local-time midnight of `now`'s day, Unix ms.
pub fn day_start(now: DateTime<Utc>) -> i64 {
    let local = now.with_timezone(&TZ).date_naive();
    TZ.from_local_datetime(&local.and_time(chrono::NaiveTime::MIN)).single().map_or(0, |t| t.timestamp_millis())
}

/// How many of today's new records a broadcast lists, the latest (the rest are counted).
const TODAY_SHOWN: i64 = 10;

/// Standings without members: what a later broadcast compares with.
pub fn teams_only(standings: &[TeamStanding]) -> Vec<TeamStanding> {
    standings.iter().map(|t| TeamStanding { members: Vec::new(), ..t.clone() }).collect()
}

/// `↑2 +6`: places gained or lost and points added since the previous broadcast.
fn change(team: &TeamStanding, previous: Option<&[TeamStanding]>) -> String {
    let Some(before) = previous.and_then(|p| p.iter().find(|t| t.name == team.name)) else {
        return String::new();
    };
    let places = i64::from(before.rank) - i64::from(team.rank);
    let arrow = match places {
        0 => "—".to_owned(),
        p if p > 0 => format!("↑{p}"),
        p => format!("↓{}", -p),
    };
    let gained = team.points - before.points;
    let gained = if gained >= 0 { format!("+{gained}") } else { gained.to_string() };
    format!(" {arrow} {gained}")
}

/// The broadcast text. Long contests are split into several messages by the sender.
pub fn daily_markdown(
    def: &ContestDef,
    standings: &[TeamStanding],
    previous: Option<&[TeamStanding]>,
    (today_count, today): (i64, Vec<NewlyCounted>),
    pool: Fen,
    header: &str,
) -> String {
    let mut lines = vec![format!("## 🏆 {} · 每日战报", md(&def.name)), format!("> {header}"), String::new()];
    lines.push("**队伍排名**".into());
    for t in standings {
        let points = if t.rank == 1 {
            format!("<font color=\"info\">{} 分</font>", t.points)
        } else {
            format!("{} 分", t.points)
        };
        lines.push(format!("{}. **{}** {points}{}", t.rank, md(&t.name), change(t, previous)));
    }
    let mut people: Vec<(&str, &str, i64)> = standings
        .iter()
        .flat_map(|t| t.members.iter().map(move |m| (m.name.as_str(), t.name.as_str(), m.points)))
        .filter(|p| p.2 > 0)
        .collect();
    people.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    if !people.is_empty() {
        lines.push(String::new());
        lines.push("**个人前五**".into());
        for (i, (name, team, points)) in people.iter().take(5).enumerate() {
            lines.push(format!("{}. {}（{}）{points} 分", i + 1, md(name), md(team)));
        }
    }
    lines.push(String::new());
    lines.push(format!("**今日新增有效业绩 {today_count} 条**"));
    for r in &today {
        let who = format!("{}（{}）{}", md(&r.reporter_name), md(&r.team), r.kind.label());
        let what = r.subject.as_deref().map(str::trim).filter(|w| !w.is_empty()).map(md);
        let points = format!("<font color=\"info\">+{}</font>", r.points);
        let parts: Vec<String> = [Some(who), what, Some(points)].into_iter().flatten().collect();
        lines.push(format!("> {}", parts.join(" ")));
    }
    if today_count > today.len() as i64 {
        lines.push(format!("> ……等 {today_count} 条"));
    }
    lines.push(String::new());
    let stakes: Fen = standings.iter().map(TeamStanding::stakes).sum();
    let owed = crate::domain::contest::owed(standings);
    let unpaid = if owed.0 > 0 { format!("，其中PK金未缴 {owed}") } else { String::new() };
    lines.push(format!("奖池：**{pool} 元**（PK金 {stakes} + 公司赞助 {}{unpaid}）", def.sponsorship));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contest::{MemberScore, SplitRule, rank};
    use crate::domain::kind::RecordKind;
    use crate::wecom::message::{APP_TEXT_LIMIT, Chat, WEBHOOK_MARKDOWN_LIMIT};

    fn big_contest() -> (ContestDef, Vec<TeamStanding>) {
        let def = ContestDef {
            id: "big".into(),
            name: "全集团PK".into(),
            kinds: vec![RecordKind::LeadC],
            start: chrono::NaiveDate::from_ymd_opt(2023, 7, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2023, 7, 31).unwrap(),
            cutoff_time: chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            start_ms: 0,
            cutoff_ms: 1,
            sponsorship: Fen::from_yuan(5000),
            split: SplitRule::Stake,
            chats: vec![],
            teams: vec![],
        };
        let teams = (0..30)
            .map(|t| {
                let members = (0..200 / 30 + 1)
                    .map(|m| MemberScore {
                        userid: format!("u{t}-{m}"),
                        name: format!("员工{t}号{m}"),
                        points: (t * 7 + m * 3) % 50,
                        stake: Fen::from_yuan(100),
                        paid: m % 2 == 0,
                        current: true,
                    })
                    .collect();
                (format!("第{t}支很长名字的分公司队伍"), members)
            })
            .collect();
        (def, rank(teams))
    }

    #[test]
    fn a_long_leaderboard_is_split_within_each_chats_limit() {
        let (def, standings) = big_contest();
        let today: Vec<NewlyCounted> = (0..10)
            .map(|i| NewlyCounted {
                id: i,
                kind: RecordKind::LeadC,
                reporter_name: format!("员工{i}"),
                team: "某队".into(),
                subject: Some(format!("杭州某某科技有限公司{i}")),
                fields: "{}".into(),
                points: 1,
            })
            .collect();
        let text =
            daily_markdown(&def, &standings, Some(&standings), (25, today), Fen::from_yuan(26_000), "2023-07-20 18:05");
        assert!(text.len() > APP_TEXT_LIMIT, "the test needs a long text ({} bytes)", text.len());
        for (chat, limit) in
            [(Chat::AppChat("wr".into()), APP_TEXT_LIMIT), (Chat::Webhook("k".into()), WEBHOOK_MARKDOWN_LIMIT)]
        {
            let parts: Vec<String> = chat
                .markdown(&text)
                .iter()
                .map(|m| m.payload["markdown"]["content"].as_str().unwrap().to_owned())
                .collect();
            assert!(parts.len() >= text.len().div_ceil(limit), "{chat:?}: split into enough parts");
            assert!(parts.iter().all(|p| p.len() <= limit), "{chat:?}: every part within {limit} bytes");
            assert_eq!(parts.join("\n"), text, "nothing lost");
        }
        for t in &standings {
            assert!(text.contains(&t.name), "every team is listed");
        }
    }
}
