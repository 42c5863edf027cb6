//! The console's pages and actions: each role sees and does what chat allows it, a
//! confirmation on 待办 is a chat confirmation (the reporter's answer, the card
//! updated), 结算 downloads the bytes `leadboard settle` writes, and every answer
//! carries the security headers.

use crate::helpers::TestApp;
use crate::local_mode::BIN;
use crate::web_console::Console;
use chrono::Duration;
use leadboard::store::sql;
use std::path::Path;

/// Rewards for an other-department person's C类 lead, so that a month has a line.
const REWARDS: &str = "[rewards.non_cs]\nlead_c = 50\n";

#[tokio::test]
async fn confirming_on_the_todo_page_answers_the_reporter_and_updates_the_card() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    assert_eq!(app.cards_to("cs_lead").await.len(), 1, "the confirmer's card");
    let console = Console::sign_in(&app, "cs_lead").await;
    let todo = console.get("/ui/todo").await;
    assert!(todo.body.contains("id=\"todo-1\""), "{}", todo.body);
    assert!(todo.body.contains("云帆科技"));

    let done = console.post("/ui/todo/1/confirm", &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("#1"), "{}", done.body);
    assert!(!done.body.contains("<html"), "htmx gets a fragment");

    let texts = app.texts_to("zhangwei").await;
    assert!(texts.iter().any(|t| t.contains("#1") && t.contains("陈经理")), "reporter told: {texts:?}");
    let updates = app.api_calls("message/update_template_card").await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0]["button"]["replace_name"].as_str().unwrap().contains("陈经理"), "{updates:?}");
    let actor: String = sql::query_scalar("SELECT actor FROM events WHERE entity_id = '1' AND action = 'confirmed'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(actor, "cs_lead");
    assert!(!console.get("/ui/todo").await.body.contains("id=\"todo-1\""), "no longer waiting");
    // Twice is refused as chat refuses it, and changes nothing.
    let again = console.post("/ui/todo/1/confirm", &[]).await;
    assert!(again.body.contains("msg bad"), "{}", again.body);
    assert_eq!(app.api_calls("message/update_template_card").await.len(), 1);
}

#[tokio::test]
async fn a_confirmer_cannot_decide_their_own_record_nor_another_departments() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    app.say("cs_lead", "C类 公司=自家客户 联系人=王").await;
    let tr = Console::sign_in(&app, "tr_lead").await;
    let refused = tr.post("/ui/todo/1/confirm", &[]).await;
    assert!(refused.body.contains("须由客户成功事业部的确认人处理"), "{}", refused.body);
    let cs = Console::sign_in(&app, "cs_lead").await;
    let own = cs.post("/ui/todo/2/confirm", &[]).await;
    assert!(own.body.contains("是您本人报备的"), "{}", own.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'reported'").await, 2);
}

#[tokio::test]
async fn staff_see_no_audit_admin_or_settlement_and_their_urls_are_refused() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    let console = Console::sign_in(&app, "sunli").await;
    let mine = console.get("/ui/mine").await;
    for link in ["nav-todo", "nav-audit", "nav-admin", "nav-settle", "/ui/audit", "/ui/admin", "/ui/settle"] {
        assert!(!mine.body.contains(link), "staff page shows {link}");
    }
    for path in ["/ui/todo", "/ui/audit", "/ui/admin", "/ui/settle", "/ui/settle/2020-01/download/csv"] {
        let page = console.get(path).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.body.contains("仅限"), "{path}: {}", page.body);
    }
    let events = app.count("SELECT COUNT(*) FROM events").await;
    for (path, form) in [
        ("/ui/audit/1/void", vec![("reason", "试试")]),
        ("/ui/todo/1/confirm", vec![]),
        ("/ui/admin/act", vec![("op", "assign"), ("person", "孙丽"), ("team", "x")]),
        ("/ui/settle/2020-01/close", vec![]),
        ("/ui/audit/finalise/none", vec![]),
    ] {
        let page = console.post(path, &form).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, events, "nothing happened");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'reported'").await, 1);
}

#[tokio::test]
async fn each_role_finds_its_pages() {
    let app = TestApp::spawn().await;
    for (user, open, closed) in [
        ("cs_lead", vec!["/ui/todo"], vec!["/ui/audit", "/ui/admin", "/ui/settle"]),
        ("wanggm", vec!["/ui/audit"], vec!["/ui/todo", "/ui/admin", "/ui/settle"]),
        ("lina", vec!["/ui/admin", "/ui/settle"], vec!["/ui/todo", "/ui/audit"]),
        ("qianjing", vec!["/ui/settle"], vec!["/ui/todo", "/ui/audit", "/ui/admin"]),
    ] {
        let console = Console::sign_in(&app, user).await;
        let mine = console.get("/ui/mine").await.body;
        for path in open {
            assert!(mine.contains(&format!("href=\"{path}\"")), "{user} sees {path}");
            let page = console.get(path).await;
            assert_eq!(page.status, 200, "{user} {path}: {}", page.body);
        }
        for path in closed {
            assert!(!mine.contains(&format!("href=\"{path}\"")), "{user} does not see {path}");
            assert_eq!(console.get(path).await.status, 403, "{user} {path}");
        }
    }
}

