//! The scheduler's memory: each job's last fire time and a lease against overlapping runs.

use super::Db;
use super::lock::SessionLock;
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
crate::direct_row!(JobRow { name, last_fire_at, last_run_at, last_outcome, running_since, lease_owner });

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

/// A run's hold on a job: the row's lease (`running_since`, `lease_owner`), and on
/// PostgreSQL the session lock `leadboard:job:<name>` for the whole run, which is what
/// keeps replicas' runs apart there: a replica that dies mid-run frees the job at once.
#[derive(Debug)]
pub struct Lease {
    name: String,
    lock: Option<SessionLock>,
}

/// The session lock of the job `name`.
fn lock_key(name: &str) -> String {
    format!("leadboard:job:{name}")
}

/// What [`acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    Lease(Lease),
    /// Another run holds the job.
    Busy,
    /// The fire time asked for has been done with (by another replica's run, or by a
    /// command's run since).
    Done,
}

/// Takes the job's lease for a run for fire time `fire` (a scheduled run; `None` for a
/// command's run now): refused while another run holds it, and once the job's progress
/// (`last_fire_at`) has reached `fire`.
pub async fn acquire(
    db: &Db,
    name: &str,
    now_ms: i64,
    owner: LeaseOwner,
    fire: Option<i64>,
) -> Result<Acquired, sqlx::Error> {
    let lock = if db.is_shared() {
        match SessionLock::try_take(db, &lock_key(name)).await? {
            Some(lock) => Some(lock),
            None => return Ok(Acquired::Busy),
        }
    } else {
        None
    };
    // Under the session lock no other run is going: a lease in the row is a dead
    // replica's. On SQLite one is abandoned only once it is old.
    let abandoned_before = if lock.is_some() { i64::MAX } else { now_ms - STALE_LEASE_MS };
    let mut tx = db.begin().await?;
    sql::query("INSERT INTO jobs (name) VALUES (?) ON CONFLICT (name) DO NOTHING").bind(name).execute(&mut *tx).await?;
    let taken = sql::query(
        "UPDATE jobs SET running_since = ?, lease_owner = ?
         WHERE name = ? AND (running_since IS NULL OR running_since < ?)
           AND (last_fire_at IS NULL OR last_fire_at < ?)",
    )
    .bind(now_ms)
    .bind(owner.code())
    .bind(name)
    .bind(abandoned_before)
    .bind(fire.unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let done = match (taken, fire) {
        (false, Some(fire)) => {
            sql::query_scalar::<i64>("SELECT COUNT(*) FROM jobs WHERE name = ? AND last_fire_at >= ?")
                .bind(name)
                .bind(fire)
                .fetch_one(&mut *tx)
                .await?
                > 0
        }
        _ => false,
    };
    tx.commit().await?;
    Ok(match (taken, lock) {
        (true, lock) => Acquired::Lease(Lease { name: name.to_owned(), lock }),
        (false, lock) => {
            if let Some(lock) = lock {
                lock.release().await;
            }
            if done { Acquired::Done } else { Acquired::Busy }
        }
    })
}

/// Ends a run: its outcome recorded and its lease released in one write, with the job's
/// progress moved to `done_fire` when the run did what that fire time asked for (so that
/// no other replica runs it again, and a failed run's fire time is retried).
pub async fn release(
    db: &Db,
    lease: Lease,
    now_ms: i64,
    outcome: &str,
    done_fire: Option<i64>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::query(
        "UPDATE jobs SET running_since = NULL, lease_owner = NULL, last_run_at = ?, last_outcome = ?,
             last_fire_at = CASE WHEN last_fire_at IS NULL OR last_fire_at < ? THEN COALESCE(?, last_fire_at)
                                 ELSE last_fire_at END
         WHERE name = ?",
    )
    .bind(now_ms)
    .bind(outcome)
    .bind(done_fire)
    .bind(done_fire)
    .bind(&lease.name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(lock) = lease.lock {
        lock.release().await;
    }
    Ok(())
}

/// Releases the leases a previous run of the service left behind (it stopped or crashed
/// while a job ran; that run's transaction rolled back). Returns the jobs released. On
/// PostgreSQL a lease is left behind only when no session holds its job: another
/// replica may be running it.
pub async fn release_abandoned(db: &Db, now_ms: i64) -> Result<Vec<String>, sqlx::Error> {
    let leased: Vec<String> =
        sql::query_scalar("SELECT name FROM jobs WHERE running_since IS NOT NULL AND lease_owner = 'service'")
            .fetch_all(db.reader())
            .await?;
    let mut released = Vec::new();
    for name in leased {
        let lock = if db.is_shared() {
            match SessionLock::try_take(db, &lock_key(&name)).await? {
                Some(lock) => Some(lock),
                None => continue,
            }
        } else {
            None
        };
        let mut tx = db.begin().await?;
        let cleared = sql::query(
            "UPDATE jobs SET running_since = NULL, lease_owner = NULL, last_run_at = ?,
                 last_outcome = '中断：服务停止时仍在运行，未完成'
             WHERE name = ? AND running_since IS NOT NULL AND lease_owner = 'service'",
        )
        .bind(now_ms)
        .bind(&name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if let Some(lock) = lock {
            lock.release().await;
        }
        if cleared == 1 {
            released.push(name);
        }
    }
    Ok(released)
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
