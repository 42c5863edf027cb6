//! `leadboard migrate-to-postgres` (issue 17): the real binary copies the SQLite database
//! of a real service (leads, confirmations, a contest, corrections, an appeal, outbox
//! rows, look-alike flags) into a fresh PostgreSQL database, and a service on it answers
//! 我的 and 排行 and writes the month's settlement exactly as before; the copy survives
//! `pg_dump -Fc` and `pg_restore` as deploy/README.md says. A source a service writes
//! to meanwhile is copied as one snapshot. A target with rows, a missing source, one
//! behind the latest migration and one with a table or column the target lacks are
//! refused with nothing copied; a table that reads back differently fails by name and
//! is rolled back. They need PostgreSQL: on SQLite alone they skip, saying so;
//! `.ci/run` runs them on PostgreSQL.

use crate::helpers::TestApp;
use crate::local_mode::BIN;
use leadboard::store::sql;
use leadboard::store::testing::fresh_postgres_database;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The PostgreSQL server, or None (and why the test skips).
fn server() -> Option<String> {
    crate::helpers::postgres_or_skip("migrating to PostgreSQL")
}

/// A client-development contest around today, two one-person CS teams.
fn contest() -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
sponsorship = 1000
split = "stake"
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
[[contests.teams]]
name = "猎豹队"
members = ["sunli"]
"#,
        start = today - chrono::Days::new(10),
        end = today + chrono::Days::new(10),
    )
}

/// An SQLite database (in the returned directory) of a stopped service that took one
/// report.
async fn source_with_a_report() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("source.db");
    let app = TestApp::builder().database(&file).spawn().await;
    say(&app, "zhangwei", "C类 公司=云帆 联系人=王").await;
    let _ = app.stop().await;
    (dir, file)
}

/// Runs `leadboard migrate-to-postgres ARGS`.
async fn migrate(args: &[&std::ffi::OsStr]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("migrate-to-postgres")
        .args(args)
        .env_remove("LEADBOARD_CONFIG")
        .output()
        .await
        .expect("leadboard runs")
}

