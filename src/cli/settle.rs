//! `leadboard settle --month YYYY-MM [--out DIR] [--close [--by NAME] [--force]]`: the
//! monthly settlement files, by default in `exports/` beside the database
//! (`data/exports/` in local mode); with `--close`, the month is closed (paid) too.

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::month::Month;
use crate::service::settlement::{self, compute};
use crate::state::AppState;
use anyhow::{Context, anyhow, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `--close`: who closes, and whether pending records may be left behind.
#[derive(Debug)]
pub struct Close {
    pub by: Option<String>,
    pub force: bool,
}

pub async fn run(settings: Settings, month: &str, out: Option<PathBuf>, close: Option<Close>) -> anyhow::Result<()> {
    let month = parse_month(month)?;
    let closer = close.as_ref().map(|c| closer(c.by.as_deref())).transpose()?;
    let dir = match out {
        Some(dir) if !dir.is_dir() => bail!("输出目录不存在：{}", dir.display()),
        Some(dir) => dir,
        None => {
            let dir = default_dir(&settings.database_path());
            std::fs::create_dir_all(&dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
            dir
        }
    };
    let state = AppState::new(settings, Arc::new(SystemClock)).await?;
    let mut tx = state.db.begin().await?;
    let now = state.clock.now_ms();
    let settings = state.settings();
    let report = match (&close, &closer) {
        (Some(close), Some(by)) => settlement::close(&mut tx, &settings, month, by, close.force, now).await?,
        _ => compute(&mut tx, &settings, month, now).await?,
    };
    if report.is_empty() {
        bail!("{month} 没有可结算的记录（已确认的记录、PK奖金或转介绍都没有；待确认 {} 条）。", report.pending);
    }
    // Both files, the run's record, or none of them: on any error below, what was done
    // is undone as the staged files, the published files and the transaction drop.
    let staged = settlement::stage(&dir, &report.file_stem(), &report.csv()?, &report.xlsx()?)?;
    report.record(&mut tx, closer.as_deref().unwrap_or("cli"), now).await?;
    let published = staged.publish()?;
    tx.commit().await?;
    let paths = published.keep();
    crate::cli::line(report.summary());
    for path in paths {
        crate::cli::line(format!("已写入 {}", path.display()));
    }
    Ok(())
}

/// Who closes the month: `--by`, else the operating-system user. Never a guess: without
/// either, closing is refused.
fn closer(by: Option<&str>) -> anyhow::Result<String> {
    let named = by.map(str::trim).map(str::to_owned);
    let os = || ["USER", "USERNAME"].iter().find_map(|v| std::env::var(v).ok()).map(|u| u.trim().to_owned());
    match named.or_else(os) {
        Some(by) if !by.is_empty() && by.chars().count() <= 64 && !by.chars().any(char::is_control) => Ok(by),
        Some(by) if !by.is_empty() => bail!("结账人“{by}”不可用：最多 64 个字符，不能含控制字符"),
        _ => bail!("无法确定结账人：请用 --by 指明谁结账（例如 --by 张会计）"),
    }
}

/// `exports/` in the database file's directory (`data/exports` in local mode): beside
/// the data the files come from, not wherever the command happens to run.
pub fn default_dir(database: &Path) -> PathBuf {
    database.parent().unwrap_or(Path::new("")).join("exports")
}

/// `YYYY-MM` only, in ASCII digits: a file name and a month for finance must not be
/// guessed. The month itself is read by `Month::parse`, as the chat's `结算 月份=` is.
pub fn parse_month(text: &str) -> anyhow::Result<Month> {
    let shaped =
        text.len() == 7 && text.bytes().enumerate().all(|(i, b)| if i == 4 { b == b'-' } else { b.is_ascii_digit() });
    shaped.then(|| Month::parse(text)).flatten().ok_or_else(|| {
        let example = Month::of(SystemClock.now_local().date_naive());
        anyhow!("月份格式应为 YYYY-MM，例如 {example}（收到“{text}”）")
    })
}

#[cfg(test)]
mod tests {
    use super::parse_month;

    #[test]
    fn only_four_and_two_ascii_digits_make_a_month() {
        assert_eq!(parse_month("2023-07").unwrap().to_string(), "2023-07");
        for bad in
            ["+202-01", "2023-+7", "2023-7", "2023/07", "２０２３-07", "2023-13", "2023-00", "-023-01", "2023-07 "]
        {
            let error = parse_month(bad).expect_err(bad).to_string();
            assert!(error.contains("月份格式应为 YYYY-MM"), "{bad}: {error}");
        }
    }
}
