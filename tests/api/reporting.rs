//! Reporting from chat, end to end over encrypted callbacks: every report kind,
//! validation, first claim wins (also by credit code and under concurrency), unknown
//! people, `我的` and `帮助`.

use crate::helpers::TestApp;
use leadboard::store::sql;

async fn records(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM records").await
}

async fn reply(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

#[tokio::test]
async fn every_report_kind_is_recorded_numbered_and_routed() {
    let app = TestApp::spawn().await;
    let onboarded = app.today().checked_sub_days(chrono::Days::new(2)).unwrap();
    let via_channel = format!("上岗 姓名=小王 入职={onboarded} 渠道=好工作人力");
    let self_recruited = format!("上岗 姓名=小李 入职={onboarded} 渠道=自招");
    let cases = [
        (
            "zhangwei",
            "C类 公司=杭州云帆科技有限公司 联系人=王经理",
            "C类客户",
            "客户成功事业部（陈经理、刘主管）",
            "lead_c",
            1,
        ),
        ("zhangwei", "B类 公司=杭州云帆科技有限公司 约面=01-05 14:00", "B类客户", "客户成功事业部", "lead_b", 5),
        ("qianjing", "A类 公司=杭州云帆科技有限公司 金额=12.5万", "A类客户", "客户成功事业部", "lead_a", 30),
        (
            "qianjing",
            "院校渠道 名称=杭州职业技术学院",
            "新增院校渠道",
            "招商引才事业部（吴总监）",
            "channel_school",
            10,
        ),
        ("zhengqiang", "机构渠道 名称=好工作人力", "新增机构渠道", "3人在岗满3天", "channel_agency", 10),
        ("qianjing", "个人渠道 名称=王师傅 方式=转接 接手=郑强", "新增个人渠道", "1人在岗满3天", "channel_person", 5),
        ("zhengqiang", via_channel.as_str(), "新增安置上岗", "确认在岗", "placement", 2),
        ("zhengqiang", self_recruited.as_str(), "新增安置上岗", "确认在岗", "placement", 2),
        ("sunli", "转介绍 老客户=杭州云帆科技有限公司 新客户=星河传媒", "转介绍", "客户成功事业部", "referral", 0),
    ];
    for (n, (from, text, label, confirm, kind, points)) in cases.into_iter().enumerate() {
        let answer = reply(&app, from, text).await;
        let id = n + 1;
        assert!(answer.contains(&format!("已登记 #{id} {label}")), "{text} → {answer}");
        if text == via_channel {
            // Through a channel still short of its base indicator: it counts toward that.
            assert!(answer.contains("积分：计入渠道 #5「好工作人力」的基础指标"), "{answer}");
        } else {
            assert!(answer.contains(&format!("积分：{points} 分")), "{answer}");
        }
        assert!(answer.contains(confirm), "{answer}");
        let (stored_kind, stored_points, reporter): (String, i64, String) =
            sql::query_as("SELECT kind, points, reporter FROM records WHERE id = ?")
                .bind(id as i64)
                .fetch_one(app.state.db.reader())
                .await
                .unwrap();
        assert_eq!((stored_kind.as_str(), stored_points, reporter.as_str()), (kind, points, from));
    }
    let (amount, mode, closer, state): (i64, String, Option<String>, String) = sql::query_as(
        "SELECT (SELECT amount_fen FROM records WHERE id = 3), mode, closer, (SELECT state FROM records WHERE id = 7)
         FROM records WHERE id = 6",
    )
    .fetch_one(app.state.db.reader())
    .await
    .unwrap();
    assert_eq!(
        (amount, mode.as_str(), closer.as_deref(), state.as_str()),
        (12_500_000, "transfer", Some("zhengqiang"), "onboarded")
    );
    let logged = app.count("SELECT COUNT(*) FROM events WHERE entity = 'record' AND action = 'reported'").await;
    assert_eq!(logged, 9, "every report is in the event log");
}

#[tokio::test]
async fn invalid_reports_are_explained_and_store_nothing() {
    let app = TestApp::builder().config("[programme]\nname = \"全员营销\"\nstart = \"2020-01-01\"\n").spawn().await;
    let cases = [
        ("C类 公司=云帆", "缺少必填字段“联系人”"),
        ("A类 公司=云帆 金额=-3", "格式不对"),
        ("B类 公司=云帆 约面=2023-02-30", "不是有效的日期时间"),
        ("上岗 姓名=小王 入职=2099-01-01", "还没到"),
        ("上岗 姓名=小王 入职=2023-07-01 渠道=不存在的渠道", "没有找到渠道"),
        ("上岗 姓名=小王 入职=2019-12-31 渠道=自招", "太早：只能报备 2020-01-01 及以后入职的人员"),
        ("院校渠道 名称=杭州职院 接手=郑强", "只有 方式=转接"),
        ("个人渠道 名称=王师傅 方式=转接 接手=陈经理", "须是招商引才事业部的成员"),
        ("C类 公司=云帆 联系人=王 信用代码=91330100716105852X", "统一社会信用代码"),
        ("发红包 金额=100", "不认识的命令"),
    ];
    for (text, expected) in cases {
        let answer = reply(&app, "zhangwei", text).await;
        assert!(answer.contains(expected), "{text} → {answer}");
    }
    assert_eq!(records(&app).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM subjects").await, 0, "a refused report leaves no client behind");
}

#[tokio::test]
async fn the_first_claim_wins_and_the_second_is_told_who_and_when() {
    let app = TestApp::spawn().await;
    reply(&app, "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王经理").await;
    let second = reply(&app, "sunli", "C类 公司=杭州云帆科技有限公司 联系人=李总").await;
    assert!(second.contains("已由张伟于") && second.contains("#1") && second.contains("先报先得"), "{second}");
    // Same company written differently: full-width, spaces, letter case.
    let third = reply(&app, "sunli", "C类 公司=  杭州云帆科技有限公司  联系人=李总").await;
    assert!(third.contains("已由张伟"), "{third}");
    // A different stage of the same client is its own record.
    let b = reply(&app, "sunli", "B类 公司=杭州云帆科技有限公司 约面=01-01").await;
    assert!(b.contains("已登记 #2 B类客户"), "{b}");
    assert_eq!(records(&app).await, 2);
}

#[tokio::test]
async fn a_credit_code_identifies_a_client_whatever_its_name() {
    let app = TestApp::spawn().await;
    reply(&app, "zhangwei", "C类 公司=云帆科技 联系人=王 信用代码=91330100716105852F").await;
    let renamed =
        reply(&app, "sunli", "C类 公司=杭州云帆科技有限公司 联系人=李 信用代码=９１３３０１００７１６１０５８５２Ｆ")
            .await;
    assert!(renamed.contains("已由张伟"), "the code wins over the name: {renamed}");
    let same_name_other_code = reply(&app, "sunli", "C类 公司=云帆科技 联系人=李 信用代码=91110000100003495Y").await;
    assert!(same_name_other_code.contains("不同的统一社会信用代码"), "{same_name_other_code}");
    assert_eq!(records(&app).await, 1);

    // A code given later for a client known by name is attached to it, and logged.
    reply(&app, "zhangwei", "C类 公司=星河传媒 联系人=王").await;
    reply(&app, "zhangwei", "B类 公司=星河传媒 约面=01-05 信用代码=91110000100003495Y").await;
    let logged = app.count("SELECT COUNT(*) FROM events WHERE action = 'credit_code_set' AND actor = 'zhangwei'").await;
    assert_eq!(logged, 1);
    let by_code = reply(&app, "sunli", "B类 公司=星河 约面=01-06 信用代码=91110000100003495Y").await;
    assert!(by_code.contains("已由张伟"), "{by_code}");
}

#[tokio::test]
async fn a_rejected_or_voided_claim_frees_the_client() {
    let app = TestApp::spawn().await;
    reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    reply(&app, "cs_lead", "驳回 #1 信息不全").await;
    let again = reply(&app, "sunli", "C类 公司=云帆 联系人=李").await;
    assert!(again.contains("已登记 #2"), "{again}");
    reply(&app, "wanggm", "作废 #2 重复").await;
    let third = reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    assert!(third.contains("已登记 #3"), "{third}");
    // The voided claim cannot come back over the live one.
    let restore = reply(&app, "wanggm", "恢复 #2").await;
    assert!(restore.contains("已有新的有效报备"), "{restore}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE id = 2 AND state = 'voided'").await, 1);
}

#[tokio::test]
async fn two_people_claiming_at_the_same_moment_one_wins() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let company = format!("并发公司{round}");
        let a = app.text_request("zhangwei", &format!("C类 公司={company} 联系人=王"));
        let b = app.text_request("sunli", &format!("C类 公司={company} 联系人=李"));
        let (ra, rb) = tokio::join!(app.post(&a), app.post(&b));
        let answers = [app.open(&ra).unwrap(), app.open(&rb).unwrap()];
        let winners = answers.iter().filter(|a| a.contains("已登记")).count();
        let losers = answers.iter().filter(|a| a.contains("先报先得")).count();
        assert_eq!((winners, losers), (1, 1), "{answers:?}");
    }
    assert_eq!(records(&app).await, 5);
}

