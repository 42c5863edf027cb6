//! The TV board in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver (fantoccini), with chromedriver started
//! here on a free port. The board open on a screen shows a confirmation made in chat
//! within two seconds, without a reload; the screenshots of the README are taken here
//! (`docs/screenshots/board-dark.png`, `board-light.png`, 1920×1080).
//!
//! Without chromedriver the test is skipped with a message, unless
//! `LEADBOARD_REQUIRE_BROWSER` is set (as CI does), when it fails.

use crate::board::{board_key, confirmed_lead};
use crate::helpers::{TestApp, within};
use chrono::Days;
use fantoccini::{Client, ClientBuilder};
use leadboard::store::sql;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A chromedriver this test started; stopped when dropped.
pub struct Chromedriver {
    _child: Child,
    url: String,
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file())
}

impl Chromedriver {
    /// Starts chromedriver (`LEADBOARD_CHROMEDRIVER`, or `chromedriver` on the PATH);
    /// none, with a message, when there is none and the browser is not required.
    pub async fn start() -> Option<Chromedriver> {
        let path =
            std::env::var_os("LEADBOARD_CHROMEDRIVER").map(PathBuf::from).or_else(|| find_on_path("chromedriver"));
        let Some(path) = path else {
            if std::env::var_os("LEADBOARD_REQUIRE_BROWSER").is_some() {
                panic!(
                    "LEADBOARD_REQUIRE_BROWSER is set but chromedriver is not installed (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!(
                "skipped: chromedriver not found (apt-get install chromium chromium-driver to run the browser test)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", path.display()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(Chromedriver { _child: child, url: format!("http://127.0.0.1:{port}") })
    }

    /// A headless Chromium whose page is `width`×`height`.
    pub async fn browser(&self, width: u32, height: u32) -> Client {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--window-size={width},{height}"),
        ];
        args.push("--lang=zh-CN".into());
        let mut options = json!({ "args": args });
        if let Some(binary) = find_on_path("chromium") {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let browser = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromium does not start through chromedriver: {e}"));
        // The window's size includes what is not page: grow it so that the page has
        // exactly the size asked for.
        let chrome = eval(&browser, "return [outerWidth - innerWidth, outerHeight - innerHeight]").await;
        let extra = |i: usize| chrome[i].as_u64().unwrap_or(0) as u32;
        browser.set_window_size(width + extra(0), height + extra(1)).await.unwrap();
        browser
    }
}

/// Runs a script in the page and returns its value.
async fn eval(browser: &Client, script: &str) -> Value {
    browser.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

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

/// Where a screenshot goes: `docs/screenshots/` (the README's, committed) when
/// `LEADBOARD_SCREENSHOTS` is set, else `target/screenshots/` (a test run leaves the
/// tree clean), as the console's browser tests do.
fn screenshot_path(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::env::var_os("LEADBOARD_SCREENSHOTS").is_some_and(|v| !v.is_empty());
    let dir = if docs { root.join("docs/screenshots") } else { root.join("target/screenshots") };
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir.join(name)
}

/// Waits until the page has its first live event (its stream is open).
async fn wait_for_stream(browser: &Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while eval(browser, "return document.body.dataset.updated || null").await.is_null() {
        assert!(tokio::time::Instant::now() < deadline, "the board's event stream did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the page fits its window, and nothing inside the panels is cut off
/// vertically (a list taller than its panel).
async fn overflow_free(browser: &Client) -> Value {
    eval(
        browser,
        "var d = document.documentElement; \
         var fits = d.scrollHeight <= innerHeight && d.scrollWidth <= innerWidth; \
         var panels = Array.from(document.querySelectorAll('.panel')); \
         return fits && panels.every(function (p) { return p.scrollHeight <= p.clientHeight + 1; });",
    )
    .await
}

/// The text of the team's row on the board, white space squeezed.
async fn team_row(browser: &Client, team: &str) -> String {
    let script = "return Array.from(document.querySelectorAll('.team')).map(function (e) { return e.textContent; })";
    let rows = eval(browser, script).await;
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let row = rows.iter().filter_map(Value::as_str).find(|r| r.contains(team)).unwrap_or_default();
    row.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn the_board_shows_a_chat_confirmation_within_two_seconds_without_a_reload() {
    let Some(driver) = Chromedriver::start().await else { return };
    let app = TestApp::builder().config(&screen_config()).spawn().await;
    seed(&app).await;
    let key = board_key(&app).await;
    let browser = driver.browser(1920, 1080).await;
    browser.goto(&app.url(&format!("/board/client-pk?key={key}&theme=dark"))).await.unwrap();
    wait_for_stream(&browser).await;
    eval(&browser, "window.stillTheSamePage = true; return null").await;
    let team_points = async || -> i64 {
        sql::query_scalar("SELECT SUM(points) FROM contest_scores WHERE contest_id = 'client-pk' AND team = '猎豹队'")
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
    assert_eq!(eval(&browser, "return window.stillTheSamePage === true").await, json!(true), "no reload");
    let today = eval(&browser, "return document.querySelector('.today').textContent").await;
    assert!(today.as_str().unwrap().contains("云帆科技集团有限公司"), "today's records: {today}");

    // The screenshots of the README, dark and light.
    std::fs::create_dir_all(screenshot_path("")).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_path("board-dark.png"), &png).unwrap();
    browser.goto(&app.url(&format!("/board/client-pk?key={key}&theme=light"))).await.unwrap();
    wait_for_stream(&browser).await;
    assert_eq!(overflow_free(&browser).await, json!(true), "the board fits the screen");
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_path("board-light.png"), &png).unwrap();

    // Twelve teams with long names still fit, the last two counted.
    let big = app.say("lina", "看板链接 big-pk").await.unwrap();
    browser.goto(&app.url(&format!("/board/big-pk?key={}", crate::board::key_in(&big)))).await.unwrap();
    wait_for_stream(&browser).await;
    assert_eq!(overflow_free(&browser).await, json!(true), "twelve teams fit the screen");
    let more = eval(&browser, "return document.querySelector('.teams .more').textContent").await;
    assert!(more.as_str().unwrap().contains("另有 2 支队伍"), "{more}");
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_path("board-12-teams.png"), &png).unwrap();
    browser.close().await.unwrap();
}
