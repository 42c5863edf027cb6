//! What people are answered in chat, read as on a phone: 我的 with the monthly target
//! and what one closed for colleagues, greetings, help on one command, example dates of
//! today, amounts written as people write them.

use crate::helpers::TestApp;
use chrono::Datelike;

const TARGETS: &str = "
[targets]
cs = 5
tr = 10
";

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

/// Reports and returns the record number.
async fn report(app: &TestApp, from: &str, text: &str) -> i64 {
    let answer = say(app, from, text).await;
    answer
        .split("已登记 #")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text} → {answer}"))
}

#[tokio::test]
async fn mine_shows_the_target_what_one_closed_and_no_points_for_what_never_counts() {
    let app = TestApp::builder().config(TARGETS).spawn().await;
    let c = report(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    assert!(say(&app, "cs_lead", &format!("确认 #{c}")).await.contains("已确认"));
    let b = report(&app, "zhangwei", "B类 公司=星河 约面=2030-01-01 10:00").await;
    assert!(say(&app, "cs_lead", &format!("驳回 #{b} 约面时间不实")).await.contains("已驳回"));
    let channel = report(&app, "lina", "机构渠道 名称=好工作人力 方式=转接 接手=郑强").await;
    assert!(say(&app, "tr_lead", &format!("确认 #{channel}")).await.contains("#"));

    let mine = say(&app, "zhangwei", "我的").await;

    let month = app.today().month();
    assert!(mine.starts_with(&format!("张伟 · 本月（{month}月）\n")), "{mine}");
    assert!(mine.contains("月度任务：1/5 分，还差 4 分"), "{mine}");
    assert!(mine.contains(&format!("#{c} C类客户 云帆 · 1分 · 已确认")), "{mine}");
    assert!(mine.contains(&format!("#{b} B类客户 星河 · 已驳回")), "no points on a rejected line: {mine}");
    for line in mine.lines() {
        assert!(line.chars().count() <= 40, "short enough for a phone: {line}");
    }
    // The closer sees the channel they closed; TR's target counts TR's own kinds.
    let closer = say(&app, "zhengqiang", "我的").await;
    assert!(closer.contains("月度任务：0/10 分，还差 10 分"), "{closer}");
    assert!(closer.contains("我接手的（转接促成）："), "{closer}");
    assert!(closer.contains(&format!("#{channel} 新增机构渠道 好工作人力（李娜报备）· ")), "{closer}");
    // A manager and confirmer has no target unless configured; others none at all.
    assert!(!say(&app, "cs_lead", "我的").await.contains("月度任务"));
    assert!(!say(&app, "lina", "我的").await.contains("月度任务"));
}

#[tokio::test]
async fn a_past_month_without_records_is_said_in_the_past() {
    let app = TestApp::builder().config(TARGETS).spawn().await;
    let previous = app.today().with_day(1).unwrap().pred_opt().unwrap().month();

    let mine = say(&app, "zhangwei", "我的 上月").await;

    assert!(mine.starts_with(&format!("张伟 · 上月（{previous}月）")), "{mine}");
    assert!(mine.contains(&format!("上月（{previous}月）没有记录。")), "{mine}");
    assert!(!mine.contains("还没有"), "{mine}");
    assert!(mine.contains("月度任务：0/5 分，未完成（差 5 分）"), "{mine}");
    let this = say(&app, "zhangwei", "我的").await;
    assert!(this.contains("本月还没有记录"), "{this}");
}
