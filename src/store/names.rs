//! On SQLite, the look-alike test's candidates come from an index held in memory
//! ([`NameIndex`]), kept in step with the database through `name_log` (migration
//! 0120): triggers append a row for every name a subject or a placement is given, in
//! the changing transaction, whichever connection or process makes the change.
//!
//! The index holds the log's committed rows up to a cursor. [`sync`] moves it on, and
//! runs only where the connection has written nothing yet (a write transaction just
//! begun, or outside any transaction), so that what it takes in is committed and can
//! never be rolled back. [`look_alikes`] reads the rows after the cursor as well (those
//! committed since, and the connection's own uncommitted ones, such as the subject an
//! earlier callback of the same batch created) and compares the key with both. The
//! index is therefore never ahead of what the asking connection sees, and never
//! behind it.
//!
//! Indexes are held per database (the random `name_log_identity` its migration drew),
//! a few at a time (tests open many databases in one process). The log row at the
//! cursor is read back with each look: a database that no longer has it as the index
//! took it in (a copy that went its own way) gets its index built again.
//!
//! PostgreSQL keeps the index in tables (`name_variants`, `name_parts`), as replicas
//! write at once and its sequences do not give rows in commit order.

use crate::domain::lookalike::{NameIndex, Space};
use crate::store::Conn;
use crate::store::sql;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Databases whose index is held at once, at most.
const HELD: usize = 4;

/// One database's index: the log up to its cursor, the row `at_cursor` (None: nothing
/// taken in yet).
struct Held {
    identity: i64,
    index: NameIndex,
    at_cursor: Option<LogRow>,
}

impl Held {
    fn cursor(&self) -> i64 {
        seq(&self.at_cursor)
    }
}

/// The sequence number of a cursor's row (0 before the first row).
fn seq(at_cursor: &Option<LogRow>) -> i64 {
    at_cursor.as_ref().map_or(0, |row| row.0)
}

/// A `name_log` row: its sequence number, space, owner and name (None: the owner has
/// none now).
type LogRow = (i64, String, i64, Option<String>);

/// The database's identity beside a log row, or beside nothing (a LEFT JOIN's row).
type IdentityRow = (i64, Option<i64>, Option<String>, Option<i64>, Option<String>);

/// Most recently used first.
static HELD_INDEXES: LazyLock<Mutex<Vec<Held>>> = LazyLock::new(Mutex::default);

fn held() -> std::sync::MutexGuard<'static, Vec<Held>> {
    HELD_INDEXES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The database's identity and its log from `cursor` on (the row at `cursor` first,
/// when there is one).
async fn read_log(conn: &mut Conn, cursor: i64) -> Result<(i64, Vec<LogRow>), sqlx::Error> {
    let rows: Vec<IdentityRow> = sql::query_as(
        "SELECT i.value, l.seq, l.space, l.owner, l.name_key
         FROM name_log_identity i LEFT JOIN name_log l ON l.seq >= ?
         ORDER BY l.seq",
    )
    .bind(cursor)
    .fetch_all(conn)
    .await?;
    let identity = rows.first().map(|r| r.0).ok_or_else(|| sqlx::Error::RowNotFound)?;
    let log = rows.into_iter().filter_map(|(_, seq, space, owner, key)| Some((seq?, space?, owner?, key))).collect();
    Ok((identity, log))
}

/// The row at the cursor of the index held for `identity` (None when none is held or
/// it has taken nothing in).
fn cursor_of(identity: Option<i64>) -> Option<LogRow> {
    let held = held();
    let found = match identity {
        Some(id) => held.iter().find(|h| h.identity == id),
        None => held.first(),
    };
    found.and_then(|h| h.at_cursor.clone())
}

/// The database's identity, the cursor of the index held for it, and the log after
/// that cursor. The index held is dropped when the database no longer has the row
/// the index took in at its cursor.
async fn log_after_cursor(conn: &mut Conn) -> Result<(i64, i64, Vec<LogRow>), sqlx::Error> {
    // A guess that saves a statement: the database used last (in production the only one).
    let mut expected = cursor_of(None);
    let mut identity = None;
    loop {
        let cursor = seq(&expected);
        let (id, mut log) = read_log(conn, cursor).await?;
        if identity.is_none() {
            identity = Some(id);
            let held = cursor_of(identity);
            if held != expected {
                expected = held;
                continue;
            }
        }
        if cursor == 0 {
            return Ok((id, 0, log));
        }
        if log.first() == expected.as_ref() {
            log.remove(0);
            return Ok((id, cursor, log));
        }
        held().retain(|h| h.identity != id);
        expected = None;
    }
}

