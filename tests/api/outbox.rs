//! The outbox: every outbound message is delivered once, through token expiry, busy
//! and rate-limit answers and restarts; permanent errors are given up visibly.

use crate::helpers::{TestApp, eventually, metric, mount_defaults};
use leadboard::outbox::Step;
use leadboard::store::outbox::{self, Api, NewMessage};
use leadboard::store::sql;
use leadboard::wecom::message;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

/// Queues a text message to `user` as a command would, inside a write transaction.
async fn queue_text(app: &TestApp, user: &str, text: &str) {
    let mut tx = app.state.db.begin().await.unwrap();
    for m in message::text(app.state.settings().wecom.agent_id, &[user], text) {
        outbox::enqueue(&mut tx, app.state.clock.now_ms(), &m).await.unwrap();
    }
    tx.commit().await.unwrap();
    app.state.outbox_wake.notify_one();
}

async fn fail_sends(app: &TestApp, errcode: i64, times: u64) {
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/send"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errcode": errcode, "errmsg": "mock error"})))
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&app.mock)
        .await;
}

/// WeCom refuses gettoken with `errcode` until the secret is fixed (the flag is set).
async fn refuse_gettoken(app: &TestApp, errcode: i64) -> Arc<AtomicBool> {
    let fixed = Arc::new(AtomicBool::new(false));
    let answer = fixed.clone();
    Mock::given(method("GET"))
        .and(path("/cgi-bin/gettoken"))
        .respond_with(move |_: &wiremock::Request| {
            let body = if answer.load(Ordering::SeqCst) {
                json!({"errcode": 0, "errmsg": "ok", "access_token": "TOKEN-1", "expires_in": 7200})
            } else {
                json!({"errcode": errcode, "errmsg": "invalid credential"})
            };
            ResponseTemplate::new(200).set_body_json(body)
        })
        .with_priority(1)
        .mount(&app.mock)
        .await;
    fixed
}

/// The access tokens WeCom received on `api`, in order.
async fn tokens_used(app: &TestApp, api: &str) -> Vec<String> {
    let wanted = format!("/cgi-bin/{api}");
    let requests = app.mock.received_requests().await.unwrap_or_default();
    let calls = requests.iter().filter(|r| r.url.path() == wanted);
    calls.filter_map(|r| r.url.query_pairs().find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned())).collect()
}

async fn attempted(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE attempts > 0").await
}

async fn delivered(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'").await
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_message_delivered() {
    let app = TestApp::spawn().await;
    fail_sends(&app, 42001, 1).await;
    queue_text(&app, "zhangwei", "你好").await;
    eventually("delivery", || async { delivered(&app).await == 1 }).await;

    assert_eq!(app.api_calls("gettoken").await.len(), 2, "one initial fetch, one refresh");
    let sends = app.api_calls("message/send").await;
    assert_eq!(sends.len(), 2, "the rejected attempt and its retry");
    assert_eq!(sends[1]["text"]["content"], "你好");
    assert_eq!(sends[1]["touser"], "zhangwei");
    for send in &sends {
        assert_eq!(
            (&send["enable_duplicate_check"], &send["duplicate_check_interval"]),
            (&json!(1), &json!(1800)),
            "WeCom drops a repeat of the same message: {send}"
        );
    }
    assert_eq!(metric(&app.metrics().await, "leadboard_wecom_token_refreshes_total"), 2.0);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let app = TestApp::spawn().await;
    let client = app.state.client.clone();
    let body = json!({"touser": "zhangwei"});
    let calls = (0..10).map(|_| client.post("message/send", &body));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(app.api_calls("gettoken").await.len(), 1);
}

#[tokio::test]
async fn busy_and_rate_limited_answers_are_retried_until_delivered_once() {
    let app = TestApp::spawn().await;
    fail_sends(&app, -1, 2).await;
    queue_text(&app, "zhangwei", "第一条").await;
    eventually("first delivery", || async { delivered(&app).await == 1 }).await;
    fail_sends(&app, 45009, 3).await;
    queue_text(&app, "zhangwei", "第二条").await;
    eventually("second delivery", || async { delivered(&app).await == 2 }).await;

    let sends = app.api_calls("message/send").await;
    assert_eq!(sends.len(), 2 + 1 + 3 + 1);
    let attempts: Vec<i64> =
        sql::query_scalar("SELECT attempts FROM outbox ORDER BY id").fetch_all(app.state.db.reader()).await.unwrap();
    assert_eq!(attempts, vec![3, 4]);
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"leadboard_outbox_delivery_failures_total{api="message/send",kind="retry"}"#), 5.0);
    assert_eq!(metric(&metrics, "leadboard_outbox_pending"), 0.0);
}

#[tokio::test]
async fn an_untrusted_ip_is_retried_until_the_ip_is_added_and_then_delivered() {
    let app = TestApp::spawn().await;
    fail_sends(&app, 60020, 2).await;
    queue_text(&app, "zhangwei", "可信IP").await;
    eventually("delivery", || async { delivered(&app).await == 1 }).await;

    assert_eq!(app.api_calls("message/send").await.len(), 3, "two refusals, then the delivery");
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"leadboard_outbox_delivery_failures_total{api="message/send",kind="retry"}"#), 2.0);
}

#[tokio::test]
async fn a_permanent_error_is_given_up_and_visible() {
    let app = TestApp::spawn().await;
    fail_sends(&app, 81013, 1).await;
    queue_text(&app, "nobody", "你好").await;
    // The failure is counted after it is recorded: wait for the count, then both hold.
    let permanent = r#"leadboard_outbox_delivery_failures_total{api="message/send",kind="permanent"}"#;
    eventually("give up", || async { metric(&app.metrics().await, permanent) == 1.0 }).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'").await, 1);
    let error: String =
        sql::query_scalar("SELECT last_error FROM outbox").fetch_one(app.state.db.reader()).await.unwrap();
    assert!(error.contains("81013"), "{error}");
    assert_eq!(app.api_calls("message/send").await.len(), 1, "not retried");
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "leadboard_outbox_failed"), 1.0);
    assert_eq!(
        metric(&metrics, r#"leadboard_outbox_delivery_failures_total{api="message/send",kind="permanent"}"#),
        1.0
    );
}

