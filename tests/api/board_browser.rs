//! The TV board in a real browser (the harness of `browser.rs`): the board open on a
//! screen shows a confirmation made in chat within two seconds, without a reload; the
//! screenshots of the README are taken here (`board-dark.png`, `board-light.png`,
//! `board-12-teams.png`, 1920×1080).

use crate::board::{board_key, confirmed_lead};
use crate::browser::Browser;
use crate::helpers::{TestApp, within};
use chrono::Days;
use leadboard::store::sql;
use serde_json::{Value, json};
use std::time::Duration;

/// Seven teams, one with a long name, one empty; a day and a half of the contest gone.
fn screen_config() -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let teams = [
        ("华东大区杭州西湖客户成功一部精英战队", "zhangwei"),
        ("猎豹队", "sunli"),
        ("雄鹰队", "lina"),
        ("飞龙队", "qianjing"),
        ("招商引才联合战队", "zhengqiang"),
        ("王者之师", "wanggm"),
        ("新锐队", ""),
    ];
    let mut config = format!(
        "[[contests]]\nid = \"client-pk\"\nname = \"客户开发PK · 第四季度冲刺赛\"\nkinds = [\"lead_c\", \"lead_b\", \"lead_a\"]\n\
         start = \"{}\"\nend = \"{}\"\nsponsorship = 5000\nchats = [\"appchat:wrchat1\"]\n",
        today.checked_sub_days(Days::new(1)).unwrap(),
        today.checked_add_days(Days::new(6)).unwrap(),
    );
    for (name, member) in teams {
        let members = if member.is_empty() { String::new() } else { format!("\"{member}\"") };
        config.push_str(&format!("[[contests.teams]]\nname = \"{name}\"\nmembers = [{members}]\n"));
    }
    // A second contest with twelve teams of long names (more than the board lists).
    config.push_str(&format!(
        "[[contests]]\nid = \"big-pk\"\nname = \"全集团各分子公司年度业绩冲刺总决赛暨表彰大会预热赛\"\nkinds = [\"lead_c\"]\n\
         start = \"{}\"\nend = \"{}\"\n",
        today.checked_sub_days(Days::new(1)).unwrap(),
        today.checked_add_days(Days::new(6)).unwrap(),
    ));
    let people = ["zhangwei", "sunli", "lina", "qianjing", "zhengqiang", "wanggm"];
    for i in 0..12 {
        let members = people.get(i).map(|p| format!("\"{p}\"")).unwrap_or_default();
        config.push_str(&format!(
            "[[contests.teams]]\nname = \"第{}分公司华南大区深圳南山科技园销售精英战队\"\nmembers = [{members}]\n",
            i + 1
        ));
    }
    config
}

/// Confirmed records spread over the contest so far, so that the chart has a shape.
async fn seed(app: &TestApp) {
    let people = ["zhangwei", "sunli", "lina", "zhangwei", "qianjing", "zhengqiang", "sunli", "wanggm", "zhangwei"];
    for (i, person) in people.iter().enumerate() {
        app.advance(chrono::Duration::hours(3));
        confirmed_lead(app, person, &format!("示例客户{i}号科技有限公司")).await;
    }
    let paid = app.say("lina", "缴费 人员=张伟 比赛=client-pk").await.unwrap();
    assert!(paid.contains("已登记"), "{paid}");
}

/// Waits until the page has its first live event (its stream is open).
async fn wait_for_stream(browser: &Browser) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while browser.eval("return document.body.dataset.updated || null").await.is_null() {
        assert!(tokio::time::Instant::now() < deadline, "the board's event stream did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the page fits its window, and nothing inside the panels is cut off
/// vertically (a list taller than its panel).
async fn overflow_free(browser: &Browser) -> Value {
    browser
        .eval(
            "var d = document.documentElement; \
         var fits = d.scrollHeight <= innerHeight && d.scrollWidth <= innerWidth; \
         var panels = Array.from(document.querySelectorAll('.panel')); \
         return fits && panels.every(function (p) { return p.scrollHeight <= p.clientHeight + 1; });",
        )
        .await
}

/// The text of the team's row on the board, white space squeezed.
async fn team_row(browser: &Browser, team: &str) -> String {
    let script = "return Array.from(document.querySelectorAll('.team')).map(function (e) { return e.textContent; })";
    let rows = browser.eval(script).await;
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let row = rows.iter().filter_map(Value::as_str).find(|r| r.contains(team)).unwrap_or_default();
    row.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn the_board_shows_a_chat_confirmation_within_two_seconds_without_a_reload() {
    let Some(browser) = Browser::start((1920, 1080), None).await else { return };
    let app = TestApp::builder().config(&screen_config()).spawn().await;
    seed(&app).await;
    let key = board_key(&app).await;
    browser.client.goto(&app.url(&format!("/board/client-pk?key={key}&theme=dark"))).await.unwrap();
    wait_for_stream(&browser).await;
    browser.eval("window.stillTheSamePage = true; return null").await;
    let team_points = async || -> i64 {
        sql::query_scalar(
            "SELECT CAST(SUM(points) AS BIGINT) FROM contest_scores WHERE contest_id = 'client-pk' AND team = '猎豹队'",
        )
        .fetch_one(app.state.db.reader())
        .await
        .unwrap()
    };
    let before = team_points().await;
    assert!(team_row(&browser, "猎豹队").await.contains(&format!(" {before}分")));

    // 孙丽 of 猎豹队 has a client confirmed in chat.
    confirmed_lead(&app, "sunli", "云帆科技集团有限公司").await;
    let after = team_points().await;
    assert!(after > before);
    within(Duration::from_secs(2), "the board shows 猎豹队's new points", || async {
        team_row(&browser, "猎豹队").await.contains(&format!(" {after}分"))
    })
    .await;
    assert_eq!(browser.eval("return window.stillTheSamePage === true").await, json!(true), "no reload");
    let today = browser.eval("return document.querySelector('.today').textContent").await;
    assert!(today.as_str().unwrap().contains("云帆科技集团有限公司"), "today's records: {today}");

    // The screenshots of the README, dark and light.
    browser.screenshot("board-dark").await;
    browser.client.goto(&app.url(&format!("/board/client-pk?key={key}&theme=light"))).await.unwrap();
    wait_for_stream(&browser).await;
    assert_eq!(overflow_free(&browser).await, json!(true), "the board fits the screen");
    browser.screenshot("board-light").await;

    // Twelve teams with long names still fit, the last two counted.
    let big = app.say("lina", "看板链接 big-pk").await.unwrap();
    browser.client.goto(&app.url(&format!("/board/big-pk?key={}", crate::board::key_in(&big)))).await.unwrap();
    wait_for_stream(&browser).await;
    assert_eq!(overflow_free(&browser).await, json!(true), "twelve teams fit the screen");
    let more = browser.eval("return document.querySelector('.teams .more').textContent").await;
    assert!(more.as_str().unwrap().contains("另有 2 支队伍"), "{more}");
    browser.screenshot("board-12-teams").await;
    browser.close().await;
}
