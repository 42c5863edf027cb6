//! `leadboard backup [--out FILE]`: a consistent copy of the database, taken while the
//! service runs, verified with `PRAGMA integrity_check` before it is reported. The
//! default file is `leadboard-backup-YYYYMMDD-HHMMSS.db` (Asia/Shanghai) next to the
//! database file. An existing file is never overwritten; on any failure the partial
//! copy is removed. The database is only read: it is neither created nor migrated.

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::store::backup;
use anyhow::{Context, bail};
use chrono::DateTime;
use chrono_tz::Tz;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Backs up the configured database to `out` (or the default file) and prints the
/// path and size written.
pub async fn run(settings: &Settings, out: Option<PathBuf>) -> anyhow::Result<()> {
    if settings.is_postgres() {
        bail!("数据库在 PostgreSQL 上：请用 pg_dump 或服务器的时间点恢复备份（见 deploy/README.md）");
    }
    let source = settings.database_path();
    if !source.is_file() {
        bail!("数据库文件不存在：{}（请检查 database.url 或当前目录）", source.display());
    }
    let out = out.unwrap_or_else(|| default_path(&source, SystemClock.now_local()));
    // Absolute, so that SQLite never reads the name as a `file:` URI.
    let out = std::path::absolute(&out).with_context(|| format!("无效的备份路径：{}", out.display()))?;
    reserve(&out)?;
    let copied = copy(settings, &source, &out).await;
    if copied.is_err() {
        let _ = std::fs::remove_file(&out);
    }
    let size = copied?;
    crate::cli::line(format!("已备份到 {}（{}，完整性检查通过）", out.display(), human_size(size)));
    Ok(())
}

/// `leadboard-backup-YYYYMMDD-HHMMSS.db` in the database file's directory.
pub fn default_path(database: &Path, now: DateTime<Tz>) -> PathBuf {
    let name = format!("leadboard-backup-{}.db", now.format("%Y%m%d-%H%M%S"));
    database.parent().unwrap_or(Path::new("")).join(name)
}

/// Creates the output file empty (as `VACUUM INTO` accepts it), refusing an existing
/// file or an unusable directory before anything is written.
fn reserve(out: &Path) -> anyhow::Result<()> {
    let dir = out.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        bail!("备份目录不存在：{}", dir.display());
    }
    match OpenOptions::new().write(true).create_new(true).open(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            bail!("备份文件已存在：{}（不会覆盖，请用 --out 指定新文件）", out.display())
        }
        Err(e) => bail!("无法在目录 {} 中写入备份：{e}", dir.display()),
    }
}

/// Copies, flushes and verifies; returns the size of the copy in bytes.
async fn copy(settings: &Settings, source: &Path, out: &Path) -> anyhow::Result<u64> {
    let busy_timeout = Duration::from_millis(settings.database.busy_timeout_ms);
    backup::vacuum_into(source, out, busy_timeout)
        .await
        .with_context(|| format!("无法备份数据库 {}", source.display()))?;
    // `VACUUM INTO` does not sync the new file; a backup must survive a power cut.
    std::fs::File::open(out).and_then(|f| f.sync_all()).context("无法将备份写入磁盘")?;
    let problems = backup::integrity_check(out).await.context("无法检查备份文件")?;
    if !problems.is_empty() {
        bail!("备份文件未通过完整性检查：{}", problems.join("；"));
    }
    Ok(std::fs::metadata(out).context("无法读取备份文件大小")?.len())
}

/// `532 字节`, `12.5 KiB`, `3.0 MiB`, `1.2 GiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} 字节");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TZ;
    use chrono::TimeZone;

    #[test]
    fn the_default_file_is_named_in_shanghai_time_next_to_the_database() {
        let now = TZ.with_ymd_and_hms(2026, 11, 28, 18, 30, 0).unwrap();
        let path = default_path(Path::new("/srv/leadboard/leadboard.db"), now);
        assert_eq!(path, Path::new("/srv/leadboard/leadboard-backup-20261128-183000.db"));
    }

    #[test]
    fn a_bare_database_file_name_puts_the_backup_in_the_current_directory() {
        let now = TZ.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(default_path(Path::new("leadboard.db"), now), Path::new("leadboard-backup-20260102-030405.db"));
    }

    #[test]
    fn sizes_read_as_bytes_or_binary_units() {
        assert_eq!(human_size(532), "532 字节");
        assert_eq!(human_size(12_800), "12.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
