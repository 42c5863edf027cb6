//! The group-commit writer's own SQLite connection, used on the writer's thread.
//!
//! Through sqlx every statement is a round trip to the connection's worker thread: the
//! statement goes over a channel, the worker wakes, runs it, and sends each row and the
//! result back, waking the caller. In a callback batch those hops were most of a
//! callback's time (BENCHMARKS.md, issue 16). The writer therefore runs on a thread of
//! its own and owns a [`DirectConn`]: a synchronous SQLite connection (rusqlite, on the
//! same bundled SQLite as sqlx), whose statements run in the calling thread with their
//! prepared statements cached. Everything else (readers, jobs, the console, the CLI)
//! stays on sqlx; [`crate::store::Db`] makes the two writers take turns.
//!
//! Store code does not change: a `DirectConn` is a [`crate::store::sql::DbConn`], and
//! [`crate::store::sql`] runs the same [`crate::store::sql::Query`] on it, binding the
//! arguments as sqlx's SQLite driver does and decoding rows with [`FromDirect`]. Errors
//! come back as `sqlx::Error`s with SQLite's extended result codes and messages, so a
//! unique violation or a full disk reads the same whichever connection met it.

use crate::store::sql::{Arg, Kind};
use rusqlite::types::{FromSql, Null};
use sqlx::error::{DatabaseError, ErrorKind};
use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

/// Statements kept prepared on the connection, at most (sqlx's default is 100).
const STATEMENT_CACHE: usize = 256;

/// The writer pool's settings, and the savepoints' sub-journal in memory: every
/// callback has a savepoint, and on disk SQLite wrote that journal to a temporary file
/// it created and removed in every batch.
const SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
    PRAGMA temp_store = MEMORY;";

/// The statement log's target: each statement at debug, as sqlx logs its own under
/// `sqlx::query`.
const LOG_TARGET: &str = "leadboard::sql";

/// A synchronous SQLite connection, opened with the settings sqlx's writer has (WAL,
/// `synchronous = FULL`, foreign keys, the busy timeout) and [`SETTINGS`].
pub struct DirectConn {
    conn: rusqlite::Connection,
    /// Open transactions and savepoints ([`DirectTx`]s).
    depth: usize,
}

impl std::fmt::Debug for DirectConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectConn").field("depth", &self.depth).finish_non_exhaustive()
    }
}

impl DirectConn {
    /// Opens the database at `path` (which must exist and be migrated).
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<DirectConn, sqlx::Error> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(error)?;
        conn.busy_timeout(busy_timeout).map_err(error)?;
        conn.execute_batch(SETTINGS).map_err(error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(DirectConn { conn, depth: 0 })
    }

    /// A transaction (`BEGIN IMMEDIATE`: the write lock until it ends) or, inside one, a
    /// savepoint; rolled back when dropped without [`DirectTx::commit`].
    pub fn begin(&mut self) -> Result<DirectTx<'_>, sqlx::Error> {
        let sql = match self.depth {
            0 => Cow::Borrowed("BEGIN IMMEDIATE"),
            depth => Cow::Owned(format!("SAVEPOINT direct_{depth}")),
        };
        self.statements(&sql)?;
        self.depth += 1;
        Ok(DirectTx { conn: self, open: true })
    }

    /// Whether a transaction is open on the connection (one left open by a failed
    /// rollback makes the connection unusable for the next batch).
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs `sql`, one or more parameterless statements, reading no rows.
    pub(super) fn statements(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let outcome = self.conn.execute_batch(sql).map_err(error);
        log(sql, started, None);
        outcome
    }

    /// Runs the one statement `sql` with `args`, reading (and dropping) any rows it
    /// returns; the rows it changed.
    pub(super) fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, sqlx::Error> {
        let started = Instant::now();
        let mut statement = self.conn.prepare_cached(sql).map_err(error)?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        while rows.next().map_err(error)?.is_some() {}
        drop(rows);
        drop(statement);
        let changed = self.conn.changes();
        log(sql, started, Some(changed));
        Ok(changed)
    }

    /// Runs the one statement `sql` with `args` and decodes its rows (only the first
    /// when `first_only`).
    pub(super) fn fetch<O>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        first_only: bool,
        decode: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<O>,
    ) -> Result<Vec<O>, sqlx::Error> {
        let started = Instant::now();
        let mut statement = self.conn.prepare_cached(sql).map_err(error)?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            out.push(decode(row).map_err(error)?);
            if first_only {
                break;
            }
        }
        drop(rows);
        log(sql, started, None);
        Ok(out)
    }
}