async fn migrate_file(from: &Path, to: &str) -> Output {
    use std::ffi::OsStr;
    migrate(&[OsStr::new("--from"), from.as_os_str(), OsStr::new("--to"), OsStr::new(to)]).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

/// The number an accepted report answers with (`✅ 已登记 #12 …`).
fn number(answer: &str) -> i64 {
    answer
        .split("已登记 #")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not accepted: {answer}"))
}

/// A month of work on `app`: reports, confirmations typed and pressed, a rejection and
/// its appeal upheld, a withdrawal, an edit, a look-alike name, everything delivered.
async fn a_month_of_work(app: &TestApp) {
    let first = number(&say(app, "zhangwei", "C类 公司=云帆科技 联系人=王").await);
    let cards = app.cards_to("cs_lead").await;
    app.press("cs_lead", cards.last().expect("a confirmation card"), "确认").await;
    let second = number(&say(app, "zhangwei", "B类 公司=云帆科技 约面=01-01").await);
    say(app, "cs_lead", &format!("确认 #{second}")).await;
    let third = number(&say(app, "sunli", "C类 公司=星河传媒 联系人=李").await);
    say(app, "cs_lead2", &format!("确认 #{third}")).await;
    // A look-alike of the first client (flagged, not refused).
    let look_alike = number(&say(app, "sunli", "C类 公司=杭州云帆科技研究院 联系人=赵").await);
    say(app, "cs_lead", &format!("确认 #{look_alike}")).await;
    let edited = number(&say(app, "zhangwei", "C类 公司=远山物流 联系人=孙").await);
    say(app, "zhangwei", &format!("修改 #{edited} 联系人=钱")).await;
    say(app, "cs_lead", &format!("确认 #{edited}")).await;
    let withdrawn = number(&say(app, "sunli", "C类 公司=长河食品 联系人=周").await);
    say(app, "sunli", &format!("撤回 #{withdrawn} 重复了")).await;
    let rejected = number(&say(app, "zhangwei", "B类 公司=星河传媒 约面=01-02 10:00").await);
    say(app, "cs_lead", &format!("驳回 #{rejected} 未见约面记录")).await;
    say(app, "zhangwei", &format!("申诉 #{rejected} 约面属实，有聊天记录")).await;
    let cards = app.cards_to("wanggm").await;
    let appeal = cards.iter().rev().find(|c| c["main_title"]["title"].as_str().is_some_and(|t| t.starts_with("申诉")));
    app.press("wanggm", appeal.expect("the appeal's card"), "改判").await;
    say(app, "zhangwei", "C类 公司=青松教育 联系人=吴").await; // left pending
    app.drain().await;
    assert!(first > 0 && app.count("SELECT COUNT(*) FROM record_flags").await > 0, "a look-alike was flagged");
}

/// What people read: 我的 for both reporters, 排行 for the admin.
async fn answers(app: &TestApp) -> Vec<String> {
    vec![say(app, "zhangwei", "我的").await, say(app, "sunli", "我的").await, say(app, "lina", "排行").await]
}

/// The month's settlement CSV, written by the real binary for the service at `config`.
async fn settlement_csv(config: &Path, month: &str, out: &Path) -> Vec<u8> {
    std::fs::create_dir_all(out).unwrap();
    let output = tokio::process::Command::new(BIN)
        .args(["settle", "--month", month, "--out"])
        .arg(out)
        .arg("--config")
        .arg(config)
        .env_remove("LEADBOARD_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    std::fs::read(out.join(format!("settlement-{month}.csv"))).expect("the CSV")
}

async fn postgres(url: &str) -> PgConnection {
    url.parse::<PgConnectOptions>().unwrap().connect().await.expect("the target answers")
}

/// The number of tables in the target's schema.
async fn tables_in(url: &str) -> i64 {
    let mut conn = postgres(url).await;
    let n = sql::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    n
}

async fn count_in(url: &str, sql: &'static str) -> i64 {
    let mut conn = postgres(url).await;
    let n = sql::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    n
}

/// A source with a month of work, stopped; its answers and settlement before.
struct Source {
    dir: tempfile::TempDir,
    file: PathBuf,
    answers: Vec<String>,
    csv: Vec<u8>,
    month: String,
}

async fn source() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("source.db");
    // An explicit file: SQLite whatever engine the suite runs on.
    let app = TestApp::builder().database(&file).config(&contest()).spawn().await;
    a_month_of_work(&app).await;
    let month = app.today().format("%Y-%m").to_string();
    let answers = answers(&app).await;
    let csv = settlement_csv(&app.config_path, &month, &dir.path().join("before")).await;
    let _ = app.stop().await;
    Source { dir, file, answers, csv, month }
}

/// Where `pg_dump` and `pg_restore` are: on PATH, else Debian's server directory.
fn pg_tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    let debian = || {
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        dirs.sort_by_key(|d| d.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()));
        dirs.into_iter().rev().map(|d| d.join("bin").join(name)).find(|p| p.is_file())
    };
    on_path.or_else(debian).unwrap_or_else(|| panic!("{name} not found (Debian: apt-get install postgresql-client)"))
}

