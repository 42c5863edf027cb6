//! Reloading the configuration while the service runs: `leadboard reload` (the real
//! binary, through the control socket) and SIGHUP. A changed sponsorship and a new
//! contest take effect without a restart while callbacks keep being answered; a file
//! with problems changes nothing and names every problem; a contest past its cut-off
//! keeps its rules; settings read once at start wait for a restart; changed cron
//! expressions are followed.

use crate::helpers::{TestApp, eventually};
use crate::local_mode::BIN;
use crate::shutdown::{Service, WAIT};
use chrono::Days;
use leadboard::jobs::{Job, run_once};
use leadboard::reload::ReloadError;
use leadboard::store::sql;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The client-development contest, from 10 days ago to 10 days ahead.
fn contest(sponsorship: u32) -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
sponsorship = {sponsorship}
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
[[contests.teams]]
name = "猎豹队"
members = ["sunli"]
"#,
        start = today.checked_sub_days(Days::new(10)).unwrap(),
        end = today.checked_add_days(Days::new(10)).unwrap(),
    )
}

/// A second contest, for TR, to be added by a reload.
fn new_contest() -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    format!(
        r#"
[[contests]]
id = "spring-pk"
name = "春季渠道PK"
kinds = ["channel_school", "channel_agency", "channel_person"]
start = "{today}"
end = "{end}"
sponsorship = 800
[[contests.teams]]
name = "招商队"
department = 3
"#,
        end = today.checked_add_days(Days::new(30)).unwrap(),
    )
}

/// Replaces `from` (which must be there) with `to` in the configuration file.
fn edit(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "no “{from}” in the configuration");
    std::fs::write(config, text.replacen(from, to, 1)).unwrap();
}

fn append(config: &Path, toml: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("{text}\n{toml}")).unwrap();
}

