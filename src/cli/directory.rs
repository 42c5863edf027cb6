//! `leadboard sync-directory`: sync the directory now, against the configured database
//! (also while the service runs: the `directory_sync` job lease keeps runs apart), and
//! print what changed. When another sync is running (the service's scheduled one, or
//! another command), it waits for that one to finish, up to `--wait` seconds, and then
//! runs its own.

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::jobs::directory;
use crate::jobs::{self, Job, JobError};
use crate::service::directory::SyncReport;
use crate::state::AppState;
use crate::store::jobs::{self as store, LeaseOwner};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a waiting `sync-directory` looks whether the running sync has finished.
const POLL: Duration = Duration::from_millis(200);

pub async fn run(settings: Settings, wait: Duration) -> anyhow::Result<()> {
    let state = AppState::open(settings, Arc::new(SystemClock)).await?;
    let deadline = Instant::now() + wait;
    let mut waiting = false;
    let report = loop {
        let work = async { Ok(directory::sync(&state).await?) };
        match jobs::leased(&state, Job::DirectorySync, LeaseOwner::Command, work, SyncReport::summary).await {
            Err(JobError::Busy(_)) if Instant::now() < deadline => {
                if !waiting {
                    eprintln!("{}，等待其完成后再同步（最多等待 {} 秒）……", running(&state).await, wait.as_secs());
                    waiting = true;
                }
                tokio::time::sleep(POLL).await;
            }
            Err(JobError::Busy(_)) => {
                anyhow::bail!(
                    "{}，等待 {} 秒后仍未完成，未同步。请稍后再运行 leadboard sync-directory \
                     （或用 --wait 等待更久）。",
                    running(&state).await,
                    wait.as_secs()
                )
            }
            other => break other?,
        }
    };
    if waiting {
        eprintln!("之前的同步已完成，已重新同步。");
    }
    crate::cli::line(report.render());
    Ok(())
}

/// Who is syncing now, for people.
async fn running(state: &AppState) -> String {
    let owner = store::get(&state.db, Job::DirectorySync.name()).await.ok().flatten().and_then(|r| r.lease_owner);
    match owner.as_deref() {
        Some("service") => "服务的定时任务正在同步通讯录".to_owned(),
        Some(_) => "另一个 leadboard sync-directory 或 jobs run 正在同步通讯录".to_owned(),
        None => "另一次通讯录同步正在进行".to_owned(),
    }
}
