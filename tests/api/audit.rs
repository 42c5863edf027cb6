//! The audit group's 作废 and 恢复 on records: who may, and what a restore brings back.

use crate::helpers::{ORG, TestApp};

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
    let decided: (String, i64) = sqlx::query_as("SELECT decided_by, decided_at FROM records WHERE id = 1")
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
    let after: (String, i64) = sqlx::query_as("SELECT decided_by, decided_at FROM records WHERE id = 1")
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
