//! The monthly settlement, on a worked example month: a dozen people in Customer
//! Success, Talent Recruitment and other departments, every rule of the reward matrix,
//! targets met and missed, a voided and a pending record, a finalised PK, a referral.
//! Expected amounts are worked out by hand below and matched to the fen.

use crate::helpers::TestApp;
use crate::local_mode::BIN;
use calamine::{Reader, Xlsx};
use chrono::TimeZone;
use leadboard::clock::{ManualClock, TZ};
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
id = 3
name = "招商引才事业部"
parent = 1
kind = "tr"
[[directory.departments]]
id = 4
name = "行政部"
parent = 1
kind = "other"
[[directory.departments]]
id = 21
name = "客户成功一队"
parent = 2

[[directory.users]]
userid = "cs_a"
name = "陈一"
department = 21
employee_no = "CS-001"
[[directory.users]]
userid = "cs_b"
name = "陈二"
department = 2
[[directory.users]]
userid = "cs_boss"
name = "陈经理"
department = 2
level = "manager"
confirmer = true
[[directory.users]]
userid = "tr_a"
name = "吴一"
department = 3
employee_no = "TR-007"
[[directory.users]]
userid = "tr_b"
name = "吴二"
department = 3
[[directory.users]]
userid = "tr_boss"
name = "吴总监"
department = 3
level = "director"
confirmer = true
[[directory.users]]
userid = "ot_a"
name = "钱一"
department = 4
[[directory.users]]
userid = "ot_b"
name = "钱二"
department = 4
[[directory.users]]
userid = "ot_c"
name = "钱三"
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
[[directory.users]]
userid = "zhaovp"
name = "赵副总"
department = 1
level = "vp"

[roles]
admins = ["lisi"]
audit_group = ["wanggm", "zhaovp"]

[channels]
existing = ["杭州人才市场"]

# EXAMPLE AMOUNTS for the test.
[rewards.cs]
lead_b = 200
lead_a_percent = 1
[rewards.non_cs]
lead_c = 50
lead_b = 300
lead_a_percent = 2
[rewards.tr]
school_direct = 500
school_transfer = 300
agency_direct = 800
agency_transfer = 500
person_direct = 400
person_transfer = 250
placement_new_channel = 100
placement_old_channel = 60
placement_self = 80
[rewards.non_tr]
school_direct = 600
school_originator = 200
agency_direct = 1000
agency_originator = 300
person_direct = 450
person_originator = 150
[rewards.referral]
benefit = "次年服务费九折"

[targets]
cs = 5
tr = 10
[targets.people]
cs_b = 100
tr_b = 20

[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "2023-07-01"
end = "2023-07-15"
sponsorship = 500
chats = ["webhook:robot"]
[[contests.teams]]
name = "雄鹰队"
members = ["cs_a"]
[[contests.teams]]
name = "猎豹队"
members = ["cs_b"]
"#;

/// What each person should receive for July 2023, in fen, worked out by hand.
const EXPECTED: &[(&str, i64)] = &[
    // C 0 (CS members get nothing for C) + B 200 + A 1% × 100000 = 1000 + PK 700 (the
    // whole pool: stakes 100 + 100 + sponsorship 500, one-person winning team).
    ("cs_a", 190_000),
    // B 200, but the target of 100 points was not met (5): nothing. A voided B, a pending C.
    ("cs_b", 0),
    // C 50 + B 300 + A 2% × 50000 = 1000 + person channel transfer, originator 150.
    ("ot_a", 150_000),
    // School channel direct 600 + agency channel transfer, originator 300.
    ("ot_b", 90_000),
    // Person channel direct 450 + school transfer originator 200 + agency direct 1000;
    // the referral pays the reporter nothing (the old client gets the benefit).
    ("ot_c", 165_000),
    // School direct 500 + agency direct 800 + person direct 400 + agency closer 500 +
    // person closer 250 + placements: new channel 100, old channel 60, self-recruited 80
    // (base placements pay nothing). Target 10 met: school 10 + agency 10 + person 5 +
    // three counted placements 6 = 31.
    ("tr_a", 269_000),
    // School direct 500 and a school transfer closed 300, but the target of 20 was not
    // met (10): nothing.
    ("tr_b", 0),
];

pub async fn say(app: &TestApp, from: &str, text: &str) -> String {
    let answer = app.say(from, text).await.expect("a passive reply");
    assert!(!answer.contains("缺少") && !answer.contains("不认识"), "{from}: {text} → {answer}");
    answer
}

/// Reports and returns the record number.
pub async fn report(app: &TestApp, from: &str, text: &str) -> i64 {
    let answer = say(app, from, text).await;
    answer
        .split("已登记 #")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text} → {answer}"))
}

