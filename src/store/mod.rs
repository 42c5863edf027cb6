//! All SQL lives here, one file per aggregate. SQLite in WAL mode with foreign keys on
//! and a busy timeout; writes go through sqlx's one writer connection, or the callback
//! writer's own ([`direct`]), which take turns, so that in-process writers queue fairly
//! instead of spinning in SQLite's busy handler. Every commit is synced
//! to disk (`synchronous = FULL`) before it returns: a callback is answered only after
//! its commit, and WeCom does not retry an answered callback, so a commit lost to a
//! power cut would be lost for good. A write that fails on the disk (full, read-only)
//! replaces the writer connection and marks the database unwritable for `/healthz`
//! until a write succeeds.
//!
//! A successful sync is not taken on its word: when ext4 meets an error it aborts its
//! journal, and an `fdatasync` that races the abort can return success although the
//! journal transaction holding the file's new size and blocks was discarded — a commit
//! that grew the write-ahead log is then gone after the repair (issue 15's finding,
//! RELIABILITY.md). So a batch of callbacks is answered only once
//! [`Db::confirm_commit`] has seen the file system still take a metadata change
//! (a journal handle) after the commit returned.

pub mod appeals;
pub mod backup;
pub mod board;
pub mod cards;
pub mod contests;
pub mod direct;
pub mod directory;
pub mod events;
pub mod inbox;
pub mod jobs;
pub mod lock;
pub mod names;
pub mod outbox;
pub mod records;
pub mod settlement;
pub mod tokens;
pub mod types;
pub mod web;

pub mod sql;
#[doc(hidden)]
pub mod testing;

