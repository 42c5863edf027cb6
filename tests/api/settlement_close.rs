//! Closing a month (`settle --close`): the closed month's files never change, and what
//! changes afterwards is paid or taken back (补发 / 扣回) in the first open month.

use crate::helpers::TestApp;
use crate::local_mode::BIN;
use crate::settlement::{confirm, csv_lines, csv_rows, fen, report, say};
use chrono::TimeZone;
use leadboard::clock::{Clock, ManualClock, TZ};
use leadboard::store::sql;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const ORG: &str = r#"
[[directory.departments]]
id = 1
name = "集团"
[[directory.departments]]
id = 2
name = "客户成功事业部"
parent = 1
kind = "cs"
[[directory.departments]]
id = 21
name = "客户成功一队"
parent = 2
[[directory.departments]]
id = 4
name = "行政部"
parent = 1
kind = "other"

[[directory.users]]
userid = "cs_a"
name = "陈一"
department = 21
[[directory.users]]
userid = "cs_boss"
name = "陈经理"
department = 2
level = "manager"
confirmer = true
[[directory.users]]
userid = "ot_a"
name = "钱一"
department = 4
[[directory.users]]
userid = "lisi"
name = "李四"
department = 4
level = "manager"
[[directory.users]]
userid = "wanggm"
name = "王总"
department = 1
level = "gm"

[roles]
admins = ["lisi"]
audit_group = ["wanggm"]

# EXAMPLE AMOUNTS for the test.
[rewards.cs]
lead_b = 200
lead_a_percent = 1
[rewards.non_cs]
lead_c = 50
lead_b = 300

[targets]
cs = 30
"#;

fn at(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::Utc> {
    TZ.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap().with_timezone(&chrono::Utc)
}

/// Record numbers of July 2023.
struct July {
    /// 钱一's C (50) and B (300).
    ot_c: i64,
    ot_b: i64,
    /// 陈一's B (200) and A (1% of 100000 = 1000): 35 points, target 30 met.
    cs_b: i64,
    cs_a: i64,
}

async fn july() -> (TestApp, Arc<ManualClock>, July) {
    let clock = Arc::new(ManualClock::new(at(2023, 7, 15)));
    let app = TestApp::builder().config(ORG).clock(clock.clone()).spawn().await;
    let mut ids = Vec::new();
    for (who, text) in [
        ("ot_a", "C类 公司=海洋 联系人=周"),
        ("ot_a", "B类 公司=海洋 约面=2023-07-22"),
        ("cs_a", "B类 公司=云帆 约面=2023-07-20"),
        ("cs_a", "A类 公司=云帆 金额=100000 合同号=HT-1"),
    ] {
        let id = report(&app, who, text).await;
        confirm(&app, "cs_boss", id).await;
        ids.push(id);
    }
    (app, clock, July { ot_c: ids[0], ot_b: ids[1], cs_b: ids[2], cs_a: ids[3] })
}

/// Runs `leadboard settle --month M --out DIR ARGS…`, asynchronously (the service shares
/// the test's runtime).
async fn settle(app: &TestApp, month: &str, out: &Path, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", month, "--out"])
        .arg(out)
        .args(args)
        .arg("--config")
        .arg(&app.config_path)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn read(dir: &Path, month: &str, ext: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("settlement-{month}.{ext}"))).unwrap()
}

/// The CSV's adjustment lines as `(record, 类型, 调整月份, fen)`.
fn adjustments(csv: &[u8]) -> Vec<(String, String, String, i64)> {
    csv_lines(csv)
        .into_iter()
        .filter(|l| !l["调整月份"].is_empty())
        .map(|l| (l["编号"].clone(), l["类型"].clone(), l["调整月份"].clone(), fen(&l["金额(元)"])))
        .collect()
}

