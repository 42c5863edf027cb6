//! `leadboard jobs list` and `leadboard jobs run NAME`, against the configured database
//! (also while the service runs: the job lease keeps runs from overlapping).

use crate::clock::{SystemClock, format_ms};
use crate::config::Settings;
use crate::jobs::{self, Job, scheduler};
use crate::state::AppState;
use crate::store::jobs as store;
use crate::store::outbox;
use anyhow::anyhow;
use cron::Schedule;
use std::str::FromStr;
use std::sync::Arc;

pub async fn list(settings: Settings) -> anyhow::Result<()> {
    let state = AppState::new(settings, Arc::new(SystemClock)).await?;
    let settings = state.settings();
    crate::cli::line(format!("{:<18} {:<16} {:<17} {:<17} 上次结果", "任务", "计划", "上次运行", "下次运行"));
    for job in Job::ALL {
        let row = store::get(&state.db, job.name()).await?;
        let last = row.as_ref().and_then(|r| r.last_run_at).map(format_ms).unwrap_or_else(|| "-".into());
        let outcome = row.and_then(|r| r.last_outcome).unwrap_or_default();
        let next = Schedule::from_str(job.schedule(&settings))
            .ok()
            .and_then(|s| scheduler::next_fire(&s, state.clock.now()))
            .map(|t| format_ms(t.timestamp_millis()))
            .unwrap_or_else(|| "-".into());
        crate::cli::line(format!(
            "{:<18} {:<16} {:<17} {:<17} {outcome}",
            job.name(),
            job.schedule(&settings),
            last,
            next
        ));
    }
    if !settings.schedules.enabled {
        crate::cli::line("（内置调度已关闭：schedules.enabled = false）");
    }
    Ok(())
}

pub async fn run(settings: Settings, name: &str) -> anyhow::Result<()> {
    let job = Job::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Job::ALL.iter().map(|j| j.name()).collect();
        anyhow!("没有任务“{name}”。可用任务：{}", names.join("、"))
    })?;
    let state = AppState::new(settings, Arc::new(SystemClock)).await?;
    let before = outbox::last_id(&state.db).await?;
    let summary = jobs::run_once(&state, job).await?;
    crate::cli::line(format!("{}：{summary}", job.name()));
    let queued = outbox::since(&state.db, before).await?;
    if !queued.is_empty() {
        crate::cli::line(format!("已排队 {} 条消息，由运行中的服务发送：", queued.len()));
        for (api, payload) in queued {
            crate::cli::line(format!("[{api}] {}", preview(&payload)));
        }
    }
    Ok(())
}

/// The readable part of a queued message.
fn preview(payload: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let kind = value["msgtype"].as_str().unwrap_or_default();
    match value[kind]["content"].as_str() {
        Some(content) => content.to_owned(),
        None => value[kind]["main_title"]["title"].as_str().unwrap_or(kind).to_owned(),
    }
}
