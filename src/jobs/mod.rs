//! Scheduled jobs. Each job is a single step (`run_once`) that tests and
//! `leadboard jobs run` call directly; the scheduler only decides when.

pub mod cutoff;
pub mod directory;
pub mod inbox;
pub mod leaderboard;
pub mod onjob;
pub mod reminders;
pub mod scheduler;

use crate::config::Settings;
use crate::state::AppState;
use crate::store::jobs::{self as store, Acquired, LeaseOwner};

/// The jobs, named by their `[schedules]` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    DailyLeaderboard,
    OnjobCheck,
    Reminders,
    ContestCutoff,
    DirectorySync,
    InboxPrune,
}

impl Job {
    pub const ALL: [Job; 6] = [
        Job::DailyLeaderboard,
        Job::OnjobCheck,
        Job::Reminders,
        Job::ContestCutoff,
        Job::DirectorySync,
        Job::InboxPrune,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::DailyLeaderboard => "daily_leaderboard",
            Job::OnjobCheck => "onjob_check",
            Job::Reminders => "reminders",
            Job::ContestCutoff => "contest_cutoff",
            Job::DirectorySync => "directory_sync",
            Job::InboxPrune => "inbox_prune",
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    /// The job's cron expression from `[schedules]`.
    pub fn schedule(self, settings: &Settings) -> &str {
        let s = &settings.schedules;
        match self {
            Job::DailyLeaderboard => &s.daily_leaderboard,
            Job::OnjobCheck => &s.onjob_check,
            Job::Reminders => &s.reminders,
            Job::ContestCutoff => &s.contest_cutoff,
            Job::DirectorySync => &s.directory_sync,
            Job::InboxPrune => &s.inbox_prune,
        }
    }
}

/// Why a run did not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0} 正在运行，本次跳过")]
    Busy(&'static str),
    /// The fire time asked for was done with by another run (another replica's).
    #[error("{0} 的这次运行已由另一个服务进程完成")]
    Done(&'static str),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Failed(e.into())
    }
}

/// Runs a job once now, as a one-shot command (`leadboard jobs run`, tests), holding
/// its lease so that no other run of it overlaps (also in another process). Returns a
/// one-line summary of what it did.
pub async fn run_once(state: &AppState, job: Job) -> Result<String, JobError> {
    run_as(state, job, LeaseOwner::Command).await
}

/// [`run_once`] for `owner`.
pub async fn run_as(state: &AppState, job: Job, owner: LeaseOwner) -> Result<String, JobError> {
    leased(state, job, owner, step(state, job), String::clone).await
}

/// The scheduler's run of `job` for its fire time `fire` (ms): refused as
/// [`JobError::Done`] when another run (another replica's) has done that fire time.
pub async fn run_for_fire(state: &AppState, job: Job, fire: i64) -> Result<String, JobError> {
    run_leased(state, job, LeaseOwner::Service, Some(fire), step(state, job), String::clone).await
}

/// Runs `work` as a run of `job` by `owner`: holding the job's lease, and recording
/// `outcome` of its result (or its error) as the run's outcome. A command's run that
/// succeeds does what the scheduled runs until now would have done: the scheduler
/// counts them as done (so the first start after `sync-directory` does not sync again).
pub async fn leased<T>(
    state: &AppState,
    job: Job,
    owner: LeaseOwner,
    work: impl Future<Output = anyhow::Result<T>>,
    outcome: impl FnOnce(&T) -> String,
) -> Result<T, JobError> {
    run_leased(state, job, owner, None, work, outcome).await
}

/// [`leased`] for the fire time `fire`, if the run is the scheduler's: a run that
/// succeeds moves the job's progress to it.
async fn run_leased<T>(
    state: &AppState,
    job: Job,
    owner: LeaseOwner,
    fire: Option<i64>,
    work: impl Future<Output = anyhow::Result<T>>,
    outcome: impl FnOnce(&T) -> String,
) -> Result<T, JobError> {
    let counted = |outcome| state.metrics.job_run(job.name(), outcome);
    let lease = match store::acquire(&state.db, job.name(), state.clock.now_ms(), owner, fire).await? {
        Acquired::Lease(lease) => lease,
        Acquired::Busy => {
            counted("busy");
            return Err(JobError::Busy(job.name()));
        }
        Acquired::Done => {
            counted("already_done");
            return Err(JobError::Done(job.name()));
        }
    };
    let result = work.await;
    let recorded = match &result {
        Ok(value) => outcome(value),
        Err(e) => format!("失败：{e:#}"),
    };
    let now = state.clock.now_ms();
    let done_fire = result.is_ok().then(|| fire.unwrap_or(now));
    let released = store::release(&state.db, lease, now, &recorded, done_fire).await;
    counted(if result.is_ok() && released.is_ok() { "done" } else { "failed" });
    released?;
    state.outbox_wake.notify_one();
    state.changes.wake();
    Ok(result?)
}

#[tracing::instrument(level = "info", skip(state), fields(job = job.name()))]
async fn step(state: &AppState, job: Job) -> anyhow::Result<String> {
    match job {
        Job::OnjobCheck => onjob::run(state).await,
        Job::Reminders => reminders::run(state).await,
        Job::DailyLeaderboard => leaderboard::run(state).await,
        Job::ContestCutoff => cutoff::run(state).await,
        Job::DirectorySync => Ok(directory::sync(state).await?.summary()),
        Job::InboxPrune => inbox::run(state).await,
    }
}
