//! A full or read-only disk under the running binary (issue 15, point 8): callbacks are
//! answered 5xx (WeCom sends them again), `/healthz` says unhealthy while writes fail,
//! nothing is half-written, and the service recovers by itself once it can write
//! again. The disks are real: a small tmpfs filled to ENOSPC and freed, and an ext4
//! image whose database files are made immutable and writable again.
//!
//! Mounting needs root: without it the tests say so and pass, unless
//! `LEADBOARD_REQUIRE_ROOT` is set (`.ci/run` sets it).

use crate::binary::Binary;
use crate::crash::{Load, check, drained, start};
use crate::helpers::{Configured, TestApp, within};
use crate::wecom_api::RecordingWecom;
use leadboard::store::sql;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Whether the tests can mount file systems; panics when root is required but absent.
fn can_mount(test: &str) -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        assert!(
            std::env::var_os("LEADBOARD_REQUIRE_ROOT").is_none(),
            "{test} needs root (LEADBOARD_REQUIRE_ROOT is set)"
        );
        eprintln!("skipped {test}: mounting a file system needs root (set LEADBOARD_REQUIRE_ROOT to fail instead)");
    }
    root
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A file system mounted for one test, unmounted when dropped.
struct Mounted {
    dir: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills the file system at `dir` until ENOSPC; the filler file is returned.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 4096];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_data()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => return path,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
}

/// The service's configuration with its database in `dir`.
async fn configured(dir: &Path) -> Configured {
    TestApp::builder().unique_credentials().database(&dir.join("leadboard.db")).configure().await
}

async fn healthz(service: &Binary) -> u16 {
    let r = reqwest::get(format!("{}/healthz", service.url)).await.expect("healthz answers");
    r.status().as_u16()
}

async fn integrity(database: &Path) {
    let mut db = crate::binary::read_only(database).await;
    let result: String = sql::query_scalar("PRAGMA integrity_check").fetch_one(&mut db).await.unwrap();
    assert_eq!(result, "ok");
}

/// When the disk is broken: while idle, or once callbacks were answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    Idle,
    Busy,
}

/// Sends the load in the background, resending until answered; `fail` breaks the disk
/// (before the load, or once 50 callbacks were answered); returns once callbacks are
/// refused and `/healthz` says so.
async fn while_writes_fail(
    service: &Binary,
    load: &std::sync::Arc<Load>,
    when: When,
    fail: impl FnOnce(),
) -> tokio::task::JoinHandle<()> {
    let mut fail = Some(fail);
    if when == When::Idle {
        fail.take().unwrap()();
    }
    let sending = tokio::spawn({
        let load = load.clone();
        async move { load.run(4).await }
    });
    if let Some(fail) = fail {
        within(Duration::from_secs(30), "callbacks answered", || async { load.acked() >= 50 }).await;
        fail();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while load.refused.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "callbacks not refused ({} of {} answered); the service logged:\n{}",
            load.acked(),
            load.total,
            service.tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    within(Duration::from_secs(10), "/healthz unhealthy", || async { healthz(service).await == 503 }).await;
    sending
}

/// A tmpfs of `size` mounted in a fresh directory.
fn tmpfs(root: &Path, size: &str) -> (PathBuf, Mounted) {
    let dir = root.join("disk");
    std::fs::create_dir(&dir).unwrap();
    run("mount", &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str().unwrap()]);
    (dir.clone(), Mounted { dir })
}

/// Reports arrive while `fail` makes the database's disk refuse writes, until `repair`
/// is called: every callback is answered in the end, each with one effect, without a
/// restart.
async fn through_a_failing_disk(
    dir: &Path,
    when: When,
    fail: impl FnOnce(&Path),
    repair: impl FnOnce(&Path),
    what: &str,
) {
    let config = configured(dir).await;
    let wecom = RecordingWecom::start(Duration::from_secs(3)).await;
    let service = start(&config, &wecom, &[]).await;
    let load = Load::reports(config.peer(), 300, true);
    *load.target.write().unwrap() = service.url.clone();

    let sending = while_writes_fail(&service, &load, when, || fail(dir)).await;
    let acked_while_failing = load.acked();
    repair(dir);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !load.done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} callbacks answered after the disk was repaired; the service logged:\n{}",
            load.acked(),
            load.total,
            service.tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sending.await.unwrap();
    within(Duration::from_secs(10), "/healthz healthy", || async { healthz(&service).await == 200 }).await;
    // Paced: a confirmer past 30 messages in a minute waits for the minute to pass.
    drained(&config.database, Duration::from_secs(180)).await;
    let (status, _) = service.stop().await;
    assert!(status.success());
    integrity(&config.database).await;
    let figures = check(&config.database, &load, &wecom).await;
    println!(
        "{what}: {} callbacks, {acked_while_failing} answered when writes began to fail, {} refusals (5xx); \
         {} records, outbox {} rows delivered once",
        figures.callbacks,
        load.refused.load(std::sync::atomic::Ordering::SeqCst),
        figures.records,
        figures.outbox_rows
    );
}

#[tokio::test]
async fn on_a_full_disk_callbacks_are_refused_and_the_service_recovers_when_space_returns() {
    if !can_mount("on_a_full_disk_callbacks_are_refused_and_the_service_recovers_when_space_returns") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, _mounted) = tmpfs(root.path(), "8m");
    let filler = dir.join("filler");
    through_a_failing_disk(
        &dir,
        When::Busy,
        |d| assert_eq!(fill(d), filler),
        |_| std::fs::remove_file(&filler).unwrap(),
        "full disk",
    )
    .await;
}

