//! PK contests end to end: scoring windows and membership, the daily broadcast to
//! app chats and robot webhooks, the cut-off card, the audit group's voids and final
//! ranking, and who may do what.

use crate::helpers::{ORG, TestApp};
use chrono::{Days, Duration, TimeZone};
use leadboard::clock::{ManualClock, TZ};
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;
use serde_json::Value;
use std::sync::Arc;

/// A client-development contest from 10 days ago to 10 days ahead (cut-off 17:00),
/// two one-person CS teams, broadcasting to an app chat and a robot webhook.
async fn contest_app() -> TestApp {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
sponsorship = 1000
split = "stake"
chats = ["appchat:wrchat1", "webhook:robotkey1"]
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

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

/// Reports a C-class client as `from` and confirms it; returns its number.
async fn confirmed_lead(app: &TestApp, from: &str, company: &str, stage: &str) -> i64 {
    let text = match stage {
        "C类" => format!("C类 公司={company} 联系人=王"),
        "B类" => format!("B类 公司={company} 约面=01-01"),
        _ => format!("A类 公司={company} 金额=10000"),
    };
    let answer = say(app, from, &text).await;
    let id: i64 = answer.split('#').nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    say(app, "cs_lead", &format!("确认 #{id}")).await;
    id
}

async fn team_points(app: &TestApp) -> Vec<(String, i64)> {
    let standings = say(app, "lina", "排行").await;
    standings
        .lines()
        .filter_map(|l| l.strip_prefix("第"))
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let _rank = parts.next()?;
            let team = parts.next()?.to_owned();
            Some((team, parts.next()?.parse().ok()?))
        })
        .collect()
}

