//! The audit group's 作废 and 恢复 on records: who may, and what a restore brings back.

use crate::helpers::{ORG, TestApp};
use leadboard::store::sql;

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

#[tokio::test]
async fn an_auditor_cannot_void_or_restore_a_record_they_reported() {
    // The test organisation with a second auditor.
    let two_auditors = ORG.replace(r#"audit_group = ["wanggm"]"#, r#"audit_group = ["wanggm", "cs_lead2"]"#);
    assert_ne!(two_auditors, ORG);
    let app = TestApp::builder().config(&two_auditors).spawn().await;
    say(&app, "cs_lead2", "C类 公司=云帆 联系人=王").await;
    let refused = say(&app, "cs_lead2", "作废 #1 重复").await;
    assert!(refused.contains("本人报备的，不能由自己作废或恢复"), "{refused}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'voided'").await, 0);

    say(&app, "wanggm", "作废 #1 重复").await;
    let refused = say(&app, "cs_lead2", "恢复 #1").await;
    assert!(refused.contains("本人报备的"), "{refused}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'voided'").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE actor = 'cs_lead2' AND action IN ('voided', 'restored')").await,
        0
    );
}

#[tokio::test]
async fn a_restored_record_keeps_the_decision_it_had() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    say(&app, "zhangwei", "C类 公司=星河 联系人=李").await;
    say(&app, "cs_lead", "确认 #1").await;
    say(&app, "cs_lead", "驳回 #2 信息不全").await;
    let decided: (String, i64) = sql::query_as("SELECT decided_by, decided_at FROM records WHERE id = 1")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();

    app.advance(chrono::Duration::hours(30));
    say(&app, "wanggm", "作废 #1 客户重复").await;
    say(&app, "wanggm", "作废 #2 重复").await;
    let voided = say(&app, "cs_lead2", "确认 #1").await;
    assert!(voided.contains("已由王总于") && voided.contains("作废（原因：客户重复）"), "{voided}");

    say(&app, "wanggm", "恢复 #1 复核无误").await;
    say(&app, "wanggm", "恢复 #2").await;
    let after: (String, i64) = sql::query_as("SELECT decided_by, decided_at FROM records WHERE id = 1")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(after, decided, "the confirmation stands as it was, not as of the restore");
    let again = say(&app, "cs_lead2", "确认 #1").await;
    assert!(again.contains("已由陈经理于") && again.contains("确认"), "{again}");
    let rejected = say(&app, "cs_lead2", "确认 #2").await;
    assert!(rejected.contains("驳回（原因：信息不全）"), "{rejected}");
    assert!(say(&app, "zhangwei", "我的").await.contains("已计入：1 分"));
    let logged = app.count("SELECT COUNT(*) FROM events WHERE action = 'restored' AND reason = '复核无误'").await;
    assert_eq!(logged, 1, "the restore and its reason are in the event log");
}

async fn state_of(app: &TestApp, id: i64) -> (String, bool) {
    sql::query_as("SELECT state, counted <> 0 FROM records WHERE id = ?")
        .bind(id)
        .fetch_one(app.state.db.reader())
        .await
        .unwrap()
}

/// A person channel (its base indicator is one placement) reported by 郑强 with its
/// agreement confirmed, and `placements` people placed through it four days ago.
async fn person_channel(app: &TestApp, placements: &[&str]) {
    say(app, "zhengqiang", "个人渠道 名称=王师傅").await; // #1
    say(app, "tr_lead", "确认 #1").await;
    let onboarded = app.today().checked_sub_days(chrono::Days::new(4)).unwrap();
    for name in placements {
        say(app, "zhengqiang", &format!("上岗 姓名={name} 入职={onboarded} 渠道=王师傅")).await;
    }
}

#[tokio::test]
async fn a_base_placement_counts_toward_its_channel_and_is_answered_so() {
    let app = TestApp::spawn().await;
    person_channel(&app, &["小王"]).await;
    let answer = say(&app, "tr_lead", "在岗 #2").await;
    assert!(answer.contains("计入渠道 #1「王师傅」的基础指标（积分归渠道）"), "{answer}");
    assert!(!answer.contains("2 分计入"), "{answer}");
    let told = app.texts_to("zhengqiang").await;
    assert!(told.iter().any(|t| t.contains("#2") && t.contains("计入渠道 #1「王师傅」的基础指标")), "{told:?}");
    assert_eq!(state_of(&app, 1).await, ("confirmed".into(), true), "the channel is valid");
    assert_eq!(state_of(&app, 2).await, ("confirmed".into(), false), "its points are the channel's");
}

#[tokio::test]
async fn a_voided_base_placement_takes_its_channel_back_to_waiting() {
    let app = TestApp::spawn().await;
    person_channel(&app, &["小王"]).await;
    say(&app, "tr_lead", "在岗 #2").await;
    let answer = say(&app, "wanggm", "作废 #2 人员信息不实").await;
    assert!(answer.contains("渠道 #1「王师傅」基础指标不足"), "{answer}");
    assert_eq!(state_of(&app, 1).await, ("agreed".into(), false), "no longer a valid channel");
    let told = app.texts_to("zhengqiang").await;
    assert!(told.iter().any(|t| t.contains("#1") && t.contains("暂不再是有效渠道")), "{told:?}");
    assert!(app.texts_to("tr_lead").await.iter().any(|t| t.contains("已退回")), "the confirmers are told");
    app.assert_counted_is_consistent().await;

    // Restored, it is the channel's base again and the channel valid.
    say(&app, "wanggm", "恢复 #2 核实无误").await;
    assert_eq!(state_of(&app, 1).await, ("confirmed".into(), true));
    app.assert_counted_is_consistent().await;
}

#[tokio::test]
async fn a_later_placement_takes_a_voided_base_placements_place() {
    let app = TestApp::spawn().await;
    person_channel(&app, &["小王", "小李"]).await;
    say(&app, "tr_lead", "在岗 #2").await; // the base
    say(&app, "tr_lead", "在岗 #3").await; // counts as a placement
    assert_eq!(state_of(&app, 3).await, ("confirmed".into(), true));
    let answer = say(&app, "wanggm", "作废 #2 人员信息不实").await;
    assert!(answer.contains("由其他在岗人员补足，仍为有效渠道"), "{answer}");
    assert_eq!(state_of(&app, 1).await, ("confirmed".into(), true));
    assert_eq!(state_of(&app, 3).await, ("confirmed".into(), false), "#3 is the channel's base now");
    app.assert_counted_is_consistent().await;
}