/// Binds `args` as sqlx's SQLite driver does: a parameter `?NNN` takes argument NNN,
/// and each bare `?` the next argument in order; parameters past the arguments stay
/// NULL.
fn bind(statement: &mut rusqlite::Statement<'_>, args: Vec<Arg>) -> Result<(), sqlx::Error> {
    let mut next = 0;
    for parameter in 1..=statement.parameter_count() {
        let n = match statement.parameter_name(parameter) {
            Some(name) => name
                .strip_prefix(['?', '$'])
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| sqlx::Error::Protocol(format!("unsupported SQL parameter format: {name}")))?,
            None => {
                next += 1;
                next
            }
        };
        let Some(arg) = n.checked_sub(1).and_then(|i| args.get(i)) else { break };
        let bound = match arg {
            Arg::Int(v) => statement.raw_bind_parameter(parameter, v),
            Arg::Text(v) => statement.raw_bind_parameter(parameter, v.as_str()),
            Arg::Bytes(v) => statement.raw_bind_parameter(parameter, v.as_slice()),
            Arg::Null(Kind::Int | Kind::Text | Kind::Bytes) => statement.raw_bind_parameter(parameter, Null),
        };
        bound.map_err(error)?;
    }
    Ok(())
}

fn log(sql: &str, started: Instant, rows_affected: Option<u64>) {
    tracing::debug!(
        target: LOG_TARGET,
        statement = sql,
        rows_affected = ?rows_affected,
        elapsed_secs = started.elapsed().as_secs_f64(),
        "direct statement",
    );
}

/// A transaction or savepoint on a [`DirectConn`].
pub struct DirectTx<'c> {
    conn: &'c mut DirectConn,
    open: bool,
}

/// The connection the transaction is on.
impl std::ops::Deref for DirectTx<'_> {
    type Target = DirectConn;
    fn deref(&self) -> &DirectConn {
        self.conn
    }
}

impl std::ops::DerefMut for DirectTx<'_> {
    fn deref_mut(&mut self) -> &mut DirectConn {
        self.conn
    }
}

impl DirectTx<'_> {
    pub fn commit(mut self) -> Result<(), sqlx::Error> {
        let sql = match self.conn.depth {
            1 => Cow::Borrowed("COMMIT"),
            depth => Cow::Owned(format!("RELEASE direct_{}", depth - 1)),
        };
        let outcome = self.conn.statements(&sql);
        if outcome.is_ok() || (self.conn.depth == 1 && !self.conn.in_transaction()) {
            // Committed, or a failed COMMIT that SQLite rolled back itself (a full disk).
            self.close();
        }
        outcome
    }

    pub fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), sqlx::Error> {
        let sql = match self.conn.depth {
            1 => Cow::Borrowed("ROLLBACK"),
            depth => Cow::Owned(format!("ROLLBACK TO direct_{0}; RELEASE direct_{0}", depth - 1)),
        };
        // A transaction SQLite has already rolled back itself needs no ROLLBACK.
        let outcome =
            if self.conn.depth == 1 && !self.conn.in_transaction() { Ok(()) } else { self.conn.statements(&sql) };
        self.close();
        outcome
    }

    fn close(&mut self) {
        self.open = false;
        self.conn.depth -= 1;
    }
}

impl Drop for DirectTx<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.undo()
        {
            tracing::error!(error = %e, "a dropped transaction could not be rolled back");
        }
    }
}

/// Decodes a row of a [`DirectConn`]: a tuple by position, a struct by its fields'
/// names ([`direct_row!`](crate::direct_row)).
pub trait FromDirect: Sized {
    fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: FromSql),+> FromDirect for ($($t,)+) {
            fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        }
    )*};
}

tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
}

