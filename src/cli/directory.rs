//! `leadboard sync-directory`: sync the directory now, against the configured database
//! (also while the service runs: the `directory_sync` job lease keeps runs apart), and
//! print what changed.

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::jobs::directory;
use crate::jobs::{self, Job};
use crate::service::directory::SyncReport;
use crate::state::AppState;
use crate::store::jobs::LeaseOwner;
use std::sync::Arc;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let state = AppState::open(settings, Arc::new(SystemClock)).await?;
    let work = async { Ok(directory::sync(&state).await?) };
    let report = jobs::leased(&state, Job::DirectorySync, LeaseOwner::Command, work, SyncReport::summary).await?;
    crate::cli::line(report.render());
    Ok(())
}
