//! The scheduler: one loop per job, sleeping until the job's next cron fire time in
//! Asia/Shanghai (or shutdown, or a reload that changes its cron expression). A fire
//! time missed while the service was down runs once at start. Runs of one job never
//! overlap (the job lease), and each fire time is run once however many replicas
//! schedule it: a run takes the lease only while the job's progress (`last_fire_at`)
//! is short of its fire time, and moves it there as it releases the lease. A run that
//! fails is not counted as done: it is retried every few minutes until the next fire
//! time takes its place, and caught up at the next start. A replica that finds the job
//! held looks again shortly, and takes over a fire time whose run died with its
//! replica.

use crate::clock::TZ;
use crate::config::DirectorySource;
use crate::jobs::{Job, JobError, run_for_fire};
use crate::state::AppState;
use crate::store::jobs as store;
use chrono::{DateTime, Utc};
use cron::Schedule;
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The first fire time strictly after `after`.
pub fn next_fire(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.after(&after.with_timezone(&TZ)).next().map(|t| t.with_timezone(&Utc))
}

/// The latest fire time in `(last, now]`: a run missed since `last`, if any.
pub fn missed_fire(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut missed = None;
    let mut at = last;
    while let Some(fire) = next_fire(schedule, at).filter(|f| *f <= now) {
        missed = Some(fire);
        at = fire;
    }
    missed
}

/// How long after a failed run it is tried again (unless its next fire time comes first).
pub const RETRY_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// How long after finding the job held by another run (another replica's, a command's)
/// the fire time is looked at again: done by then, or taken over from a run that died.
pub const LOOK_AGAIN_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// When a job's loop wakes next: at its next fire time, or earlier (`retry` after now)
/// to try a fire time again.
pub fn wake_at(next: DateTime<Utc>, retry: Option<chrono::TimeDelta>, now: DateTime<Utc>) -> DateTime<Utc> {
    match retry {
        Some(after) => next.min(now + after),
        None => next,
    }
}

/// Runs every job on its schedule until shutdown.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    match store::release_abandoned(&state.db, state.clock.now_ms()).await {
        Ok(released) if !released.is_empty() => {
            tracing::warn!(jobs = ?released, "released job leases left by a previous run of the service");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not release abandoned job leases"),
    }
    let loops = Job::ALL.map(|job| tokio::spawn(job_loop(state.clone(), job, shutdown.clone())));
    for handle in loops {
        let _ = handle.await;
    }
    tracing::info!("scheduler stopped");
}

async fn job_loop(state: AppState, job: Job, shutdown: CancellationToken) {
    // A reload may change the job's cron expression: the loop follows the settings.
    let mut changes = state.config.subscribe();
    let mut expression = job.schedule(&state.settings()).to_owned();
    let Ok(mut schedule) = Schedule::from_str(&expression) else {
        // Checked when the configuration loaded; not reachable with valid settings.
        tracing::error!(job = job.name(), "invalid schedule; job disabled");
        return;
    };
    let mut due = first_due(&state, job, &schedule).await;
    loop {
        let retry = match due {
            Some(at) => fire(&state, job, at).await,
            None => None,
        };
        if retry.is_none() {
            due = None;
        }
        let now = state.clock.now();
        let next = next_fire(&schedule, now);
        let wait = next.map(|next| (wake_at(next, retry, now) - now).to_std().unwrap_or(Duration::ZERO));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep_or_forever(wait) => {}
            Ok(()) = changes.changed() => {
                let changed = job.schedule(&changes.borrow_and_update()).to_owned();
                if changed != expression && let Ok(parsed) = Schedule::from_str(&changed) {
                    tracing::info!(job = job.name(), from = %expression, to = %changed, "job schedule changed");
                    (expression, schedule) = (changed, parsed);
                }
                continue;
            }
        }
        // The sleep may end a little early or late; a fire time only counts once the
        // clock agrees, and it supersedes a failed run still waiting for its retry.
        if let Some(next) = next
            && state.clock.now() >= next
        {
            due = Some(next);
        }
    }
}

