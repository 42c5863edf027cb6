//! Group commit (`exactly_once`): callbacks that arrive together share one write
//! transaction, each in its own savepoint; a failing one rolls back only its own work;
//! every callback is answered only after its batch commits, and exactly once.
//!
//! To make callbacks arrive "together" deterministically, a test holds the database's
//! write lock in a transaction of its own (`binary::WriteLock`): the writer task then
//! waits for it with the first callback, and the others queue behind; releasing it lets
//! the queued ones commit as one batch.

use crate::helpers::{Answer, TestApp, eventually, metric};
use futures::future::join_all;
use leadboard::store::sql;
use leadboard::wecom::peer::CallbackRequest;

/// Sends `blocker` while the test holds the writer, waits until the writer task has
/// taken it (it now waits for the connection), sends `rest` and waits until all of them
/// queue behind it, then releases the writer: `blocker` commits alone, `rest` together.
async fn post_together(app: &TestApp, blocker: &CallbackRequest, rest: &[CallbackRequest]) -> (Answer, Vec<Answer>) {
    let held = crate::binary::WriteLock::take(&app.database()).await;
    let commit = &app.state.group_commit;
    let first = app.post(blocker);
    let others = async {
        eventually("the writer takes the first callback", || async { commit.writing() == 1 }).await;
        let others = join_all(rest.iter().map(|r| app.post(r)));
        let release = async {
            eventually("the others queue behind it", || async { commit.queued() == rest.len() }).await;
            held.release().await;
        };
        tokio::join!(others, release).0
    };
    tokio::join!(first, others)
}

/// A trigger `name` that runs `sqlite` (SQLite's trigger body) or `plpgsql`
/// (PostgreSQL's) `timing` (BEFORE or AFTER) an inbox row of sunli's is inserted.
async fn on_sunlis_inbox_row(app: &TestApp, name: &str, timing: &str, sqlite: &str, plpgsql: &str) {
    let statements = if app.state.settings().is_postgres() {
        vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.from_user = 'sunli' THEN {plpgsql} END IF; RETURN NEW; END $$"
            ),
            format!("CREATE TRIGGER {name} {timing} INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION {name}()"),
        ]
    } else {
        vec![format!("CREATE TRIGGER {name} {timing} INSERT ON inbox WHEN NEW.from_user = 'sunli' BEGIN {sqlite} END")]
    };
    let mut tx = app.state.db.begin().await.unwrap();
    for statement in statements {
        sql::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn drop_trigger(app: &TestApp, name: &str) {
    let on = if app.state.settings().is_postgres() { " ON inbox" } else { "" };
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {name}{on}"))).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

fn reports(app: &TestApp, who: &[&str]) -> Vec<CallbackRequest> {
    who.iter()
        .enumerate()
        .map(|(n, from)| app.text_request(from, &format!("C类 公司=批量测试{n}号科技有限公司 联系人=王经理")))
        .collect()
}

async fn batches(app: &TestApp) -> (f64, f64) {
    let text = app.metrics().await;
    (metric(&text, "leadboard_callback_batch_size_count"), metric(&text, "leadboard_callback_batch_size_sum"))
}

#[tokio::test]
async fn callbacks_arriving_together_share_one_batch_and_are_answered_after_its_commit() {
    let app = TestApp::spawn().await;
    assert!(app.say("zhangwei", "我的").await.is_some());
    assert_eq!(batches(&app).await, (1.0, 1.0), "a lone callback is a batch of one");

    let blocker = app.text_request("sunli", "我的");
    let requests = reports(&app, &["zhangwei", "sunli", "zhangwei", "sunli", "zhangwei", "sunli", "zhangwei", "sunli"]);
    let (first, answers) = post_together(&app, &blocker, &requests).await;
    assert_eq!(first.status, 200);
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(app.open(answer).expect("a reply").contains("已登记"), "{answer:?}");
        // Answered, so committed: a reader outside the writer sees it.
        let company = format!("批量测试{n}号科技有限公司");
        let stored: i64 = sql::query_scalar("SELECT COUNT(*) FROM records WHERE fields LIKE '%' || ? || '%'")
            .bind(&company)
            .fetch_one(app.state.db.reader())
            .await
            .unwrap();
        assert_eq!(stored, 1, "{company}");
    }
    // The lone one, the blocker alone, then the eight together.
    assert_eq!(batches(&app).await, (3.0, 10.0));
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 10);
}

