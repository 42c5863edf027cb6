//! `leadboard backup`: the real binary copies the database of a running service while
//! callbacks are being written; the copy is intact, serves as a database, and restores
//! as the README says. Existing files and unusable directories are refused. These run
//! on SQLite whatever engine the suite runs on: on PostgreSQL the command refuses and
//! points at `pg_dump` (the last test).

use crate::helpers::TestApp;
use crate::local_mode::BIN;
use chrono::NaiveDateTime;
use leadboard::clock::TZ;
use leadboard::store::sql;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::path::Path;
use std::process::Output;
use tokio_util::sync::CancellationToken;

/// Runs `leadboard backup --config CONFIG [--out OUT]`.
async fn backup(config: &Path, out: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command.arg("backup").arg("--config").arg(config).env_remove("LEADBOARD_CONFIG");
    if let Some(out) = out {
        command.arg("--out").arg(out);
    }
    command.output().await.expect("leadboard runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn open(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new().filename(path).read_only(true).connect().await.expect("backup opens")
}

async fn inbox_rows(path: &Path) -> i64 {
    let mut conn = open(path).await;
    let rows = sql::query_scalar("SELECT COUNT(*) FROM inbox").fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    rows
}

/// Keeps saying things, from four senders at once, until told to stop; returns how many
/// messages were answered.
async fn keep_writing(app: &TestApp, stop: &CancellationToken) -> i64 {
    let sender = |who: &'static str| async move {
        let mut said = 0;
        while !stop.is_cancelled() {
            assert!(app.say(who, &format!("第{said}条")).await.is_some());
            said += 1;
        }
        said
    };
    let senders = ["zhangwei", "cs_lead", "tr_lead", "lina"].map(sender);
    futures::future::join_all(senders).await.into_iter().sum()
}

#[tokio::test]
async fn a_backup_taken_while_messages_are_written_is_intact_and_serves_its_rows() {
    let app = TestApp::builder().sqlite().spawn().await;
    app.say("zhangwei", "备份前").await;
    let backups = tempfile::tempdir().unwrap();
    let copy = backups.path().join("copy.db");

    let stop = CancellationToken::new();
    let taking_backup = async {
        let output = backup(&app.config_path, Some(&copy)).await;
        stop.cancel();
        output
    };
    let (written, output) = tokio::join!(keep_writing(&app, &stop), taking_backup);

    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(report.contains(&copy.display().to_string()) && report.contains("完整性检查通过"), "{report}");
    let mut conn = open(&copy).await;
    let check: String = sql::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(check, "ok");
    conn.close().await.unwrap();
    let copied = inbox_rows(&copy).await;
    assert!((1..=written + 1).contains(&copied), "{copied} rows copied of {} written", written + 1);

    let restored = TestApp::builder().database(&copy).spawn().await;
    assert_eq!(restored.count("SELECT COUNT(*) FROM inbox").await, copied, "the copy holds what it had");
    assert!(restored.say("zhangwei", "恢复后").await.is_some(), "a service on the copy answers");
    assert_eq!(restored.count("SELECT COUNT(*) FROM inbox").await, copied + 1);
}

#[tokio::test]
async fn restoring_a_backup_as_the_readme_says_brings_back_exactly_its_rows() {
    let app = TestApp::builder().sqlite().spawn().await;
    app.say("zhangwei", "备份前").await;
    let backups = tempfile::tempdir().unwrap();
    let copy = backups.path().join("copy.db");
    assert!(backup(&app.config_path, Some(&copy)).await.status.success());
    app.say("zhangwei", "备份后，恢复时丢弃").await;

    // Stop, copy the backup over the database file, remove stale -wal/-shm, start.
    let database = app.config_path.with_file_name("leadboard.db");
    let stopped = app.stop().await;
    std::fs::copy(&copy, &database).unwrap();
    for stale in ["leadboard.db-wal", "leadboard.db-shm"] {
        let _ = std::fs::remove_file(database.with_file_name(stale));
    }
    let app = TestApp::builder().restart_of(stopped).spawn().await;

    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
    assert!(app.say("zhangwei", "恢复后").await.is_some());
}

