//! Corrections and appeals end to end: 撤回 and 修改 by the reporter, 申诉 with 维持 /
//! 改判 by the audit group, 待办 for confirmers, 待审 over the whole programme, and the
//! 终审 guard with its quorum.

use crate::helpers::{ORG, TestApp};
use chrono::{Days, Duration};
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;
use serde_json::Value;

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

/// The number an accepted report answers with (`✅ 已登记 #12 …`).
fn number(answer: &str) -> i64 {
    answer
        .split("已登记 #")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not accepted: {answer}"))
}

/// The records, events and outbox tables, as a fingerprint of everything a command can
/// change.
async fn fingerprint(app: &TestApp) -> (Vec<(i64, String, String, i64)>, i64, i64) {
    let records = sql::query_as("SELECT id, state, fields, COALESCE(subject_id, 0) FROM records ORDER BY id")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap();
    (records, app.count("SELECT COUNT(*) FROM events").await, app.count("SELECT COUNT(*) FROM outbox").await)
}

async fn updates(app: &TestApp) -> Vec<Value> {
    app.drain().await;
    app.api_calls("message/update_template_card").await
}

#[tokio::test]
async fn a_reporter_withdraws_their_pending_record_and_frees_its_claim() {
    let app = TestApp::spawn().await;
    let id = number(&say(&app, "zhangwei", "C类 公司=星河传媒 联系人=王").await);
    assert_eq!(app.cards_to("cs_lead").await.len(), 1);

    let before = fingerprint(&app).await;
    let other = say(&app, "sunli", &format!("撤回 #{id}")).await;
    assert!(other.contains("不是您报备的"), "{other}");
    assert_eq!(fingerprint(&app).await, before, "a refused withdrawal changes nothing");

    let answer = say(&app, "zhangwei", &format!("撤回 #{id} 公司名写错了")).await;
    assert!(answer.contains(&format!("已撤回 #{id} C类客户「星河传媒」")), "{answer}");
    let (state, by, reason): (String, String, String) =
        sql::query_as("SELECT state, decided_by, reason FROM records WHERE id = ?")
            .bind(id)
            .fetch_one(app.state.db.reader())
            .await
            .unwrap();
    assert_eq!((state.as_str(), by.as_str(), reason.as_str()), ("withdrawn", "zhangwei", "公司名写错了"));
    let event: (String, String, String) =
        sql::query_as("SELECT old_value, new_value, reason FROM events WHERE action = 'withdrawn'")
            .fetch_one(app.state.db.reader())
            .await
            .unwrap();
    assert_eq!(event, ("reported".into(), "withdrawn".into(), "公司名写错了".into()));
    let updated = updates(&app).await;
    assert!(
        updated.iter().any(|u| u["button"]["replace_name"] == "已由张伟撤回" && u["userids"][0] == "cs_lead"),
        "every confirmer's card says so: {updated:?}"
    );

    // The claim is free: a colleague may report the client now.
    let again = say(&app, "sunli", "C类 公司=星河传媒 联系人=李").await;
    assert!(again.contains("已登记"), "{again}");
    // A withdrawn record cannot be decided, withdrawn again or edited.
    assert!(say(&app, "cs_lead", &format!("确认 #{id}")).await.contains("无需重复操作"));
    assert!(say(&app, "zhangwei", &format!("撤回 #{id}")).await.contains("已撤回"));
    assert!(say(&app, "zhangwei", &format!("修改 #{id} 联系人=赵")).await.contains("已不能修改"));
}

#[tokio::test]
async fn a_decided_record_cannot_be_withdrawn_or_edited() {
    let app = TestApp::spawn().await;
    let id = number(&say(&app, "zhangwei", "C类 公司=星河传媒 联系人=王").await);
    say(&app, "cs_lead", &format!("确认 #{id}")).await;
    let before = fingerprint(&app).await;
    let withdraw = say(&app, "zhangwei", &format!("撤回 #{id}")).await;
    assert!(withdraw.contains("当前状态是“已确认”，已不能撤回"), "{withdraw}");
    let edit = say(&app, "zhangwei", &format!("修改 #{id} 联系人=李")).await;
    assert!(edit.contains("已不能修改"), "{edit}");
    assert_eq!(fingerprint(&app).await, before);
}