/// Decodes a row struct (one that derives `sqlx::FromRow`) on a [`DirectConn`]: each
/// named field from the column of its name, and each field after `flatten` (sqlx's
/// `#[sqlx(flatten)]`) from the same row. The struct literal names every field, so a
/// field added to the struct and not here does not compile.
#[macro_export]
macro_rules! direct_row {
    ($ty:ident { $($field:ident),+ $(; flatten $($flat:ident),+)? }) => {
        impl $crate::store::direct::FromDirect for $ty {
            fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok($ty {
                    $($field: row.get(stringify!($field))?,)+
                    $($($flat: $crate::store::direct::FromDirect::from_direct(row)?,)+)?
                })
            }
        }
    };
}

/// An error SQLite returned on a [`DirectConn`], as sqlx reports its own: the extended
/// result code and SQLite's message.
#[derive(Debug)]
struct DirectError {
    code: i32,
    message: String,
}

impl std::fmt::Display for DirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DirectError {}

impl DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => ErrorKind::UniqueViolation,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// rusqlite's error as sqlx's: SQLite's own as a database error, a value that does not
/// decode as a decoding error.
fn error(e: rusqlite::Error) -> sqlx::Error {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(failure, message) => sqlx::Error::Database(Box::new(DirectError {
            code: failure.extended_code,
            message: message.unwrap_or_else(|| failure.to_string()),
        })),
        E::InvalidColumnName(name) => sqlx::Error::ColumnNotFound(name),
        E::FromSqlConversionFailure(..) | E::InvalidColumnType(..) | E::IntegralValueOutOfRange(..) => {
            sqlx::Error::Decode(Box::new(e))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (DirectConn, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("direct.db");
        rusqlite::Connection::open(&path).unwrap();
        (DirectConn::open(&path, Duration::from_secs(1)).unwrap(), dir)
    }

    #[test]
    fn arguments_bind_as_sqlx_binds_them() {
        let (mut conn, _dir) = open();
        let args = vec![Arg::Int(1), Arg::Text("two".into()), Arg::Null(Kind::Int)];
        let row: Vec<(i64, String, Option<i64>, i64)> =
            conn.fetch("SELECT ?1, ?2, ?3, ?1", args, true, FromDirect::from_direct).unwrap();
        assert_eq!(row, [(1, "two".into(), None, 1)]);
        let bare = vec![Arg::Int(1), Arg::Bytes(vec![2]), Arg::Text("3".into())];
        let row: Vec<(i64, Vec<u8>, String)> =
            conn.fetch("SELECT ?, ?, ?", bare, true, FromDirect::from_direct).unwrap();
        assert_eq!(row, [(1, vec![2], "3".into())]);
        let unbound: Vec<(Option<i64>,)> = conn.fetch("SELECT ?", vec![], true, FromDirect::from_direct).unwrap();
        assert_eq!(unbound, [(None,)], "a parameter without an argument is NULL, as with sqlx");
    }

    #[test]
    fn a_nested_savepoint_rolls_back_alone_and_a_dropped_transaction_rolls_back() {
        let (mut conn, _dir) = open();
        conn.statements("CREATE TABLE t (a INTEGER UNIQUE)").unwrap();
        let mut tx = conn.begin().unwrap();
        tx.execute("INSERT INTO t (a) VALUES (?)", vec![Arg::Int(1)]).unwrap();
        {
            let mut inner = tx.begin().unwrap();
            inner.execute("INSERT INTO t (a) VALUES (?)", vec![Arg::Int(2)]).unwrap();
            let duplicate = inner.execute("INSERT INTO t (a) VALUES (?)", vec![Arg::Int(1)]);
            let Err(sqlx::Error::Database(e)) = duplicate else { panic!("a unique violation: {duplicate:?}") };
            assert!(e.is_unique_violation());
            assert_eq!(e.code().as_deref(), Some("2067"), "SQLite's extended code, as sqlx gives it");
            assert_eq!(e.message(), "UNIQUE constraint failed: t.a");
            // Dropped: rolled back to the savepoint.
        }
        tx.commit().unwrap();
        assert!(!conn.in_transaction());
        {
            let mut dropped = conn.begin().unwrap();
            dropped.execute("INSERT INTO t (a) VALUES (3)", vec![]).unwrap();
        }
        assert!(!conn.in_transaction());
        let rows: Vec<i64> = conn.fetch("SELECT a FROM t ORDER BY a", vec![], false, |r| r.get(0)).unwrap();
        assert_eq!(rows, [1]);
        assert_eq!(conn.execute("UPDATE t SET a = a + 10", vec![]).unwrap(), 1);
    }
}