fn markdowns(calls: &[Value], field: &str) -> Vec<String> {
    calls.iter().filter_map(|c| c[field]["content"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn scores_count_confirmed_records_of_scored_kinds_inside_the_window() {
    let app = contest_app().await;
    confirmed_lead(&app, "zhangwei", "云帆", "C类").await;
    confirmed_lead(&app, "zhangwei", "云帆", "B类").await;
    confirmed_lead(&app, "sunli", "星河", "A类").await;
    // Not scored: a channel (a TR kind), and a record still waiting.
    say(&app, "zhangwei", "院校渠道 名称=杭州职院").await;
    say(&app, "tr_lead", "确认 #4").await;
    say(&app, "zhangwei", "C类 公司=待定公司 联系人=王").await;
    assert_eq!(team_points(&app).await, vec![("猎豹队".into(), 30), ("雄鹰队".into(), 6)]);

    // Voided and restored.
    say(&app, "wanggm", "作废 #3 合同未盖章").await;
    assert_eq!(team_points(&app).await, vec![("雄鹰队".into(), 6), ("猎豹队".into(), 0)]);
    say(&app, "wanggm", "恢复 #3").await;
    assert_eq!(team_points(&app).await, vec![("猎豹队".into(), 30), ("雄鹰队".into(), 6)]);

    // Reported before the cut-off and confirmed after it: counts. Reported after: never.
    app.advance(Duration::days(11));
    say(&app, "cs_lead", "确认 #5").await;
    say(&app, "zhangwei", "C类 公司=截止后公司 联系人=王").await;
    say(&app, "cs_lead", "确认 #6").await;
    assert_eq!(team_points(&app).await, vec![("猎豹队".into(), 30), ("雄鹰队".into(), 7)]);
    assert_scores_match_a_full_recount(&app).await;
}

/// The incrementally kept scores equal a recount from the records.
async fn assert_scores_match_a_full_recount(app: &TestApp) {
    app.assert_counted_is_consistent().await;
    let kept: Vec<(String, i64)> = sql::query_as("SELECT userid, points FROM contest_scores ORDER BY userid")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap();
    let recounted: Vec<(String, i64)> = sql::query_as(
        "SELECT m.userid, (SELECT CAST(COALESCE(SUM(r.points), 0) AS BIGINT) FROM counting_records r
             WHERE r.reporter = m.userid AND instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
               AND r.occurred_at >= MAX(c.start_at, m.joined_at) AND r.occurred_at < c.cutoff_at)
         FROM contest_members m JOIN contests c ON c.id = m.contest_id ORDER BY m.userid",
    )
    .fetch_all(app.state.db.reader())
    .await
    .unwrap();
    assert_eq!(kept, recounted);
}

#[tokio::test]
async fn people_outside_the_scoring_department_join_and_count_from_joining() {
    let app = contest_app().await;
    confirmed_lead(&app, "qianjing", "加入前公司", "B类").await;
    let joined = say(&app, "qianjing", "加入PK 雄鹰队").await;
    assert!(joined.contains("已加入「客户开发PK」雄鹰队，PK金 100.00 元（员工级）"), "{joined}");
    assert!(team_points(&app).await.contains(&("雄鹰队".into(), 0)), "records before joining do not count");
    confirmed_lead(&app, "qianjing", "加入后公司", "C类").await;
    assert!(team_points(&app).await.contains(&("雄鹰队".into(), 1)));

    let again = say(&app, "qianjing", "加入PK 猎豹队").await;
    assert!(again.contains("已在「客户开发PK」的雄鹰队，每人只能加入一支队伍"), "{again}");
    let cs = say(&app, "cs_lead2", "加入PK 猎豹队").await;
    assert!(cs.contains("客户成功事业部成员的PK分组由管理员安排"), "{cs}");
    let gm = say(&app, "wanggm", "加入PK 猎豹队").await;
    assert!(gm.contains("总经理级暂不参加PK"), "{gm}");
    let nope = say(&app, "zhengqiang", "加入PK 不存在队").await;
    assert!(nope.contains("没有队伍“不存在队”") && nope.contains("「客户开发PK」：雄鹰队、猎豹队"), "{nope}");

    // An admin assigns a CS member; stakes are recorded per member.
    let assigned = say(&app, "lina", "分配 人员=刘主管 队伍=猎豹队").await;
    assert!(assigned.contains("已将刘主管分配到「客户开发PK」猎豹队，PK金 200.00 元（主管级）"), "{assigned}");
    assert!(say(&app, "zhangwei", "分配 人员=孙丽 队伍=雄鹰队").await.contains("仅限管理员使用"));
    let stakes: Vec<(String, i64)> = sql::query_as("SELECT userid, stake_fen FROM contest_members ORDER BY userid")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap();
    let stakes: Vec<(&str, i64)> = stakes.iter().map(|(u, s)| (u.as_str(), *s)).collect();
    assert_eq!(stakes, vec![("cs_lead2", 20_000), ("qianjing", 10_000), ("sunli", 10_000), ("zhangwei", 10_000)]);
    assert!(say(&app, "lina", "排行").await.contains("奖池：1500.00 元"));
    assert_scores_match_a_full_recount(&app).await;

    app.advance(Duration::days(11));
    let late = say(&app, "lina", "加入PK 雄鹰队").await;
    assert!(late.contains("已截止，不能再加入"), "{late}");
}

#[tokio::test]
async fn the_daily_leaderboard_reaches_app_chats_and_webhooks_with_changes() {
    let app = contest_app().await;
    confirmed_lead(&app, "zhangwei", "云帆", "B类").await;
    run_once(&app.state, Job::DailyLeaderboard).await.unwrap();
    confirmed_lead(&app, "sunli", "星河", "A类").await;
    confirmed_lead(&app, "sunli", "月亮", "C类").await;
    let summary = run_once(&app.state, Job::DailyLeaderboard).await.unwrap();
    assert!(summary.contains("播报了 1 个比赛，2 条消息"), "{summary}");
    app.drain().await;

    let chat = app.api_calls("appchat/send").await;
    assert!(chat.iter().all(|c| c["chatid"] == "wrchat1" && c["msgtype"] == "markdown"));
    let hooks: Vec<_> = app
        .mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/cgi-bin/webhook/send")
        .collect();
    assert!(hooks.iter().all(|r| r.url.query() == Some("key=robotkey1")));
    let hooks: Vec<Value> = hooks.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    for sent in [markdowns(&chat, "markdown"), markdowns(&hooks, "markdown")] {
        assert_eq!(sent.len(), 2);
        let (first, second) = (&sent[0], &sent[1]);
        assert!(first.contains("1. **雄鹰队** <font color=\"info\">5 分</font>\n2. **猎豹队** 0 分"), "{first}");
        assert!(second.contains("1. **猎豹队** <font color=\"info\">31 分</font> ↑1 +31"), "{second}");
        assert!(second.contains("2. **雄鹰队** 5 分 ↓1 +0"), "{second}");
        assert!(second.contains("1. 孙丽（猎豹队）31 分") && second.contains("今日新增有效业绩 3 条"), "{second}");
        assert!(
            second.contains("奖池：**1200.00 元**（PK金 200.00 + 公司赞助 1000.00，其中PK金未缴 200.00）"),
            "{second}"
        );
    }
    let standings = say(&app, "zhangwei", "排行 比赛=客户开发PK").await;
    assert!(
        standings.contains("第1名 猎豹队 31 分") && standings.contains("第2名 雄鹰队 5 分"),
        "排行 agrees: {standings}"
    );
}

#[tokio::test]
async fn the_cut_off_freezes_and_the_audit_group_finalises_once() {
    let app = contest_app().await;
    confirmed_lead(&app, "zhangwei", "云帆", "B类").await;
    confirmed_lead(&app, "sunli", "星河", "C类").await;
    say(&app, "sunli", "B类 公司=星河 约面=01-02").await; // #3, still waiting

    let early = say(&app, "wanggm", "终审 客户开发PK").await;
    assert!(early.contains("尚未截止"), "{early}");
    app.advance(Duration::days(11));
    assert!(run_once(&app.state, Job::ContestCutoff).await.unwrap().contains("已截止：客户开发PK"));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    let cards = app.cards_to("wanggm").await;
    assert_eq!(cards.len(), 1, "one card, once");
    let card = &cards[0];
    assert_eq!(card["main_title"]["title"], "客户开发PK 已截止 · 待终审");
    assert!(card.to_string().contains("雄鹰队 5分"), "{card}");

    let review = say(&app, "wanggm", "待审").await;
    assert!(review.contains("#3 B类客户「星河」孙丽 · 5分 · 待确认"), "{review}");
    assert!(say(&app, "zhangwei", "待审").await.contains("仅限业绩审核组使用"));
    assert!(say(&app, "zhangwei", "终审 客户开发PK").await.contains("仅限业绩审核组使用"));
    app.press("zhangwei", card, "终审").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM contests WHERE state = 'final'").await,
        0,
        "a non-auditor's press changes nothing"
    );

    // A late confirmation of a record reported before the cut-off still counts: 1 + 5 > 5.
    say(&app, "cs_lead", "确认 #3").await;
    app.press("wanggm", card, "终审").await;
    let (state, pool): (String, i64) =
        sql::query_as("SELECT state, pool_fen FROM contests").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!((state.as_str(), pool), ("final", 120_000));
    let payouts: Vec<(String, i64)> =
        sql::query_as("SELECT userid, amount_fen FROM contest_payouts").fetch_all(app.state.db.reader()).await.unwrap();
    assert_eq!(payouts, vec![("sunli".to_owned(), 120_000)]);
    app.drain().await;
    let updates: Vec<Value> = app.api_calls("message/update_template_card").await;
    assert!(updates.iter().any(|u| u["button"]["replace_name"] == "已由王总终审"), "{updates:?}");
    app.drain().await;
    let results = markdowns(&app.api_calls("appchat/send").await, "markdown");
    assert!(results.iter().any(|m| m.contains("终审结果") && m.contains("孙丽 1200.00 元")), "{results:?}");

    // Finalised results never change.
    let again = say(&app, "wanggm", "终审 客户开发PK").await;
    assert!(again.contains("已于") && again.contains("由王总终审，结果不再改变"), "{again}");
    let voided = say(&app, "wanggm", "作废 #2 复核不通过").await;
    assert!(voided.contains("已终审的比赛「客户开发PK」，比赛结果不变"), "{voided}");
    let standings = say(&app, "zhangwei", "排行").await;
    assert!(standings.contains("第1名 猎豹队 6 分"), "{standings}");
    let payouts_after: i64 = app.count("SELECT CAST(SUM(amount_fen) AS BIGINT) FROM contest_payouts").await;
    assert_eq!(payouts_after, 120_000);
}

#[tokio::test]
async fn standings_keep_team_and_member_names_exactly() {
    // Quotes, backslashes and emoji pass through the standings query unchanged.
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        r#"
[[contests]]
id = "names-pk"
name = "名字PK"
kinds = ["lead_c"]
start = "{start}"
end = "{end}"
[[contests.teams]]
name = '"引号"队\反斜杠🚀'
members = ["zhangwei"]
[[contests.teams]]
name = "空队"
members = ["sunli"]
"#,
        start = today.checked_sub_days(Days::new(1)).unwrap(),
        end = today.checked_add_days(Days::new(1)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    confirmed_lead(&app, "zhangwei", "云帆", "C类").await;
    let standings = say(&app, "lina", "排行").await;
    assert!(standings.contains("第1名 \"引号\"队\\反斜杠🚀 1 分（张伟1）"), "{standings}");
    assert!(standings.contains("第2名 空队 0 分"), "{standings}");
}

/// A client-development contest from 10 days ago to 10 days ahead with these teams
/// (`[]` members: a team nobody is in), split and sponsorship.
async fn contest_with(teams: &[(&str, &[&str])], split: &str, sponsorship: &str) -> TestApp {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let mut config = format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
sponsorship = "{sponsorship}"
split = "{split}"
chats = ["appchat:wrchat1"]
"#,
        start = today.checked_sub_days(Days::new(10)).unwrap(),
        end = today.checked_add_days(Days::new(10)).unwrap(),
    );
    for (name, members) in teams {
        let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
        config.push_str(&format!("[[contests.teams]]\nname = \"{name}\"\nmembers = [{}]\n", members.join(", ")));
    }
    TestApp::builder().config(&config).spawn().await
}

async fn payouts(app: &TestApp) -> Vec<(String, i64)> {
    sql::query_as("SELECT userid, amount_fen FROM contest_payouts ORDER BY userid")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap()
}

async fn final_broadcast(app: &TestApp) -> String {
    app.drain().await;
    let sent = markdowns(&app.api_calls("appchat/send").await, "markdown");
    sent.into_iter().find(|m| m.contains("终审结果")).expect("the final result is broadcast")
}

#[tokio::test]
async fn when_no_team_scored_the_final_keeps_the_ranking_and_pays_nobody() {
    let app = contest_with(&[("雄鹰队", &["zhangwei"]), ("猎豹队", &["sunli"]), ("空队", &[])], "stake", "1000").await;
    say(&app, "zhangwei", "C类 公司=未确认公司 联系人=王").await; // never confirmed: 0 points
    app.advance(Duration::days(11));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();

    let answer = say(&app, "wanggm", "终审 比赛=客户开发PK 待定=不计").await;

    assert!(answer.contains("没有队伍得分，无第一名，奖池 1200.00 元不发放"), "{answer}");
    let (state, pool, result): (String, i64, String) =
        sql::query_as("SELECT state, pool_fen, result FROM contests").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!((state.as_str(), pool), ("final", 120_000));
    let ranking: Vec<Value> = serde_json::from_str(&result).unwrap();
    assert_eq!(ranking.len(), 3, "the ranking is stored: {result}");
    assert_eq!(payouts(&app).await, vec![], "no payout is stored");
    let broadcast = final_broadcast(&app).await;
    assert!(broadcast.contains("没有队伍得分，本次比赛无第一名，奖池 **1200.00** 元不发放"), "{broadcast}");
    assert!(!broadcast.contains("分配"), "{broadcast}");
}

#[tokio::test]
async fn a_tie_for_first_splits_the_pool_between_the_teams_and_by_stake_inside() {
    // Stakes 100 + 300 + 100 and sponsorship 1000.01: a pool of 150001 fen. A team
    // nobody is in stays at 0 and takes nothing.
    let teams: &[(&str, &[&str])] = &[("雄鹰队", &["zhangwei", "cs_lead"]), ("猎豹队", &["sunli"]), ("空队", &[])];
    let app = contest_with(teams, "stake", "1000.01").await;
    confirmed_lead(&app, "zhangwei", "云帆", "C类").await;
    confirmed_lead(&app, "sunli", "星河", "C类").await;
    app.advance(Duration::days(11));
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    let card = app.cards_to("wanggm").await.into_iter().last().expect("the finalise card");

    app.press("wanggm", &card, "终审").await;

    // 75001 to 雄鹰队 (first in configuration order gets the odd fen), 75000 to 猎豹队.
    // 雄鹰队 by stake 300 : 100 → 56250.75 and 18750.25: the fen to the larger fraction.
    assert_eq!(
        payouts(&app).await,
        vec![("cs_lead".into(), 56_251), ("sunli".into(), 75_000), ("zhangwei".into(), 18_750)]
    );
    assert_eq!(app.count("SELECT CAST(SUM(amount_fen) AS BIGINT) FROM contest_payouts").await, 150_001);
    assert_eq!(app.count("SELECT pool_fen FROM contests").await, 150_001);
    let broadcast = final_broadcast(&app).await;
    for line in
        ["1. **雄鹰队** 1 分", "1. **猎豹队** 1 分", "3. **空队** 0 分", "> 陈经理 562.51 元", "> 孙丽 750.00 元"]
    {
        assert!(broadcast.contains(line), "{line} in {broadcast}");
    }
    // 排行 afterwards shows what was paid, as the final result does.
    let standings = say(&app, "zhangwei", "排行").await;
    assert!(!standings.contains("获得全部奖池"), "{standings}");
    for line in [
        "已终审",
        "奖池：1500.01 元，2 队并列第一平分，队内按PK金比例分配：",
        "· 陈经理 562.51 元",
        "· 张伟 187.50 元",
        "· 孙丽 750.00 元",
    ] {
        assert!(standings.contains(line), "{line} in {standings}");
    }
}

#[tokio::test]
async fn an_equal_split_pays_every_member_of_the_winning_team_alike() {
    // Stakes 100 + 300 + 200 + 100 and sponsorship 1000: 170000 fen, in three.
    let teams: &[(&str, &[&str])] =
        &[("雄鹰队", &["zhangwei", "cs_lead", "cs_lead2"]), ("猎豹队", &["sunli"]), ("空队", &[])];
    let app = contest_with(teams, "equal", "1000").await;
    confirmed_lead(&app, "zhangwei", "云帆", "B类").await;
    confirmed_lead(&app, "sunli", "星河", "C类").await;
    app.advance(Duration::days(11));

    let answer = say(&app, "wanggm", "终审 客户开发PK").await;

    assert!(answer.contains("第一名 雄鹰队，奖池 1700.00 元已按规则分配（3 人）"), "{answer}");
    // 56666.67 each: the two fen left go to the first in userid order.
    assert_eq!(
        payouts(&app).await,
        vec![("cs_lead".into(), 56_667), ("cs_lead2".into(), 56_667), ("zhangwei".into(), 56_666)]
    );
    let broadcast = final_broadcast(&app).await;
    assert!(broadcast.contains("由第一名队伍按人数平均分配") && broadcast.contains("> 张伟 566.66 元"), "{broadcast}");
}

#[tokio::test]
async fn review_before_any_contest_started_says_so() {
    let start = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive() + Days::new(5);
    let config = format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c"]
start = "{start}"
end = "{end}"
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
"#,
        end = start + Days::new(10),
    );
    let app = TestApp::builder().config(&config).spawn().await;

    let answer = say(&app, "wanggm", "待审").await;

    assert_eq!(answer, format!("PK比赛还没有开始，暂无待审内容（最早的「客户开发PK」于 {start} 开始）。"));
}