#[tokio::test]
async fn withdrawing_and_appealing_on_my_page_are_the_chat_corrections() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    app.say("zhangwei", "C类 公司=星河传媒 联系人=李").await;
    app.say("cs_lead", "驳回 #2 重复").await;
    let console = Console::sign_in(&app, "zhangwei").await;
    let mine = console.get("/ui/mine").await.body;
    assert!(mine.contains("/ui/mine/1/withdraw") && mine.contains("/ui/mine/2/appeal"), "{mine}");
    assert!(!mine.contains("/ui/mine/2/withdraw"), "a rejected record cannot be withdrawn");
    let edited = console.post("/ui/mine/1/edit", &[("changes", "联系人=赵")]).await;
    assert!(edited.body.contains("msg ok"), "{}", edited.body);
    let fields: String =
        sql::query_scalar("SELECT fields FROM records WHERE id = 1").fetch_one(app.state.db.reader()).await.unwrap();
    assert!(fields.contains("赵"), "{fields}");
    let appealed = console.post("/ui/mine/2/appeal", &[("reason", "不是重复")]).await;
    assert!(appealed.body.contains("msg ok"), "{}", appealed.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM appeals WHERE record_id = 2 AND state = 'open'").await, 1);
    let withdrawn = console.post("/ui/mine/1/withdraw", &[("reason", "填错了")]).await;
    assert!(withdrawn.body.contains("已撤回 #1"), "{}", withdrawn.body);
    // Someone else's record is not mine to withdraw.
    let other = Console::sign_in(&app, "sunli").await;
    let refused = other.post("/ui/mine/2/appeal", &[("reason", "x")]).await;
    assert!(refused.body.contains("不是您报备的"), "{}", refused.body);
}

#[tokio::test]
async fn what_people_typed_is_shown_escaped() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆<b>科技 联系人=王").await;
    let console = Console::sign_in(&app, "cs_lead").await;
    let todo = console.get("/ui/todo").await.body;
    assert!(!todo.contains("云帆<b>"), "{todo}");
    assert!(todo.contains("云帆&#60;b&#62;科技") || todo.contains("云帆&lt;b&gt;科技"), "{todo}");
}