#[tokio::test]
async fn a_reporter_edits_their_pending_record_and_the_confirmers_get_the_new_values() {
    let app = TestApp::spawn().await;
    let id = number(&say(&app, "zhangwei", "A类 公司=星河传媒 金额=50万 合同号=HT-1").await);
    say(&app, "sunli", "A类 公司=云帆科技 金额=1万").await;
    let first_card = app.cards_to("cs_lead").await.remove(0);

    let before = fingerprint(&app).await;
    for (who, text, expected) in [
        ("sunli", format!("修改 #{id} 金额=60万"), "不是您报备的"),
        ("zhangwei", format!("修改 #{id} 联系人=王"), "「联系人」不是A类客户的字段"),
        ("zhangwei", format!("修改 #{id} 金额=50万"), "没有任何改动"),
        ("zhangwei", format!("修改 #{id} 公司=云帆科技"), "已由孙丽于"),
        ("zhangwei", format!("修改 #{id} 金额=-3"), "金额"),
        ("zhangwei", "修改 #999 金额=1".to_owned(), "没有找到记录 #999"),
    ] {
        let answer = say(&app, who, &text).await;
        assert!(answer.contains(expected), "{text} → {answer}");
        assert_eq!(fingerprint(&app).await, before, "{text} changes nothing");
    }

    let answer = say(&app, "zhangwei", &format!("修改 #{id} 公司=星河传媒集团 金额=60万")).await;
    assert!(answer.contains("公司：星河传媒 → 星河传媒集团"), "{answer}");
    assert!(answer.contains("金额：500000.00 → 600000.00"), "{answer}");
    let (amount, fields): (i64, String) = sql::query_as("SELECT amount_fen, fields FROM records WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(amount, 60_000_000);
    assert!(fields.contains("\"合同号\":\"HT-1\""), "untouched fields stay: {fields}");
    let data: String = sql::query_scalar("SELECT data FROM events WHERE action = 'edited'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["old"]["金额"], "500000.00");
    assert_eq!(data["new"]["金额"], "600000.00");

    let updated = updates(&app).await;
    assert!(
        updated.iter().any(|u| u["button"]["replace_name"] == "已修改，请查看新卡片"),
        "the old card is closed: {updated:?}"
    );
    let cards = app.cards_to("cs_lead").await;
    let new_card = cards.iter().rev().find(|c| c["task_id"] != first_card["task_id"]).unwrap();
    assert!(new_card.to_string().contains("600000.00"), "{new_card}");
    // The new card decides the record.
    app.press("cs_lead", new_card, "确认").await;
    let state: String = sql::query_scalar("SELECT state FROM records WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(state, "confirmed");
}

/// A rejected record of zhangwei's, with the number.
async fn rejected(app: &TestApp) -> i64 {
    let id = number(&say(app, "zhangwei", "B类 公司=星河传媒 约面=01-02 10:00").await);
    say(app, "cs_lead", &format!("驳回 #{id} 未见约面记录")).await;
    id
}

#[tokio::test]
async fn an_overturned_appeal_confirms_the_record() {
    let app = TestApp::spawn().await;
    let id = rejected(&app).await;
    let before = fingerprint(&app).await;
    let by_other = say(&app, "sunli", &format!("申诉 #{id} 约面属实")).await;
    assert!(by_other.contains("不是您报备的"), "{by_other}");
    assert_eq!(fingerprint(&app).await, before);

    let answer = say(&app, "zhangwei", &format!("申诉 #{id} 约面属实，有聊天记录")).await;
    assert!(answer.contains("已提交对"), "{answer}");
    let cards = app.cards_to("wanggm").await;
    let card =
        cards.iter().find(|c| c["main_title"]["title"].as_str().unwrap_or_default().starts_with("申诉")).unwrap();
    let text = card.to_string();
    assert!(text.contains("未见约面记录") && text.contains("约面属实"), "the rejection and the appeal: {card}");
    let second = say(&app, "zhangwei", &format!("申诉 #{id} 再看看")).await;
    assert!(second.contains("只能申诉一次"), "{second}");

    // Only the audit group decides it.
    app.press("cs_lead", card, "改判").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'confirmed'").await, 0);

    app.press("wanggm", card, "改判").await;
    let (state, by): (String, String) = sql::query_as("SELECT state, decided_by FROM records WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!((state.as_str(), by.as_str()), ("confirmed", "wanggm"));
    assert_eq!(app.count("SELECT COUNT(*) FROM counting_records").await, 1, "it counts");
    let told = app.texts_to("zhangwei").await;
    assert!(told.iter().any(|t| t.contains("申诉") && t.contains("改判") && t.contains("5 分已计入")), "{told:?}");
    assert!(updates(&app).await.iter().any(|u| u["button"]["replace_name"] == "已由王总改判"));
    let again = say(&app, "wanggm", &format!("维持 #{id}")).await;
    assert!(again.contains("已由王总于") && again.contains("已改判"), "{again}");
    app.assert_counted_is_consistent().await;
}

#[tokio::test]
async fn an_upheld_appeal_keeps_the_rejection() {
    let app = TestApp::spawn().await;
    let id = rejected(&app).await;
    say(&app, "zhangwei", &format!("申诉 #{id} 约面属实")).await;
    let answer = say(&app, "wanggm", &format!("维持 #{id} 证据不足")).await;
    assert!(answer.contains("维持驳回"), "{answer}");
    let state: String = sql::query_scalar("SELECT state FROM records WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(state, "rejected");
    let told = app.texts_to("zhangwei").await;
    assert!(told.iter().any(|t| t.contains("维持驳回（原因：未见约面记录）")), "{told:?}");
    let events: i64 = app.count("SELECT COUNT(*) FROM events WHERE action IN ('appealed', 'appeal_upheld')").await;
    assert_eq!(events, 2);
}

#[tokio::test]
async fn an_appeal_comes_within_the_appeal_days_and_only_against_a_rejection() {
    let app = TestApp::builder().config("[audit]\nappeal_days = 3\n").spawn().await;
    let pending = number(&say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await);
    let not_rejected = say(&app, "zhangwei", &format!("申诉 #{pending} 理由")).await;
    assert!(not_rejected.contains("只有被驳回的记录可以申诉"), "{not_rejected}");
    let id = rejected(&app).await;
    app.advance(Duration::days(4));
    let before = fingerprint(&app).await;
    let late = say(&app, "zhangwei", &format!("申诉 #{id} 约面属实")).await;
    assert!(late.contains("驳回已超过 3 天"), "{late}");
    assert_eq!(fingerprint(&app).await, before);
}

#[tokio::test]
async fn a_confirmer_sees_what_waits_for_them() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await;
    app.advance(Duration::hours(5));
    say(&app, "sunli", "B类 公司=星河传媒 约面=01-02").await;
    say(&app, "zhengqiang", "院校渠道 名称=杭州职院").await; // TR's
    let todo = say(&app, "cs_lead", "待办").await;
    let lines: Vec<&str> = todo.lines().collect();
    assert!(lines[0].contains("待办 2 条"), "{todo}");
    assert!(lines[1].contains("#1 C类客户「云帆科技」张伟 · 等待5小时"), "oldest first: {todo}");
    assert!(lines[2].contains("#2 B类客户「星河传媒」孙丽"), "{todo}");
    assert!(say(&app, "zhangwei", "待办").await.contains("仅限接收部门负责人使用"));
    assert!(say(&app, "tr_lead", "待办").await.contains("#3 新增院校渠道「杭州职院」"));
}

#[tokio::test]
async fn review_covers_the_whole_programme_counts_first_and_pages() {
    let app = TestApp::spawn().await;
    let names = ["云帆", "星河", "海洋", "山峰", "森林", "草原", "河流", "湖泊", "沙漠", "冰川", "火山", "峡谷"];
    for name in names {
        say(&app, "zhangwei", &format!("C类 公司={name}贸易 联系人=王")).await;
    }
    let rejected = rejected(&app).await;
    say(&app, "zhangwei", &format!("申诉 #{rejected} 约面属实")).await;
    app.advance(Duration::hours(25));
    let review = say(&app, "wanggm", "待审").await;
    let lines: Vec<&str> = review.lines().collect();
    assert_eq!(lines[0], "📋 待审 13 条", "{review}");
    assert!(lines[1].starts_with("待确认超时 12 · 申诉中 1"), "{review}");
    assert!(review.contains("【未计入PK比赛】13 条"), "not contest members, still listed: {review}");
    assert!(review.contains("第 1/2 页，发送「待审 页=2」看下一页"), "{review}");
    assert!(review.lines().filter(|l| l.starts_with('⏰') || l.starts_with('#')).count() <= 8, "{review}");
    let second = say(&app, "wanggm", "待审 页=2").await;
    assert!(second.contains(&format!("#{rejected} B类客户「星河传媒」张伟 · 5分 · 申诉中")), "{second}");
    assert!(second.contains("第 2/2 页"), "{second}");
}

/// A client contest with both CS staff in teams, and the audit group of `auditors`.
async fn finalise_app(auditors: &str, quorum: usize) -> TestApp {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let org = ORG.replace(r#"audit_group = ["wanggm"]"#, &format!("audit_group = {auditors}"));
    let config = format!(
        r#"{org}
[audit]
finalise_quorum = {quorum}
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
sponsorship = 2000
split = "stake"
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
[[contests.teams]]
name = "猎豹队"
members = ["sunli"]
"#,
        start = today.checked_sub_days(Days::new(10)).unwrap(),
        end = today.checked_add_days(Days::new(10)).unwrap(),
    );
    TestApp::builder().config(&config).spawn().await
}

async fn contest_state(app: &TestApp) -> String {
    sql::query_scalar("SELECT state FROM contests").fetch_one(app.state.db.reader()).await.unwrap()
}

#[tokio::test]
async fn finalising_is_refused_while_a_record_could_change_the_ranking() {
    let app = finalise_app(r#"["wanggm"]"#, 1).await;
    let c = number(&say(&app, "sunli", "C类 公司=云帆科技 联系人=王").await);
    say(&app, "cs_lead", &format!("确认 #{c}")).await;
    let b = number(&say(&app, "zhangwei", "B类 公司=星河传媒 约面=01-02").await); // 5 points, pending
    app.advance(Duration::days(11));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    let card = app.cards_to("wanggm").await.remove(0);
    assert!(card.to_string().contains("1 条"), "the card counts what is pending: {card}");

    let before = fingerprint(&app).await;
    let refused = say(&app, "wanggm", "终审 客户开发PK").await;
    assert!(refused.contains(&format!("#{b} B类客户「星河传媒」张伟 · 5分 · 待确认")), "{refused}");
    assert!(refused.contains("待定=不计"), "says how to finish: {refused}");
    assert_eq!(fingerprint(&app).await, before, "nothing changes");
    assert_eq!(contest_state(&app).await, "frozen");
    app.press("wanggm", &card, "终审").await;
    assert_eq!(contest_state(&app).await, "frozen", "the button is refused the same way");

    // Decided, the record changes the winner, and the contest finalises.
    say(&app, "cs_lead", &format!("确认 #{b}")).await;
    let done = say(&app, "wanggm", "终审 客户开发PK").await;
    assert!(done.contains("终审完成：第一名 雄鹰队"), "{done}");
    assert_eq!(contest_state(&app).await, "final");
}

#[tokio::test]
async fn finalising_without_the_undecided_records_is_recorded() {
    let app = finalise_app(r#"["wanggm"]"#, 1).await;
    let c = number(&say(&app, "sunli", "C类 公司=云帆科技 联系人=王").await);
    say(&app, "cs_lead", &format!("确认 #{c}")).await;
    let b = number(&say(&app, "zhangwei", "B类 公司=星河传媒 约面=01-02").await);
    app.advance(Duration::days(11));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    let done = say(&app, "wanggm", "终审 比赛=客户开发PK 待定=不计").await;
    assert!(done.contains("终审完成：第一名 猎豹队"), "{done}");
    let data: String = sql::query_scalar("SELECT data FROM events WHERE action = 'finalised'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["excluded"], serde_json::json!([b]), "{data}");
}

#[tokio::test]
async fn a_quorum_of_two_needs_two_different_auditors() {
    let app = finalise_app(r#"["wanggm", "cs_lead2"]"#, 2).await;
    let c = number(&say(&app, "sunli", "C类 公司=云帆科技 联系人=王").await);
    say(&app, "cs_lead", &format!("确认 #{c}")).await;
    app.advance(Duration::days(11));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();

    let first = say(&app, "wanggm", "终审 客户开发PK").await;
    assert!(first.contains("（1/2）") && first.contains("还需 1 位"), "{first}");
    assert_eq!(contest_state(&app).await, "frozen");
    let twice = say(&app, "wanggm", "终审 客户开发PK").await;
    assert!(twice.contains("（1/2）"), "the same auditor twice is one approval: {twice}");
    assert_eq!(contest_state(&app).await, "frozen");
    let cards = app.cards_to("cs_lead2").await;
    let latest = cards.last().unwrap();
    assert!(latest.to_string().contains("王总（1/2）"), "the card shows who approved: {latest}");

    app.press("cs_lead2", latest, "终审").await;
    assert_eq!(contest_state(&app).await, "final");
    let data: String = sql::query_scalar("SELECT data FROM events WHERE action = 'finalised'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert!(data.contains("\"approved_by\":[\"wanggm\",\"cs_lead2\"]"), "{data}");
}