#[tokio::test]
async fn a_migrated_database_answers_and_settles_as_the_sqlite_one_did() {
    let Some(server) = server() else { return };
    let source = source().await;
    let sqlite_day_counts: i64 = {
        let mut conn = SqliteConnectOptions::new().filename(&source.file).read_only(true).connect().await.unwrap();
        let n = sql::query_scalar("SELECT COALESCE(SUM(n), 0) FROM contest_day_counts").fetch_one(&mut conn).await;
        conn.close().await.unwrap();
        n.unwrap()
    };
    let url = fresh_postgres_database(&server).await.unwrap();

    let output = migrate_file(&source.file, &url).await;

    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    let report = text(&output.stdout);
    assert!(report.trim_end().lines().last().is_some_and(|l| l.starts_with("迁移完成，校验一致")), "{report}");
    for heading in ["表", "源行数", "目标行数", "源校验和", "结果"] {
        assert!(report.contains(heading), "{heading}: {report}");
    }
    let records = report.lines().find(|l| l.starts_with("records ")).unwrap_or_else(|| panic!("{report}"));
    assert!(records.contains("一致") && !records.contains("不一致"), "{records}");
    assert!(!report.lines().any(|l| l.starts_with("_sqlx_migrations ") || l.starts_with("write_probe ")), "{report}");
    // Triggers were off for the copy: the kept day counts are the source's, not twice.
    assert_eq!(count_in(&url, "SELECT COALESCE(SUM(n), 0)::BIGINT FROM contest_day_counts").await, sqlite_day_counts);
    assert!(sqlite_day_counts > 0);

    let app = TestApp::builder().replica_on(&url).config(&contest()).spawn().await;
    assert_eq!(answers(&app).await, source.answers, "我的 and 排行 read the same");
    let csv = settlement_csv(&app.config_path, &source.month, &source.dir.path().join("after")).await;
    assert_eq!(text(&csv), text(&source.csv), "the settlement is the same");
    // The sequences continue after the copied rows.
    let max_id = app.count("SELECT MAX(id) FROM records").await;
    let next = number(&say(&app, "zhangwei", "C类 公司=新桥文化 联系人=郑").await);
    assert_eq!(next, max_id + 1);
    let before = source.answers.clone();
    let _ = app.stop().await;

    // Backup and restore as deploy/README.md says: pg_dump -Fc, pg_restore into a new
    // database, and a service on it reads what was there.
    let dump = source.dir.path().join("leadboard.dump");
    let dumped = std::process::Command::new(pg_tool("pg_dump"))
        .args(["-Fc", "--no-owner", "-f"])
        .arg(&dump)
        .arg(&url)
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{}", text(&dumped.stderr));
    let restored_url = fresh_postgres_database(&server).await.unwrap();
    let restored = std::process::Command::new(pg_tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "-d", &restored_url])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    let app = TestApp::builder().replica_on(&restored_url).config(&contest()).spawn().await;
    assert_eq!(app.count("SELECT MAX(id) FROM records").await, next, "the restore holds the record added after");
    let mine = say(&app, "sunli", "我的").await;
    assert_eq!(mine, before[1], "sunli's 我的 is unchanged by zhangwei's new report");
    let after_restore = number(&say(&app, "zhangwei", "C类 公司=白鹭设计 联系人=冯").await);
    assert_eq!(after_restore, next + 1, "the restored sequences continue");
}

#[tokio::test]
async fn a_target_with_rows_is_refused_and_left_as_it_was() {
    let Some(server) = server() else { return };
    let (_dir, file) = source_with_a_report().await;
    let url = fresh_postgres_database(&server).await.unwrap();
    let first = migrate_file(&file, &url).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let events = count_in(&url, "SELECT COUNT(*) FROM events").await;

    let again = migrate_file(&file, &url).await;

    assert_eq!(again.status.code(), Some(2), "{}{}", text(&again.stdout), text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(stderr.contains("不是空的") && stderr.contains("records"), "{stderr}");
    assert_eq!(count_in(&url, "SELECT COUNT(*) FROM records").await, 1);
    assert_eq!(count_in(&url, "SELECT COUNT(*) FROM events").await, events);
}

#[tokio::test]
async fn a_missing_source_is_refused_and_nothing_is_written() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database(&server).await.unwrap();

    let output = migrate_file(&dir.path().join("missing.db"), &url).await;

    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("源数据库文件不存在"), "{}", text(&output.stderr));
    assert!(!dir.path().join("missing.db").exists(), "the source is not created");
    assert_eq!(tables_in(&url).await, 0, "the target is untouched");
}

#[tokio::test]
async fn a_source_behind_the_latest_migration_is_refused_and_left_unmigrated() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("older.db");
    let mut older = sqlx::migrate!("./migrations");
    let newest = older.migrations.iter().map(|m| m.version).max().expect("migrations exist");
    older.migrations = older.migrations.iter().filter(|m| m.version != newest).cloned().collect::<Vec<_>>().into();
    let mut conn = SqliteConnectOptions::new().filename(&file).create_if_missing(true).connect().await.unwrap();
    older.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let url = fresh_postgres_database(&server).await.unwrap();

    let output = migrate_file(&file, &url).await;

    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("不是最新版本") && stderr.contains(&format!("{newest:04}")), "{stderr}");
    assert_eq!(tables_in(&url).await, 0, "the target is untouched");
    let mut conn = SqliteConnectOptions::new().filename(&file).read_only(true).connect().await.unwrap();
    let applied: i64 = sql::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = ?")
        .bind(newest)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(applied, 0, "the source is not migrated");
}

