//! Replicas on one PostgreSQL database (issue 17): a scheduled fire time runs once
//! however many replicas schedule it, and is taken over from a replica that died
//! mid-run; one replica delivers the outbox at a time, and another takes over when it
//! stops. On SQLite (one process per database file) these tests skip, saying so;
//! `.ci/run` runs them on PostgreSQL.

use crate::helpers::{TestApp, eventually, within};
use leadboard::clock::ShiftedClock;
use leadboard::store::lock::SessionLock;
use leadboard::store::sql;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use wiremock::MockServer;

/// Whether the suite runs on PostgreSQL; says why the test skips when not.
fn on_postgres() -> bool {
    crate::helpers::postgres_or_skip("sharing a database between replicas").is_some()
}

/// `app`'s runs of the reminders job with `outcome` (`leadboard_job_runs_total`).
fn job_runs(app: &TestApp, outcome: &'static str) -> u64 {
    let label = leadboard::metrics::JobRunLabel { job: "reminders", outcome };
    app.state.metrics.job_runs.get_or_create(&label).get()
}

fn database_of(app: &TestApp) -> String {
    app.state.settings().database.url.clone()
}

/// A replica on the database at `url` with the scheduler on (the reminders job daily
/// at 09:00) and its clock a day ahead.
async fn replica_a_day_later(url: &str) -> TestApp {
    let a_day_later = Arc::new(ShiftedClock::default());
    a_day_later.advance(chrono::Duration::hours(25));
    let replica = TestApp::builder().replica_on(url).clock(a_day_later);
    replica.scheduler("reminders = \"0 0 9 * * *\"").spawn().await
}

/// `app` with a lead waiting for its confirmer, and the reminders job last fired two
/// days ago: a replica a day later has a fire time to catch up at start.
async fn a_lead_and_a_missed_reminder(app: &TestApp) {
    app.say("zhangwei", "C类 公司=云帆 联系人=王").await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("INSERT INTO jobs (name, last_fire_at) VALUES ('reminders', ?)")
        .bind(app.state.clock.now_ms() - 48 * 3_600_000)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The messages WeCom received on `mock`, without delivering anything.
async fn sent(mock: &MockServer) -> Vec<Value> {
    let requests = mock.received_requests().await.unwrap_or_default();
    let sends = requests.into_iter().filter(|r| r.url.path().ends_with("/message/send"));
    sends.filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
}

/// The messages of type `msgtype` WeCom received for `user`, on any of `mocks`.
async fn received(mocks: &[&MockServer], msgtype: &str, user: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for mock in mocks {
        for message in sent(mock).await {
            let to_user = message["touser"].as_str().is_some_and(|t| t.split('|').any(|u| u == user));
            if message["msgtype"] == msgtype && to_user {
                found.push(message);
            }
        }
    }
    found
}

async fn pending(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").await
}

/// Whether some session holds the session lock `key` (tried, and let go at once).
async fn held_elsewhere(app: &TestApp, key: &str) -> bool {
    match SessionLock::try_take(&app.state.db, key).await.expect("the database answers") {
        Some(lock) => {
            lock.release().await;
            false
        }
        None => true,
    }
}

#[tokio::test]
async fn two_replicas_catching_up_the_same_fire_time_run_it_once_and_deliver_it_once() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::spawn().await;
    a_lead_and_a_missed_reminder(&first).await;
    first.drain().await;
    let url = database_of(&first);
    let first = first.stop().await;
    // A day later two replicas start together, each with the missed fire time to run.
    let (a, b) = tokio::join!(replica_a_day_later(&url), replica_a_day_later(&url));
    eventually("the missed run", || async {
        a.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND last_outcome LIKE '提醒%'").await == 1
    })
    .await;
    assert_eq!(a.count("SELECT COUNT(*) FROM events WHERE action = 'reminded'").await, 1, "the fire time ran once");
    eventually("the outbox delivered", || async { pending(&a).await == 0 }).await;
    let mocks = [&first.mock, &a.mock, &b.mock];
    let reminders = received(&mocks, "text", "cs_lead").await;
    let reminders: Vec<&str> = reminders.iter().filter_map(|m| m["text"]["content"].as_str()).collect();
    assert_eq!(reminders.iter().filter(|t| t.contains("超过 24 小时")).count(), 1, "{reminders:?}");
    assert_eq!(received(&mocks, "template_card", "cs_lead").await.len(), 1, "the lead's card went once");
}