#[tokio::test]
async fn undelivered_messages_survive_a_restart_and_are_delivered_once() {
    let app = TestApp::spawn().await;
    // WeCom is down: every send fails for now.
    fail_sends(&app, -1, 1_000).await;
    queue_text(&app, "zhangwei", "重启前").await;
    eventually("a failed attempt", || async { !app.api_calls("message/send").await.is_empty() }).await;
    let stopped = app.stop().await;
    // WeCom is back.
    stopped.mock.reset().await;
    mount_defaults(&stopped.mock).await;
    let app = TestApp::builder().restart_of(stopped).spawn().await;
    eventually("delivery after restart", || async { delivered(&app).await == 1 }).await;
    let sends = app.api_calls("message/send").await;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0]["text"]["content"], "重启前");
}

#[tokio::test]
async fn long_text_is_split_within_the_limit_and_nothing_is_lost() {
    let app = TestApp::spawn().await;
    let text = (1..=200).map(|i| format!("第{i}名 杭州云帆科技有限公司")).collect::<Vec<_>>().join("\n");
    queue_text(&app, "zhangwei", &text).await;
    let parts = message::split_utf8(&text, message::APP_TEXT_LIMIT).len();
    assert!(parts > 1);
    eventually("all parts delivered", || async { delivered(&app).await == parts as i64 }).await;
    let sent: Vec<String> =
        app.api_calls("message/send").await.iter().map(|b| b["text"]["content"].as_str().unwrap().to_owned()).collect();
    assert!(sent.iter().all(|p| p.len() <= 2048));
    assert_eq!(sent.join("\n"), text);
}

#[tokio::test]
async fn outbox_entries_keep_wecoms_response_for_later_steps() {
    let app = TestApp::spawn().await;
    let mut tx = app.state.db.begin().await.unwrap();
    let card =
        message::template_card(1000002, &["cs_lead"], json!({"card_type": "button_interaction"}), "card:7".into());
    outbox::enqueue(&mut tx, app.state.clock.now_ms(), &card).await.unwrap();
    tx.commit().await.unwrap();
    app.state.outbox_wake.notify_one();
    eventually("delivery", || async { delivered(&app).await == 1 }).await;
    let (status, response) = outbox::referenced(&app.state.db, "card:7").await.unwrap().expect("stored");
    assert_eq!(status, outbox::Status::Delivered);
    assert!(response.unwrap()["response_code"].as_str().unwrap().starts_with("RC"));
}

#[tokio::test]
async fn a_refused_gettoken_is_not_asked_again_during_the_cool_down() {
    let app = TestApp::spawn().await;
    let secret_fixed = refuse_gettoken(&app, 40001).await;
    // To three people: one person's messages go in order, so they would wait in line.
    for (i, user) in ["zhangwei", "lina", "sunli"].into_iter().enumerate() {
        queue_text(&app, user, &format!("第{}条", i + 1)).await;
    }
    eventually("every message tried", || async { attempted(&app).await == 3 }).await;
    assert_eq!(app.api_calls("gettoken").await.len(), 1, "one refusal, remembered for every message");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").await, 3, "the messages wait");

    // Half-way through the cool-down nothing is asked; the messages are not due yet.
    app.advance(chrono::Duration::seconds(30));
    let step = app.state.outbox_worker().step().await.unwrap();
    assert!(matches!(step, Step::Idle(Some(at)) if at > app.state.clock.now_ms()), "{step:?}");
    assert_eq!(app.api_calls("gettoken").await.len(), 1);

    // The operator fixes the secret; after the cool-down one fetch serves every message.
    secret_fixed.store(true, Ordering::SeqCst);
    app.advance(chrono::Duration::seconds(31));
    app.state.outbox_wake.notify_one();
    eventually("delivery after the cool-down", || async { delivered(&app).await == 3 }).await;
    assert_eq!(app.api_calls("gettoken").await.len(), 2);
    assert_eq!(metric(&app.metrics().await, "leadboard_wecom_token_refreshes_total"), 1.0, "refusals are not fetches");
}

