//! The console in a real headless Chromium, signed in through local mode's simulator:
//! a confirmer confirms on 待办 and the reporter's answer and the card's update reach
//! WeCom (the simulator's log); staff find no 审核 / 管理 / 结算; the 结算 page's
//! downloads are the bytes `leadboard settle` writes. The screenshots in
//! `docs/screenshots/` are taken here.

use crate::browser::{Browser, DESKTOP, PHONE, simulator_calls};
use crate::helpers::TestApp;
use crate::local_mode::BIN;
use chrono::Duration;
use std::path::Path;

async fn demo_records(app: &TestApp) {
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王经理").await;
    app.say("sunli", "B类 公司=星河传媒 约面=12-20").await;
    app.say("zhangwei", "A类 公司=远景物流 金额=12万").await;
    app.drain().await;
}

#[tokio::test]
async fn a_confirmer_signs_in_with_wecom_and_confirms_on_the_todo_page() {
    let app = TestApp::builder().local_mode().spawn().await;
    demo_records(&app).await;
    let Some(phone) = Browser::start(PHONE, None).await else { return };
    let base = app.url("");
    phone.sign_in(&base, "/ui/todo", "陈经理").await;
    phone.wait_for("#todo-1").await;
    assert!(phone.text().await.contains("云帆科技"));
    phone.screenshot("todo-phone").await;

    phone.wait_for("#confirm-1").await.click().await.expect("press 确认");
    let answer = phone.wait_for("li.item .msg.ok").await.text().await.unwrap();
    assert!(answer.contains("#1"), "{answer}");
    assert!(!phone.has("#todo-1").await, "the confirmed record left the queue");

    app.drain().await;
    let calls = simulator_calls(&base).await;
    let updated = calls.iter().any(|c| {
        c["api"] == "message/update_template_card"
            && c["body"]["button"]["replace_name"].as_str().is_some_and(|t| t.contains("陈经理"))
    });
    assert!(updated, "the confirmer's card updated: {calls:#?}");
    let told = calls.iter().any(|c| {
        c["api"] == "message/send"
            && c["body"]["touser"].as_str().is_some_and(|t| t.split('|').any(|u| u == "zhangwei"))
            && c["body"]["text"]["content"].as_str().is_some_and(|t| t.contains("#1") && t.contains("陈经理"))
    });
    assert!(told, "the reporter told: {calls:#?}");
    phone.close().await;

    let Some(desktop) = Browser::start(DESKTOP, None).await else { return };
    desktop.sign_in(&base, "/ui/todo", "陈经理").await;
    desktop.wait_for("#todo-2").await;
    desktop.screenshot("todo-desktop").await;
    desktop.close().await;
}

#[tokio::test]
async fn staff_find_no_audit_admin_or_settlement_pages() {
    let app = TestApp::builder().local_mode().spawn().await;
    demo_records(&app).await;
    app.say("cs_lead", "确认 #1").await;
    app.say("cs_lead", "驳回 #3 金额需合同佐证").await;
    let Some(phone) = Browser::start(PHONE, None).await else { return };
    let base = app.url("");
    phone.sign_in(&base, "/ui/mine", "张伟").await;
    phone.wait_for("#record-1").await;
    for link in ["#nav-todo", "#nav-audit", "#nav-admin", "#nav-settle"] {
        assert!(!phone.has(link).await, "staff see {link}");
    }
    phone.screenshot("mine-phone").await;
    for (path, says) in [
        ("/ui/audit", "仅限业绩审核组使用"),
        ("/ui/admin", "仅限管理员使用"),
        ("/ui/settle", "仅限结算中心或管理员使用"),
    ] {
        phone.client.goto(&format!("{base}{path}")).await.unwrap();
        let text = phone.wait_for("#message").await.text().await.unwrap();
        assert!(text.contains(says), "{path}: {text}");
    }
    phone.close().await;

    let Some(desktop) = Browser::start(DESKTOP, None).await else { return };
    desktop.sign_in(&base, "/ui/mine", "张伟").await;
    desktop.wait_for("#record-3").await;
    desktop.screenshot("mine-desktop").await;
    desktop.close().await;
}

async fn settle_cli(app: &TestApp, month: &str, out: &Path) -> (Vec<u8>, Vec<u8>) {
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", month, "--out"])
        .arg(out)
        .arg("--config")
        .arg(&app.config_path)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read = |ext: &str| std::fs::read(out.join(format!("settlement-{month}.{ext}"))).unwrap();
    (read("csv"), read("xlsx"))
}

/// Clicks a download link and waits for the whole file in `dir`.
async fn downloaded(browser: &Browser, css: &str, dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    browser.wait_for(css).await.click().await.expect("download");
    crate::helpers::eventually(&format!("{name} downloaded"), || async {
        path.is_file() && !dir.join(format!("{name}.crdownload")).exists()
    })
    .await;
    std::fs::read(&path).unwrap()
}

