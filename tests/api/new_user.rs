//! What a new user tripped over in the record lifecycle, end to end: each test here
//! failed before its fix.

use crate::helpers::TestApp;
use chrono::Days;
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

/// Two client contests whose cut-offs both passed, zhangwei in both.
async fn two_contests_past_their_cut_off() -> TestApp {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let team = |id: &str, name: &str, days_ahead: u64| {
        format!(
            "[[contests]]\nid = \"{id}\"\nname = \"{name}\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
             [[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n[[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"sunli\"]\n",
            today.checked_sub_days(Days::new(10)).unwrap(),
            today.checked_add_days(Days::new(days_ahead)).unwrap(),
        )
    };
    let config = format!("{}{}", team("one", "一月PK", 1), team("two", "二月PK", 2));
    let app = TestApp::builder().config(&config).spawn().await;
    app.advance(chrono::Duration::days(3));
    app
}

#[tokio::test]
async fn after_the_cut_off_standings_show_every_contest_the_person_is_in() {
    let app = two_contests_past_their_cut_off().await;
    let board = say(&app, "zhangwei", "排行").await;
    assert!(board.contains("一月PK") && board.contains("二月PK"), "{board}");
    let review = say(&app, "wanggm", "待审").await;
    assert!(review.contains("【一月PK】") && review.contains("【二月PK】"), "{review}");
}

#[tokio::test]
async fn a_confirmers_own_report_goes_to_another_confirmer_or_the_audit_group() {
    let app = TestApp::spawn().await;
    // CS has two confirmers: the other one is asked.
    let answer = say(&app, "cs_lead", "C类 公司=云帆科技 联系人=王").await;
    assert!(answer.contains("确认：客户成功事业部（刘主管）"), "{answer}");
    // TR has one: the audit group is asked, and may decide it.
    let answer = say(&app, "tr_lead", "院校渠道 名称=杭州职院").await;
    assert!(answer.contains("招商引才事业部无其他确认人，由业绩审核组（王总）"), "{answer}");
    assert!(!answer.contains("尚未配置确认人"), "{answer}");
    let card = app.cards_to("wanggm").await.pop().expect("the audit group gets the card");
    app.press("wanggm", &card, "确认").await;
    let state: String =
        sql::query_scalar("SELECT state FROM records WHERE id = 2").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(state, "confirmed");
    // The audit group does not decide what a confirmer can.
    let other = say(&app, "zhengqiang", "院校渠道 名称=商业学院").await;
    assert!(other.contains("（吴总监）"), "{other}");
    assert!(say(&app, "wanggm", "确认 #3").await.contains("仅限接收部门负责人使用"));
}

#[tokio::test]
async fn a_placement_reported_late_is_answered_with_its_real_state() {
    let app = TestApp::spawn().await;
    let onboarded = app.today().checked_sub_days(Days::new(5)).unwrap();
    let answer = say(&app, "zhengqiang", &format!("上岗 姓名=小王 入职={onboarded} 渠道=自招")).await;
    assert!(answer.contains("状态：入职已满3天，待确认在岗"), "{answer}");
    assert!(answer.contains("将收到在岗确认卡片") && !answer.contains("待满3天"), "{answer}");
    run_once(&app.state, Job::OnjobCheck).await.unwrap();
    let cards = app.cards_to("tr_lead").await;
    assert!(cards.iter().any(|c| c["main_title"]["title"] == "在岗确认 #1 小王"), "{cards:?}");
    let mine = say(&app, "zhengqiang", "我的").await;
    assert!(mine.contains("待确认在岗") && !mine.contains("待满3天"), "{mine}");
}

#[tokio::test]
async fn a_meeting_date_far_off_is_refused_as_a_typo() {
    let app = TestApp::builder().config("[programme]\nstart = \"2026-01-01\"\n").spawn().await;
    let early = say(&app, "zhangwei", "B类 公司=星河传媒 约面=2020-01-01 10:00").await;
    assert!(early.contains("约面日期 2020-01-01 太早"), "{early}");
    let late = app.today().checked_add_days(Days::new(400)).unwrap();
    let far = say(&app, "zhangwei", &format!("B类 公司=星河传媒 约面={late}")).await;
    assert!(far.contains("在一年以后"), "{far}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 0);
}

#[tokio::test]
async fn free_text_reaches_people_as_it_was_typed() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=星河传媒（杭州） 联系人=王").await;
    say(&app, "cs_lead", "驳回 #1 与#2重复，同一家公司（杭州）").await;
    let told = app.texts_to("zhangwei").await;
    assert!(told.iter().any(|t| t.contains("原因：与#2重复，同一家公司（杭州）")), "{told:?}");
    let subject: String =
        sql::query_scalar("SELECT name FROM subjects").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(subject, "星河传媒（杭州）");
}

#[tokio::test]
async fn a_record_restored_to_pending_gets_a_fresh_card() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await;
    say(&app, "wanggm", "作废 #1 疑似重复").await;
    let restored = say(&app, "wanggm", "恢复 #1 核实不重复").await;
    assert!(restored.contains("已重新发送确认卡片给陈经理、刘主管"), "{restored}");
    let cards = app.cards_to("cs_lead").await;
    assert_eq!(cards.len(), 2, "a fresh card after the closed one");
    app.press("cs_lead", &cards[1], "确认").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'confirmed'").await, 1);
}

#[tokio::test]
async fn answers_echo_what_was_recorded_and_cards_show_every_field() {
    let app = TestApp::spawn().await;
    let a = say(&app, "zhangwei", "A类 公司=星河传媒 金额=50万 合同号=HT-9").await;
    assert!(a.contains("金额：500,000.00 元"), "{a}");
    let day = app.today();
    let placed = say(&app, "zhengqiang", &format!("上岗 姓名=小王 入职={day}")).await;
    assert!(placed.contains(&format!("入职：{day}")) && placed.contains("渠道：自招"), "{placed}");
    let referral = say(&app, "sunli", "转介绍 老客户=星河传媒 新客户=云帆科技").await;
    assert!(referral.contains("老客户：星河传媒"), "{referral}");
    let transfer = say(&app, "lina", "C类 公司=山峰贸易 联系人=周 方向=外包 方式=转接 接手=孙丽 备注=老乡介绍").await;
    assert!(transfer.contains("接手：孙丽"), "{transfer}");
    let card = app.cards_to("cs_lead").await.pop().unwrap().to_string();
    for shown in ["外包", "转接", "孙丽", "老乡介绍"] {
        assert!(card.contains(shown), "{shown} on the card: {card}");
    }
}

#[tokio::test]
async fn a_confirmer_decides_several_records_in_one_message() {
    let app = TestApp::spawn().await;
    for name in ["云帆科技", "星河传媒", "山峰贸易"] {
        say(&app, "zhangwei", &format!("C类 公司={name} 联系人=王")).await;
    }
    say(&app, "cs_lead2", "确认 #2").await;
    let answer = say(&app, "cs_lead", "确认 #1 #2 #3").await;
    let lines: Vec<&str> = answer.lines().collect();
    assert!(lines[0].contains("已确认 #1"), "{answer}");
    assert!(lines[1].contains("#2") && lines[1].contains("无需重复操作"), "{answer}");
    assert!(lines[2].contains("已确认 #3"), "{answer}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'confirmed'").await, 3);
}

#[tokio::test]
async fn a_card_rejection_tells_the_reporter_at_once_and_again_with_the_reason() {
    let app = TestApp::spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await;
    let card = app.cards_to("cs_lead").await.remove(0);
    app.press("cs_lead", &card, "驳回").await;
    app.drain().await;
    let told = app.texts_to("zhangwei").await;
    assert_eq!(told.len(), 1, "told at once, even if no reason ever comes: {told:?}");
    assert!(told[0].contains("已被陈经理驳回，驳回原因待补充"), "{told:?}");
    say(&app, "cs_lead", "驳回 #1 联系人电话是空号").await;
    let told = app.texts_to("zhangwei").await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[1].contains("的驳回原因（陈经理）：联系人电话是空号") && !told[1].contains("未填写原因"), "{told:?}");
}

#[tokio::test]
async fn joining_names_the_teams_and_the_stake_and_winners_hear_their_share() {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        "[stakes]\npayment_note = \"交给行政部李娜\"\n[[contests]]\nid = \"pk\"\nname = \"客户开发PK\"\nkinds = [\"lead_c\"]\n\
         start = \"{}\"\nend = \"{}\"\nsponsorship = 1000\n[[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n\
         [[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"sunli\"]\n",
        today.checked_sub_days(Days::new(3)).unwrap(),
        today.checked_add_days(Days::new(3)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    let unknown = say(&app, "qianjing", "加入PK 飞虎队").await;
    assert!(unknown.contains("「客户开发PK」：雄鹰队、猎豹队"), "{unknown}");
    let joined = say(&app, "qianjing", "加入PK 雄鹰队").await;
    assert!(joined.contains("请缴纳PK金 100.00 元：交给行政部李娜"), "{joined}");
    say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await;
    say(&app, "cs_lead", "确认 #1").await;
    app.advance(chrono::Duration::days(4));
    let late = say(&app, "zhangwei", "C类 公司=星河传媒 联系人=王").await;
    assert!(late.contains("「客户开发PK」已于") && late.contains("不计入该比赛"), "{late}");
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    say(&app, "wanggm", "终审 比赛=客户开发PK 待定=不计").await;
    let told = app.texts_to("zhangwei").await;
    assert!(told.iter().any(|t| t.contains("终审结果") && t.contains("您分得PK奖金")), "{told:?}");
}