#[tokio::test]
async fn a_placed_person_is_claimed_once_per_onboarding_day() {
    let app = TestApp::spawn().await;
    let day = app.today().checked_sub_days(chrono::Days::new(1)).unwrap();
    reply(&app, "zhengqiang", &format!("上岗 姓名=王小明 入职={day} 渠道=自招")).await;
    let twice = reply(&app, "qianjing", &format!("上岗 姓名=　王小明　 入职={day} 渠道=自招")).await;
    assert!(twice.contains("「王小明（") && twice.contains("已由郑强于") && twice.contains("先报先得"), "{twice}");
    let other_day = app.today();
    let again = reply(&app, "qianjing", &format!("上岗 姓名=王小明 入职={other_day} 渠道=自招")).await;
    assert!(again.contains("已登记 #2"), "another onboarding is another placement: {again}");
    assert_eq!(records(&app).await, 2);
}

#[tokio::test]
async fn the_database_itself_refuses_a_second_live_claim() {
    let app = TestApp::spawn().await;
    reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    // A second live claim of the same client and stage, written past every check.
    let copy = "INSERT INTO records (kind, mode, reporter, reporter_dept, reporter_class, subject_id, claim_slot,
                    fields, points, state, occurred_at)
                SELECT kind, mode, 'sunli', reporter_dept, reporter_class, subject_id, claim_slot, fields, points,
                    'reported', occurred_at
                FROM records WHERE id = 1";
    let mut tx = app.state.db.begin().await.unwrap();
    // In a savepoint of its own: on PostgreSQL a failed statement ends the transaction.
    let mut refused = tx.begin().await.unwrap();
    let error = sql::query(copy).execute(&mut *refused).await.expect_err("the unique index refuses it");
    assert_eq!(leadboard::store::violated(&error), Some(leadboard::store::Constraint::FirstClaim), "{error}");
    refused.rollback().await.unwrap();
    sql::query("UPDATE records SET state = 'rejected' WHERE id = 1").execute(&mut *tx).await.unwrap();
    sql::query(copy).execute(&mut *tx).await.expect("a rejected claim no longer holds the client");
}

