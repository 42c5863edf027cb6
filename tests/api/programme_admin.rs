//! Running the programme without restarts, from chat: old channels registered by Talent
//! Recruitment's confirmers, stakes recorded as paid.

use crate::helpers::TestApp;
use chrono::Days;

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

#[tokio::test]
async fn a_tr_confirmer_registers_an_old_channel_once() {
    let app = TestApp::spawn().await;
    let day = app.today();
    let refused = say(&app, "zhengqiang", &format!("上岗 姓名=小王 入职={day} 渠道=杭州人才市场")).await;
    assert!(refused.contains("登记老渠道 名称=杭州人才市场"), "says how: {refused}");
    assert!(say(&app, "zhengqiang", "登记老渠道 杭州人才市场").await.contains("仅限接收部门负责人使用"));
    assert!(say(&app, "cs_lead", "登记老渠道 杭州人才市场").await.contains("须由招商引才事业部的确认人操作"));

    let done = say(&app, "tr_lead", "登记老渠道 名称=杭州人才市场").await;
    assert!(done.contains("已登记老渠道「杭州人才市场」"), "{done}");
    let origin: String = sqlx::query_scalar("SELECT origin FROM subjects WHERE name = '杭州人才市场'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(origin, "existing");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'old_channel_registered'").await, 1);
    for again in ["杭州人才市场", "杭州人才市場（有限公司）", "杭州人才市场.", "杭州人材市场"]
    {
        let answer = say(&app, "tr_lead", &format!("登记老渠道 名称={again}")).await;
        assert!(answer.contains("无需重复登记") || answer.contains("名称相近"), "{again} → {answer}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM subjects WHERE origin = 'existing'").await, 1);

    let placed = say(&app, "zhengqiang", &format!("上岗 姓名=小王 入职={day} 渠道=杭州人才市场")).await;
    assert!(placed.contains("已登记 #1"), "a placement through it is accepted: {placed}");
    let channel_origin: String =
        sqlx::query_scalar("SELECT s.origin FROM records r JOIN subjects s ON s.id = r.channel_id WHERE r.id = 1")
            .fetch_one(app.state.db.reader())
            .await
            .unwrap();
    assert_eq!(channel_origin, "existing", "paid at the old channel's rate");
}

#[tokio::test]
async fn stakes_are_owed_until_recorded_as_paid() {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        "[[contests]]\nid = \"pk\"\nname = \"客户开发PK\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
         sponsorship = 1000\nchats = [\"appchat:wrchat1\"]\n[[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n\
         [[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"sunli\"]\n",
        today.checked_sub_days(Days::new(3)).unwrap(),
        today.checked_add_days(Days::new(3)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    let board = say(&app, "zhangwei", "排行").await;
    assert!(board.contains("PK金未缴 200.00 元"), "{board}");
    assert!(say(&app, "zhangwei", "缴费 张伟").await.contains("仅限管理员使用"));
    let paid = say(&app, "lina", "缴费 人员=张伟").await;
    assert!(paid.contains("已登记张伟（雄鹰队）在「客户开发PK」的PK金 100.00 元为已缴"), "{paid}");
    assert!(paid.contains("未缴合计 100.00 元"), "{paid}");
    assert!(say(&app, "lina", "缴费 张伟").await.contains("无需重复登记"));
    assert!(say(&app, "lina", "缴费 钱静").await.contains("没有参加PK比赛"));
    let board = say(&app, "zhangwei", "排行").await;
    assert!(board.contains("PK金未缴 100.00 元"), "{board}");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'stake_paid'").await, 1);
    leadboard::jobs::run_once(&app.state, leadboard::jobs::Job::DailyLeaderboard).await.unwrap();
    app.drain().await;
    let sent = app.api_calls("appchat/send").await;
    assert!(sent.iter().any(|m| m.to_string().contains("其中PK金未缴 100.00")), "{sent:?}");
}