#[tokio::test]
async fn a_failing_callback_in_a_batch_rolls_back_only_its_own_work() {
    let app = TestApp::spawn().await;
    // Any statement error inside one callback's work (here its inbox row, after its
    // record, event and card were written) fails that callback alone.
    on_sunlis_inbox_row(
        &app,
        "test_refuse_sunli",
        "BEFORE",
        "SELECT RAISE(ABORT, 'refused by the test');",
        "RAISE EXCEPTION 'refused by the test';",
    )
    .await;

    let blocker = app.text_request("zhangwei", "我的");
    let requests = reports(&app, &["zhangwei", "sunli", "zhangwei"]);
    let (first, answers) = post_together(&app, &blocker, &requests).await;
    assert_eq!(first.status, 200);
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 500, 200]);
    assert_eq!(batches(&app).await, (2.0, 4.0), "the three shared a batch");
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE reporter = 'sunli'").await, 0, "its record rolled back");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE actor = 'sunli'").await, 0, "and its event");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 3);
    let outbox = app.count("SELECT COUNT(*) FROM outbox").await;
    assert!(outbox > 0, "the two that went through queued their cards");

    // WeCom retries the refused one; now it goes through, once.
    drop_trigger(&app, "test_refuse_sunli").await;
    let mut replies = Vec::new();
    for _ in 0..2 {
        let answer = app.post(&requests[1]).await;
        assert_eq!(answer.status, 200);
        replies.push(app.open(&answer).expect("a reply"));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE reporter = 'sunli'").await, 1);
    // #3 on SQLite; on PostgreSQL the refused attempt used up a number (sequences do not
    // roll back).
    let id = app.count("SELECT id FROM records WHERE reporter = 'sunli'").await;
    assert!(replies.iter().all(|r| r.contains(&format!("已登记 #{id}"))), "{replies:?}");
    assert!(app.count("SELECT COUNT(*) FROM outbox").await > outbox);
}

#[tokio::test]
async fn a_batch_whose_commit_fails_answers_none_of_its_callbacks_and_keeps_nothing() {
    let app = TestApp::spawn().await;
    // A deferred foreign key fails at COMMIT, after every callback of the batch ran.
    let mut tx = app.state.db.begin().await.unwrap();
    for sql in [
        "CREATE TABLE test_gate_parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE test_gate (parent INTEGER REFERENCES test_gate_parent (id) DEFERRABLE INITIALLY DEFERRED)",
    ] {
        sql::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let insert = "INSERT INTO test_gate (parent) VALUES (1);";
    on_sunlis_inbox_row(&app, "test_gate_sunli", "AFTER", insert, insert).await;

    let blocker = app.text_request("zhangwei", "C类 公司=先到科技有限公司 联系人=王经理");
    let requests = reports(&app, &["zhangwei", "sunli", "zhangwei"]);
    let (first, answers) = post_together(&app, &blocker, &requests).await;
    assert_eq!(first.status, 200, "the blocker committed alone");
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [500, 500, 500]);
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);

    drop_trigger(&app, "test_gate_sunli").await;
    // WeCom's retries: each processed now, once.
    for request in requests.iter().chain(&requests) {
        let answer = app.post(request).await;
        assert_eq!(answer.status, 200);
        assert!(app.open(&answer).expect("a reply").contains("已登记"));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 4);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 4);
}