#[tokio::test]
async fn unknown_people_are_refused_politely_and_change_nothing() {
    let app = TestApp::spawn().await;
    let answer = reply(&app, "stranger", "C类 公司=云帆 联系人=王").await;
    assert!(answer.contains("没有在全员营销通讯录中找到您"), "{answer}");
    assert_eq!(records(&app).await, 0);
}

#[tokio::test]
async fn mine_lists_the_months_records_and_the_points_that_count() {
    let app = TestApp::spawn().await;
    reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    reply(&app, "zhangwei", "B类 公司=云帆 约面=01-01").await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE records SET state = 'confirmed' WHERE id = 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let mine = reply(&app, "zhangwei", "我的").await;
    assert!(mine.contains("已计入：1 分　待确认：5 分"), "{mine}");
    assert!(mine.contains("#1 C类客户 云帆 · 1分 · 已确认"), "{mine}");
    assert!(mine.contains("#2 B类客户 云帆 · 5分 · 待确认"), "{mine}");
    let other_month = reply(&app, "zhangwei", "我的 月份=2020-01").await;
    assert!(other_month.contains("2020年1月没有记录。"), "a past month, in the past tense: {other_month}");
    let others = reply(&app, "sunli", "我的").await;
    assert!(others.contains("已计入：0 分"), "{others}");
}

#[tokio::test]
async fn under_the_highest_rule_only_a_clients_highest_stage_counts() {
    let app = TestApp::builder().config("[points]\nlead_stages = \"highest\"\n").spawn().await;
    reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    reply(&app, "zhangwei", "B类 公司=云帆 约面=01-01").await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE records SET state = 'confirmed'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let mine = reply(&app, "zhangwei", "我的").await;
    assert!(mine.contains("已计入：5 分"), "{mine}");
    assert!(mine.contains("#1 C类客户 云帆 · 1分 · 已确认（不重复计分）"), "{mine}");
}

#[tokio::test]
async fn help_lists_what_the_sender_may_use() {
    let app = TestApp::spawn().await;
    let staff = reply(&app, "zhangwei", "帮助").await;
    assert!(staff.contains("C类 公司=… 联系人=…") && staff.contains("我的"), "{staff}");
    assert!(!staff.contains("确认 #编号") && !staff.contains("作废"), "{staff}");
    let confirmer = reply(&app, "cs_lead", "帮助").await;
    assert!(confirmer.contains("确认 #编号") && !confirmer.contains("作废"), "{confirmer}");
    let auditor = reply(&app, "wanggm", "帮助").await;
    assert!(auditor.contains("作废 #编号 原因") && auditor.contains("终审"), "{auditor}");
    let refused = reply(&app, "zhangwei", "作废 #1 虚假").await;
    assert!(refused.contains("仅限业绩审核组使用"), "{refused}");
}

#[tokio::test]
async fn reports_outside_the_programme_period_are_refused() {
    let app = TestApp::builder().config("[programme]\nstart = \"2020-01-01\"\nend = \"2020-12-31\"\n").spawn().await;
    let answer = reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    assert!(answer.contains("活动周期是 2020-01-01 至 2020-12-31"), "{answer}");
    assert_eq!(records(&app).await, 0);
}

#[tokio::test]
async fn a_deactivated_person_cannot_report() {
    let app = TestApp::spawn().await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE people SET active = 0 WHERE userid = 'zhangwei'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let answer = reply(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    assert!(answer.contains("账号已停用"), "{answer}");
    assert_eq!(records(&app).await, 0);
}