/// Plays another replica in the middle of the reminders run on `app`'s database: it
/// holds the job's session lock and the lease in the row.
async fn another_replica_running_reminders(app: &TestApp) -> SessionLock {
    let running = SessionLock::try_take(&app.state.db, "leadboard:job:reminders").await.unwrap().expect("free");
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE jobs SET running_since = ?, lease_owner = 'service' WHERE name = 'reminders'")
        .bind(app.state.clock.now_ms())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    running
}

#[tokio::test]
async fn a_fire_time_another_replica_ran_while_this_one_waited_is_not_run_again() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::spawn().await;
    a_lead_and_a_missed_reminder(&first).await;
    let running = another_replica_running_reminders(&first).await;
    let replica = replica_a_day_later(&database_of(&first)).await;
    // Its scheduler finds the missed fire time and the job held, moments after start,
    // so that the fire time is the one it waits on, not one already done when it first
    // looks.
    within(Duration::from_secs(5), "the replica finds the job held", || async { job_runs(&replica, "busy") >= 1 })
        .await;
    // The other replica's run ends well: its outcome, the lease released and the job's
    // progress moved to now (past the fire time), in one write, then the lock let go.
    let mut tx = first.state.db.begin().await.unwrap();
    sql::query(
        "UPDATE jobs SET running_since = NULL, lease_owner = NULL, last_outcome = '提醒：另一个副本', last_fire_at = ?
         WHERE name = 'reminders'",
    )
    .bind(replica.state.clock.now_ms())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    running.release().await;
    // The waiting replica looks again after LOOK_AGAIN_AFTER (5 s), and finds it done.
    within(Duration::from_secs(15), "the replica looks again", || async { job_runs(&replica, "already_done") == 1 })
        .await;
    assert_eq!(job_runs(&replica, "done"), 0);
    let reminded = replica.count("SELECT COUNT(*) FROM events WHERE action = 'reminded'").await;
    assert_eq!(reminded, 0, "the fire time was done: not run again");
    let outcome =
        replica.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND last_outcome = '提醒：另一个副本'");
    assert_eq!(outcome.await, 1);
}

#[tokio::test]
async fn a_fire_time_whose_run_died_with_its_replica_is_run_by_another() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::spawn().await;
    a_lead_and_a_missed_reminder(&first).await;
    let running = another_replica_running_reminders(&first).await;
    let replica = replica_a_day_later(&database_of(&first)).await;
    // At start the replica leaves the live run's lease alone and finds the job held:
    // nothing runs while the other run goes on.
    let reminded = || replica.count("SELECT COUNT(*) FROM events WHERE action = 'reminded'");
    assert_eq!(reminded().await, 0);
    let leased = || replica.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND running_since IS NOT NULL");
    assert_eq!(leased().await, 1, "the live run's lease is kept");
    // The other replica dies: its connection closes, and with it the lock.
    drop(running);
    within(Duration::from_secs(15), "the run taken over", || async {
        replica.count("SELECT COUNT(*) FROM jobs WHERE name = 'reminders' AND last_outcome LIKE '提醒%'").await == 1
    })
    .await;
    assert_eq!(reminded().await, 1, "the fire time ran once");
    assert_eq!(leased().await, 0, "the dead run's lease was taken over and released");
}

#[tokio::test]
async fn one_replica_delivers_the_outbox_and_another_takes_over_when_it_stops() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::spawn().await;
    eventually("the first replica to deliver", || held_elsewhere(&first, "leadboard:outbox")).await;
    let second = TestApp::builder().replica_on(&database_of(&first)).spawn().await;
    first.say("zhangwei", "C类 公司=云帆 联系人=王").await;
    eventually("the card delivered", || async { pending(&second).await == 0 }).await;
    assert_eq!(received(&[&first.mock], "template_card", "cs_lead").await.len(), 1, "the deliverer sent it");
    assert!(received(&[&second.mock], "template_card", "cs_lead").await.is_empty(), "the other did not");
    let _ = first.stop().await;
    second.say("zhangwei", "C类 公司=星河 联系人=李").await;
    within(Duration::from_secs(10), "the second replica to deliver", || async { pending(&second).await == 0 }).await;
    assert_eq!(received(&[&second.mock], "template_card", "cs_lead").await.len(), 1, "the replica left sent it");
}