#[tokio::test]
async fn a_closed_month_never_changes_and_a_later_void_is_taken_back_in_the_next_month() {
    let (app, clock, july) = july().await;
    let closed = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", closed.path(), &["--close", "--by", "财务张三"]).await;
    assert!(ok, "{text}");
    assert!(text.contains("2023-07 已结账") && text.contains("财务张三"), "{text}");
    assert!(text.contains("合计 1550.00 元"), "50 + 300 + 200 + 1000: {text}");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE entity = 'month' AND action = 'closed'").await, 1);

    // Closing again is refused and changes nothing.
    let again = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", again.path(), &["--close", "--by", "财务李四"]).await;
    assert!(!ok && text.contains("2023-07 已于") && text.contains("由 财务张三 结账，不能重复结账"), "{text}");
    assert!(std::fs::read_dir(again.path()).unwrap().next().is_none(), "no files");

    // In August the audit group voids 陈一's A-class record: 陈一 now misses the target
    // (5 of 30 points), so July would pay them nothing.
    clock.set(at(2023, 8, 3));
    let voided = say(&app, "wanggm", &format!("作废 #{} 合同作废", july.cs_a)).await;
    assert!(voided.contains("属于已结账的 2023-07") && voided.contains("将在 2023-08 的结算中生成扣回"), "{voided}");

    let later = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", later.path(), &[]).await;
    assert!(ok, "{text}");
    for ext in ["csv", "xlsx"] {
        assert_eq!(read(closed.path(), "2023-07", ext), read(later.path(), "2023-07", ext), "{ext}: byte-identical");
    }
    assert!(text.contains("文件为结账时保存的文件"), "{text}");
    assert!(text.contains("结账后有 2 项变动，计入 2023-08 结算：扣回 1200.00 元"), "{text}");

    let august = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-08", august.path(), &[]).await;
    assert!(ok, "{text}");
    assert!(text.contains("含已结账月份 2023-07 的调整 2 条：扣回 1200.00 元"), "{text}");
    let csv = read(august.path(), "2023-08", "csv");
    let (a, b) = (format!("#{}", july.cs_a), format!("#{}", july.cs_b));
    assert_eq!(
        adjustments(&csv),
        [(b.clone(), "扣回".into(), "2023-07".into(), -20_000), (a.clone(), "扣回".into(), "2023-07".into(), -100_000)]
    );
    let lines = csv_lines(&csv);
    let voided = lines.iter().find(|l| l["编号"] == a).unwrap();
    assert!(voided["规则"].contains("2023-07 已结账") && voided["规则"].contains("现不计入（已作废）"), "{voided:?}");
    assert_eq!((voided["账号"].as_str(), voided["部门"].as_str()), ("cs_a", "客户成功一队"));
    let gated = lines.iter().find(|l| l["编号"] == b).unwrap();
    assert!(gated["规则"].contains("未完成月度任务指标"), "why B is taken back too: {gated:?}");
    assert!(!voided["规则集"].is_empty(), "the closed month's rule set");
    // 钱一's records did not change: nothing for them.
    assert!(lines.iter().all(|l| l["账号"] != "ot_a"), "{lines:?}");
    // The roll-ups carry the adjustments.
    let rows = csv_rows(&csv);
    let total = rows.iter().find(|r| r["行类型"] == "合计").unwrap();
    assert_eq!(total["金额(元)"], "-1200.00");

    // Restored: August owes nothing any more, and July's files are still the same.
    let restored = say(&app, "wanggm", &format!("恢复 #{} 复核无误", july.cs_a)).await;
    assert!(restored.contains("将在 2023-08 的结算中生成补发"), "{restored}");
    let (ok, text) = settle(&app, "2023-08", august.path(), &[]).await;
    assert!(!ok && text.contains("2023-08 没有可结算的记录"), "{text}");
    let (ok, text) = settle(&app, "2023-07", later.path(), &[]).await;
    assert!(ok && text.contains("结账后没有影响本月金额的变动"), "{text}");
    assert_eq!(read(closed.path(), "2023-07", "csv"), read(later.path(), "2023-07", "csv"));
    let _ = july.ot_c;
}