#[tokio::test]
async fn the_default_file_is_timestamped_in_shanghai_time_next_to_the_database() {
    let app = TestApp::builder().sqlite().spawn().await;
    let output = backup(&app.config_path, None).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let dir = app.config_path.parent().unwrap();
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("leadboard-backup-"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(text(&output.stdout).contains(&names[0]));
    let taken = NaiveDateTime::parse_from_str(&names[0], "leadboard-backup-%Y%m%d-%H%M%S.db").expect("timestamped");
    let now = chrono::Utc::now().with_timezone(&TZ).naive_local();
    assert!((now - taken).num_seconds().abs() < 60, "{taken} is not Shanghai time near {now}");
}

#[tokio::test]
async fn an_existing_output_file_is_refused_and_left_untouched() {
    let app = TestApp::builder().sqlite().spawn().await;
    let backups = tempfile::tempdir().unwrap();
    let existing = backups.path().join("copy.db");
    std::fs::write(&existing, "yesterday's backup").unwrap();

    let output = backup(&app.config_path, Some(&existing)).await;

    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("备份文件已存在"), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "yesterday's backup");
}

#[tokio::test]
async fn an_unusable_output_directory_is_refused_and_nothing_is_written() {
    let app = TestApp::builder().sqlite().spawn().await;
    let backups = tempfile::tempdir().unwrap();
    let not_a_directory = backups.path().join("notes.txt");
    std::fs::write(&not_a_directory, "").unwrap();

    let output = backup(&app.config_path, Some(&not_a_directory.join("copy.db"))).await;

    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("备份目录不存在"), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_dir(backups.path()).unwrap().count(), 1, "only notes.txt");
}

#[tokio::test]
async fn a_missing_database_is_refused_rather_than_created() {
    let config = TestApp::builder().sqlite().configure().await;
    let copy = config.dir.path().join("copy.db");

    let output = backup(&config.config_path, Some(&copy)).await;

    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("数据库文件不存在"), "{}", text(&output.stderr));
    assert!(!config.database.exists() && !copy.exists());
}

#[tokio::test]
async fn on_postgresql_the_backup_is_refused_and_points_at_pg_dump() {
    let config = TestApp::builder().configure().await;
    let out = config.dir.path().join("copy.db");
    let output = tokio::process::Command::new(BIN)
        .args(["backup", "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&config.config_path)
        .env_remove("LEADBOARD_CONFIG")
        .env("LEADBOARD_DATABASE__URL", "postgres://leadboard@127.0.0.1:1/leadboard")
        .output()
        .await
        .expect("leadboard runs");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("pg_dump"), "{}", text(&output.stderr));
    assert!(!out.exists());
}

/// The versions recorded in `_sqlx_migrations`, in order.
async fn applied_migrations(path: &Path) -> Vec<i64> {
    let mut conn = open(path).await;
    let versions =
        sql::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    versions
}

#[tokio::test]
async fn a_backup_leaves_an_older_schema_unmigrated() {
    // The database of an older service: every migration but the newest one.
    let config = TestApp::builder().sqlite().configure().await;
    let mut older = sqlx::migrate!("./migrations");
    let newest = older.migrations.iter().map(|m| m.version).max().expect("migrations exist");
    older.migrations = older.migrations.iter().filter(|m| m.version != newest).cloned().collect::<Vec<_>>().into();
    let options = SqliteConnectOptions::new().filename(&config.database).create_if_missing(true);
    let mut conn = options.connect().await.unwrap();
    older.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let before = applied_migrations(&config.database).await;
    let copy = config.dir.path().join("copy.db");

    let output = backup(&config.config_path, Some(&copy)).await;

    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(applied_migrations(&config.database).await, before, "the source is not migrated");
    assert_eq!(applied_migrations(&copy).await, before, "the copy is the database as it was");
    assert!(!before.contains(&newest));
}