#[tokio::test]
async fn every_console_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let console = Console::sign_in(&app, "zhangwei").await;
    for path in ["/ui/mine", "/ui/audit", "/ui/login", "/ui/assets/2/console.css"] {
        let page = console.get(path).await;
        let h = &page.headers;
        assert_eq!(
            h["content-security-policy"], "default-src 'self'; script-src 'self'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    let mine = console.get("/ui/mine").await.body;
    assert!(!mine.contains("<script>") && !mine.contains("style="), "no inline script or style");
    let htmx = console.get("/ui/assets/2/htmx.min.js").await;
    assert_eq!(htmx.status, 200);
    assert!(htmx.headers["cache-control"].to_str().unwrap().contains("max-age=31536000"));
    assert!(htmx.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert_eq!(htmx.body.as_bytes(), include_bytes!("../../assets/vendor/htmx/htmx.min.js"));
    assert_eq!(console.get("/ui/assets/2/nothing.js").await.status, 404);
}

async fn settle_cli(app: &TestApp, month: &str, out: &Path) -> String {
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", month, "--out"])
        .arg(out)
        .arg("--config")
        .arg(&app.config_path)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    text
}

async fn download(console: &Console<'_>, month: &str, ext: &str) -> Vec<u8> {
    let r = reqwest::Client::new()
        .get(console.app.url(&format!("/ui/settle/{month}/download/{ext}")))
        .header("cookie", &console.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, format!("attachment; filename=\"settlement-{month}.{ext}\""));
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn the_settlement_page_downloads_what_leadboard_settle_writes_and_closes_the_month() {
    let app = TestApp::builder().config(REWARDS).spawn().await;
    app.say("lina", "C类 公司=云帆科技 联系人=王").await;
    app.say("cs_lead", "确认 #1").await;
    let month = leadboard::domain::month::Month::of(app.today()).to_string();
    let console = Console::sign_in(&app, "lina").await;
    let page = console.get(&format!("/ui/settle?month={month}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("李娜") && page.body.contains("50.00"), "{}", page.body);
    assert!(page.body.contains("行政部"), "per department: {}", page.body);

    let out = tempfile::tempdir().unwrap();
    settle_cli(&app, &month, out.path()).await;
    let cli_csv = std::fs::read(out.path().join(format!("settlement-{month}.csv"))).unwrap();
    assert_eq!(download(&console, &month, "csv").await, cli_csv, "the CSV, byte for byte");

    // Closed (once the month is over), both files are the stored ones, byte for byte.
    app.advance(Duration::days(32));
    let console = Console::sign_in(&app, "lina").await;
    let closed = console.post(&format!("/ui/settle/{month}/close"), &[]).await;
    assert!(closed.body.contains("msg ok"), "{} {}", closed.status, closed.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM month_closes").await, 1);
    let closer: String =
        sql::query_scalar("SELECT closed_by FROM month_closes").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(closer, "李娜（lina）");
    let again = tempfile::tempdir().unwrap();
    settle_cli(&app, &month, again.path()).await;
    for ext in ["csv", "xlsx"] {
        let cli = std::fs::read(again.path().join(format!("settlement-{month}.{ext}"))).unwrap();
        assert_eq!(download(&console, &month, ext).await, cli, "{ext}, byte for byte");
    }
    let twice = console.post(&format!("/ui/settle/{month}/close"), &[]).await;
    assert!(twice.body.contains("不能重复结账"), "{}", twice.body);
}

#[tokio::test]
async fn finance_records_the_unpaid_stakes_on_the_settlement_page() {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = format!(
        "[[contests]]\nid = \"pk\"\nname = \"客户开发PK\"\nkinds = [\"lead_c\"]\nstart = \"{}\"\nend = \"{}\"\n\
         [[contests.teams]]\nname = \"雄鹰队\"\nmembers = [\"zhangwei\"]\n[[contests.teams]]\nname = \"猎豹队\"\nmembers = [\"sunli\"]\n",
        today - Duration::days(3),
        today + Duration::days(3),
    );
    let app = TestApp::builder().config(&config).spawn().await;
    let console = Console::sign_in(&app, "qianjing").await;
    let page = console.get("/ui/settle").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let stakes = page.body.split("id=\"stakes\"").nth(1).expect("the unpaid stakes").to_owned();
    assert!(stakes.contains("张伟") && stakes.contains("孙丽") && stakes.contains("100.00"), "{stakes}");

    // Someone without the role is refused and nothing changes.
    let staff = Console::sign_in(&app, "sunli").await;
    let refused = staff.post("/ui/settle/stake", &[("contest", "客户开发PK"), ("person", "zhangwei")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM contest_members WHERE stake_paid_at IS NOT NULL").await, 0);

    let paid = console.post("/ui/settle/stake", &[("contest", "客户开发PK"), ("person", "zhangwei")]).await;
    assert!(paid.body.contains("已登记张伟（雄鹰队）在「客户开发PK」的PK金 100.00 元为已缴"), "{}", paid.body);
    let by: String = sql::query_scalar("SELECT actor FROM events WHERE action = 'stake_paid'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(by, "qianjing", "in the event log as chat's 缴费");
    let page = console.get("/ui/settle").await.body;
    let stakes = page.split("id=\"stakes\"").nth(1).unwrap();
    assert!(!stakes.contains("张伟") && stakes.contains("孙丽"), "{stakes}");
}

#[tokio::test]
async fn cards_link_to_the_console_on_the_public_address() {
    let app = TestApp::builder().config("[web]\npublic_url = \"https://lead.example.com/\"\n").spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    let card = app.cards_to("cs_lead").await.remove(0);
    assert_eq!(card["jump_list"][0]["type"], 1);
    assert_eq!(card["jump_list"][0]["url"], "https://lead.example.com/ui/todo", "{card}");
    // Without a public address, the listening one.
    let local = TestApp::spawn().await;
    local.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    let card = local.cards_to("cs_lead").await.remove(0);
    assert_eq!(card["jump_list"][0]["url"], local.url("/ui/todo"), "{card}");
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = TestApp::builder().config("[web]\npublic_url = \"https://lead.example.com\"\n").spawn().await;
    let (to, state) = crate::web_console::start(&app, "/ui/mine").await;
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["redirect_uri"], "https://lead.example.com/ui/auth/callback");
    let code = crate::web_console::code_for(&app, "zhangwei").await;
    let back = crate::web_console::come_back(&app, &code, &state).await;
    let set: Vec<&str> = back.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|c| c.starts_with("leadboard_session=")).expect("a session cookie");
    assert!(session.contains("Secure"), "{set:?}");
}
