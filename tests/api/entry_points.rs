//! One operation, whatever the entry point: a typed command, a press on the card the
//! bot sent (for the report, for the day-3 job, for the cut-off job) leave the same
//! records, the same event-log rows and the same messages to everyone else; the actor
//! is answered in their channel (a passive reply to text, the updated card or a text
//! to a press).

use crate::helpers::TestApp;
use chrono::{Days, Duration};
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;
use serde_json::Value;

/// What an operation left behind, from a checkpoint on, in a comparable form.
#[derive(Debug, PartialEq)]
struct Trace {
    records: Vec<Value>,
    events: Vec<Value>,
    /// Outbox messages to anyone but the actor, with the per-card randomness and the
    /// card update's source of its response code (the press carries it, a typed
    /// command names the card's send) left out.
    messages: Vec<Value>,
}

/// Where a trace starts: the newest event and outbox message before the operation.
struct Checkpoint {
    event: i64,
    outbox: i64,
}

async fn checkpoint(app: &TestApp) -> Checkpoint {
    app.drain().await;
    Checkpoint {
        event: app.count("SELECT COALESCE(MAX(id), 0) FROM events").await,
        outbox: app.count("SELECT COALESCE(MAX(id), 0) FROM outbox").await,
    }
}

async fn json_rows(app: &TestApp, sql: &str, from: i64) -> Vec<Value> {
    let rows: Vec<(String,)> = sql::query_as(sqlx::AssertSqlSafe(crate::helpers::json_sql(app, sql)))
        .bind(from)
        .fetch_all(app.state.db.reader())
        .await
        .unwrap();
    rows.into_iter().map(|(text,)| serde_json::from_str(&normalise(&text)).unwrap()).collect()
}

/// Blanks the random part of task ids (`lb-confirm-1-0123456789abcdef`).
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("lb-") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(['"', '\\']).map_or(rest.len(), |e| at + e);
        let id = &rest[at..end];
        out.push_str(id.rsplit_once('-').map_or(id, |(head, _)| head));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

async fn trace(app: &TestApp, from: &Checkpoint, actor: &str) -> Trace {
    app.drain().await;
    let records = json_rows(
        app,
        "SELECT json_object('id', id, 'state', state, 'decided_by', decided_by, 'reason', reason, 'closer', closer,
             'counted', counted, 'base_for', base_for) FROM records WHERE id > ? ORDER BY id",
        0,
    )
    .await;
    let events = json_rows(
        app,
        "SELECT json_object('actor', actor, 'entity', entity, 'entity_id', entity_id, 'action', action,
             'old', old_value, 'new', new_value, 'reason', reason, 'data', data) FROM events WHERE id > ? ORDER BY id",
        from.event,
    )
    .await;
    let mut messages = json_rows(
        app,
        "SELECT json_object('api', api, 'ref', ref, 'payload', json(payload)) FROM outbox WHERE id > ? ORDER BY id",
        from.outbox,
    )
    .await;
    messages.retain(|m| m["payload"]["touser"] != actor);
    for m in &mut messages {
        if let Some(payload) = m["payload"].as_object_mut() {
            payload.remove("response_code");
            payload.remove("response_code_ref");
        }
    }
    Trace { records, events, messages }
}

/// The text the actor was sent through the outbox after the checkpoint, if any.
async fn sent_to(app: &TestApp, from: &Checkpoint, actor: &str) -> Option<String> {
    let texts: Vec<(String,)> = sql::query_as(
        "SELECT json_extract(payload, '$.text.content') FROM outbox
         WHERE id > ? AND json_extract(payload, '$.touser') = ? AND json_extract(payload, '$.msgtype') = 'text'",
    )
    .bind(from.outbox)
    .bind(actor)
    .fetch_all(app.state.db.reader())
    .await
    .unwrap();
    texts.into_iter().map(|(t,)| t).next()
}

/// The card titled `title` sent to `user`.
async fn card(app: &TestApp, user: &str, title: &str) -> Value {
    let cards = app.cards_to(user).await;
    cards.into_iter().find(|c| c["main_title"]["title"].as_str().is_some_and(|t| t.contains(title))).expect("the card")
}

#[tokio::test]
async fn a_confirmation_typed_or_pressed_has_the_same_effects() {
    let mut traces = Vec::new();
    for pressed in [false, true] {
        let app = TestApp::spawn().await;
        app.say("zhangwei", "C类 公司=云帆 联系人=王 方式=转接").await;
        let card = card(&app, "cs_lead", "待确认 #1").await;
        let from = checkpoint(&app).await;
        if pressed {
            app.press("cs_lead", &card, "确认").await;
            assert_eq!(sent_to(&app, &from, "cs_lead").await, None, "the updated card says it");
        } else {
            let reply = app.say("cs_lead", "确认 #1").await.unwrap();
            assert!(reply.starts_with("已确认 #1"), "{reply}");
        }
        traces.push(trace(&app, &from, "cs_lead").await);
    }
    assert_eq!(traces[0], traces[1]);
    assert!(traces[0].events.iter().any(|e| e["action"] == "confirmed"), "{:?}", traces[0].events);
    assert!(traces[0].events.iter().any(|e| e["action"] == "closer_set"), "{:?}", traces[0].events);
    let apis: Vec<&Value> = traces[0].messages.iter().map(|m| &m["api"]).collect();
    assert_eq!(apis, ["message/update_template_card", "message/send"], "the card closed, the reporter told");
}

