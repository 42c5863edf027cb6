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
    let b = report(&app, "zhangwei", "B类 公司=星河 约面=01-01 10:00").await;
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

#[tokio::test]
async fn greetings_and_questions_get_a_short_introduction() {
    let app = TestApp::spawn().await;
    for text in ["你好", "在吗？", "怎么报备", "规则", "活动规则", "您好！", "Hi"] {
        let answer = say(&app, "zhangwei", text).await;
        assert!(!answer.contains("不认识"), "{text} → {answer}");
        assert!(answer.starts_with("您好，张伟！"), "{text} → {answer}");
        for command in ["C类 公司=… 联系人=…", "我的", "排行", "「帮助」"] {
            assert!(answer.contains(command), "{text} → {answer}");
        }
        assert!(answer.lines().all(|l| l.chars().count() <= 30), "short lines: {answer}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 0);
    // Anything else is still refused as unknown.
    assert!(say(&app, "zhangwei", "报销 金额=100").await.contains("不认识的命令“报销”"));
}

#[tokio::test]
async fn help_on_one_command_shows_its_fields_and_an_example() {
    let app = TestApp::spawn().await;
    let help = say(&app, "zhangwei", "帮助 C类").await;
    assert!(help.starts_with("「C类」报备C类客户"), "{help}");
    assert!(help.contains("必填：公司、联系人") && help.contains("选填：方向、信用代码、备注、方式、接手"), "{help}");
    assert!(help.contains("例如：C类 公司=杭州云帆科技有限公司 联系人=王经理"), "{help}");
    let tomorrow = app.today().succ_opt().unwrap();
    let b = say(&app, "zhangwei", "帮助 B类").await;
    assert!(b.contains(&format!("例如：B类 公司=杭州云帆科技有限公司 约面={tomorrow} 14:30")), "{b}");
    // A command the sender may not use is explained as such.
    assert!(say(&app, "zhangwei", "帮助 终审").await.contains("（仅限业绩审核组使用）"));
    assert!(say(&app, "zhangwei", "帮助 报销").await.contains("没有命令“报销”"));
    assert!(say(&app, "zhangwei", "帮助").await.contains("「帮助 C类」"));
}

#[tokio::test]
async fn example_dates_in_help_and_errors_are_of_today() {
    let app = TestApp::spawn().await;
    let (today, tomorrow) = (app.today(), app.today().succ_opt().unwrap());
    let help = say(&app, "zhangwei", "帮助").await;
    assert!(help.contains(&format!("入职={today}")) && help.contains(&format!("约面={tomorrow} 14:30")), "{help}");
    let bad_date = say(&app, "zhengqiang", "上岗 姓名=小王 入职=明天").await;
    assert!(bad_date.contains(&format!("不是有效日期（例如 {today}）")), "{bad_date}");
    let missing = say(&app, "zhangwei", "B类 公司=云帆").await;
    assert!(missing.contains(&format!("约面={tomorrow} 14:30")), "{missing}");
    let month = say(&app, "zhangwei", "我的 2023-13").await;
    assert!(month.contains(&format!("例如 {}", today.format("%Y-%m"))), "{month}");
    for answer in [help, bad_date, missing, month] {
        assert!(!answer.contains("2023-07"), "{answer}");
    }
}

#[tokio::test]
async fn amounts_are_accepted_as_people_write_them() {
    let app = TestApp::spawn().await;
    for (i, amount) in ["￥120000", "120,000元", "12万元", "¥120000", "人民币12万"].iter().enumerate() {
        let answer = say(&app, "zhangwei", &format!("A类 公司=客户{i} 金额={amount}")).await;
        assert!(answer.contains("已登记"), "{amount} → {answer}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE amount_fen = 12000000").await, 5);
    assert!(say(&app, "zhangwei", "A类 公司=客户9 金额=￥很多").await.contains("格式不对"));
}