/// Takes the log's rows after the cursor into the database's index. Call only where
/// `conn` has written nothing yet: right after `BEGIN`, or outside a transaction. A
/// failure is logged, not returned: looks stay right without it (they read the log
/// after the cursor), only slower.
pub async fn sync(conn: &mut Conn) {
    if let Err(error) = take_in(conn).await {
        tracing::warn!(%error, "the look-alike index was not brought up to date");
    }
}

async fn take_in(conn: &mut Conn) -> Result<(), sqlx::Error> {
    let (identity, cursor, log) = log_after_cursor(conn).await?;
    let Some(last) = log.last().cloned() else { return Ok(()) };
    let mut held = held();
    let position = held.iter().position(|h| h.identity == identity);
    let mut entry = match position {
        Some(i) if held[i].cursor() == cursor => held.remove(i),
        // Moved on meanwhile by another connection: it has these rows already.
        Some(_) => return Ok(()),
        None if cursor == 0 => Held { identity, index: NameIndex::default(), at_cursor: None },
        None => return Ok(()),
    };
    for (_, space, owner, key) in &log {
        if let Some(space) = Space::parse(space) {
            entry.index.set(space, *owner, key.as_deref());
        }
    }
    entry.at_cursor = Some(last);
    held.insert(0, entry);
    held.truncate(HELD);
    Ok(())
}

/// The owners in `space` whose name, as `conn` sees it now, looks like `key`, in id
/// order.
pub async fn look_alikes(conn: &mut Conn, space: Space, key: &str) -> Result<Vec<i64>, sqlx::Error> {
    let (identity, cursor, log) = log_after_cursor(conn).await?;
    // The newest name of each owner the log names after the cursor.
    let mut recent: HashMap<i64, Option<String>> = HashMap::new();
    for (_, s, owner, name) in log {
        if Space::parse(&s) == Some(space) {
            recent.insert(owner, name);
        }
    }
    let held_found = {
        let held = held();
        match held.iter().find(|h| h.identity == identity && h.cursor() == cursor) {
            Some(h) => Some(h.index.look_alikes(space, key, |owner| recent.contains_key(&owner))),
            None if cursor == 0 => Some(Vec::new()),
            None => None,
        }
    };
    // None: the index moved on meanwhile (another connection's sync): read again.
    let Some(mut found) = held_found else { return Box::pin(look_alikes(conn, space, key)).await };
    let mut newest = NameIndex::default();
    for (owner, name) in &recent {
        newest.set(space, *owner, name.as_deref());
    }
    found.extend(newest.look_alikes(space, key, |_| false));
    found.sort_unstable();
    Ok(found)
}