pub async fn confirm(app: &TestApp, by: &str, id: i64) {
    let answer = say(app, by, &format!("确认 #{id}")).await;
    assert!(answer.contains("已确认"), "{answer}");
}

/// A channel whose agreement is confirmed and whose base placements stay 3 days.
async fn valid_channel(app: &TestApp, reporter: &str, command: &str, placer: &str, base: usize) -> i64 {
    let id = report(app, reporter, command).await;
    confirm(app, "tr_boss", id).await;
    let name = command.split("名称=").nth(1).unwrap().split(' ').next().unwrap();
    for i in 0..base {
        place(app, placer, &format!("{name}工人{i}"), name).await;
    }
    id
}

async fn place(app: &TestApp, placer: &str, who: &str, channel: &str) -> i64 {
    let id = report(app, placer, &format!("上岗 姓名={who} 入职=2023-07-10 渠道={channel}")).await;
    let answer = say(app, "tr_boss", &format!("在岗 #{id}")).await;
    assert!(answer.contains("已确认"), "{answer}");
    id
}

/// Plays the month of July 2023 through chat.
async fn july() -> (TestApp, Arc<ManualClock>) {
    let clock =
        Arc::new(ManualClock::new(TZ.with_ymd_and_hms(2023, 7, 15, 10, 0, 0).unwrap().with_timezone(&chrono::Utc)));
    let app = TestApp::builder().config(ORG).clock(clock.clone()).spawn().await;
    // Customer Success.
    for stage in
        ["C类 公司=云帆 联系人=王", "B类 公司=云帆 约面=2023-07-20", "A类 公司=云帆 金额=100000 合同号=HT-2023-071"]
    {
        let id = report(&app, "cs_a", stage).await;
        confirm(&app, "cs_boss", id).await;
    }
    let b = report(&app, "cs_b", "B类 公司=星河 约面=2023-07-20").await;
    confirm(&app, "cs_boss", b).await;
    let voided = report(&app, "cs_b", "B类 公司=月亮 约面=2023-07-21").await;
    confirm(&app, "cs_boss", voided).await;
    say(&app, "wanggm", &format!("作废 #{voided} 重复报备")).await;
    report(&app, "cs_b", "C类 公司=待定 联系人=李").await; // pending
    // Others, client kinds.
    for stage in ["C类 公司=海洋 联系人=周", "B类 公司=海洋 约面=2023-07-22", "A类 公司=海洋 金额=50000"]
    {
        let id = report(&app, "ot_a", stage).await;
        confirm(&app, "cs_boss", id).await;
    }
    // Channels, every kind and mode.
    let school = report(&app, "ot_b", "院校渠道 名称=杭州职院").await;
    confirm(&app, "tr_boss", school).await;
    valid_channel(&app, "ot_b", "机构渠道 名称=好工作人力 方式=转接 接手=吴一", "tr_a", 3).await;
    valid_channel(&app, "ot_c", "个人渠道 名称=王师傅", "tr_b", 1).await;
    valid_channel(&app, "ot_a", "个人渠道 名称=赵师傅 方式=转接 接手=吴一", "tr_a", 1).await;
    valid_channel(&app, "ot_c", "机构渠道 名称=优才人力", "tr_b", 3).await;
    let transfer = report(&app, "ot_c", "院校渠道 名称=商业学院 方式=转接 接手=吴二").await;
    confirm(&app, "tr_boss", transfer).await;
    // A TR member's own agency and person channels, with their own base placements.
    valid_channel(&app, "tr_a", "机构渠道 名称=金牌人力", "tr_a", 3).await;
    valid_channel(&app, "tr_a", "个人渠道 名称=李师傅", "tr_a", 1).await;
    for (who, name) in [("tr_a", "技师学院"), ("tr_b", "职业中专")] {
        let id = report(&app, who, &format!("院校渠道 名称={name}")).await;
        confirm(&app, "tr_boss", id).await;
    }
    // Placements beyond base, through an old channel, and self-recruited.
    place(&app, "tr_a", "新渠道工人", "好工作人力").await;
    place(&app, "tr_a", "老渠道工人", "杭州人才市场").await;
    place(&app, "tr_a", "自招工人", "自招").await;
    // A referral.
    let referral = report(&app, "ot_c", "转介绍 老客户=云帆 新客户=星辰").await;
    confirm(&app, "cs_boss", referral).await;
    // The PK: finalised after its 17:00 cut-off.
    clock.set(TZ.with_ymd_and_hms(2023, 7, 15, 18, 0, 0).unwrap().with_timezone(&chrono::Utc));
    // `C类 公司=待定` is still pending: finalised without it, as the audit group decided.
    say(&app, "wanggm", "终审 比赛=客户开发PK 待定=不计").await;
    app.assert_counted_is_consistent().await;
    (app, clock)
}