/// The test organisation plus `newcomers` in Customer Success, and a contest in July
/// 2023 (cut-off 17:00 on the 15th) between two whole departments.
fn departments_contest(newcomers: &[&str]) -> String {
    let mut config = ORG.to_owned();
    for userid in newcomers {
        config.push_str(&format!("[[directory.users]]\nuserid = \"{userid}\"\nname = \"{userid}\"\ndepartment = 2\n"));
    }
    config.push_str(
        r#"
[[contests]]
id = "dept-pk"
name = "部门PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "2023-07-01"
end = "2023-07-15"
[[contests.teams]]
name = "客户成功队"
department = 2
[[contests.teams]]
name = "招商队"
department = 3
"#,
    );
    config
}

async fn members(app: &TestApp) -> Vec<String> {
    sql::query_scalar("SELECT userid FROM contest_members WHERE contest_id = 'dept-pk' ORDER BY userid")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn department_teams_stop_growing_at_the_cut_off() {
    let at = |h, m| TZ.with_ymd_and_hms(2023, 7, 15, h, m, 0).unwrap().with_timezone(&chrono::Utc);
    let clock = Arc::new(ManualClock::new(at(10, 0)));
    let start = |config: String, stopped| {
        let builder = TestApp::builder().config(&config).clock(clock.clone());
        match stopped {
            Some(stopped) => builder.restart_of(stopped),
            None => builder,
        }
        .spawn()
    };
    let app = start(departments_contest(&[]), None).await;
    let before = members(&app).await;
    assert_eq!(before.len(), 6, "{before:?}");

    // Before the cut-off a newcomer joins their department's team, with a stake.
    let app = start(departments_contest(&["xinren"]), Some(app.stop().await)).await;
    assert!(members(&app).await.contains(&"xinren".to_owned()));

    // After it (frozen or not yet), newcomers no longer change the team or the pool.
    clock.set(at(17, 30));
    let app = start(departments_contest(&["xinren", "wanlai"]), Some(app.stop().await)).await;
    assert!(!members(&app).await.contains(&"wanlai".to_owned()), "added after the cut-off");
    run_once(&app.state, Job::ContestCutoff).await.unwrap();
    let app = start(departments_contest(&["xinren", "wanlai", "houlai"]), Some(app.stop().await)).await;
    run_once(&app.state, Job::DirectorySync).await.unwrap();
    assert_eq!(members(&app).await.len(), 7);
    // Stakes 100 + 300 + 200 + 100 + 100 (xinren) and 500 + 100.
    let standings = say(&app, "lina", "排行 部门PK").await;
    assert!(standings.contains("奖池：1400.00 元"), "{standings}");
}

#[tokio::test]
async fn the_daily_leaderboard_names_the_placed_person_and_has_no_double_spaces() {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        r#"
[[contests]]
id = "placement-pk"
name = "岗位安置PK"
kinds = ["placement", "channel_person"]
start = "{start}"
end = "{end}"
chats = ["appchat:wrchat1"]
[[contests.teams]]
name = "招商二组"
members = ["zhengqiang"]
"#,
        start = today.checked_sub_days(Days::new(10)).unwrap(),
        end = today.checked_add_days(Days::new(10)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    let onboard = today.checked_sub_days(Days::new(5)).unwrap();
    let answer = say(&app, "zhengqiang", &format!("上岗 姓名=小王 入职={onboard}")).await;
    let id = answer.split('#').nth(1).and_then(|s| s.split(' ').next()).unwrap().to_owned();
    assert!(say(&app, "tr_lead", &format!("在岗 #{id}")).await.contains("已确认"));
    run_once(&app.state, Job::DailyLeaderboard).await.unwrap();
    app.drain().await;

    let sent = markdowns(&app.api_calls("appchat/send").await, "markdown").join("\n");
    assert!(sent.contains("> 郑强（招商二组）新增安置上岗 小王 <font color=\"info\">+"), "{sent}");
    for line in sent.lines() {
        assert!(!line.contains("  ") && !line.ends_with(' '), "a stray space in {line:?}");
    }
}

/// Standings are held in memory (`service::contest::standings`) under the standings
/// token: what 排行 shows follows every committed change, also one made outside the
/// service (another process), and never a change that was rolled back.
#[tokio::test]
async fn standings_held_in_memory_follow_the_database_exactly() {
    let app = contest_app().await;
    confirmed_lead(&app, "zhangwei", "云帆", "C类").await;
    let def = app.state.settings().contests[0].clone();
    let points = |s: &[leadboard::domain::contest::TeamStanding]| -> Vec<(String, i64)> {
        s.iter().map(|t| (t.name.clone(), t.points)).collect()
    };
    let before = team_points(&app).await;
    assert_eq!(before, [("雄鹰队".to_owned(), 1), ("猎豹队".to_owned(), 0)]);
    let mut reader = app.state.db.reader().acquire().await.unwrap();
    let held = leadboard::service::contest::standings(&mut reader, &def).await.unwrap();
    let again = leadboard::service::contest::standings(&mut reader, &def).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&held, &again), "served from memory while nothing changed");

    // A transaction sees its own change; after its rollback nobody does.
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE contest_scores SET points = 99 WHERE userid = 'zhangwei'").execute(&mut *tx).await.unwrap();
    let inside = leadboard::service::contest::standings(&mut tx, &def).await.unwrap();
    assert_eq!(points(&inside), [("雄鹰队".to_owned(), 99), ("猎豹队".to_owned(), 0)]);
    tx.rollback().await.unwrap();
    assert_eq!(points(&leadboard::service::contest::standings(&mut reader, &def).await.unwrap()), before);
    assert_eq!(team_points(&app).await, before);

    // Another process's committed change (its own connection to the file).
    let mut other = crate::binary::connect(&app.database(), false).await;
    sql::query("UPDATE contest_scores SET points = 7 WHERE userid = 'sunli'").execute(&mut other).await.unwrap();
    assert_eq!(team_points(&app).await, [("猎豹队".to_owned(), 7), ("雄鹰队".to_owned(), 1)]);
    sql::query("UPDATE people SET name = '孙丽丽' WHERE userid = 'sunli'").execute(&mut other).await.unwrap();
    assert!(say(&app, "lina", "排行").await.contains("孙丽丽7"), "a new name shows at once");

    // And the service's own changes: another confirmed report.
    confirmed_lead(&app, "zhangwei", "星河", "C类").await;
    assert_eq!(team_points(&app).await, [("猎豹队".to_owned(), 7), ("雄鹰队".to_owned(), 2)]);
}
