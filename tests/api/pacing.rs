//! WeCom's limits (SPEC section 15): no member gets more than 30 app messages in any 60
//! seconds or 1,000 in any hour, a rush of cards becomes digests, every record stays
//! decidable, and the budget survives a restart.

use crate::helpers::{TestApp, eventually, metric, within};
use leadboard::store::outbox;
use leadboard::store::sql;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, Request, ResponseTemplate};

/// Every app message the mock received: (the service's clock at receipt in ms, the
/// members it counts against, the body).
type Received = Arc<Mutex<Vec<(i64, Vec<String>, Value)>>>;

/// Records every `message/send` and `update_template_card` with the service's time.
async fn record_app_messages(app: &TestApp) -> Received {
    let received: Received = Arc::default();
    let (log, clock) = (received.clone(), app.clock.clone());
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Mock::given(method("POST"))
        .and(path_regex("^/cgi-bin/message/(send|update_template_card)$"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let members: Vec<String> = match body["touser"].as_str() {
                Some(to) => to.split('|').map(str::to_owned).collect(),
                None => body["userids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect(),
            };
            log.lock().unwrap().push((clock.now_ms(), members, body));
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(
                json!({"errcode": 0, "errmsg": "ok", "msgid": format!("M{n}"), "response_code": format!("R{n}")}),
            )
        })
        .with_priority(1)
        .mount(&app.mock)
        .await;
    received
}

/// The receipt times per member.
fn times_per_member(received: &Received) -> BTreeMap<String, Vec<i64>> {
    let mut per: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (at, members, _) in received.lock().unwrap().iter() {
        for m in members {
            per.entry(m.clone()).or_default().push(*at);
        }
    }
    per.values_mut().for_each(|t| t.sort_unstable());
    per
}

/// The most messages any member got within `window_ms`.
fn most_in_window(times: &[i64], window_ms: i64) -> usize {
    let mut start = 0;
    let mut most = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window_ms {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

/// Record numbers named by the cards and digests a member got.
fn records_reaching(received: &Received, member: &str) -> BTreeSet<i64> {
    let number = |text: &str| -> Vec<i64> {
        text.split('#').skip(1).filter_map(|t| t.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()).collect()
    };
    let mut found = BTreeSet::new();
    for (_, _, body) in received.lock().unwrap().iter().filter(|(_, m, _)| m.iter().any(|m| m == member)) {
        if let Some(title) = body["template_card"]["main_title"]["title"].as_str() {
            found.extend(number(title));
        }
        if let Some(text) = body["text"]["content"].as_str().filter(|t| t.contains("待处理汇总") || t.starts_with('#'))
        {
            found.extend(number(text));
        }
    }
    found
}

/// Report `n` distinct C-class leads as different employees, `step_ms` of service time
/// apart.
async fn rush(app: &TestApp, n: usize, step: chrono::Duration) {
    let reporters = ["zhangwei", "sunli", "lina", "qianjing", "zhengqiang"];
    for i in 0..n {
        let reply = app
            .say(reporters[i % reporters.len()], &format!("C类 公司=客户{i:04}号甲乙丙 联系人=联系人{i:04}"))
            .await
            .expect("a passive reply");
        assert!(reply.contains("已登记"), "report {i}: {reply}");
        app.advance(step);
    }
}

/// Moves the service's time on until the outbox is empty.
async fn run_until_delivered(app: &TestApp, step: chrono::Duration) {
    for _ in 0..2_000 {
        let (pending, failed) = outbox::depth(&app.state.db).await.unwrap();
        assert_eq!(failed, 0, "nothing is given up");
        if pending == 0 && app.state.outbox.delivering().is_empty() {
            return;
        }
        app.advance(step);
        app.state.outbox_wake.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the outbox did not empty");
}

#[tokio::test]
async fn five_hundred_reports_in_a_minute_stay_within_every_confirmers_budget_and_all_reach_them() {
    let app = TestApp::spawn().await;
    let received = record_app_messages(&app).await;
    rush(&app, 500, chrono::Duration::milliseconds(110)).await;
    run_until_delivered(&app, chrono::Duration::seconds(2)).await;

    let per = times_per_member(&received);
    for (member, times) in &per {
        assert!(most_in_window(times, 60_000) <= 30, "{member}: {} in a minute", most_in_window(times, 60_000));
        assert!(most_in_window(times, 3_600_000) <= 1000, "{member}: over 1000 in an hour");
    }
    let records: BTreeSet<i64> = sql::query_scalar::<i64>("SELECT id FROM records")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(records.len(), 500);
    for confirmer in ["cs_lead", "cs_lead2"] {
        assert_eq!(records_reaching(&received, confirmer), records, "every report reaches {confirmer}");
        assert!(per[confirmer].len() < 500, "{confirmer} got digests, not 500 cards");
    }
    let merged = app.count("SELECT COUNT(*) FROM outbox WHERE status = 'merged'").await;
    assert!(merged > 400, "most cards were merged: {merged}");
    assert_eq!(metric(&app.metrics().await, "leadboard_outbox_merged_cards_total"), merged as f64);
    // A merged card's record is closed in `cards` (no update of a card never sent).
    let open_merged = app
        .count(
            "SELECT COUNT(*) FROM cards c JOIN outbox o ON o.ref = 'card:' || c.task_id
             WHERE o.status = 'merged' AND (c.closed_at IS NULL OR c.outcome != '已合并到汇总消息')",
        )
        .await;
    assert_eq!(open_merged, 0);
}

#[tokio::test]
async fn a_record_in_a_digest_is_decided_in_chat_without_updating_a_card_never_sent() {
    let app = TestApp::spawn().await;
    let received = record_app_messages(&app).await;
    // 30 cards use the minute; 40 more wait, more than the next minute's room.
    rush(&app, 70, chrono::Duration::milliseconds(50)).await;
    run_until_delivered(&app, chrono::Duration::seconds(2)).await;
    let digests: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, _, b)| b["text"]["content"].as_str().filter(|t| t.contains("待处理汇总")).map(str::to_owned))
        .collect();
    assert!(!digests.is_empty(), "a digest was sent");
    let digest = &digests.join("\n");
    assert!(digest.contains("确认 编号") && digest.contains("待办"), "how to decide: {digest}");
    assert!(digests.iter().all(|d| d.len() <= 2048));
    // The newest record the digests list (when the outbox looked at its queue during the
    // rush, the records after that look may have gone as cards once the budget allowed).
    let last: i64 = digest
        .split('#')
        .skip(1)
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("the digest lists records: {digest}"));

    let reply = app.say("cs_lead", &format!("确认 {last}")).await.unwrap();
    assert!(reply.contains("已确认"), "{reply}");
    let before = received.lock().unwrap().len();
    run_until_delivered(&app, chrono::Duration::seconds(2)).await;
    let after: Vec<Value> = received.lock().unwrap()[before..].iter().map(|(_, _, b)| b.clone()).collect();
    assert!(after.iter().all(|b| b["response_code"].is_null()), "no update of a card that was never sent: {after:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'").await, 0);
}