/// Forgets every index held, as a new process starts without one.
#[cfg(test)]
pub fn forget_all() {
    held().clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;
    use crate::store::records::{self, Family, Origin};
    use std::time::Duration;

    async fn sqlite() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("names.db"), Duration::from_secs(5)).await.unwrap();
        (db, dir)
    }

    async fn subject(conn: &mut Conn, name: &str) -> i64 {
        records::insert_subject(conn, Family::Client, name, name, None, Origin::Reported, 0).await.unwrap()
    }

    async fn alike(conn: &mut Conn, key: &str) -> Vec<i64> {
        look_alikes(conn, Space::Client, key).await.unwrap()
    }

    /// A name is found in the transaction that stored it (a later callback of the same
    /// batch), on either writer; one rolled back is not, even when its subject's id is
    /// given again to another name.
    #[tokio::test]
    async fn the_index_follows_the_asking_transaction_through_rollbacks_and_commits() {
        let (db, _dir) = sqlite().await;
        let mut tx = db.begin().await.unwrap();
        let kept = subject(&mut *tx, "杭州云帆网络").await;
        assert_eq!(alike(&mut *tx, "杭州云帆网路").await, [kept]);
        let mut savepoint = tx.begin().await.unwrap();
        let dropped = subject(&mut *savepoint, "宁波甬江大学").await;
        assert_eq!(alike(&mut *savepoint, "宁波甬江大").await, [dropped]);
        drop(savepoint);
        let again = subject(&mut *tx, "温州瓯江学院").await;
        assert_eq!(again, dropped, "SQLite gives the rolled-back id again");
        assert!(alike(&mut *tx, "宁波甬江大").await.is_empty());
        assert_eq!(alike(&mut *tx, "温州瓯江").await, [again]);
        tx.commit().await.unwrap();

        // The writer's own connection: the committed names come from the index now.
        let mut direct = db.take_direct().unwrap().unwrap();
        let mut tx = db.begin_direct(&mut direct).await.unwrap();
        assert!(alike(&mut *tx, "宁波甬江大").await.is_empty());
        assert_eq!(alike(&mut *tx, "温州瓯江").await, [again]);
        assert_eq!(alike(&mut *tx, "云帆网络").await, [kept]);
        let third = subject(&mut *tx, "杭州云帆网络科创").await;
        assert_eq!(alike(&mut *tx, "云帆网络").await, [kept, third]);
        tx.rollback().await.unwrap();
        let mut tx = db.begin_direct(&mut direct).await.unwrap();
        assert_eq!(alike(&mut *tx, "云帆网络").await, [kept]);
    }

    /// A database from before the log (migration 0120) keeps its names: the migration
    /// logs every stored one, so the index finds them.
    #[tokio::test]
    async fn names_stored_before_the_log_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let old = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.migrations =
            migrator.migrations.iter().filter(|m| m.version < 120).cloned().collect::<Vec<_>>().into();
        migrator.run(&old).await.unwrap();
        sqlx::query(
            "INSERT INTO subjects (family, name, name_key, origin, created_at)
             VALUES ('client', '杭州云帆网络', '杭州云帆网络', 'reported', 0),
                    ('channel', '宁波甬江大学', '宁波甬江大学', 'existing', 0)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;
        let db = Db::open(&path, Duration::from_secs(5)).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        assert_eq!(alike(&mut *tx, "云帆网络").await.len(), 1);
        assert_eq!(look_alikes(&mut *tx, Space::Channel, "甬江大学").await.unwrap().len(), 1);
        assert!(alike(&mut *tx, "甬江大学").await.is_empty(), "each family its own names");
    }

    /// Names another process commits are found, in the next write transaction and in a
    /// read outside any.
    #[tokio::test]
    async fn names_committed_by_another_process_are_found() {
        let (db, dir) = sqlite().await;
        db.begin().await.unwrap().commit().await.unwrap();
        let other = rusqlite::Connection::open(dir.path().join("names.db")).unwrap();
        other
            .execute(
                "INSERT INTO subjects (family, name, name_key, origin, created_at)
                 VALUES ('client', '台州椒江科技', '台州椒江科技', 'reported', 0)",
                [],
            )
            .unwrap();
        let mut read = db.reader().acquire().await.unwrap();
        assert_eq!(alike(&mut read, "椒江科技").await.len(), 1);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(alike(&mut *tx, "台州椒江科").await.len(), 1);
    }

    /// Two databases that share a past (one a copy of the other) but went their own
    /// ways each get their own names, however the process goes between them.
    #[tokio::test]
    async fn a_copy_that_went_its_own_way_gets_an_index_of_its_own() {
        let (db, dir) = sqlite().await;
        let mut tx = db.begin().await.unwrap();
        let shared = subject(&mut *tx, "嘉兴南湖电子").await;
        tx.commit().await.unwrap();
        let copy_path = dir.path().join("copy.db");
        let file = rusqlite::Connection::open(dir.path().join("names.db")).unwrap();
        file.execute_batch(&format!("VACUUM INTO '{}'", copy_path.display())).unwrap();
        let copy = Db::open(&copy_path, Duration::from_secs(5)).await.unwrap();
        for (mine, theirs) in [("湖州吴兴纺织", "绍兴越城酿造"), ("湖州南浔丝绸", "绍兴柯桥布艺")]
        {
            let mut tx = db.begin().await.unwrap();
            let my_id = subject(&mut *tx, mine).await;
            tx.commit().await.unwrap();
            let mut tx = copy.begin().await.unwrap();
            let their_id = subject(&mut *tx, theirs).await;
            tx.commit().await.unwrap();
            assert_eq!(my_id, their_id, "the copies give the same id to different names");
            let (my_key, their_key) = (&mine[6..], &theirs[6..]);
            let mut tx = db.begin().await.unwrap();
            assert_eq!(alike(&mut *tx, my_key).await, [my_id]);
            assert!(alike(&mut *tx, their_key).await.is_empty());
            assert_eq!(alike(&mut *tx, "南湖电子").await, [shared]);
            tx.rollback().await.unwrap();
            let mut tx = copy.begin().await.unwrap();
            assert_eq!(alike(&mut *tx, their_key).await, [their_id]);
            assert!(alike(&mut *tx, my_key).await.is_empty());
            tx.rollback().await.unwrap();
        }
    }
}
