//! The scheduler as operators see it: a run missed while the service was down happens
//! once at start; `leadboard jobs list` and `leadboard jobs run` work against the
//! database of a running service.

use crate::helpers::{TestApp, eventually, metric};
use crate::local_mode::BIN;
use chrono::Duration;
use leadboard::clock::ShiftedClock;
use leadboard::store::sql;
use std::sync::Arc;

/// Stops `app` and starts it again on the same data a day later, with the scheduler on
/// and the reminders job hourly.
async fn restart_a_day_later_with_reminders(app: TestApp) -> TestApp {
    let stopped = app.stop().await;
    let a_day_later = Arc::new(ShiftedClock::default());
    a_day_later.advance(Duration::hours(25));
    TestApp::builder().restart_of(stopped).clock(a_day_later).scheduler("reminders = \"0 7 * * * *\"").spawn().await
}

#[tokio::test]
async fn a_run_missed_while_stopped_happens_once_at_start() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆 联系人=王").await;
    // The reminders job last fired two days ago; since then it missed many runs.
    let two_days_ago = app.state.clock.now_ms() - 48 * 3_600_000;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("INSERT INTO jobs (name, last_fire_at) VALUES ('reminders', ?)")
        .bind(two_days_ago)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let app = restart_a_day_later_with_reminders(app).await;
    eventually("the missed run", || async {
        app.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND last_run_at IS NOT NULL").await == 1
    })
    .await;
    let reminders = app.texts_to("cs_lead").await;
    assert_eq!(reminders.iter().filter(|t| t.contains("超过 24 小时")).count(), 1, "{reminders:?}");
    let runs = app.count("SELECT COUNT(*) FROM events WHERE action = 'reminded'").await;
    assert_eq!(runs, 1, "caught up once, not once per missed hour");
    let runs = metric(&app.metrics().await, r#"leadboard_job_runs_total{job="reminders",outcome="done"}"#);
    assert_eq!(runs, 1.0, "operators see the run");
}

#[tokio::test]
async fn a_lease_left_by_a_stopped_service_does_not_swallow_its_catch_up_run() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆 联系人=王").await;
    // The service stopped (or crashed) a minute ago in the middle of a reminders run.
    let now = app.state.clock.now_ms();
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query(
        "INSERT INTO jobs (name, last_fire_at, running_since, lease_owner) VALUES ('reminders', ?, ?, 'service')",
    )
    .bind(now - 48 * 3_600_000)
    .bind(now - 60_000)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let app = restart_a_day_later_with_reminders(app).await;
    // The run's outcome and the release of its lease are one write: wait for that, not
    // for the run's event (committed before the lease is released).
    eventually("the missed run to finish", || async {
        app.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND last_outcome LIKE '提醒%'").await == 1
    })
    .await;
    let lease = app.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND running_since IS NOT NULL").await;
    assert_eq!(lease, 0, "the abandoned lease was released and the run's own lease returned");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'reminded'").await, 1, "the run happened once");
}

/// Runs the binary against the running service's database, without blocking the
/// runtime the service shares with this test.
async fn leadboard(app: &TestApp, args: &[&str]) -> (bool, String) {
    let output =
        tokio::process::Command::new(BIN).args(args).arg("--config").arg(&app.config_path).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[tokio::test]
async fn jobs_run_against_a_running_services_database() {
    let app = TestApp::spawn().await;
    let onboarded = app.today().checked_sub_days(chrono::Days::new(3)).unwrap();
    app.say("zhengqiang", &format!("上岗 姓名=小王 入职={onboarded}")).await;

    let (ok, out) = leadboard(&app, &["jobs", "run", "onjob_check"]).await;
    assert!(ok && out.contains("发送了 1 张在岗确认卡片") && out.contains("已排队 1 条消息"), "{out}");
    // The running service delivers what the command queued.
    let cards = app.cards_to("tr_lead").await;
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0]["main_title"]["title"], "在岗确认 #1 小王");

    let (ok, out) = leadboard(&app, &["jobs", "list"]).await;
    assert!(ok, "{out}");
    for name in ["daily_leaderboard", "onjob_check", "reminders", "contest_cutoff", "directory_sync", "inbox_prune"] {
        assert!(out.contains(name), "{out}");
    }
    assert!(out.contains("发送了 1 张在岗确认卡片"), "the last outcome is listed: {out}");

    let (ok, out) = leadboard(&app, &["jobs", "run", "no_such_job"]).await;
    assert!(!ok && out.contains("没有任务“no_such_job”"), "{out}");
}

#[tokio::test]
async fn a_command_whose_reader_went_away_ends_quietly() {
    let app = TestApp::spawn().await;
    // `leadboard jobs list | head -0`: the reading end is closed before anything is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = tokio::process::Command::new(BIN)
        .args(["jobs", "list", "--config"])
        .arg(&app.config_path)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("panicked"), "{:?}: {stderr}", output.status);
}