#[tokio::test]
async fn retries_inside_one_batch_are_processed_exactly_once() {
    let app = TestApp::spawn().await;
    let blocker = app.text_request("zhangwei", "我的");
    let report = app.text_request("zhangwei", "C类 公司=重试测试科技有限公司 联系人=王经理");
    let other = app.text_request("sunli", "我的");
    let requests = [other.clone(), report.clone(), report.clone(), other, report.clone(), report];
    let (_, answers) = post_together(&app, &blocker, &requests).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let replies: Vec<String> = answers.iter().map(|a| app.open(a).expect("a reply")).collect();
    let reports: Vec<&String> = [1, 2, 4, 5].iter().map(|&i| &replies[i]).collect();
    assert!(reports.iter().filter(|r| r.contains("已登记 #1")).count() == 4, "{reports:?}");
    assert!(reports.iter().all(|r| *r == reports[0]), "every retry gets the first answer");
    assert_eq!(replies[0], replies[3]);
    assert_eq!(batches(&app).await, (2.0, 7.0));
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 3);
    assert_eq!(metric(&app.metrics().await, "leadboard_duplicates_total"), 4.0);
}

#[tokio::test]
async fn on_postgresql_a_callback_whose_key_another_replica_holds_fails_alone() {
    if crate::helpers::postgres_or_skip("replicas' locks on callback keys").is_none() {
        return;
    }
    // Long enough for `post_together`'s hold on the tables, short for a test to wait.
    let app = TestApp::builder().busy_timeout_ms(2000).spawn().await;
    let requests = reports(&app, &["zhangwei", "sunli", "zhangwei"]);
    // Another replica is in the middle of sunli's callback: it holds the key's lock
    // for longer than this one waits for a lock.
    let key = sunlis_key(&app, &requests[1]);
    let mut other = crate::binary::connect(&app.database(), false).await;
    let crate::binary::TestConn::Postgres(ref mut held) = other else { unreachable!() };
    sql::query("SELECT pg_advisory_lock(hashtextextended(?, 0))").bind(key.as_str()).execute(&mut *held).await.unwrap();

    let blocker = app.text_request("zhangwei", "我的");
    let (first, answers) = post_together(&app, &blocker, &requests).await;
    assert_eq!(first.status, 200);
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 500, 200], "only the locked one fails");
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 3);

    drop(other);
    assert_eq!(app.post(&requests[1]).await.status, 200, "WeCom's retry goes through");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE reporter = 'sunli'").await, 1);
}

/// The inbox key of `request` (a text message: its MsgId).
fn sunlis_key(app: &TestApp, request: &CallbackRequest) -> String {
    let encrypted = leadboard::wecom::xml::parse_envelope(&request.body).expect("an envelope");
    let plain = app.peer.crypto.decrypt(&encrypted).expect("decrypts");
    let msg_id = plain.split("<MsgId>").nth(1).and_then(|rest| rest.split("</MsgId>").next()).expect("a MsgId");
    format!("msg:{msg_id}")
}

/// On SQLite the writer's own connection and the service's other writes (jobs, the
/// console) take turns: a callback that arrives while another write of the service is
/// open waits for its turn, even far past the busy timeout, instead of failing in
/// SQLite's busy handler (and the other write is not starved by callbacks).
#[tokio::test]
async fn a_callback_waits_its_turn_behind_another_write_of_the_service_past_the_busy_timeout() {
    let app = TestApp::builder().sqlite().busy_timeout_ms(50).spawn().await;
    let held = app.state.db.begin().await.unwrap();
    let request = app.text_request("zhangwei", "我的");
    let release = async {
        eventually("the writer takes the callback", || async { app.state.group_commit.writing() == 1 }).await;
        // Four busy timeouts: SQLite's busy handler would have given up long before.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        held.commit().await.unwrap();
    };
    let (answer, ()) = tokio::join!(app.post(&request), release);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(app.open(&answer).expect("a reply").contains("张伟"), "{answer:?}");
}