/// Answers gettoken on `mock` with `token`, ahead of the defaults.
async fn hands_out(mock: &MockServer, token: &str) {
    use wiremock::matchers::{method, path};
    let body = serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200});
    let answer = wiremock::ResponseTemplate::new(200).set_body_json(body);
    wiremock::Mock::given(method("GET")).and(path("/cgi-bin/gettoken")).respond_with(answer).mount(mock).await;
}

/// Answers every POST carrying `token` with 40014 (invalid access token), ahead of the
/// defaults.
async fn rejects(mock: &MockServer, token: &str) {
    use wiremock::matchers::{method, query_param};
    let body = serde_json::json!({"errcode": 40014, "errmsg": "invalid access_token"});
    let answer = wiremock::ResponseTemplate::new(200).set_body_json(body);
    let rejecting = wiremock::Mock::given(method("POST")).and(query_param("access_token", token));
    rejecting.respond_with(answer).with_priority(1).mount(mock).await;
}

async fn token_fetches(mock: &MockServer) -> usize {
    let requests = mock.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == "/cgi-bin/gettoken").count()
}

/// The access token of the latest call `mock` received.
async fn last_token(mock: &MockServer) -> String {
    let requests = mock.received_requests().await.unwrap_or_default();
    let last = requests.iter().rev().find(|r| r.method.as_str() == "POST").expect("a call");
    last.url.query_pairs().find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned()).unwrap_or_default()
}

async fn send(app: &TestApp) {
    let body = serde_json::json!({"touser": "zhangwei", "msgtype": "text", "agentid": 1, "text": {"content": "测试"}});
    app.state.client.post("message/send", &body).await.expect("sent");
}

#[tokio::test]
async fn replicas_share_one_access_token_and_one_refresh_when_wecom_rejects_it() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::builder().configure().await;
    hands_out(&first.mock, "TOKEN-A").await;
    let first = first.spawn().await;
    let second = TestApp::builder().replica_on(&database_of(&first)).configure().await;
    hands_out(&second.mock, "TOKEN-B").await;
    let second = second.spawn().await;

    send(&first).await;
    send(&second).await;
    assert_eq!((token_fetches(&first.mock).await, token_fetches(&second.mock).await), (1, 0));
    assert_eq!(last_token(&second.mock).await, "TOKEN-A", "the second replica took the first's token");

    // WeCom ends the token early: the replica told so fetches one new token, and the
    // other, told so too, takes that one instead of fetching its own.
    rejects(&second.mock, "TOKEN-A").await;
    rejects(&first.mock, "TOKEN-A").await;
    send(&second).await;
    send(&first).await;
    assert_eq!((token_fetches(&first.mock).await, token_fetches(&second.mock).await), (1, 1));
    assert_eq!(last_token(&first.mock).await, "TOKEN-B");
}

#[tokio::test]
async fn an_expired_token_is_fetched_once_however_many_replicas_and_calls_need_it() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::spawn().await;
    let url = database_of(&first);
    let mut replicas = vec![first];
    for _ in 0..2 {
        replicas.push(TestApp::builder().replica_on(&url).spawn().await);
    }
    send(&replicas[0]).await;
    // Two hours later every replica's token is due, and each has ten calls to make.
    for replica in &replicas {
        replica.advance(chrono::Duration::hours(2));
    }
    let before: usize = futures::future::join_all(replicas.iter().map(|r| token_fetches(&r.mock))).await.iter().sum();
    let calls = replicas.iter().flat_map(|r| (0..10).map(move |_| send(r)));
    futures::future::join_all(calls).await;
    let after: usize = futures::future::join_all(replicas.iter().map(|r| token_fetches(&r.mock))).await.iter().sum();
    assert_eq!((before, after), (1, 2), "one fetch for the expiry, not one per replica or call");
}