/// An ext4 image of `size` mounted (through a loop device) in a fresh directory.
fn ext4(root: &Path, size: &str) -> (PathBuf, Mounted) {
    let image = root.join("disk.img");
    run("truncate", &["-s", size, image.to_str().unwrap()]);
    run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
    let dir = root.join("disk");
    std::fs::create_dir(&dir).unwrap();
    run("mount", &["-o", "loop,errors=remount-ro", image.to_str().unwrap(), dir.to_str().unwrap()]);
    (dir.clone(), Mounted { dir })
}

/// Sets or clears the immutable flag of the database's files: on ext4 writes through
/// the open files fail (EPERM), as on a read-only disk. (`mount -o remount,ro` is
/// refused while the database is open for writing.)
fn immutable(dir: &Path, on: bool) {
    let files = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    for path in files.filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("leadboard.db"))) {
        run("chattr", &[if on { "+i" } else { "-i" }, path.to_str().unwrap()]);
    }
    run("chattr", &[if on { "+i" } else { "-i" }, dir.to_str().unwrap()]);
}

#[tokio::test]
async fn on_read_only_files_callbacks_are_refused_and_the_service_recovers_when_they_are_writable() {
    if !can_mount("on_read_only_files_callbacks_are_refused_and_the_service_recovers_when_they_are_writable") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, _mounted) = ext4(root.path(), "32M");
    // Made immutable while nothing is being written: a write in flight when the flag
    // is set can leave the kernel's fsync hanging (a test artifact, not the service's).
    through_a_failing_disk(&dir, When::Idle, |d| immutable(d, true), |d| immutable(d, false), "read-only files").await;
}

/// The loop device under `dir` (`loop3`), from `/proc/mounts`.
fn loop_device(dir: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let dir = dir.canonicalize().unwrap();
    let line = mounts.lines().find(|l| l.split(' ').nth(1) == dir.to_str()).expect("mounted");
    line.split(' ').next().unwrap().trim_start_matches("/dev/").to_owned()
}

#[tokio::test]
async fn when_the_disk_turns_read_only_on_an_error_callbacks_are_refused_and_a_restart_after_repair_loses_nothing() {
    if !can_mount(
        "when_the_disk_turns_read_only_on_an_error_callbacks_are_refused_and_a_restart_after_repair_loses_nothing",
    ) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, mounted) = ext4(root.path(), "32M");
    let device = loop_device(&dir);
    let config = configured(&dir).await;
    let wecom = RecordingWecom::start(Duration::from_secs(3)).await;
    let mut service = start(&config, &wecom, &[]).await;
    let load = Load::reports(config.peer(), 300, true);
    *load.target.write().unwrap() = service.url.clone();

    // What a failing disk does: ext4 meets an error and turns itself read-only
    // (errors=remount-ro); it stays so until it is checked and mounted again.
    let trigger = format!("/sys/fs/ext4/{device}/trigger_fs_error");
    let fail = || std::fs::write(&trigger, "1\n").expect("ext4 error triggered");
    let sending = while_writes_fail(&service, &load, When::Busy, fail).await;
    let acked_while_failing = load.acked();
    assert!(service.alive(), "the service keeps running on a read-only disk");
    service.kill().await;

    drop(mounted);
    let image = root.path().join("disk.img");
    let checked = Command::new("e2fsck").args(["-f", "-y"]).arg(&image).output().unwrap();
    assert!(checked.status.code().is_some_and(|c| c <= 1), "e2fsck: {checked:?}");
    run("mount", &["-o", "loop", image.to_str().unwrap(), dir.to_str().unwrap()]);
    let _mounted = Mounted { dir: dir.clone() };
    service = start(&config, &wecom, &[]).await;
    *load.target.write().unwrap() = service.url.clone();
    within(Duration::from_secs(60), "every callback answered after the restart", || async { load.done() }).await;
    sending.await.unwrap();
    // Paced: a confirmer past 30 messages in a minute waits for the minute to pass.
    drained(&config.database, Duration::from_secs(180)).await;
    let (status, _) = service.stop().await;
    assert!(status.success());
    integrity(&config.database).await;
    let figures = check(&config.database, &load, &wecom).await;
    println!(
        "read-only disk: {} callbacks, {acked_while_failing} answered when writes began to fail, {} refusals (5xx); \
         {} records, outbox {} rows delivered once",
        figures.callbacks,
        load.refused.load(std::sync::atomic::Ordering::SeqCst),
        figures.records,
        figures.outbox_rows
    );
}

/// ext4 turned read-only by an error does not say so in `statvfs` (its emergency
/// read-only state), and an `fdatasync` racing the error can return success for a
/// commit the repair drops (RELIABILITY.md): the service asks the file system for a
/// metadata change after each commit and for `/healthz`, and that fails at once.
#[tokio::test]
async fn an_ext4_error_while_idle_shows_in_healthz_at_once_though_statvfs_says_writable() {
    if !can_mount("an_ext4_error_while_idle_shows_in_healthz_at_once_though_statvfs_says_writable") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, _mounted) = ext4(root.path(), "32M");
    let device = loop_device(&dir);
    let config = configured(&dir).await;
    let wecom = RecordingWecom::start(Duration::from_secs(3)).await;
    let service = start(&config, &wecom, &[]).await;
    assert_eq!(healthz(&service).await, 200);

    std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "1\n").expect("ext4 error triggered");
    let fs = rustix::fs::statvfs(&dir).unwrap();
    assert!(!fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY), "statvfs says writable");
    assert_eq!(healthz(&service).await, 503, "no callback has failed yet: only the probe can tell");
    service.kill().await;
}