/// `leadboard reload --config FILE`: (exit code, stdout, stderr).
async fn reload(config: &Path) -> (i32, String, String) {
    let output = tokio::process::Command::new(BIN)
        .args(["reload", "--config"])
        .arg(config)
        .env_remove("LEADBOARD_CONFIG")
        .output()
        .await
        .expect("leadboard runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

async fn events(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM events WHERE entity = 'configuration' AND action = 'reloaded'").await
}

/// Callbacks sent one after another from `workers` senders until stopped; counts the
/// answers, and fails on any answer that is not a 200 with a reply.
struct Traffic {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(app: &Arc<TestApp>, workers: usize) -> Traffic {
        let (stop, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let senders = (0..workers)
            .map(|i| {
                let (app, stop, answered) = (app.clone(), stop.clone(), answered.clone());
                tokio::spawn(async move {
                    let (who, text) = [("zhangwei", "我的"), ("lina", "排行"), ("sunli", "帮助")][i % 3];
                    while !stop.load(Ordering::SeqCst) {
                        let answer = app.post(&app.text_request(who, text)).await;
                        assert_eq!(answer.status, 200, "a callback failed during the reload: {answer:?}");
                        assert!(app.open(&answer).is_some_and(|r| !r.is_empty()), "no reply to {text}");
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Traffic { stop, answered, senders }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for sender in self.senders {
            sender.await.expect("no callback failed");
        }
    }
}

#[tokio::test]
async fn a_changed_sponsorship_and_a_new_contest_take_effect_without_a_restart_while_callbacks_are_answered() {
    let app = Arc::new(TestApp::builder().config(&contest(1000)).spawn().await);
    assert!(say(&app, "lina", "排行 客户开发PK").await.contains("奖池：1200.00 元"), "stakes 200 + sponsorship");
    assert!(say(&app, "lina", "排行 春季渠道PK").await.contains("没有"), "not a contest yet");
    edit(&app.config_path, "sponsorship = 1000", "sponsorship = 5000");
    append(&app.config_path, &new_contest());

    let traffic = Traffic::start(&app, 4);
    eventually("callbacks flowing", || async { traffic.answered() >= 4 }).await;
    // The senders keep callbacks in flight while the reload runs; every one of them is
    // answered (a sender fails on any other answer), and more after it. (How many are
    // answered during the reload depends on how long each takes against the reload.)
    let (code, out, err) = reload(&app.config_path).await;
    let after_reload = traffic.answered();
    eventually("callbacks answered after the reload", || async { traffic.answered() >= after_reload + 4 }).await;
    traffic.stop().await;

    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "已重新加载配置（{}），2 项更改已生效：\n  - 比赛「客户开发PK」（client-pk）：sponsorship 1000 → 5000\n  \
             - 比赛「春季渠道PK」（spring-pk）：新增\n",
            app.config_path.display()
        )
    );
    assert!(say(&app, "lina", "排行 客户开发PK").await.contains("奖池：5200.00 元"));
    let spring = say(&app, "lina", "排行 春季渠道PK").await;
    assert!(spring.contains("🏆 春季渠道PK 排行") && spring.contains("第1名 招商队 0 分"), "{spring}");
    assert!(spring.contains("奖池：1400.00 元"), "stakes of a director and a staff member + 800: {spring}");
    // The new contest's department team took its members, as at start.
    let members = app.count("SELECT COUNT(*) FROM contest_members WHERE contest_id = 'spring-pk'").await;
    assert_eq!(members, 2, "tr_lead and zhengqiang");
    assert_eq!(events(&app).await, 1, "the reload is in the event log");

    // Nothing changed since: nothing is applied, and it says so.
    let (code, out, _) = reload(&app.config_path).await;
    assert_eq!((code, out.starts_with("配置没有变化")), (0, true), "{out}");
    assert_eq!(events(&app).await, 1);
}

#[tokio::test]
async fn a_file_with_problems_changes_nothing_and_every_problem_is_named() {
    let app = TestApp::builder().config(&contest(1000)).spawn().await;
    let running = app.state.settings();
    edit(&app.config_path, "sponsorship = 1000", "sponsorship = 5000");
    append(&app.config_path, "[stakes]\nstaf = 100\n[reminders]\nfirst_after_hours = 0\n");

    let (code, out, err) = reload(&app.config_path).await;

    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    for problem in ["配置有 2 个问题", "未知配置项 `stakes.staf`", "first_after_hours 须大于 0", "未重新加载"]
    {
        assert!(err.contains(problem), "no “{problem}” in {err}");
    }
    assert!(Arc::ptr_eq(&running, &app.state.settings()), "the running configuration is kept");
    assert!(say(&app, "lina", "排行 客户开发PK").await.contains("奖池：1200.00 元"));
    assert_eq!(events(&app).await, 0);
}

#[tokio::test]
async fn sighup_reloads_as_the_command_does_and_refuses_a_bad_file_the_same_way() {
    let configured = TestApp::builder().config(&contest(1000)).configure().await;
    let peer = configured.peer();
    let mut service = Service::start(&configured, &[]).await;
    assert!(service.say(&peer, "lina", "排行 客户开发PK").await.contains("奖池：1200.00 元"));

    edit(&configured.config_path, "sponsorship = 1000", "sponsorship = 3000");
    append(&configured.config_path, &new_contest());
    service.signal("HUP").await;
    let reloaded = service.log("configuration reloaded").await;
    assert_eq!(reloaded["applied"], 2, "{reloaded}");
    let changes: Vec<String> =
        service.all("configuration changed").iter().map(|l| l["change"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        changes,
        ["比赛「客户开发PK」（client-pk）：sponsorship 1000 → 3000", "比赛「春季渠道PK」（spring-pk）：新增"]
    );
    assert!(service.say(&peer, "lina", "排行 客户开发PK").await.contains("奖池：3200.00 元"));
    assert!(service.say(&peer, "lina", "排行 春季渠道PK").await.contains("奖池：1400.00 元"));

    edit(&configured.config_path, "sponsorship = 3000", "sponsorship = \"很多\"");
    service.signal("HUP").await;
    let refused = service.log("configuration reload refused").await;
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("sponsorship") && error.contains("未重新加载"), "{error}");
    assert!(service.say(&peer, "lina", "排行 客户开发PK").await.contains("奖池：3200.00 元"));

    // The command reaches the same service, and says the same.
    let (code, _, err) = reload(&configured.config_path).await;
    assert!(code == 2 && err.contains("sponsorship"), "{err}");
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());
    assert!(!configured.database.with_extension("sock").exists(), "the control socket is removed at stop");
    let (code, _, err) = reload(&configured.config_path).await;
    assert!(code == 1 && err.contains("无法连接运行中的服务"), "{err}");
}

#[tokio::test]
async fn settings_read_at_start_wait_for_a_restart_and_the_rest_applies() {
    let app = TestApp::spawn().await;
    let listen = app.state.settings().server.listen.clone();
    edit(&app.config_path, "listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:9\"");
    edit(&app.config_path, "secret = \"test-secret\"", "secret = \"rotated-secret\"");
    append(
        &app.config_path,
        "[stakes]\nstaff = 150\n[[directory.users]]\nuserid = \"xinren\"\nname = \"辛仁\"\ndepartment = 2\n",
    );

    let done = app.reloader.reload().await.expect("reloaded");

    let text = done.render();
    assert!(text.contains("  - stakes.staff：新增：150"), "{text}");
    assert!(text.contains("directory.users[xinren]：新增"), "{text}");
    assert!(text.contains("通讯录：\n  - 新增：辛仁（xinren） · 客户成功事业部 · 员工"), "{text}");
    assert!(text.contains("以下更改需要重启服务才能生效"), "{text}");
    assert!(text.contains("server.listen：\"127.0.0.1:0\" → \"127.0.0.1:9\""), "{text}");
    assert!(text.contains("wecom.secret：已更改（值不显示）") && !text.contains("rotated"), "{text}");
    let settings = app.state.settings();
    assert_eq!((settings.server.listen.as_str(), settings.wecom.secret()), (listen.as_str(), "test-secret"));
    assert!(say(&app, "xinren", "我的").await.contains("辛仁"), "the new person is in the directory");

    // Still waiting for the restart at the next reload, though nothing else changed.
    let again = app.reloader.reload().await.expect("reloaded").render();
    assert!(again.starts_with("配置没有变化") && again.contains("server.listen"), "{again}");
}

#[tokio::test]
async fn changed_rewards_are_a_new_rule_set_dated_by_the_reload() {
    let app = TestApp::spawn().await;
    append(&app.config_path, "[rewards.non_cs]\nlead_c = 80\n");

    let done = app.reloader.reload().await.expect("reloaded").render();

    assert!(done.contains("rewards.non_cs.lead_c：新增：80"), "{done}");
    let id = done.split("规则集 ").nth(1).and_then(|rest| rest.split(' ').next()).expect("the rule set named");
    let dated: i64 = sql::query_scalar("SELECT first_seen_at FROM rule_sets WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .expect("the new rule set is stored");
    let reloaded = app.count("SELECT at FROM events WHERE entity = 'configuration' AND action = 'reloaded'").await;
    assert_eq!(dated, reloaded, "dated by the reload");
}

#[tokio::test]
async fn a_contest_past_its_cut_off_keeps_its_rules() {
    let app = TestApp::builder().config(&contest(1000)).spawn().await;
    app.advance(chrono::Duration::days(11));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    edit(&app.config_path, "sponsorship = 1000", "sponsorship = 5000");
    edit(&app.config_path, "members = [\"sunli\"]", "members = [\"sunli\", \"cs_lead\"]");

    let refused = app.reloader.reload().await.unwrap_err();

    assert!(matches!(refused, ReloadError::Refused(_)));
    let text = refused.to_string();
    assert!(
        text.contains(
            "比赛「客户开发PK」（client-pk）已截止、等待终审，计分和奖池规则不能再修改：sponsorship、teams 已更改"
        ),
        "{text}"
    );
    assert!(say(&app, "lina", "排行 客户开发PK").await.contains("奖池：1200.00 元"));

    // Its name may change.
    edit(&app.config_path, "sponsorship = 5000", "sponsorship = 1000");
    edit(&app.config_path, "members = [\"sunli\", \"cs_lead\"]", "members = [\"sunli\"]");
    edit(&app.config_path, "name = \"客户开发PK\"", "name = \"客户开发大赛\"");
    let done = app.reloader.reload().await.expect("a name is not a rule").render();
    assert!(done.contains("比赛「客户开发大赛」（client-pk）：name \"客户开发PK\" → \"客户开发大赛\""), "{done}");
}

#[tokio::test]
async fn a_changed_schedule_is_followed_without_a_restart() {
    let app = TestApp::builder().scheduler("inbox_prune = \"0 0 0 1 1 *\"").spawn().await;
    let ran = || async {
        app.count("SELECT COUNT(*) FROM jobs WHERE name = 'inbox_prune' AND last_run_at IS NOT NULL").await
    };
    assert_eq!(ran().await, 0);
    edit(&app.config_path, "inbox_prune = \"0 0 0 1 1 *\"", "inbox_prune = \"* * * * * *\"");

    let done = app.reloader.reload().await.expect("reloaded").render();

    assert!(done.contains("schedules.inbox_prune：\"0 0 0 1 1 *\" → \"* * * * * *\""), "{done}");
    eventually("the prune on its new schedule", || async { ran().await == 1 }).await;
}

/// The month's settlement as the service computes it now: `(record, amount, rule set)`
/// of each record's line, and the CSV.
async fn settled(app: &TestApp) -> (Vec<(i64, String, String)>, String) {
    let month = leadboard::domain::month::Month::of(app.today());
    let mut tx = app.state.db.begin().await.unwrap();
    let report =
        leadboard::service::settlement::compute(&mut tx, &app.state.settings(), month, app.state.clock.now_ms())
            .await
            .expect("settled");
    let lines = report
        .settlement
        .lines
        .iter()
        .filter_map(|l| l.record.map(|id| (id, l.amount.to_string(), l.rule_set.clone())))
        .collect();
    (lines, String::from_utf8(report.csv().unwrap()).unwrap())
}

#[tokio::test]
async fn a_reward_change_applies_to_what_is_reported_from_the_reload_on() {
    let app = TestApp::builder().config("[rewards.non_cs]\nlead_c = 50\n").spawn().await;
    say(&app, "lina", "C类 公司=云帆科技 联系人=王").await; // #1, confirmed before the reload
    say(&app, "cs_lead", "确认 #1").await;
    say(&app, "lina", "C类 公司=星河传媒 联系人=李").await; // #2, confirmed after it
    let (before, _) = settled(&app).await;
    let old = before[0].2.clone();

    edit(&app.config_path, "lead_c = 50", "lead_c = 80");
    let done = app.reloader.reload().await.expect("reloaded").render();
    let new = done.split("规则集 ").nth(1).and_then(|rest| rest.split(' ').next()).expect("named").to_owned();
    assert_ne!(new, old);
    say(&app, "cs_lead", "确认 #2").await;
    say(&app, "lina", "C类 公司=远航物流 联系人=赵").await; // #3, reported after the reload
    say(&app, "cs_lead", "确认 #3").await;

    let (lines, csv) = settled(&app).await;
    assert_eq!(
        lines,
        [(1, "50.00".into(), old.clone()), (2, "50.00".into(), old.clone()), (3, "80.00".into(), new.clone())],
        "each record under the rules in force when it was reported"
    );
    assert!(csv.contains(&old) && csv.contains(&new), "the file names both rule sets: {csv}");

    // Back to the first rules: a third period, and what was reported in the second
    // keeps the second's.
    edit(&app.config_path, "lead_c = 80", "lead_c = 50");
    app.reloader.reload().await.expect("reloaded");
    say(&app, "lina", "C类 公司=蓝海咨询 联系人=钱").await; // #4
    say(&app, "cs_lead", "确认 #4").await;
    let (lines, _) = settled(&app).await;
    assert_eq!(lines[2], (3, "80.00".into(), new));
    assert_eq!(lines[3], (4, "50.00".into(), old));
    assert_eq!(app.count("SELECT COUNT(*) FROM rule_set_periods").await, 3);
}
