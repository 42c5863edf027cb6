//! 审核 and 管理 on the console: the audit group's filters, 作废 / 恢复 and appeals, the
//! admins' team moves, stakes paid and ending someone's sessions — each the chat's
//! operation, in the event log under the person who clicked.

use crate::helpers::TestApp;
use crate::web_console::Console;
use chrono::Days;
use leadboard::store::sql;

async fn actor_of(app: &TestApp, action: &str) -> String {
    sql::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT actor FROM events WHERE action = '{action}' ORDER BY id DESC"
    )))
    .fetch_one(app.state.db.reader())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_audit_group_filters_voids_restores_and_judges_appeals() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await; // #1
    app.say("zhangwei", "C类 公司=星河传媒 联系人=李").await; // #2
    app.say("zhengqiang", "院校渠道 名称=杭州职院").await; // #3
    app.say("cs_lead", "驳回 #2 重复").await;
    app.say("zhangwei", "申诉 #2 不是重复").await;
    let console = Console::sign_in(&app, "wanggm").await;

    let all = console.get("/ui/audit").await.body;
    for id in 1..=3 {
        assert!(all.contains(&format!("id=\"audit-{id}\"")), "#{id}: {all}");
    }
    let rejected = console.get("/ui/audit?state=rejected").await.body;
    assert!(rejected.contains("id=\"audit-2\"") && !rejected.contains("id=\"audit-1\""), "{rejected}");
    assert!(rejected.contains("申诉中"));
    let schools = console.get("/ui/audit?kind=channel_school").await.body;
    assert!(schools.contains("id=\"audit-3\"") && !schools.contains("id=\"audit-1\""), "{schools}");
    let tr = console.get("/ui/audit?department=3").await.body;
    assert!(tr.contains("id=\"audit-3\"") && !tr.contains("id=\"audit-2\""), "{tr}");
    let tomorrow = app.today().checked_add_days(Days::new(1)).unwrap();
    let later = console.get(&format!("/ui/audit?from={tomorrow}")).await.body;
    assert!(!later.contains("id=\"audit-"), "nothing from tomorrow on: {later}");
    assert!(!console.get("/ui/audit?flagged=1").await.body.contains("id=\"audit-"), "nothing flagged");

    let refused = console.post("/ui/audit/1/void", &[("reason", "")]).await;
    assert!(refused.body.contains("请写明作废原因"), "{}", refused.body);
    let voided = console.post("/ui/audit/1/void", &[("reason", "虚假报备")]).await;
    assert!(voided.body.contains("msg ok"), "{}", voided.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE id = 1 AND state = 'voided'").await, 1);
    let restored = console.post("/ui/audit/1/restore", &[]).await;
    assert!(restored.body.contains("msg ok"), "{}", restored.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE id = 1 AND state = 'voided'").await, 0);
    let overturned = console.post("/ui/audit/2/overturn", &[]).await;
    assert!(overturned.body.contains("msg ok"), "{}", overturned.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE id = 2 AND state = 'confirmed'").await, 1);
    assert_eq!(actor_of(&app, "voided").await, "wanggm");

    // Nobody audits their own record.
    app.say("wanggm", "C类 公司=王总的客户 联系人=赵").await; // #4
    let own = console.post("/ui/audit/4/void", &[("reason", "试试")]).await;
    assert!(own.body.contains("不能由自己作废"), "{}", own.body);
}

#[tokio::test]
async fn admins_move_members_record_stakes_and_end_sessions() {
    let today = app_today();
    let config = format!(
        "[[contests]]\nid = \"pk\"\nname = \"客户开发PK\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
         sponsorship = 1000\n[[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n\
         [[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"sunli\"]\n",
        today.checked_sub_days(Days::new(3)).unwrap(),
        today.checked_add_days(Days::new(3)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    let staff = Console::sign_in(&app, "zhangwei").await;
    let console = Console::sign_in(&app, "lina").await;
    let page = console.get("/ui/admin").await.body;
    assert!(page.contains("客户开发PK") && page.contains("雄鹰队") && page.contains("张伟"), "{page}");
    assert!(page.contains("未缴"), "{page}");

    let paid =
        console.post("/ui/admin/act", &[("op", "paid"), ("contest", "客户开发PK"), ("person", "zhangwei")]).await;
    assert!(paid.body.contains("已登记张伟"), "{}", paid.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM contest_members WHERE stake_paid_at IS NOT NULL").await, 1);
    let moved = console
        .post("/ui/admin/act", &[("op", "move"), ("contest", "客户开发PK"), ("person", "zhangwei"), ("team", "猎豹队")])
        .await;
    assert!(moved.body.contains("msg ok"), "{}", moved.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM contest_members WHERE userid = 'zhangwei' AND team = '猎豹队'").await,
        1
    );
    assert_eq!(actor_of(&app, "moved").await, "lina");

    let ended = console.post("/ui/admin/act", &[("op", "revoke"), ("person", "zhangwei")]).await;
    assert!(ended.body.contains("已结束张伟的 1 个网页控制台登录"), "{}", ended.body);
    assert_eq!(staff.get("/ui/mine").await.status, 303, "signed out");
    assert_eq!(console.get("/ui/mine").await.status, 200, "the admin's own session stays");
}

fn app_today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive()
}

#[tokio::test]
async fn finalising_on_the_audit_page_keeps_the_guard_of_the_final_ranking() {
    let today = app_today();
    let config = format!(
        "[[contests]]\nid = \"pk\"\nname = \"客户开发PK\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
         sponsorship = 1000\n[[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n\
         [[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"sunli\"]\n",
        today.checked_sub_days(Days::new(3)).unwrap(),
        today.checked_add_days(Days::new(3)).unwrap(),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await; // #1
    app.say("cs_lead", "确认 #1").await;
    app.say("sunli", "C类 公司=星河传媒 联系人=李").await; // #2, still waiting
    let console = Console::sign_in(&app, "wanggm").await;
    let early = console.post("/ui/audit/finalise/pk", &[]).await;
    assert!(early.body.contains("尚未截止"), "{}", early.body);

    app.advance(chrono::Duration::days(4));
    leadboard::jobs::run_once(&app.state, leadboard::jobs::Job::ContestCutoff).await.unwrap();
    let console = Console::sign_in(&app, "wanggm").await;
    let page = console.get("/ui/audit").await.body;
    assert!(page.contains("id=\"ranking-pk\"") && page.contains("雄鹰队"), "{page}");
    let guarded = console.post("/ui/audit/finalise/pk", &[]).await;
    assert!(guarded.body.contains("msg bad"), "undecided #2 holds it up: {}", guarded.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM contests WHERE state = 'final'").await, 0);
    let done = console.post("/ui/audit/finalise/pk", &[("exclude_pending", "1")]).await;
    assert!(done.body.contains("msg ok"), "{}", done.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM contests WHERE state = 'final'").await, 1);
    assert_eq!(actor_of(&app, "finalised").await, "wanggm");
}

#[tokio::test]
async fn an_admin_sets_a_level_and_confirmer_flag_that_outlive_a_reload() {
    let app = TestApp::spawn().await;
    let console = Console::sign_in(&app, "lina").await;
    let set = console
        .post("/ui/admin/act", &[("op", "person"), ("person", "sunli"), ("level", "manager"), ("confirmer", "1")])
        .await;
    assert!(set.body.contains("已设置孙丽：职级：经理，确认人：是"), "{}", set.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM people WHERE userid = 'sunli' AND confirmer <> 0 AND level = 'manager'").await,
        1
    );
    let sunli = Console::sign_in(&app, "sunli").await;
    assert_eq!(sunli.get("/ui/todo").await.status, 200, "a confirmer now");
    assert!(sunli.post("/ui/admin/act", &[("op", "person"), ("person", "sunli")]).await.status == 403);

    app.reloader.reload().await.expect("reloaded");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM people WHERE userid = 'sunli' AND confirmer <> 0 AND level = 'manager'").await,
        1,
        "kept"
    );
    assert_eq!(actor_of(&app, "console_settings").await, "lina");

    let cleared = console.post("/ui/admin/act", &[("op", "person"), ("person", "sunli")]).await;
    assert!(cleared.body.contains("按通讯录"), "{}", cleared.body);
    app.reloader.reload().await.expect("reloaded");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM people WHERE userid = 'sunli' AND confirmer <> 0").await,
        0,
        "back to the directory's"
    );
}