#[tokio::test]
async fn a_few_cards_go_one_by_one_and_no_digest_is_sent() {
    let app = TestApp::spawn().await;
    let received = record_app_messages(&app).await;
    rush(&app, 5, chrono::Duration::milliseconds(10)).await;
    run_until_delivered(&app, chrono::Duration::seconds(1)).await;
    let cards = received.lock().unwrap().iter().filter(|(_, _, b)| b["msgtype"] == "template_card").count();
    assert_eq!(cards, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE status = 'merged'").await, 0);
}

/// Queues `n` texts to `user`, as one transaction.
async fn queue_texts(app: &TestApp, users: &[&str], tag: &str) {
    let mut tx = app.state.db.begin().await.unwrap();
    for (i, user) in users.iter().enumerate() {
        for m in leadboard::wecom::message::text(1000002, &[user], &format!("{tag}{i}")) {
            outbox::enqueue(&mut tx, app.state.clock.now_ms(), &m).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    app.state.outbox_wake.notify_one();
}

async fn delivered(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'").await
}

#[tokio::test]
async fn the_budget_used_before_a_restart_still_counts_after_it() {
    let app = TestApp::spawn().await;
    queue_texts(&app, &["lina"; 30], "重启前").await;
    eventually("30 delivered", || async { delivered(&app).await == 30 }).await;
    let stopped = app.stop().await;

    let app = TestApp::builder().restart_of(stopped).spawn().await;
    queue_texts(&app, &["lina"], "重启后").await;
    let step = app.state.outbox_worker().step().await.unwrap();
    assert!(
        matches!(step, leadboard::outbox::Step::Idle(Some(at)) if at > app.state.clock.now_ms()),
        "the 31st message in the minute waits: {step:?}"
    );
    app.advance(chrono::Duration::seconds(61));
    app.state.outbox_wake.notify_one();
    eventually("delivered once the minute is over", || async { delivered(&app).await == 31 }).await;
}

#[tokio::test]
async fn messages_to_different_members_go_out_at_once_and_one_members_in_order() {
    let app = TestApp::spawn().await;
    // WeCom answers slowly: what is sent while nothing has been answered went out at once.
    Mock::given(method("POST"))
        .and(path_regex("^/cgi-bin/message/send$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(1500))
                .set_body_json(json!({"errcode": 0, "errmsg": "ok"})),
        )
        .with_priority(1)
        .mount(&app.mock)
        .await;
    queue_texts(&app, &["zhangwei", "lina", "sunli", "qianjing", "lina"], "你好").await;
    eventually("four members' messages under way together", || async {
        app.api_calls("message/send").await.len() == 4
    })
    .await;
    let to: Vec<String> =
        app.api_calls("message/send").await.iter().map(|m| m["touser"].as_str().unwrap().to_owned()).collect();
    assert_eq!(to.iter().filter(|u| *u == "lina").count(), 1, "lina's second waits for her first: {to:?}");
    within(Duration::from_secs(15), "all five delivered", || async { delivered(&app).await == 5 }).await;
}
