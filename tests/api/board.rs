//! The TV board end to end: opened only with its contest's key (anything else is the
//! same 404), rotated by an admin in chat (the old link and its open streams stop at
//! once), showing what `排行` shows, kept current by server-sent events after a
//! confirmation in chat, and served with its security headers.

use crate::helpers::TestApp;
use chrono::Days;
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;
use serde_json::Value;
use std::time::Duration;

/// A contest under way with two CS teams (张伟 in 雄鹰队, 孙丽 in 猎豹队).
pub fn contest_config() -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
sponsorship = 1000
chats = ["appchat:wrchat1"]
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
[[contests.teams]]
name = "猎豹队"
members = ["sunli"]
"#,
        start = today.checked_sub_days(Days::new(5)).unwrap(),
        end = today.checked_add_days(Days::new(5)).unwrap(),
    )
}

pub async fn board_app() -> TestApp {
    TestApp::builder().config(&contest_config()).spawn().await
}

/// The key in a `看板链接` answer (its first link).
pub fn key_in(answer: &str) -> String {
    let at = answer.find("key=").unwrap_or_else(|| panic!("no link in: {answer}")) + 4;
    answer[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// The board's key, as the admin 李娜 gets it in chat.
pub async fn board_key(app: &TestApp) -> String {
    key_in(&app.say("lina", "看板链接 client-pk").await.expect("an answer"))
}

/// Reports a C-class client as `from` and has 陈经理 confirm it; returns its points.
pub async fn confirmed_lead(app: &TestApp, from: &str, company: &str) -> i64 {
    let answer = app.say(from, &format!("C类 公司={company} 联系人=王")).await.expect("an answer");
    let id: i64 = answer.split('#').nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    let confirmed = app.say("cs_lead", &format!("确认 #{id}")).await.expect("an answer");
    assert!(confirmed.contains("已确认"), "{confirmed}");
    sql::query_scalar("SELECT points FROM records WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap()
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::get(app.url(path)).await.expect("the service answers")
}

/// A board's event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, key: &str) -> Events {
        let response = get(app, &format!("/board/client-pk/events?key={key}")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { response, buffer: String::new() }
    }

    /// The next `board` event's data; none when the stream ends.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                if block.lines().any(|l| l == "event: board") {
                    return Some(serde_json::from_str(&data).expect("event data is JSON"));
                }
                continue;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next event, within five seconds.
    async fn expect(&mut self, what: &str) -> Option<Value> {
        tokio::time::timeout(Duration::from_secs(5), self.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
    }
}

#[tokio::test]
async fn the_board_opens_only_with_its_key() {
    let app = board_app().await;
    let key = board_key(&app).await;
    assert!(key.len() >= 32, "a long random key: {key}");
    for path in [
        "/board/client-pk".to_owned(),
        "/board/client-pk?key=".to_owned(),
        format!("/board/client-pk?key={}", &key[..key.len() - 1]),
        format!("/board/client-pk?key={key}x"),
        format!("/board/other-pk?key={key}"),
        format!("/board/client-pk/events?key={}", key.to_lowercase()),
        "/board/client-pk/events".to_owned(),
    ] {
        let response = get(&app, &path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.text().await.unwrap(), "未找到", "{path}: nothing tells a contest exists");
    }
    let page = get(&app, &format!("/board/client-pk?key={key}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("客户开发PK") && html.contains("雄鹰队") && html.contains("猎豹队"), "{html}");
    assert_eq!(board_key(&app).await, key, "asking again answers the same link");
}

#[tokio::test]
async fn the_board_shows_the_points_and_pool_of_a_confirmed_report() {
    let app = board_app().await;
    let key = board_key(&app).await;
    let points = confirmed_lead(&app, "zhangwei", "云帆科技").await;
    let html = get(&app, &format!("/board/client-pk?key={key}")).await.text().await.unwrap();
    let leader = html.split("leader").nth(1).expect("a leading team");
    assert!(leader.contains("雄鹰队") && leader.contains(&format!("{points}<small>分</small>")), "{html}");
    assert!(html.contains("张伟") && html.contains("云帆科技"), "top individuals and today's record: {html}");
    let standings = app.say("lina", "排行 客户开发PK").await.unwrap();
    assert!(standings.contains(&format!("第1名 雄鹰队 {points} 分")), "排行 agrees: {standings}");
    // The pool as 排行 says it: stakes and sponsorship, with what is still owed.
    let pool = standings.lines().find(|l| l.starts_with("奖池：")).unwrap();
    let yuan = pool.trim_start_matches("奖池：").split(' ').next().unwrap().trim_end_matches(".00");
    let grouped = yuan.parse::<i64>().map(|y| format!("{},{:03}", y / 1000, y % 1000)).unwrap();
    assert!(html.contains(&format!("<strong>{grouped}</strong> 元")), "pool {grouped}: {html}");
    assert!(standings.contains("PK金未缴") == html.contains("未缴"), "owed stakes shown alike");
}

#[tokio::test]
async fn a_confirmation_in_chat_reaches_an_open_stream_after_the_idle_timeout() {
    let app = TestApp::builder().config(&contest_config()).server("idle_timeout_secs = 1").spawn().await;
    let key = board_key(&app).await;
    let mut events = Events::open(&app, &key).await;
    let first = events.expect("the board at once").await.expect("an event");
    assert!(first["html"].as_str().unwrap().contains("雄鹰队"));
    // Longer than the idle timeout: a stream is a response in progress, never idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let points = confirmed_lead(&app, "sunli", "星河传媒").await;
    let mut update = events.expect("the update after the confirmation").await.expect("the stream is open");
    // The report itself (pending) may come first: wait for the confirmation.
    while !update["html"].as_str().unwrap().contains(&format!("{points}<small>分</small>")) {
        update = events.expect("the confirmation").await.expect("the stream is open");
    }
    let html = update["html"].as_str().unwrap();
    let leader = html.split("leader").nth(1).expect("a leading team");
    assert!(leader.contains("猎豹队"), "{html}");
    let series = update["series"].as_array().unwrap();
    let team = series.iter().find(|s| s["name"] == "猎豹队").unwrap();
    assert_eq!(team["points"].as_array().unwrap().last().unwrap()[1], points, "the chart ends at the points");
}

#[tokio::test]
async fn an_admin_rotates_the_link_and_the_old_one_stops_at_once() {
    let app = board_app().await;
    let old = board_key(&app).await;
    let mut stream = Events::open(&app, &old).await;
    stream.expect("the board").await.expect("an event");

    let answer = app.say("lina", "看板链接 客户开发PK 换新").await.unwrap();
    assert!(answer.contains("旧链接已失效"), "{answer}");
    let new = key_in(&answer);
    assert_ne!(new, old);
    assert!(stream.expect("the old stream's end").await.is_none(), "the stream opened with the old key ends");
    assert_eq!(get(&app, &format!("/board/client-pk?key={old}")).await.status(), 404);
    assert_eq!(get(&app, &format!("/board/client-pk/events?key={old}")).await.status(), 404);
    assert_eq!(get(&app, &format!("/board/client-pk?key={new}")).await.status(), 200);
    assert_eq!(board_key(&app).await, new);
    let logged = app.count("SELECT COUNT(*) FROM events WHERE action = 'board_link_rotated' AND actor = 'lina'").await;
    assert_eq!(logged, 1, "the rotation is in the event log");
    let leaked = app.count("SELECT COUNT(*) FROM events WHERE instr(COALESCE(data, '') || COALESCE(new_value, ''), (SELECT token FROM board_links)) > 0").await;
    assert_eq!(leaked, 0, "the key itself is never logged");
}

#[tokio::test]
async fn only_admins_get_or_rotate_the_link() {
    let app = board_app().await;
    let key = board_key(&app).await;
    for user in ["zhangwei", "cs_lead", "wanggm"] {
        for text in ["看板链接 客户开发PK 换新", "看板链接"] {
            let answer = app.say(user, text).await.unwrap();
            assert!(answer.contains("仅限管理员") && !answer.contains("key="), "{user}: {answer}");
        }
    }
    assert_eq!(get(&app, &format!("/board/client-pk?key={key}")).await.status(), 200, "the link still works");
    assert_eq!(board_key(&app).await, key, "nothing changed");
    let help = app.say("lina", "帮助").await.unwrap();
    assert!(help.contains("看板链接"), "help lists it for admins: {help}");
}

#[tokio::test]
async fn the_board_is_served_with_its_security_headers() {
    let app = board_app().await;
    let key = board_key(&app).await;
    let page = get(&app, &format!("/board/client-pk?key={key}")).await;
    let assets: Vec<String> = {
        let html = get(&app, &format!("/board/client-pk?key={key}")).await.text().await.unwrap();
        assert!(!html.contains("<style") && !html.contains(" style="), "no inline styles");
        assert!(html.matches("<script").count() == html.matches("<script src=").count(), "no inline scripts");
        html.split("src=\"")
            .chain(html.split("href=\""))
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let events = get(&app, &format!("/board/client-pk/events?key={key}")).await;
    let missing = get(&app, "/board/client-pk").await;
    let mut checked = vec![page, events, missing];
    for asset in assets.iter().filter(|a| a.starts_with("/board/assets/")) {
        let response = get(&app, asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"), "{asset} is cached");
        checked.push(response);
    }
    assert!(checked.len() >= 6, "page, events, 404 and three assets: {assets:?}");
    for response in &checked {
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer", "the key in the address is never sent on");
    }
    assert_eq!(get(&app, "/board/assets/secret.toml").await.status(), 404);
}

#[tokio::test]
async fn names_are_escaped_on_the_board() {
    let app = board_app().await;
    let key = board_key(&app).await;
    confirmed_lead(&app, "zhangwei", "<script>alert(1)</script>科技").await;
    let html = get(&app, &format!("/board/client-pk?key={key}")).await.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;科技") || html.contains("&#60;script&#62;"), "{html}");
}

#[tokio::test]
async fn the_daily_leaderboard_links_to_the_board() {
    let app = TestApp::builder()
        .config(&format!("{}\n[web]\npublic_url = \"https://lead.example.com/\"\n", contest_config()))
        .spawn()
        .await;
    let key = board_key(&app).await;
    let answer = app.say("lina", "看板链接").await.unwrap();
    assert!(answer.contains(&format!("https://lead.example.com/board/client-pk?key={key}")), "{answer}");
    run_once(&app.state, Job::DailyLeaderboard).await.unwrap();
    app.drain().await;
    let sent: Vec<String> = app
        .api_calls("appchat/send")
        .await
        .iter()
        .filter_map(|m| m["markdown"]["content"].as_str().map(str::to_owned))
        .collect();
    let link = format!("(https://lead.example.com/board/client-pk?key={key})");
    assert!(sent.iter().any(|m| m.contains(&link)), "{sent:?}");
    assert!(sent.iter().any(|m| m.contains("[📋 我的记录与待办](https://lead.example.com/ui/)")), "{sent:?}");

    // At the cut-off, the audit group's 终审 card opens the audit page and the board.
    app.advance(chrono::Duration::days(6));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    let cards = app.cards_to("wanggm").await;
    let links: Vec<&str> =
        cards[0]["jump_list"].as_array().unwrap().iter().map(|l| l["url"].as_str().unwrap()).collect();
    let board = format!("https://lead.example.com/board/client-pk?key={key}");
    assert_eq!(links, ["https://lead.example.com/ui/audit", board.as_str()], "{}", cards[0]);
}

#[tokio::test]
async fn event_streams_are_bounded_and_end_when_the_service_stops() {
    let app =
        TestApp::builder().config(&contest_config()).server("board_streams = 1\nshutdown_grace_secs = 3").spawn().await;
    let key = board_key(&app).await;
    let mut open = Events::open(&app, &key).await;
    open.expect("the board").await.expect("an event");
    let refused = get(&app, &format!("/board/client-pk/events?key={key}")).await;
    assert_eq!(refused.status(), 503, "one stream at most");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(get(&app, &format!("/board/client-pk?key={key}")).await.status(), 200, "the page still opens");

    // Stopping does not wait for the open stream: it ends.
    app.stop().await;
    assert!(open.expect("the stream's end").await.is_none());
}

/// The next event whose changing part contains `text`.
async fn until_shown(events: &mut Events, text: &str) -> Value {
    loop {
        let event = events.expect(text).await.expect("the stream is open");
        if event["html"].as_str().unwrap().contains(text) {
            return event;
        }
    }
}

/// The text of a team's row in an event's HTML, tags removed.
fn row_of(event: &Value, team: &str) -> String {
    let html = event["html"].as_str().unwrap();
    let row = html.split("<li class=\"team ").find(|r| r.contains(team)).unwrap_or_default();
    let row = row.split("</li>").next().unwrap_or_default();
    let mut text = String::new();
    let mut in_tag = false;
    for c in row.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_void_and_a_team_change_reach_an_open_stream() {
    let app = board_app().await;
    let key = board_key(&app).await;
    let mut events = Events::open(&app, &key).await;
    events.expect("the board").await.expect("an event");
    let answer = app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await.unwrap();
    let id: i64 = answer.split('#').nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    app.say("cs_lead", &format!("确认 #{id}")).await.unwrap();
    let confirmed = until_shown(&mut events, "云帆科技").await;
    assert!(!row_of(&confirmed, "雄鹰队").ends_with(" 0分"), "{}", row_of(&confirmed, "雄鹰队"));

    let voided = app.say("wanggm", &format!("作废 #{id} 重复报备")).await.unwrap();
    assert!(voided.contains("已作废"), "{voided}");
    let after_void = until_shown(&mut events, "今天还没有新的有效业绩").await;
    assert!(row_of(&after_void, "雄鹰队").ends_with(" 0分"), "{}", row_of(&after_void, "雄鹰队"));

    let moved = app.say("lina", "调队 人员=张伟 队伍=猎豹队 比赛=客户开发PK").await.unwrap();
    assert!(moved.contains("已将张伟"), "{moved}");
    let after_move = loop {
        let event = events.expect("the team change").await.expect("the stream is open");
        if row_of(&event, "猎豹队").contains("2 人") {
            break event;
        }
    };
    assert!(row_of(&after_move, "雄鹰队").contains("0 人"), "{}", row_of(&after_move, "雄鹰队"));
}

#[tokio::test]
async fn a_new_day_and_a_reloaded_team_reach_an_open_stream() {
    let app = board_app().await;
    let key = board_key(&app).await;
    confirmed_lead(&app, "zhangwei", "云帆科技").await;
    let mut events = Events::open(&app, &key).await;
    let first = events.expect("the board").await.expect("an event");
    assert!(first["html"].as_str().unwrap().contains("云帆科技"), "today's record");

    // Midnight: today's list starts empty, with nobody's commit to announce it.
    app.advance(chrono::Duration::days(1));
    until_shown(&mut events, "今天还没有新的有效业绩").await;

    // A team added to the configuration and reloaded.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let config = config.replace(
        "[[contests.teams]]\nname = \"猎豹队\"",
        "[[contests.teams]]\nname = \"新来的队\"\nmembers = []\n[[contests.teams]]\nname = \"猎豹队\"",
    );
    std::fs::write(&app.config_path, config).unwrap();
    app.reloader.reload().await.expect("reloaded");
    until_shown(&mut events, "新来的队").await;
}
