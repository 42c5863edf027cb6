//! `leadboard settle --month YYYY-MM [--out DIR]`: the monthly settlement files, by
//! default in `exports/` beside the database (`data/exports/` in local mode).

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::month::Month;
use crate::service::settlement::{self, compute};
use crate::state::AppState;
use anyhow::{Context, anyhow, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub async fn run(settings: Settings, month: &str, out: Option<PathBuf>) -> anyhow::Result<()> {
    let month = parse_month(month)?;
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
    let report = compute(&mut tx, &state.settings(), month).await?;
    if report.is_empty() {
        bail!("{month} 没有可结算的记录（已确认的记录、PK奖金或转介绍都没有；待确认 {} 条）。", report.pending);
    }
    // Both files, the run's record, or none of them: on any error below, what was done
    // is undone as the staged files, the published files and the transaction drop.
    let staged = settlement::stage(&dir, &report.file_stem(), &report.csv()?, &report.xlsx()?)?;
    report.record(&mut tx, "cli", state.clock.now_ms()).await?;
    let published = staged.publish()?;
    tx.commit().await?;
    let paths = published.keep();
    crate::cli::line(report.summary());
    for path in paths {
        crate::cli::line(format!("已写入 {}", path.display()));
    }
    Ok(())
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
