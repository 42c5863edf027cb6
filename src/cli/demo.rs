//! `leadboard demo cutoff` (local mode): closes the demo's short contest (演示快赛) now,
//! so that the cut-off, `待审` and `终审` can be tried without waiting for it.

use crate::clock::{Clock, SystemClock, format_ms};
use crate::config::Settings;
use crate::domain::contest::local_ms;
use crate::local;
use anyhow::{Context, bail};

pub fn cutoff(settings: &Settings) -> anyhow::Result<()> {
    if !settings.local_mode {
        bail!("`leadboard demo` 只用于本地模式（演示数据）。");
    }
    let dir = local::data_dir();
    let closes = local::close_sprint(&dir, SystemClock.now_local().naive_local())
        .with_context(|| format!("无法写入 {}", dir.join(local::SPRINT_FILE).display()))?;
    let when = format_ms(local_ms(closes.date(), closes.time()));
    crate::cli::line(format!("「{}」的截止时间已改为 {when}。", local::SPRINT_NAME));
    crate::cli::line("运行 leadboard reload 使之生效（或重启服务：在服务的终端按 Ctrl+C，再运行 leadboard serve）。");
    crate::cli::line("之后一分钟内截止任务冻结比赛，终审卡片发给审核组（wanggm、zhaovp）：");
    crate::cli::line(format!("  leadboard send --as wanggm \"待审 {}\"", local::SPRINT_NAME));
    crate::cli::line(format!("  leadboard press --as wanggm {} 终审", local::SPRINT_NAME));
    Ok(())
}