#[tokio::test]
async fn the_settlement_page_downloads_the_bytes_leadboard_settle_writes() {
    let app = TestApp::builder().local_mode().config("[rewards.non_cs]\nlead_c = 50\n").spawn().await;
    app.say("lina", "C类 公司=云帆科技 联系人=王").await;
    app.say("cs_lead", "确认 #1").await;
    let month = leadboard::domain::month::Month::of(app.today()).to_string();
    let downloads = tempfile::tempdir().unwrap();
    let Some(browser) = Browser::start(DESKTOP, Some(downloads.path())).await else { return };
    let base = app.url("");
    let page = format!("/ui/settle?month={month}");
    browser.sign_in(&base, &page, "李娜").await;
    browser.wait_for("#people").await;
    let out = tempfile::tempdir().unwrap();
    let (cli_csv, _) = settle_cli(&app, &month, out.path()).await;
    let csv = downloaded(&browser, "#download-csv", downloads.path(), &format!("settlement-{month}.csv")).await;
    assert_eq!(csv, cli_csv, "the CSV, byte for byte");

    // Closed on the page once the month is over: both files are the stored ones.
    app.advance(Duration::days(32));
    browser.sign_in(&base, &page, "李娜").await;
    browser.wait_for("#close-result").await;
    browser.screenshot("settle-desktop").await;
    browser.wait_for("form[hx-post$='/close'] button").await.click().await.unwrap();
    browser.client.accept_alert().await.expect("the 结账 confirmation");
    let closed = browser.wait_for("#close-result .msg.ok").await.text().await.unwrap();
    assert!(closed.contains(&month), "{closed}");
    let again = tempfile::tempdir().unwrap();
    let (cli_csv, cli_xlsx) = settle_cli(&app, &month, again.path()).await;
    let csv = downloaded(&browser, "#download-csv", downloads.path(), &format!("settlement-{month}.csv")).await;
    let xlsx = downloaded(&browser, "#download-xlsx", downloads.path(), &format!("settlement-{month}.xlsx")).await;
    assert_eq!(csv, cli_csv, "the closed month's CSV, byte for byte");
    assert_eq!(xlsx, cli_xlsx, "the closed month's XLSX, byte for byte");
    browser.close().await;
}

#[tokio::test]
async fn the_audit_group_voids_a_record_on_the_audit_page() {
    let app = TestApp::builder().local_mode().spawn().await;
    demo_records(&app).await;
    app.say("cs_lead", "驳回 #2 重复报备").await;
    app.say("sunli", "申诉 #2 约面已安排，不是重复").await;
    let Some(phone) = Browser::start(PHONE, None).await else { return };
    let base = app.url("");
    phone.sign_in(&base, "/ui/audit", "王总").await;
    phone.wait_for("#audit-3").await;
    phone.screenshot("audit-phone").await;
    let reason = phone.wait_for("#audit-3 input[name=reason]").await;
    reason.send_keys("合同未上传").await.unwrap();
    phone.wait_for("#audit-3 button.danger").await.click().await.unwrap();
    let answer = phone.wait_for("li.item .msg.ok").await.text().await.unwrap();
    assert!(answer.contains("#3"), "{answer}");
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE id = 3 AND state = 'voided'").await, 1);
    phone.close().await;
}

#[tokio::test]
async fn finance_records_a_paid_stake_on_the_settlement_page() {
    // 客户开发PK: 张伟 in 雄鹰队, 孙丽 in 猎豹队, both owing their stake.
    let app = TestApp::builder().local_mode().config(&crate::board::contest_config()).spawn().await;
    let Some(phone) = Browser::start(PHONE, None).await else { return };
    let base = app.url("");
    phone.sign_in(&base, "/ui/settle", "钱静").await;
    phone.wait_for("#stakes").await;
    assert!(phone.has("#nav-settle").await && !phone.has("#nav-admin").await, "finance sees 结算, not 管理");
    phone.screenshot("settle-finance-phone").await;
    let unpaid = app.count("SELECT COUNT(*) FROM contest_members WHERE stake_paid_at IS NULL").await;
    phone.wait_for("#stakes button").await.click().await.unwrap();
    let answer = phone.wait_for("#stake-result .msg.ok").await.text().await.unwrap();
    assert!(answer.contains("为已缴"), "{answer}");
    assert_eq!(app.count("SELECT COUNT(*) FROM contest_members WHERE stake_paid_at IS NULL").await, unpaid - 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE action = 'stake_paid' AND actor = 'qianjing'").await, 1);
    phone.close().await;
}