#[tokio::test]
async fn a_file_upload_with_a_rejected_token_gets_a_new_token_once() {
    let app = TestApp::spawn().await;
    // WeCom invalidated the first token early: media/upload refuses it, the next one works.
    let token = |value: &str| {
        ResponseTemplate::new(200).set_body_json(json!({"errcode": 0, "access_token": value, "expires_in": 7200}))
    };
    Mock::given(path("/cgi-bin/gettoken"))
        .respond_with(token("OLD"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.mock)
        .await;
    Mock::given(path("/cgi-bin/gettoken")).respond_with(token("NEW")).with_priority(2).mount(&app.mock).await;
    Mock::given(path("/cgi-bin/media/upload"))
        .and(query_param("access_token", "OLD"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"errcode": 40014, "errmsg": "invalid access_token"})),
        )
        .with_priority(1)
        .mount(&app.mock)
        .await;
    let payload = json!({"touser": "lina", "agentid": 1000002, "file_name": "结算.xlsx", "content_base64": "UEsDBBQ="});
    let file = NewMessage { api: Api::FileSend, target: None, payload, reference: None, digest: None };
    let mut tx = app.state.db.begin().await.unwrap();
    outbox::enqueue(&mut tx, app.state.clock.now_ms(), &file).await.unwrap();
    tx.commit().await.unwrap();
    app.state.outbox_wake.notify_one();

    eventually("delivery", || async { delivered(&app).await == 1 }).await;
    assert_eq!(tokens_used(&app, "media/upload").await, ["OLD", "NEW"], "refreshed once, retried once");
    assert_eq!(tokens_used(&app, "message/send").await, ["NEW"]);
    assert_eq!(app.count("SELECT attempts FROM outbox").await, 1, "within one delivery attempt");
    let sends = app.api_calls("message/send").await;
    assert_eq!((sends[0]["msgtype"].as_str(), sends[0]["touser"].as_str()), (Some("file"), Some("lina")));
    assert_eq!(sends[0]["enable_duplicate_check"], 1, "{}", sends[0]);
}

/// A card update whose first attempt reached WeCom but whose answer was lost (here, a
/// timeout) is sent again; WeCom refuses the used response code with 60140, and the
/// update counts as delivered, not given up.
#[tokio::test]
async fn a_card_update_repeated_after_a_lost_answer_is_delivered_not_given_up() {
    let app = TestApp::spawn().await;
    let update = |errcode: i64| ResponseTemplate::new(200).set_body_json(json!({"errcode": errcode, "errmsg": "mock"}));
    // The first attempt: WeCom applies it, but answers after the client's 2 s timeout.
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/update_template_card"))
        .respond_with(update(0).set_delay(std::time::Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/update_template_card"))
        .respond_with(update(60140))
        .with_priority(2)
        .mount(&app.mock)
        .await;
    let payload = json!({"userids": ["cs_lead"], "agentid": 1000002, "response_code": "RC1", "button": {"replace_name": "已确认"}});
    let mut tx = app.state.db.begin().await.unwrap();
    let msg = NewMessage { api: Api::UpdateTemplateCard, target: None, payload, reference: None, digest: None };
    outbox::enqueue(&mut tx, app.state.clock.now_ms(), &msg).await.unwrap();
    tx.commit().await.unwrap();
    app.state.outbox_wake.notify_one();
    crate::helpers::within(std::time::Duration::from_secs(15), "the update delivered", || async {
        delivered(&app).await == 1
    })
    .await;
    assert_eq!(app.api_calls("message/update_template_card").await.len(), 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'").await, 0);
}

#[tokio::test]
async fn a_card_update_queued_beside_its_cards_merge_is_closed_with_it_and_never_sent() {
    let app = TestApp::spawn().await;
    // A card merged into a digest, and an update of it queued by a change that committed
    // beside the merge (it read the card as open): on PostgreSQL writers run side by side.
    let now = app.state.clock.now_ms();
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query(
        "INSERT INTO outbox (created_at, api, payload, ref, status, next_attempt_at, lanes)
         VALUES (?, 'message/send', '{}', 'card:lb-merged', 'merged', ?, 'u:cs_lead')",
    )
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await
    .unwrap();
    let update = json!({"response_code_ref": "card:lb-merged", "button": {"replace_name": "已确认"}}).to_string();
    let id: i64 = sql::query_scalar(
        "INSERT INTO outbox (created_at, api, payload, next_attempt_at, lanes)
         VALUES (?, 'message/update_template_card', ?, ?, 'u:cs_lead') RETURNING id",
    )
    .bind(now)
    .bind(&update)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.state.outbox_wake.notify_one();
    let status = async || -> String {
        let status = sql::query_scalar("SELECT status FROM outbox WHERE id = ?").bind(id);
        status.fetch_one(app.state.db.reader()).await.unwrap()
    };
    eventually("the update closed", || async { status().await != "pending" }).await;
    assert_eq!(status().await, "merged", "closed with its card, not given up");
    assert!(app.api_calls("message/update_template_card").await.is_empty(), "nothing to update was sent");
}