#[tokio::test]
async fn a_record_restored_after_the_close_is_paid_in_the_first_open_month_and_only_once() {
    let (app, clock, july) = july().await;
    // 钱一's B was voided before the close: July does not pay it.
    say(&app, "wanggm", &format!("作废 #{} 重复报备", july.ot_b)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(ok && text.contains("合计 1250.00 元"), "{text}");

    clock.set(at(2023, 8, 3));
    say(&app, "wanggm", &format!("恢复 #{} 复核无误", july.ot_b)).await;
    let (ok, text) = settle(&app, "2023-08", dir.path(), &[]).await;
    assert!(ok, "{text}");
    let b = format!("#{}", july.ot_b);
    assert_eq!(
        adjustments(&read(dir.path(), "2023-08", "csv")),
        [(b.clone(), "补发".into(), "2023-07".into(), 30_000)]
    );
    let line = csv_lines(&read(dir.path(), "2023-08", "csv")).into_iter().find(|l| l["编号"] == b).unwrap();
    assert!(line["规则"].contains("已发 0.00 元，现应发 300.00 元；结账时未计入"), "{line:?}");

    // August is closed with the 补发 in it; voided again in September, it is taken
    // back in September (not paid twice, not taken back twice).
    let (ok, text) = settle(&app, "2023-08", dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(ok, "{text}");
    clock.set(at(2023, 9, 4));
    say(&app, "wanggm", &format!("作废 #{} 确属重复", july.ot_b)).await;
    let (ok, text) = settle(&app, "2023-09", dir.path(), &[]).await;
    assert!(ok, "{text}");
    assert_eq!(
        adjustments(&read(dir.path(), "2023-09", "csv")),
        [(b.clone(), "扣回".into(), "2023-07".into(), -30_000)]
    );
    // July's own change is shown where it goes now: September, August being closed.
    let (ok, text) = settle(&app, "2023-07", dir.path(), &[]).await;
    assert!(ok && text.contains("计入 2023-09 结算：扣回 300.00 元"), "{text}");
    let (ok, text) = settle(&app, "2023-08", dir.path(), &[]).await;
    assert!(ok && text.contains("2023-08 已结账"), "{text}");
}

#[tokio::test]
async fn a_month_with_pending_records_is_closed_only_with_force_and_what_is_confirmed_later_is_paid_later() {
    let (app, clock, _july) = july().await;
    let pending = report(&app, "ot_a", "C类 公司=星河 联系人=吴").await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(!ok && text.contains("2023-07 还有 1 条记录待确认，不能结账") && text.contains("--force"), "{text}");
    assert_eq!(app.count("SELECT COUNT(*) FROM month_closes").await, 0);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "no files");

    let (ok, text) = settle(&app, "2023-07", dir.path(), &["--close", "--by", "财务张三", "--force"]).await;
    assert!(ok && text.contains("结账时有 1 条记录待确认"), "{text}");
    let reason: String = sql::query_scalar("SELECT reason FROM events WHERE entity = 'month' AND action = 'closed'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert!(reason.contains("强制结账"), "{reason}");

    // Confirmed in August (a late decision): paid in August as 补发 for July.
    clock.set(at(2023, 8, 2));
    confirm(&app, "cs_boss", pending).await;
    let (ok, text) = settle(&app, "2023-08", dir.path(), &[]).await;
    assert!(ok, "{text}");
    assert_eq!(
        adjustments(&read(dir.path(), "2023-08", "csv")),
        [(format!("#{pending}"), "补发".into(), "2023-07".into(), 5_000)]
    );
}

#[tokio::test]
async fn who_closes_is_the_os_user_unless_named_and_bad_closes_are_refused() {
    let (app, _clock, _july) = july().await;
    let dir = tempfile::tempdir().unwrap();
    // --by and --force only with --close.
    for args in [&["--by", "张三"][..], &["--force"][..]] {
        let (ok, text) = settle(&app, "2023-07", dir.path(), args).await;
        assert!(!ok && text.contains("--close"), "{args:?}: {text}");
    }
    // A month that has not ended yet (the command runs on the real clock).
    let this_month = leadboard::clock::SystemClock.now_local().format("%Y-%m").to_string();
    let (ok, text) = settle(&app, &this_month, dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(!ok && text.contains("还没有结束，不能结账"), "{text}");
    // Nobody to name: refused.
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", "2023-07", "--close", "--out"])
        .arg(dir.path())
        .arg("--config")
        .arg(&app.config_path)
        .env_remove("USER")
        .env_remove("USERNAME")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("无法确定结账人：请用 --by 指明"));
    assert_eq!(app.count("SELECT COUNT(*) FROM month_closes").await, 0);

    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", "2023-07", "--close", "--out"])
        .arg(dir.path())
        .arg("--config")
        .arg(&app.config_path)
        .env("USER", "finance-zhang")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && text.contains("2023-07 已结账") && text.contains("finance-zhang"), "{text}");
    let by: String = sql::query_scalar("SELECT closed_by FROM month_closes WHERE month = '2023-07'")
        .fetch_one(app.state.db.reader())
        .await
        .unwrap();
    assert_eq!(by, "finance-zhang");

    // A month with nothing in it can be closed too (later changes then go past it).
    let (ok, text) = settle(&app, "2023-06", dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(ok && text.contains("2023-06 已结账") && text.contains("0 条明细，合计 0.00 元"), "{text}");
    // In chat, a closed month is the one kept at close.
    let answer = say(&app, "lisi", "结算 月份=2023-07").await;
    assert!(answer.contains("2023-07 已结账") && answer.contains("finance-zhang"), "{answer}");
}

#[tokio::test]
async fn every_line_names_its_rule_set_and_a_rule_change_does_not_touch_a_closed_month() {
    let (app, clock, july) = july().await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(ok, "{text}");
    let july_set: String =
        sql::query_scalar("SELECT rule_set FROM month_closes").fetch_one(app.state.db.reader()).await.unwrap();
    assert_eq!(july_set.len(), 12);
    assert!(csv_lines(&read(dir.path(), "2023-07", "csv")).iter().all(|l| l["规则集"] == july_set));

    // The B-class amount changes (reloaded on 3 August); August has a record of its own,
    // and a July record is voided: August's own line is paid under the new rules, the
    // July 扣回 under July's.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(&app.config_path, config.replace("lead_b = 300", "lead_b = 400")).unwrap();
    clock.set(at(2023, 8, 3));
    app.reloader.reload().await.expect("reloaded");
    let own = report(&app, "ot_a", "B类 公司=远山 约面=2023-08-10").await;
    confirm(&app, "cs_boss", own).await;
    say(&app, "wanggm", &format!("作废 #{} 重复报备", july.ot_b)).await;
    let (ok, text) = settle(&app, "2023-08", dir.path(), &[]).await;
    assert!(ok, "{text}");
    let lines = csv_lines(&read(dir.path(), "2023-08", "csv"));
    let line = |no: i64| lines.iter().find(|l| l["编号"] == format!("#{no}")).unwrap();
    let august_set = line(own)["规则集"].clone();
    assert_ne!(august_set, july_set);
    assert_eq!(line(own)["金额(元)"], "400.00");
    assert_eq!(
        (line(july.ot_b)["规则集"].as_str(), line(july.ot_b)["金额(元)"].as_str()),
        (july_set.as_str(), "-300.00")
    );
    assert!(text.contains(&format!("规则集 {august_set}")), "{text}");
    // Both rule sets are kept with when they were first seen, and the workbook lists them.
    assert_eq!(app.count("SELECT COUNT(*) FROM rule_sets").await, 2);
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(dir.path().join("settlement-2023-08.xlsx")).unwrap();
    let sets: Vec<BTreeMap<String, String>> = crate::settlement::sheet_rows(&mut book, "规则集");
    let ids: Vec<&str> = sets.iter().map(|r| r["规则集"].as_str()).collect();
    let mut expected = [july_set.as_str(), august_set.as_str()];
    expected.sort();
    assert_eq!(ids, [expected[0], expected[1], "合计"]);
    assert!(sets[0]["内容"].contains("\"lead_b\""), "{sets:?}");
}

#[tokio::test]
async fn a_promotion_after_the_close_does_not_re_gate_the_closed_month() {
    let (app, _clock, july) = july().await;
    // Without the A-class record 陈一 misses the target of 30 (5 points): the B pays nothing.
    say(&app, "wanggm", &format!("作废 #{} 合同作废", july.cs_a)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", dir.path(), &["--close", "--by", "财务张三"]).await;
    assert!(ok && text.contains("合计 350.00 元"), "{text}");
    // 陈一 becomes a confirmer, who has no department target: July as closed still
    // gated their B, and that is what it paid.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let promoted =
        config.replace("name = \"陈一\"\ndepartment = 21", "name = \"陈一\"\ndepartment = 21\nconfirmer = true");
    assert_ne!(config, promoted);
    std::fs::write(&app.config_path, promoted).unwrap();
    let (ok, text) = settle(&app, "2023-07", dir.path(), &[]).await;
    assert!(ok && text.contains("结账后没有影响本月金额的变动"), "{text}");
    let (ok, text) = settle(&app, "2023-08", dir.path(), &[]).await;
    assert!(!ok && text.contains("2023-08 没有可结算的记录"), "{text}");
}

#[tokio::test]
async fn a_close_while_the_database_is_busy_is_refused_in_chinese_and_changes_nothing() {
    let (app, _clock, _july) = july().await;
    // Another writer holds the database's write lock past the command's busy timeout.
    let holder = crate::binary::WriteLock::take(&app.database()).await;
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", "2023-07", "--close", "--by", "财务张三", "--out"])
        .arg(dir.path())
        .arg("--config")
        .arg(&app.config_path)
        .env("LEADBOARD_DATABASE__BUSY_TIMEOUT_MS", "200")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("错误：数据库正忙：服务正在写入") && stderr.contains("未做任何更改"), "{stderr}");
    holder.release().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM month_closes").await, 0);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "no file written");
}
