//! All SQL lives here, one file per aggregate. SQLite in WAL mode with foreign keys on
//! and a busy timeout; writes go through one connection so that in-process writers
//! queue fairly instead of spinning in SQLite's busy handler. Every commit is synced
//! to disk (`synchronous = FULL`) before it returns: a callback is answered only after
//! its commit, and WeCom does not retry an answered callback, so a commit lost to a
//! power cut would be lost for good.

pub mod appeals;
pub mod backup;
pub mod board;
pub mod cards;
pub mod contests;
pub mod directory;
pub mod events;
pub mod inbox;
pub mod jobs;
pub mod outbox;
pub mod records;
pub mod settlement;
pub mod types;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::time::Duration;

/// A write transaction (started with `BEGIN IMMEDIATE`).
pub type Tx = Transaction<'static, Sqlite>;

/// The database: a single-connection writer and a pool of readers.
#[derive(Clone, Debug)]
pub struct Db {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<Db, sqlx::Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Db { writer, reader })
    }

    /// Starts a write transaction; it holds the write lock until commit or drop.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// The pool for reads outside a write transaction.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map(|_| ())
    }

    /// Closes both pools, letting in-flight statements finish.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// The unique constraints whose violation means something to a user (a lost race for a
/// claim), by the name of the index that enforces each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// `records_first_claim`: one live claim per client or channel and stage.
    FirstClaim,
    /// `records_placement_claim`: one live placement per person and 入职 date.
    PlacementClaim,
}

impl Constraint {
    const ALL: [Constraint; 2] = [Constraint::FirstClaim, Constraint::PlacementClaim];

    pub fn name(self) -> &'static str {
        match self {
            Constraint::FirstClaim => "records_first_claim",
            Constraint::PlacementClaim => "records_placement_claim",
        }
    }

    /// The columns SQLite names when the index refuses a row (it reports columns, not
    /// the index's name).
    fn sqlite_columns(self) -> &'static str {
        match self {
            Constraint::FirstClaim => "records.subject_id, records.claim_slot",
            Constraint::PlacementClaim => "records.person_key, records.onboard_date",
        }
    }
}

/// The named constraint an error is a violation of, if it is one of [`Constraint`].
pub fn violated(error: &sqlx::Error) -> Option<Constraint> {
    let sqlx::Error::Database(e) = error else { return None };
    if !e.is_unique_violation() {
        return None;
    }
    let message = e.message();
    Constraint::ALL.into_iter().find(|c| {
        e.constraint() == Some(c.name())
            || message.strip_prefix("UNIQUE constraint failed: ").is_some_and(|cols| cols == c.sqlite_columns())
    })
}
