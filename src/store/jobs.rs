//! The scheduler's memory: each job's last fire time and a lease against overlapping runs.

use super::Db;
use crate::store::sql;

/// A lease older than this is considered abandoned (a crashed run).
const STALE_LEASE_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub name: String,
    pub last_fire_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub last_outcome: Option<String>,
    /// Set while a run holds the lease.
    pub running_since: Option<i64>,
    /// `service` or `command`, while a run holds the lease.
    pub lease_owner: Option<String>,
}

pub async fn get(db: &Db, name: &str) -> Result<Option<JobRow>, sqlx::Error> {
    sql::query_as(
        "SELECT name, last_fire_at, last_run_at, last_outcome, running_since, lease_owner FROM jobs WHERE name = ?",
    )
    .bind(name)
    .fetch_optional(db.reader())
    .await
}

/// Who runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOwner {
    /// The running service's scheduler (at most one per database).
    Service,
    /// A one-shot command (`leadboard jobs run`, `sync-directory`).
    Command,
}

impl LeaseOwner {
    fn code(self) -> &'static str {
        match self {
            LeaseOwner::Service => "service",
            LeaseOwner::Command => "command",
        }
    }
}

/// Takes the job's lease; false when another run holds it.
pub async fn acquire(db: &Db, name: &str, now_ms: i64, owner: LeaseOwner) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::query("INSERT INTO jobs (name) VALUES (?) ON CONFLICT (name) DO NOTHING").bind(name).execute(&mut *tx).await?;
    let taken = sql::query(
        "UPDATE jobs SET running_since = ?, lease_owner = ?
         WHERE name = ? AND (running_since IS NULL OR running_since < ?)",
    )
    .bind(now_ms)
    .bind(owner.code())
    .bind(name)
    .bind(now_ms - STALE_LEASE_MS)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    tx.commit().await?;
    Ok(taken)
}

pub async fn release(db: &Db, name: &str, now_ms: i64, outcome: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::query(
        "UPDATE jobs SET running_since = NULL, lease_owner = NULL, last_run_at = ?, last_outcome = ? WHERE name = ?",
    )
    .bind(now_ms)
    .bind(outcome)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Releases the leases a previous run of the service left behind (it stopped or crashed
/// while a job ran; that run's transaction rolled back). Returns the jobs released.
pub async fn release_abandoned(db: &Db, now_ms: i64) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let names = sql::query_scalar(
        "UPDATE jobs SET running_since = NULL, lease_owner = NULL, last_run_at = ?,
             last_outcome = '中断：服务停止时仍在运行，未完成'
         WHERE running_since IS NOT NULL AND lease_owner = 'service' RETURNING name",
    )
    .bind(now_ms)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(names)
}

/// Records the scheduled fire time a run was for (the scheduler's progress); it only
/// moves forward, so a run done by a command is not undone by an older fire time.
pub async fn set_last_fire(db: &Db, name: &str, fire_ms: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::query(
        "INSERT INTO jobs (name, last_fire_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE
         SET last_fire_at = MAX(COALESCE(jobs.last_fire_at, excluded.last_fire_at), excluded.last_fire_at)",
    )
    .bind(name)
    .bind(fire_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