#[tokio::test]
async fn a_table_that_does_not_read_back_as_copied_fails_by_name_and_leaves_no_rows() {
    let Some(server) = server() else { return };
    let (_dir, file) = source_with_a_report().await;
    // A target whose people table changes what is written into it, even with the
    // copy's triggers off (ENABLE ALWAYS): what is read back differs from the source.
    let url = fresh_postgres_database(&server).await.unwrap();
    let db = leadboard::store::Db::open_postgres(&url, std::time::Duration::from_secs(5)).await.unwrap();
    db.close().await;
    let mut conn = postgres(&url).await;
    for statement in [
        "CREATE FUNCTION garble() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := NEW.name || '·'; RETURN NEW; END $$",
        "CREATE TRIGGER garble BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION garble()",
        "ALTER TABLE people ENABLE ALWAYS TRIGGER garble",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let output = migrate_file(&file, &url).await;

    assert_eq!(output.status.code(), Some(1), "{}{}", text(&output.stdout), text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("校验不一致") && stderr.contains("people"), "{stderr}");
    let people = text(&output.stdout).lines().find(|l| l.starts_with("people ")).map(str::to_owned);
    assert!(people.as_deref().is_some_and(|l| l.ends_with("不一致")), "{people:?}");
    assert_eq!(count_in(&url, "SELECT COUNT(*) FROM people").await, 0, "rolled back");
    assert_eq!(count_in(&url, "SELECT COUNT(*) FROM records").await, 0, "rolled back");
}

#[tokio::test]
async fn a_source_written_to_during_the_copy_is_copied_as_one_snapshot() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("source.db");
    let app = TestApp::builder().database(&file).spawn().await;
    say(&app, "zhangwei", "迁移前").await;
    let url = fresh_postgres_database(&server).await.unwrap();

    // Four senders keep the service writing until the migration is done.
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = |who: &'static str| {
        let (app, stop) = (&app, &stop);
        async move {
            let mut said = 0;
            while !stop.is_cancelled() {
                assert!(app.say(who, &format!("第{said}条")).await.is_some());
                said += 1;
            }
            said
        }
    };
    let migrating = async {
        let output = migrate_file(&file, &url).await;
        stop.cancel();
        output
    };
    let writers = futures::future::join_all(["zhangwei", "cs_lead", "tr_lead", "lina"].map(sender));
    let (written, output) = tokio::join!(writers, migrating);
    let written: i64 = written.into_iter().sum();

    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stdout).contains("迁移完成，校验一致"));
    let copied = count_in(&url, "SELECT COUNT(*) FROM inbox").await;
    assert!((1..=written + 1).contains(&copied), "{copied} callbacks copied of {} answered", written + 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, written + 1, "the service kept answering");
}

#[tokio::test]
async fn a_source_table_or_column_without_a_home_in_the_target_is_refused_by_name() {
    let Some(server) = server() else { return };
    let (_dir, file) = source_with_a_report().await;
    let change = |statement: &'static str| {
        let file = file.clone();
        async move {
            let mut conn = SqliteConnectOptions::new().filename(&file).connect().await.unwrap();
            sql::query(statement).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    };

    // A column someone added by hand.
    change("ALTER TABLE people ADD COLUMN nickname TEXT").await;
    let url = fresh_postgres_database(&server).await.unwrap();
    let output = migrate_file(&file, &url).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("源表 people 的列 nickname 在目标数据库中没有对应的列"), "{stderr}");
    assert_eq!(count_in(&url, "SELECT COUNT(*) FROM records").await, 0, "no rows copied");

    // A table someone added by hand.
    change("ALTER TABLE people DROP COLUMN nickname").await;
    change("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)").await;
    let url = fresh_postgres_database(&server).await.unwrap();
    let output = migrate_file(&file, &url).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("源表 notes 在目标数据库中没有对应的表"), "{stderr}");
    assert_eq!(count_in(&url, "SELECT COUNT(*) FROM people").await, 0, "no rows copied");
}