pub use sql::{Conn, Engine, Pool, Tx};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The database: on SQLite a single-connection writer and a pool of readers, on
/// PostgreSQL one pool for both.
///
/// On SQLite the group-commit writer has a connection of its own besides
/// ([`Db::take_direct`], [`direct::DirectConn`]). The two writers take turns through one
/// fair queue ([`Db::begin`], [`Db::begin_direct`]): a write waits for its turn before
/// it asks SQLite for the write lock, so neither spins in SQLite's busy handler while
/// the other writes, and a job's write is not starved by a stream of callback batches.
#[derive(Clone, Debug)]
pub struct Db {
    writer: Pool,
    reader: Pool,
    /// The SQLite file, or None on PostgreSQL.
    file: Option<SqliteFile>,
    /// How long a write waits for SQLite's write lock (another process's writer).
    busy_timeout: Duration,
    /// The write turn on SQLite: held by each write transaction until it ends.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The group-commit writer's own connection between batches ([`Db::take_direct`]).
    direct: Arc<Mutex<DirectSlot>>,
    /// Why the latest write that reached the disk failed, until one succeeds.
    write_failure: Arc<Mutex<Option<String>>>,
    /// Set by a write that failed on the disk: the writer connection is replaced before
    /// its next use.
    replace_writer: Arc<AtomicBool>,
    /// The same for the group-commit writer's own connection.
    replace_direct: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct DirectSlot {
    conn: Option<direct::DirectConn>,
    /// Set by [`Db::close`]: no connection is opened or kept after it.
    closed: bool,
}

#[derive(Clone, Debug)]
struct SqliteFile {
    path: PathBuf,
    /// A small file beside the database (`<database>-probe`) with one allocated block:
    /// see [`Db::confirm_commit`].
    probe: PathBuf,
}

/// Less free space than this on the database's file system is a full disk: SQLite needs
/// room for the write-ahead log and the pages a commit adds.
pub const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// How long a write waits for its turn on SQLite (as long as for a pooled connection).
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(30);

/// The page cache of each of sqlx's connections on SQLite (its writer and its readers),
/// in SQLite's units (negative: KiB): 512 KiB instead of SQLite's default 2 MiB.
/// Callbacks write on their own connection (`store::direct`); sqlx's writer carries
/// jobs, the console and the outbox, and its readers the console, the board and the
/// outbox's reads. Their rare large transactions and reads (the outbox merging a
/// backlog of cards into a digest) would otherwise fill caches that stay allocated.
/// Their reads run from the operating system's file cache either way (BENCHMARKS.md,
/// "a smaller page cache on sqlx's writer connection" and "the look-alike index in
/// memory").
const SQLX_CACHE: &str = "-512";

/// Connections to PostgreSQL per process (replicas share the server's limit).
const POSTGRES_CONNECTIONS: u32 = 16;

impl Db {
    /// Opens the database `url` names: `sqlite:<path>` (see [`Db::open`]) or
    /// `postgres://…`, applying pending migrations.
    pub async fn connect(url: &str, busy_timeout: Duration) -> Result<Db, sqlx::Error> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Db::open_postgres(url, busy_timeout).await
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            let path = path.split('?').next().unwrap_or(path);
            Db::open(Path::new(path), busy_timeout).await
        }
    }

    /// Connects to PostgreSQL at `url` and applies pending migrations
    /// (`migrations/postgres`). `lock_timeout` bounds how long a statement waits for a
    /// row another transaction holds, as the busy timeout does on SQLite. Every commit
    /// waits for its WAL record to reach the disk (`synchronous_commit = on`, whatever
    /// the server's default), as `synchronous = FULL` does on SQLite: an answered
    /// callback is never lost.
    pub async fn open_postgres(url: &str, lock_timeout: Duration) -> Result<Db, sqlx::Error> {
        use sqlx::ConnectOptions;
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let options = options
            .options([("lock_timeout", format!("{}ms", lock_timeout.as_millis())), ("synchronous_commit", "on".into())])
            .log_statements(tracing::log::LevelFilter::Debug);
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let pool = Pool::Postgres(pool);
        Ok(Db {
            writer: pool.clone(),
            reader: pool,
            file: None,
            busy_timeout: lock_timeout,
            turn: Arc::default(),
            direct: Arc::default(),
            write_failure: Arc::default(),
            replace_writer: Arc::default(),
            replace_direct: Arc::default(),
        })
    }

    /// Opens (creating if needed) the SQLite database file and applies pending
    /// migrations.
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
        let replace_writer = Arc::new(AtomicBool::new(false));
        let replace = replace_writer.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITE_TURN_TIMEOUT)
            // The writer connection is replaced after a write failed on the disk: a
            // commit refused by a full disk (SQLITE_FULL) is rolled back by SQLite
            // itself, sqlx's rollback then fails and the connection keeps counting a
            // transaction that is gone (every later `BEGIN` would be refused); and a
            // connection opened while the file could not be written is read-only for
            // good, even once the disk is writable again.
            .before_acquire(move |conn, _| {
                let replace = replace.swap(false, Ordering::SeqCst);
                Box::pin(async move { Ok(!replace && !sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(options.clone().pragma("cache_size", SQLX_CACHE))
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        // The look-alike index, read in before the first callback needs it.
        names::sync(&mut *writer.acquire().await?).await;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true).pragma("cache_size", SQLX_CACHE))
            .await?;
        let mut probe = path.file_name().unwrap_or_default().to_owned();
        probe.push("-probe");
        let probe = path.with_file_name(probe);
        Ok(Db {
            writer: Pool::Sqlite(writer),
            reader: Pool::Sqlite(reader),
            file: Some(SqliteFile { path: path.to_owned(), probe }),
            busy_timeout,
            turn: Arc::default(),
            direct: Arc::default(),
            write_failure: Arc::default(),
            replace_writer,
            replace_direct: Arc::default(),
        })
    }

    /// Starts a write transaction; on SQLite it holds the write turn and the write lock
    /// until commit or drop (`BEGIN IMMEDIATE`).
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        match &self.writer {
            Pool::Sqlite(p) => {
                let turn = self.write_turn().await?;
                let mut tx = Tx::sqlite(p.begin_with("BEGIN IMMEDIATE").await?, turn);
                names::sync(&mut *tx).await;
                Ok(tx)
            }
            pool => pool.begin().await,
        }
    }

    /// The group-commit writer's own connection to the SQLite file, for one batch (None
    /// on PostgreSQL): the one kept since the last batch ([`Db::put_direct`]), unless a
    /// write failed on the disk since (as the writer pool's connection is replaced, see
    /// [`Db::open`]) or it was left in a transaction; otherwise a new one.
    pub fn take_direct(&self) -> Option<Result<direct::DirectConn, sqlx::Error>> {
        let file = self.file.as_ref()?;
        let mut slot = self.direct.lock().unwrap_or_else(|e| e.into_inner());
        if slot.closed {
            return Some(Err(sqlx::Error::PoolClosed));
        }
        let replace = self.replace_direct.swap(false, Ordering::SeqCst);
        match slot.conn.take() {
            Some(conn) if !replace && !conn.in_transaction() => Some(Ok(conn)),
            _ => Some(direct::DirectConn::open(&file.path, self.busy_timeout)),
        }
    }

    /// Keeps the writer's connection for the next batch (closes it once the database
    /// is closed).
    pub fn put_direct(&self, conn: direct::DirectConn) {
        let mut slot = self.direct.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.closed {
            slot.conn = Some(conn);
        }
    }

    /// A write transaction on `conn`, the writer's own connection, in its turn.
    pub async fn begin_direct<'c>(&self, conn: &'c mut direct::DirectConn) -> Result<Tx<'c>, sqlx::Error> {
        let turn = self.write_turn().await?;
        let mut tx = Tx::direct(conn.begin()?, turn);
        names::sync(&mut *tx).await;
        Ok(tx)
    }

    /// Waits for the write turn, as long as a connection from the writer pool would be
    /// waited for.
    async fn write_turn(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, sqlx::Error> {
        tokio::time::timeout(WRITE_TURN_TIMEOUT, self.turn.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)
    }

    /// The pool for reads outside a write transaction.
    pub fn reader(&self) -> &Pool {
        &self.reader
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sql::query("SELECT 1").execute(&self.reader).await.map(|_| ())
    }

    /// Notes the outcome of a write transaction: a failure of the disk (full, read-only,
    /// an I/O error) makes the database unwritable until a later write succeeds.
    pub fn note_write<T>(&self, outcome: &Result<T, sqlx::Error>) {
        match outcome {
            Ok(_) => *self.write_failure.lock().unwrap_or_else(|e| e.into_inner()) = None,
            Err(e) => self.note_write_error(e),
        }
    }

    /// Notes a failed write: one that failed on the disk makes the database unwritable
    /// until a later write succeeds.
    pub fn note_write_error(&self, error: &sqlx::Error) {
        if is_disk_failure(error) {
            *self.write_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            self.replace_writer.store(true, Ordering::SeqCst);
            self.replace_direct.store(true, Ordering::SeqCst);
        }
    }

    /// Why the database cannot be written now, if it cannot: its file system is
    /// read-only or (nearly) full, or the latest write failed on the disk and a probe
    /// write fails too.
    pub async fn write_problem(&self) -> Option<String> {
        if let Some(file) = &self.file
            && let Some(problem) = file_system_problem(&file.path)
        {
            return Some(problem);
        }
        // ext4 turned read-only by an error says so in its journal, not in statvfs.
        if let Err(e) = self.confirm_commit().await {
            return Some(e.to_string());
        }
        self.write_failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref()?;
        let probed = self.probe_write().await;
        self.note_write(&probed);
        self.write_failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the commits that returned before this call are as durable as their syncs
    /// said: the file system must still take a metadata change now. On ext4 this starts
    /// (and ends, empty) a journal handle by preallocating the probe file's one block
    /// again, which fails once the journal has been aborted. An `fdatasync` can return
    /// success after that abort although the transaction with the file's new size and
    /// blocks never reached the journal; the abort is final until the file system is
    /// repaired, so a commit whose sync returned before this check passed is on disk.
    /// A file system without `fallocate` (ENOTSUP) cannot be asked and passes; one that
    /// cannot open (or create) the probe file fails.
    /// On PostgreSQL the server owns durability: this passes.
    pub async fn confirm_commit(&self) -> Result<(), sqlx::Error> {
        if self.file.is_none() {
            return Ok(());
        }
        let db = self.clone();
        let checked = tokio::task::spawn_blocking(move || db.confirm_commit_here()).await;
        checked.map_err(|e| refused(std::io::Error::other(e.to_string())))?
    }

    /// [`Db::confirm_commit`] in the calling thread, for the group-commit writer's own
    /// thread (it blocks).
    pub fn confirm_commit_here(&self) -> Result<(), sqlx::Error> {
        let Some(file) = &self.file else { return Ok(()) };
        preallocate(&file.probe).map_err(refused)
    }

    /// A one-row write, committed (synced), to see whether the disk takes writes.
    async fn probe_write(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        sql::query("INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at")
            .bind(i64::try_from(now).unwrap_or(i64::MAX))
            .execute(&mut tx)
            .await?;
        tx.commit().await
    }

    /// Closes both pools, letting in-flight statements finish, and the group-commit
    /// writer's connection (at once if it is between batches, else after its batch).
    pub async fn close(&self) {
        {
            let mut slot = self.direct.lock().unwrap_or_else(|e| e.into_inner());
            slot.closed = true;
            slot.conn = None;
        }
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Why the file system holding the SQLite file at `path` cannot take writes, if it
/// cannot: it is read-only or (nearly) full.
fn file_system_problem(path: &Path) -> Option<String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match rustix::fs::statvfs(dir) {
        Ok(fs) if fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) => Some("read-only file system".into()),
        Ok(fs) if fs.f_bavail.saturating_mul(fs.f_frsize) < MIN_FREE_BYTES => {
            Some(format!("{} bytes free", fs.f_bavail.saturating_mul(fs.f_frsize)))
        }
        Ok(_) => None,
        Err(e) => Some(format!("file system unreadable: {e}")),
    }
}

/// A probe of [`Db::confirm_commit`] that failed: the commit may not be on disk.
fn refused(e: std::io::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        e.kind(),
        format!("the file system refuses changes since the commit ({e}): it may not be on disk"),
    ))
}