/// Runs `leadboard settle` against the running service's database. Asynchronously: the
/// service shares this test's runtime and must keep running meanwhile.
async fn settle(app: &TestApp, month: &str, out: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", month, "--out"])
        .arg(out)
        .arg("--config")
        .arg(&app.config_path)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The CSV's rows, lines and roll-ups, each as `column → text`.
pub fn csv_rows(bytes: &[u8]) -> Vec<std::collections::BTreeMap<String, String>> {
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    reader.records().map(|row| header.iter().cloned().zip(row.unwrap().iter().map(str::to_owned)).collect()).collect()
}

/// The CSV's lines (行类型 明细), each as `column → text`.
pub fn csv_lines(bytes: &[u8]) -> Vec<std::collections::BTreeMap<String, String>> {
    csv_rows(bytes).into_iter().filter(|row| row["行类型"] == "明细").collect()
}

pub fn fen(yuan: &str) -> i64 {
    let (whole, frac) = yuan.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

/// `userid → fen` summed from the CSV's lines.
pub fn csv_totals(bytes: &[u8]) -> std::collections::BTreeMap<String, i64> {
    let mut totals = std::collections::BTreeMap::new();
    for line in csv_lines(bytes) {
        *totals.entry(line["账号"].clone()).or_insert(0) += fen(&line["金额(元)"]);
    }
    totals
}

/// A worksheet's rows as `column → cell text` (the header row names the columns).
pub fn sheet_rows(book: &mut Xlsx<std::io::BufReader<std::fs::File>>, name: &str) -> Vec<BTreeMap<String, String>> {
    let range = book.worksheet_range(name).unwrap();
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    rows.map(|r| header.iter().cloned().zip(r.iter().map(|c| c.to_string())).collect()).collect()
}

#[tokio::test]
async fn a_worked_month_pays_everyone_exactly_what_the_rules_say() {
    let (app, _clock) = july().await;
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;
    assert!(ok, "{text}");
    assert!(text.contains("还有 1 条记录待确认"), "{text}");
    // Confirmers and managers have no target unless one is configured for them.
    assert!(text.contains("未完成月度任务指标：陈二（5/100）、吴二（10/20）。"), "{text}");

    let csv = std::fs::read(out.path().join("settlement-2023-07.csv")).unwrap();
    let totals = csv_totals(&csv);
    for (userid, fen) in EXPECTED {
        assert_eq!(totals.get(*userid).copied().unwrap_or(0), *fen, "{userid}");
    }
    assert_eq!(totals.values().sum::<i64>(), 864_000);
    assert!(!totals.contains_key("cs_boss"), "the CSV lists lines only");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert!(text.contains("客户成功部员工 A类客户 成交额 100000.00 元 × 1%"), "the rule applied is shown");
    assert!(text.contains("未完成月度任务指标（差 95 分），不发放"));
    let lines = csv_lines(&csv);
    let pk = lines.iter().find(|l| l["类型"] == "PK奖金").expect("the PK payout");
    assert_eq!((pk["规则"].as_str(), pk["金额(元)"].as_str()), ("客户开发PK 第1名", "700.00"));
    assert_eq!((pk["确认日期"].as_str(), pk["确认人"].as_str()), ("2023-07-15", "王总"), "the 终审");
    assert!(!text.contains("月亮"), "the voided record is not paid");

    // The workbook agrees with the CSV.
    let mut book: Xlsx<_> = calamine::open_workbook(out.path().join("settlement-2023-07.xlsx")).unwrap();
    let people = sheet_rows(&mut book, "个人合计");
    let (total, people) = people.split_last().unwrap();
    assert_eq!((total["账号"].as_str(), total["金额(元)"].as_str()), ("合计", "8640"), "{total:?}");
    for row in people {
        let fen = (row["金额(元)"].parse::<f64>().unwrap() * 100.0).round() as i64;
        assert_eq!(totals.get(&row["账号"]).copied().unwrap_or(0), fen, "{row:?} in the workbook");
    }
    // Target, achieved, met, points still missing, amount: also for members with no line.
    let person = |userid: &str| -> Vec<String> {
        let row = people.iter().find(|r| r["账号"] == userid).unwrap_or_else(|| panic!("{userid}: {people:?}"));
        ["月度指标", "完成积分", "是否完成", "差额", "金额(元)"].iter().map(|c| row[*c].clone()).collect()
    };
    assert_eq!(person("cs_b"), ["100", "5", "未完成", "95", "0"]);
    assert_eq!(person("tr_b"), ["20", "10", "未完成", "10", "0"]);
    assert_eq!(person("tr_a"), ["10", "31", "完成", "0", "2690"], "a surplus is no gap");
    assert!(people.iter().all(|r| r["账号"] != "cs_boss" && r["账号"] != "tr_boss"), "no target, not listed");
    assert!(people.iter().all(|r| r["账号"] != "ot_a" || r["月度指标"].is_empty()), "no target outside CS and TR");
    let depts = sheet_rows(&mut book, "部门合计");
    let (total, depts) = depts.split_last().unwrap();
    assert_eq!(total["金额(元)"], "8640");
    let dept_sum: f64 =
        depts.iter().filter(|r| !r["部门"].is_empty()).map(|r| r["金额(元)"].parse::<f64>().unwrap()).sum();
    assert_eq!((dept_sum * 100.0).round() as i64, 864_000);
    let referrals = sheet_rows(&mut book, "转介绍");
    assert_eq!((referrals[0]["老客户"].as_str(), referrals[0]["新客户"].as_str()), ("云帆", "星辰"));
    assert_eq!(referrals[0]["老客户权益"], "次年服务费九折");
}

#[tokio::test]
async fn a_closer_who_moved_since_is_paid_as_from_the_department_they_closed_in() {
    let (app, _clock) = july().await;
    // 吴一 closed two transfers for Talent Recruitment, then moved to 行政部.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let moved = config.replace("name = \"吴一\"\ndepartment = 3", "name = \"吴一\"\ndepartment = 4");
    assert_ne!(config, moved);
    std::fs::write(&app.config_path, moved).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;
    assert!(ok, "{text}");
    let totals = csv_totals(&std::fs::read(out.path().join("settlement-2023-07.csv")).unwrap());
    let expected = EXPECTED.iter().find(|(userid, _)| *userid == "tr_a").unwrap().1;
    assert_eq!(totals.get("tr_a").copied(), Some(expected));
}

#[tokio::test]
async fn settling_twice_gives_the_same_csv_and_changed_rules_are_announced() {
    let (app, _clock) = july().await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(settle(&app, "2023-07", first.path(), &[]).await.0);
    let (ok, text) = settle(&app, "2023-07", second.path(), &[]).await;
    assert!(ok && !text.contains("奖励规则与本次不同"), "{text}");
    let read = |dir: &Path| std::fs::read(dir.join("settlement-2023-07.csv")).unwrap();
    assert_eq!(read(first.path()), read(second.path()), "byte-identical");

    // Other rules in the file than the service runs under (here an override it never
    // read) are not in force: the run says so and pays as before.
    let changed = [("LEADBOARD_REWARDS__NON_CS__LEAD_C", "60")];
    let third = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", third.path(), &changed).await;
    assert!(ok && text.contains("合计 8640.00 元"), "{text}");
    assert!(text.contains("尚未生效，本次按正在生效的规则集"), "{text}");
    assert_eq!(read(third.path()), read(first.path()), "paid as before");

    // Reloaded, they are in force for what is reported from now on: July's records keep
    // the rules they were reported under, and the run notes the earlier runs' rules.
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(&app.config_path, config.replacen("lead_c = 50", "lead_c = 60", 1)).unwrap();
    app.reloader.reload().await.expect("reloaded");
    for _ in 0..2 {
        let fourth = tempfile::tempdir().unwrap();
        let (ok, text) = settle(&app, "2023-07", fourth.path(), &[]).await;
        assert!(ok && text.contains("合计 8640.00 元") && !text.contains("尚未生效"), "{text}");
        assert!(text.contains("本月此前有 3 次结算时生效的奖励规则与本次不同："), "{text}");
        assert_eq!(
            text.matches("（合计 8640.00 元）").count(),
            3,
            "the runs under the rules now in force are not listed: {text}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM settlement_runs WHERE month = '2023-07'").await, 5);
}

#[tokio::test]
async fn bad_settlement_requests_are_refused_and_write_nothing() {
    let (app, _clock) = july().await;
    let out = tempfile::tempdir().unwrap();
    let cases = [
        ("2023-7", out.path().to_owned(), "月份格式应为 YYYY-MM"),
        ("July", out.path().to_owned(), "月份格式应为 YYYY-MM"),
        ("+202-01", out.path().to_owned(), "月份格式应为 YYYY-MM"),
        ("2023-+7", out.path().to_owned(), "月份格式应为 YYYY-MM"),
        ("2023-08", out.path().to_owned(), "2023-08 没有可结算的记录"),
        ("2023-07", out.path().join("missing"), "输出目录不存在"),
    ];
    for (month, dir, expected) in cases {
        let (ok, text) = settle(&app, month, &dir, &[]).await;
        assert!(!ok && text.contains(expected), "{month}: {text}");
    }
    // A directory that cannot be written to: a file in the way of the CSV's temp name.
    std::fs::create_dir(out.path().join("settlement-2023-07.csv.partial")).unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;
    assert!(!ok && text.contains("无法写入目录"), "{text}");
    let files: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "nothing but the obstacle: {files:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM settlement_runs").await, 0);

    // The CSV could go into place, the workbook cannot: neither does, and no run.
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir(out.path().join("settlement-2023-07.xlsx")).unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;
    assert!(!ok && text.contains("无法写入") && text.contains("settlement-2023-07.xlsx"), "{text}");
    assert_eq!(names_in(out.path()), ["settlement-2023-07.xlsx"], "nothing but the obstacle");
    assert_eq!(app.count("SELECT COUNT(*) FROM settlement_runs").await, 0);
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_failed_rerun_leaves_the_earlier_pair_as_it_was() {
    let (app, _clock) = july().await;
    let out = tempfile::tempdir().unwrap();
    assert!(settle(&app, "2023-07", out.path(), &[]).await.0);
    let read = |ext: &str| std::fs::read(out.path().join(format!("settlement-2023-07.{ext}"))).unwrap();
    let (csv, xlsx) = (read("csv"), read("xlsx"));
    // The earlier workbook cannot be set aside: the new CSV, already in place, is
    // taken back out and the earlier one put back.
    let obstacle = out.path().join("settlement-2023-07.xlsx.previous");
    std::fs::create_dir(&obstacle).unwrap();
    std::fs::write(obstacle.join("keep"), b"x").unwrap();

    let (ok, text) = settle(&app, "2023-07", out.path(), &[("LEADBOARD_REWARDS__NON_CS__LEAD_C", "60")]).await;

    assert!(!ok && text.contains("无法替换"), "{text}");
    assert_eq!((read("csv"), read("xlsx")), (csv, xlsx), "the earlier pair is untouched");
    assert_eq!(
        names_in(out.path()),
        ["settlement-2023-07.csv", "settlement-2023-07.xlsx", "settlement-2023-07.xlsx.previous"]
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM settlement_runs").await, 1, "only the first run is recorded");
}

#[tokio::test]
async fn under_the_highest_stage_rule_only_the_stage_that_counts_is_paid() {
    let clock =
        Arc::new(ManualClock::new(TZ.with_ymd_and_hms(2023, 7, 15, 10, 0, 0).unwrap().with_timezone(&chrono::Utc)));
    let config = format!("{ORG}\n[points]\nlead_stages = \"highest\"\n");
    let app = TestApp::builder().config(&config).clock(clock).spawn().await;
    // Others: C then B of one client. Customer Success: C and B of another, which makes
    // the target of 5 on B alone.
    let mut ids = Vec::new();
    for (who, stage) in [
        ("ot_a", "C类 公司=海洋 联系人=周"),
        ("ot_a", "B类 公司=海洋 约面=2023-07-22"),
        ("cs_a", "C类 公司=云帆 联系人=王"),
        ("cs_a", "B类 公司=云帆 约面=2023-07-20"),
    ] {
        let id = report(&app, who, stage).await;
        confirm(&app, "cs_boss", id).await;
        ids.push(id);
    }
    app.assert_counted_is_consistent().await;
    let mine = say(&app, "ot_a", "我的").await;
    assert!(mine.contains("已计入：5 分"), "{mine}");

    let out = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;

    assert!(ok, "{text}");
    let csv = std::fs::read(out.path().join("settlement-2023-07.csv")).unwrap();
    let totals = csv_totals(&csv);
    // B only: 300 for others, 200 for CS (target met with 5 points).
    assert_eq!(totals.get("ot_a"), Some(&30_000));
    assert_eq!(totals.get("cs_a"), Some(&20_000));
    let lines = String::from_utf8(csv[3..].to_vec()).unwrap();
    for outranked in [ids[0], ids[2]] {
        assert!(!lines.contains(&format!(",#{outranked},")), "#{outranked} does not count, so is not paid: {lines}");
    }
}

#[tokio::test]
async fn an_admin_gets_the_summary_and_the_file_in_chat() {
    let (app, _clock) = july().await;
    assert!(app.say("cs_a", "结算 2023-07").await.unwrap().contains("仅限结算中心或管理员使用"));
    let answer = say(&app, "lisi", "结算 月份=2023-07").await;
    assert!(answer.contains("2023-07 结算") && answer.contains("合计 8640.00 元"), "{answer}");
    assert!(answer.contains("settlement-2023-07.xlsx 随后发送"), "{answer}");
    app.drain().await;
    let uploads: Vec<_> = app
        .mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/cgi-bin/media/upload")
        .collect();
    assert_eq!(uploads.len(), 1);
    assert!(uploads[0].url.query().unwrap().contains("type=file"));
    let files: Vec<_> = app.api_calls("message/send").await.into_iter().filter(|m| m["msgtype"] == "file").collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["touser"], "lisi");
    assert!(files[0]["file"]["media_id"].as_str().unwrap().starts_with("MEDIA"));
}

/// `xl/worksheets/sheetN.xml` of a workbook (N counts from 1 in the order of the sheets).
fn sheet_xml(path: &Path, n: usize) -> String {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut xml = String::new();
    zip.by_name(&format!("xl/worksheets/sheet{n}.xml")).unwrap().read_to_string(&mut xml).unwrap();
    xml
}

#[tokio::test]
async fn the_files_are_ones_finance_can_pay_from() {
    let (app, _clock) = july().await;
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;
    assert!(ok, "{text}");

    let lines = csv_lines(&std::fs::read(out.path().join("settlement-2023-07.csv")).unwrap());
    assert!(lines.iter().all(|l| l["月份"] == "2023-07"), "a month column");
    // Lines that pay nothing are kept, after the paid ones.
    let unpaid = lines.iter().position(|l| l["金额(元)"] == "0.00").expect("unpaid lines are kept");
    assert!(lines[..unpaid].iter().all(|l| l["金额(元)"] != "0.00"));
    assert!(lines[unpaid..].iter().all(|l| l["金额(元)"] == "0.00"), "{:?}", &lines[unpaid..]);
    // Report and decision dates, who confirmed, the contract number, the 工号, where
    // the person sits.
    let a = lines.iter().find(|l| l["合同号"] == "HT-2023-071").expect("the A-class line");
    for (column, value) in [
        ("账号", "cs_a"),
        ("工号", "CS-001"),
        ("事业部", "客户成功事业部"),
        ("部门", "客户成功一队"),
        ("报备日期", "2023-07-15"),
        ("确认日期", "2023-07-15"),
        ("确认人", "陈经理"),
        ("金额(元)", "1000.00"),
    ] {
        assert_eq!(a[column], value, "{column}: {a:?}");
    }
    assert!(lines.iter().filter(|l| l["账号"] == "ot_a").all(|l| l["工号"].is_empty()), "no 工号, empty");
    // 方式 only where a record is reported with one.
    let modes = |kind: &str| -> Vec<&str> {
        lines.iter().filter(|l| l["类型"] == kind).map(|l| l["方式"].as_str()).collect()
    };
    assert!(modes("新增安置上岗").iter().all(|m| m.is_empty()) && !modes("新增安置上岗").is_empty());
    assert_eq!(modes("转介绍"), [""]);
    assert!(modes("新增机构渠道").contains(&"转接") && modes("C类客户").contains(&"直接"));

    let path = out.path().join("settlement-2023-07.xlsx");
    let mut book: Xlsx<_> = calamine::open_workbook(&path).unwrap();
    for (n, (name, first)) in
        [("个人合计", "账号"), ("部门合计", "事业部"), ("明细", "账号"), ("转介绍", "编号")].into_iter().enumerate()
    {
        let rows = sheet_rows(&mut book, name);
        assert_eq!(rows.last().unwrap()[first], "合计", "{name} ends with a total row");
        let xml = sheet_xml(&path, n + 1);
        assert!(
            xml.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#),
            "{name}: {xml}"
        );
        assert!(xml.contains("customWidth=\"1\""), "{name}: columns sized");
    }
    let widths = sheet_xml(&path, 3);
    let width = |col: usize| -> f64 {
        let tag = format!("<col min=\"{col}\" max=\"{col}\" width=\"");
        widths.split(&tag).nth(1).and_then(|w| w.split('"').next()).unwrap().parse().unwrap()
    };
    assert!(width(11) > 3.0 * width(1), "规则 is wider than 月份: {} vs {}", width(11), width(1));
    // By business unit, its departments beneath; each unit's total is its departments'.
    let units = sheet_rows(&mut book, "部门合计");
    let at = units.iter().position(|r| r["事业部"] == "客户成功事业部" && r["部门"].is_empty()).unwrap();
    let beneath: Vec<&str> =
        units[at + 1..].iter().take_while(|r| r["事业部"].is_empty()).map(|r| r["部门"].as_str()).collect();
    assert_eq!(beneath, ["客户成功一队", "客户成功事业部"]);
    let sum: f64 = units[at + 1..at + 3].iter().map(|r| r["金额(元)"].parse::<f64>().unwrap()).sum();
    assert_eq!(units[at]["金额(元)"].parse::<f64>().unwrap(), sum);
    assert!(units.iter().any(|r| r["事业部"] == "招商引才事业部"));
}

#[tokio::test]
async fn settle_lists_the_stakes_not_yet_paid_per_contest() {
    let (app, _clock) = july().await;
    let paid = say(&app, "lisi", "缴费 人员=陈一").await;
    assert!(paid.contains("为已缴"), "{paid}");
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = settle(&app, "2023-07", out.path(), &[]).await;
    assert!(ok, "{text}");
    assert!(text.contains("未缴PK金：客户开发PK 1 人 100.00 元"), "{text}");

    let mut book: Xlsx<_> = calamine::open_workbook(out.path().join("settlement-2023-07.xlsx")).unwrap();
    let stakes = sheet_rows(&mut book, "未缴PK金");
    let owed: Vec<[&str; 4]> = stakes
        .iter()
        .map(|r| [r["比赛"].as_str(), r["姓名"].as_str(), r["队伍"].as_str(), r["PK金(元)"].as_str()])
        .collect();
    assert_eq!(
        owed,
        [["客户开发PK", "陈二", "猎豹队", "100"], ["客户开发PK", "", "小计", "100"], ["合计", "", "", "100"]]
    );
    assert_eq!(stakes[1]["部门"], "1 人", "{stakes:?}");

    let rows = csv_rows(&std::fs::read(out.path().join("settlement-2023-07.csv")).unwrap());
    let owed: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|r| r["行类型"].starts_with("未缴PK金"))
        .map(|r| (r["行类型"].as_str(), r["账号"].as_str(), r["金额(元)"].as_str()))
        .collect();
    assert_eq!(owed, [("未缴PK金", "cs_b", "100.00"), ("未缴PK金合计", "", "100.00")]);
    assert!(rows.iter().any(|r| r["行类型"] == "未缴PK金" && r["规则"] == "客户开发PK 猎豹队"));
}