#[tokio::test]
async fn a_rejection_typed_or_pressed_then_given_its_reason_has_the_same_effects() {
    let mut traces = Vec::new();
    for pressed in [false, true] {
        let app = TestApp::spawn().await;
        app.say("zhangwei", "C类 公司=云帆 联系人=王").await;
        let card = card(&app, "cs_lead", "待确认 #1").await;
        let from = checkpoint(&app).await;
        if pressed {
            app.press("cs_lead", &card, "驳回").await;
            let asked = sent_to(&app, &from, "cs_lead").await.unwrap();
            assert!(asked.contains("请回复「驳回 #1 原因」"), "{asked}");
        }
        app.say("cs_lead", "驳回 #1 电话是空号").await;
        traces.push(trace(&app, &from, "cs_lead").await);
    }
    // A press rejects at once and asks for the reason, which the next 驳回 adds: the
    // record and the card end as after a typed rejection.
    assert_eq!(traces[0].records, traces[1].records);
    assert_eq!(traces[1].records[0]["reason"], "电话是空号");
    assert_eq!(traces[0].messages[0], traces[1].messages[0], "the card update");
}

#[tokio::test]
async fn a_day_3_check_typed_or_pressed_on_the_jobs_card_has_the_same_effects() {
    let mut traces = Vec::new();
    for pressed in [false, true] {
        let app = TestApp::spawn().await;
        let onboarded = app.today().checked_sub_days(Days::new(3)).unwrap();
        app.say("zhengqiang", &format!("上岗 姓名=小王 入职={onboarded} 渠道=自招")).await;
        run_once(&app.state, Job::OnjobCheck).await.unwrap();
        let card = card(&app, "tr_lead", "在岗确认 #1").await;
        let from = checkpoint(&app).await;
        if pressed {
            app.press("tr_lead", &card, "在岗").await;
        } else {
            app.say("tr_lead", "在岗 #1").await;
        }
        traces.push(trace(&app, &from, "tr_lead").await);
    }
    assert_eq!(traces[0], traces[1]);
    assert_eq!(traces[0].records[0]["state"], "confirmed");
}

fn contest() -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{}"
end = "{}"
sponsorship = 1000
chats = ["appchat:wrchat1", "webhook:robotkey1"]
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
[[contests.teams]]
name = "猎豹队"
members = ["sunli"]
"#,
        today.checked_sub_days(Days::new(10)).unwrap(),
        today.checked_add_days(Days::new(10)).unwrap(),
    )
}

#[tokio::test]
async fn a_final_ranking_typed_or_pressed_on_the_cut_off_jobs_card_has_the_same_effects() {
    let (mut traces, mut answers) = (Vec::new(), Vec::new());
    for pressed in [false, true] {
        let app = TestApp::builder().config(&contest()).spawn().await;
        app.say("zhangwei", "B类 公司=云帆 约面=01-01").await;
        app.say("cs_lead", "确认 #1").await;
        app.advance(Duration::days(11));
        run_once(&app.state, Job::ContestCutoff).await.unwrap();
        let card = card(&app, "wanggm", "已截止 · 待终审").await;
        let from = checkpoint(&app).await;
        if pressed {
            app.press("wanggm", &card, "终审").await;
            answers.push(sent_to(&app, &from, "wanggm").await.unwrap());
        } else {
            answers.push(app.say("wanggm", "终审 客户开发PK").await.unwrap());
        }
        traces.push(trace(&app, &from, "wanggm").await);
    }
    assert_eq!(traces[0], traces[1]);
    assert_eq!(answers[0], answers[1], "the auditor is told the same");
    assert!(answers[0].contains("终审完成：第一名 雄鹰队"), "{}", answers[0]);
    assert!(traces[0].events.iter().any(|e| e["action"] == "finalised"));
}

#[tokio::test]
async fn a_press_goes_through_the_same_permission_check_as_the_typed_command() {
    let app = TestApp::builder().config(&contest()).spawn().await;
    app.say("zhangwei", "C类 公司=云帆 联系人=王").await;
    let report_card = card(&app, "cs_lead", "待确认 #1").await;
    let typed = app.say("sunli", "确认 #1").await.unwrap();
    let from = checkpoint(&app).await;
    app.press("sunli", &report_card, "确认").await;
    let pressed = sent_to(&app, &from, "sunli").await.unwrap();
    assert!(typed.contains("「确认」仅限接收部门负责人使用"), "{typed}");
    assert!(pressed.contains("「确认」仅限接收部门负责人使用"), "{pressed}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'reported'").await, 1, "nothing decided");
}