/// The fire time to run at start, if any: one missed while the service was stopped
/// (or whose run failed).
async fn first_due(state: &AppState, job: Job, schedule: &Schedule) -> Option<DateTime<Utc>> {
    let now = state.clock.now();
    match store::get(&state.db, job.name()).await.ok().flatten().and_then(|r| r.last_fire_at) {
        Some(last) => {
            let last = DateTime::from_timestamp_millis(last).unwrap_or(now);
            let missed = missed_fire(schedule, last, now);
            if let Some(missed) = missed {
                tracing::info!(job = job.name(), missed = %missed, "running a run missed while stopped");
            }
            missed
        }
        // First start: nothing was missed, but a directory synced from WeCom is empty
        // until its first sync, so that one runs now (a `sync-directory` that completed
        // before has recorded its run: that was the first sync).
        None if job == Job::DirectorySync && state.settings().directory.source == DirectorySource::Wecom => Some(now),
        None => {
            let _ = store::set_last_fire(&state.db, job.name(), now.timestamp_millis()).await;
            None
        }
    }
}

/// Sleeps for `wait`, or until cancelled when there is no next fire time.
async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// Runs the job for fire time `at`: `None` when that fire time is done with (it ran
/// here, or another replica's run did it), else how soon to try it again (the run
/// failed, or another run holds the job: should that one fail or its replica die, the
/// fire time is run here).
async fn fire(state: &AppState, job: Job, at: DateTime<Utc>) -> Option<chrono::TimeDelta> {
    match run_for_fire(state, job, at.timestamp_millis()).await {
        Ok(summary) => {
            tracing::info!(job = job.name(), %summary, "job ran");
            None
        }
        Err(JobError::Done(_)) => {
            tracing::info!(job = job.name(), "job already ran for this time elsewhere; skipped");
            None
        }
        Err(JobError::Busy(_)) => {
            tracing::info!(job = job.name(), "job running elsewhere; looked at again shortly");
            Some(LOOK_AGAIN_AFTER)
        }
        Err(e) => {
            tracing::error!(job = job.name(), error = %e, "job failed; it will be retried");
            Some(RETRY_AFTER)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        TZ.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_daily_schedule_fires_at_its_local_time() {
        let daily = Schedule::from_str("0 0 18 * * *").unwrap();
        assert_eq!(next_fire(&daily, local(2023, 7, 1, 12, 0)), Some(local(2023, 7, 1, 18, 0)));
        assert_eq!(next_fire(&daily, local(2023, 7, 1, 18, 0)), Some(local(2023, 7, 2, 18, 0)));
        // 18:00 in Shanghai is 10:00 UTC.
        assert_eq!(next_fire(&daily, local(2023, 7, 1, 12, 0)).unwrap().to_rfc3339(), "2023-07-01T10:00:00+00:00");
    }

    #[test]
    fn the_next_fire_crosses_midnight_in_shanghai() {
        let early = Schedule::from_str("0 35 9 * * *").unwrap();
        // 23:50 local on 30 June (15:50 UTC, still 30 June in UTC too).
        assert_eq!(next_fire(&early, local(2023, 6, 30, 23, 50)), Some(local(2023, 7, 1, 9, 35)));
        // 01:00 local on 1 July is 17:00 UTC on 30 June: the fire is still 1 July local.
        assert_eq!(next_fire(&early, local(2023, 7, 1, 1, 0)), Some(local(2023, 7, 1, 9, 35)));
        let half_past_midnight = Schedule::from_str("0 30 0 * * *").unwrap();
        assert_eq!(next_fire(&half_past_midnight, local(2023, 12, 31, 23, 59)), Some(local(2024, 1, 1, 0, 30)));
    }

    #[test]
    fn a_failed_run_is_retried_before_the_next_fire_time_unless_that_comes_first() {
        let now = local(2023, 7, 1, 18, 5);
        let tomorrow = local(2023, 7, 2, 18, 5);
        assert_eq!(wake_at(tomorrow, None, now), tomorrow);
        assert_eq!(wake_at(tomorrow, Some(RETRY_AFTER), now), now + RETRY_AFTER);
        let soon = now + chrono::TimeDelta::minutes(1);
        assert_eq!(wake_at(soon, Some(RETRY_AFTER), now), soon);
    }

    #[test]
    fn only_the_latest_missed_run_is_caught_up() {
        let daily = Schedule::from_str("0 5 18 * * *").unwrap();
        let last = local(2023, 7, 1, 18, 5);
        assert_eq!(missed_fire(&daily, last, local(2023, 7, 2, 9, 0)), None);
        assert_eq!(missed_fire(&daily, last, local(2023, 7, 4, 9, 0)), Some(local(2023, 7, 3, 18, 5)));
    }
}
