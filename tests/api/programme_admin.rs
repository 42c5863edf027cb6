//! Running the programme without restarts, from chat: old channels registered by Talent
//! Recruitment's confirmers, stakes recorded as paid.

use crate::helpers::TestApp;
use chrono::Days;
use leadboard::store::sql;

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
    let origin: String = sql::query_scalar("SELECT origin FROM subjects WHERE name = '杭州人才市场'")
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
        sql::query_scalar("SELECT s.origin FROM records r JOIN subjects s ON s.id = r.channel_id WHERE r.id = 1")
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
    assert!(say(&app, "zhangwei", "缴费 张伟").await.contains("仅限结算中心或管理员使用"));
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
    // Finance (结算中心, roles.finance) records stakes too.
    let paid = say(&app, "qianjing", "缴费 孙丽").await;
    assert!(paid.contains("已登记孙丽（猎豹队）") && paid.contains("未缴合计 0.00 元"), "{paid}");
}

/// A contest of 雄鹰队 (张伟, 孙丽) and 猎豹队 (李娜's admin, nobody scoring yet).
async fn moving_app() -> TestApp {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        "[[contests]]\nid = \"pk\"\nname = \"客户开发PK\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
         sponsorship = 1000\nsplit = \"equal\"\n[[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\", \"sunli\"]\n\
         [[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"cs_lead2\"]\n",
        today.checked_sub_days(Days::new(3)).unwrap(),
        today.checked_add_days(Days::new(3)).unwrap(),
    );
    TestApp::builder().config(&config).spawn().await
}

async fn confirmed(app: &TestApp, who: &str, company: &str) {
    let answer = say(app, who, &format!("C类 公司={company} 联系人=王")).await;
    let id: i64 = answer.split("已登记 #").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    say(app, "cs_lead", &format!("确认 #{id}")).await;
}

#[tokio::test]
async fn points_follow_the_team_a_member_was_in_and_a_leaver_is_not_paid() {
    let app = moving_app().await;
    confirmed(&app, "zhangwei", "云帆科技").await; // 雄鹰队 +1
    assert!(say(&app, "zhangwei", "调队 人员=张伟 队伍=猎豹队").await.contains("仅限管理员使用"));
    let moved = say(&app, "lina", "调队 人员=张伟 队伍=猎豹队").await;
    assert!(moved.contains("从雄鹰队调到猎豹队"), "{moved}");
    assert!(app.texts_to("zhangwei").await.iter().any(|t| t.contains("调到猎豹队")), "the member is told");
    app.advance(chrono::Duration::minutes(1));
    confirmed(&app, "zhangwei", "星河传媒").await; // 猎豹队 +1
    confirmed(&app, "zhangwei", "山峰贸易").await; // 猎豹队 +1
    confirmed(&app, "sunli", "海洋集团").await; // 雄鹰队 +1
    let board = say(&app, "lina", "排行").await;
    assert!(board.contains("猎豹队 2 分"), "after the move for the new team: {board}");
    assert!(board.contains("雄鹰队 2 分"), "the point before the move stays with the old team: {board}");

    // 孙丽 leaves: her point stays with 雄鹰队, she is out of the payout and the pool.
    let left = say(&app, "sunli", "退出PK").await;
    assert!(left.contains("已退出「客户开发PK」的雄鹰队") && left.contains("不参与奖金分配"), "{left}");
    assert!(say(&app, "sunli", "加入PK 雄鹰队").await.contains("不能再次加入"));
    confirmed(&app, "sunli", "森林科技").await; // after leaving: counts for no team
    let board = say(&app, "lina", "排行").await;
    assert!(board.contains("猎豹队 2 分") && board.contains("雄鹰队 2 分"), "{board}");
    let actions: Vec<String> = sql::query_scalar("SELECT action FROM events WHERE entity = 'contest' ORDER BY id")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap();
    assert!(actions.contains(&"moved".to_owned()) && actions.contains(&"left".to_owned()), "{actions:?}");

    // 猎豹队 wins alone after one more point; 张伟 and 刘主管 share it, nobody who left.
    confirmed(&app, "zhangwei", "草原物流").await;
    app.advance(chrono::Duration::days(4));
    leadboard::jobs::run_once(&app.state, leadboard::jobs::Job::ContestCutoff).await.unwrap();
    let done = say(&app, "wanggm", "终审 比赛=客户开发PK 待定=不计").await;
    assert!(done.contains("第一名 猎豹队"), "{done}");
    let paid: Vec<(String, i64)> = sql::query_as("SELECT userid, amount_fen FROM contest_payouts ORDER BY userid")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap();
    let users: Vec<&str> = paid.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, vec!["cs_lead2", "zhangwei"], "{paid:?}");
    app.assert_counted_is_consistent().await;
}

#[tokio::test]
async fn an_admin_removes_a_member_before_the_cut_off_only() {
    let app = moving_app().await;
    let removed = say(&app, "lina", "移出 孙丽").await;
    assert!(removed.contains("孙丽已退出「客户开发PK」的雄鹰队"), "{removed}");
    assert!(app.texts_to("sunli").await.iter().any(|t| t.contains("移出「客户开发PK」")));
    assert!(say(&app, "lina", "移出 孙丽").await.contains("没有参加"));
    app.advance(chrono::Duration::days(4));
    assert!(say(&app, "lina", "调队 人员=张伟 队伍=猎豹队").await.contains("已截止，队伍不再变动"));
}