/// Allocates the first byte of the file at `path` (created if missing) without
/// changing its size: a no-op once allocated, but a journal handle on ext4. ENOTSUP and
/// ENOSYS pass.
#[cfg(target_os = "linux")]
fn preallocate(path: &Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::KEEP_SIZE, 0, 1) {
        Ok(()) | Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere (no `FALLOC_FL_KEEP_SIZE`) the probe only checks that the file can be opened
/// for writing.
#[cfg(not(target_os = "linux"))]
fn preallocate(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map(drop)
}

/// Whether an error is the disk's: SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR or
/// SQLITE_CANTOPEN (with their extended codes), or an I/O error.
pub fn is_disk_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(e) => {
            let primary = e.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
            matches!(primary, Some(8 | 10 | 13 | 14))
        }
        _ => false,
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

/// The details of SQLite's plan for `sql` on a fresh database with every migration,
/// its parameters unbound (NULL): what a test reads to see which indexes a query uses.
#[cfg(test)]
pub(crate) async fn query_plan(sql: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&dir.path().join("plan.db"), Duration::from_secs(5)).await.expect("open");
    let plan: Vec<(i64, i64, i64, String)> = sql::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(db.reader())
        .await
        .expect("a plan");
    plan.into_iter().map(|(.., detail)| detail).collect()
}
