//! Processing of one decrypted callback, exactly once: the dedup check, the effects and
//! the stored answer share one write transaction, so a retry (even a concurrent one)
//! finds the first answer and changes nothing, and nothing is answered before its
//! effects are committed.
//!
//! **Group commit.** Callbacks that arrive together share that write transaction: each
//! callback queues its work ([`GroupCommit`], a bounded queue) and waits; one writer
//! task takes whatever has queued (up to [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE`,
//! runs each callback in its own savepoint — one that fails rolls back only its own
//! work and is answered as it would be alone — commits once (one fsync) and only then
//! answers them all. The batch closes when the queue is empty, so a lone callback is
//! never delayed; under load the next batch gathers while the previous one commits.
//!
//! On SQLite the writer runs on a thread of its own, with a connection of its own
//! ([`crate::store::direct`]): a batch's statements run in that thread, with no round
//! trip to sqlx's worker thread for each. On PostgreSQL it is a task on the service's
//! runtime, on a pooled connection.

use crate::commands;
use crate::config::Settings;
use crate::service::queue_text;
use crate::state::AppState;
use crate::store::direct::DirectConn;
use crate::store::inbox::{self, StoredReply};
use crate::store::{Conn, Db, sql};
use crate::wecom::message::APP_TEXT_LIMIT;
use crate::wecom::xml::{Inbound, InboundKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, Span, instrument};

/// The answer to a callback: what goes in the HTTP response.
pub type Reply = StoredReply;

/// Callbacks waiting for the writer, at most; a callback arriving when it is full waits
/// for room (so the queue bounds memory, not correctness).
pub const QUEUE_CAPACITY: usize = 512;

/// Callbacks committed together, at most.
pub const MAX_BATCH: usize = 128;

/// Whether a callback was processed now or had been seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Processed now.
    First,
    /// A retry: answered from the inbox, nothing changed.
    Again,
}

type Outcome = Result<(Reply, Seen), sqlx::Error>;

/// One queued callback.
struct Job {
    state: AppState,
    settings: Arc<Settings>,
    inbound: Inbound,
    /// The request's span, so the writer's log lines carry the callback's request id.
    span: Span,
    answer: oneshot::Sender<Outcome>,
}

/// The queue in front of the writer task (one per [`AppState`]).
#[derive(Clone, Debug)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
    /// Callbacks in the batch being written now.
    writing: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("inbound", &self.inbound).finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer for `db`: on SQLite a thread of its own (with a single-threaded
    /// runtime for what the callbacks await), on PostgreSQL a task. It ends when every
    /// handle is dropped and the queue is empty (the queued callbacks carry the state
    /// they run on, not the writer).
    pub fn start(db: &Db) -> std::io::Result<GroupCommit> {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let writing = Arc::new(AtomicUsize::new(0));
        let run = writer(jobs, writing.clone());
        if db.is_shared() {
            tokio::spawn(run);
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name("leadboard-writer".into()).spawn(move || runtime.block_on(run))?;
        }
        Ok(GroupCommit { queue, writing })
    }

    /// Callbacks waiting in the queue now (not counting the batch being written).
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Callbacks in the batch being written now (0 when the writer is idle).
    pub fn writing(&self) -> usize {
        self.writing.load(Ordering::Relaxed)
    }
}

/// Processes a callback (or replays its answer if it was seen before) under `settings`,
/// the snapshot the callback took when it arrived. Answers only once the transaction
/// holding its effects has committed.
#[instrument(level = "debug", skip_all, fields(from = %inbound.from))]
pub async fn process(state: &AppState, settings: Arc<Settings>, inbound: Inbound) -> Outcome {
    let (answer, answered) = oneshot::channel();
    let job = Job { state: state.clone(), settings, inbound, span: Span::current(), answer };
    state.group_commit.queue.send(job).await.map_err(|_| closed("the callback writer has stopped"))?;
    answered.await.map_err(|_| closed("the callback's batch was abandoned"))?
}

fn closed(what: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(what.to_owned()))
}

/// Takes what has queued, up to [`MAX_BATCH`], and commits it as one batch; the next
/// batch gathers meanwhile. Each batch runs as its own task, so that a panic in one
/// callback abandons its batch (rolled back, answered with an error) and not the writer.
/// On SQLite the batch runs on the writer's own connection, kept by the database from
/// batch to batch ([`Db::take_direct`]); one whose batch panicked is not kept.
async fn writer(mut jobs: mpsc::Receiver<Job>, writing: Arc<AtomicUsize>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        writing.store(batch.len(), Ordering::Relaxed);
        let db = batch[0].state.db.clone();
        match db.take_direct().transpose() {
            Err(e) => fail_all(&db, std::mem::take(&mut batch), &e),
            Ok(conn) => match tokio::spawn(commit_batch(std::mem::take(&mut batch), conn)).await {
                Ok(Some(conn)) => db.put_direct(conn),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "a callback batch panicked; its callbacks were answered with an error")
                }
            },
        }
        writing.store(0, Ordering::Relaxed);
        batch = Vec::with_capacity(MAX_BATCH);
    }
}

/// One write transaction for the batch, a savepoint per callback, one commit, then the
/// answers. If the transaction cannot be opened or committed (or a savepoint cannot be
/// rolled back), nothing of the batch is kept and every callback gets an error, which
/// WeCom retries. The transaction is on `conn` when the writer has its own (SQLite),
/// which is given back; otherwise on a pooled connection.
async fn commit_batch(batch: Vec<Job>, mut conn: Option<DirectConn>) -> Option<DirectConn> {
    write_batch(batch, conn.as_mut()).await;
    conn
}

async fn write_batch(batch: Vec<Job>, conn: Option<&mut DirectConn>) {
    let Some(first) = batch.first() else { return };
    let state = first.state.clone();
    state.metrics.callback_batch_size.observe(batch.len() as f64);
    let db = &state.db;
    let began = match conn {
        Some(conn) => db.begin_direct(conn).await,
        None => db.begin().await,
    };
    let mut tx = match began {
        Ok(tx) => tx,
        Err(e) => return fail_all(db, batch, &e),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in &batch {
        // `one` opens the callback's savepoint and, when it succeeds, releases it.
        let work = one(&job.state, &job.settings, &mut *tx, &job.inbound);
        match work.instrument(job.span.clone()).await {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(error) => {
                db.note_write_error(&error);
                // If the savepoint was never opened, this fails too, and so does the batch.
                if let Err(e) = sql::statements(&mut *tx, UNDO).await {
                    return fail_all(db, batch, &e);
                }
                outcomes.push(Err(error));
            }
        }
    }
    if let Err(e) = tx.commit().await {
        return fail_all(db, batch, &e);
    }
    // A sync that raced an ext4 journal abort may have returned success for a commit
    // that is not on disk: answer only once the file system still takes changes. If it
    // does not, the commit may or may not survive the repair; either way WeCom's retry
    // finds the right state (the stored answer, or nothing yet).
    // (In this thread: on SQLite it is the writer's own, on PostgreSQL this passes.)
    if let Err(e) = db.confirm_commit_here() {
        db.note_write_error(&e);
        tracing::error!(error = %e, callbacks = batch.len(), "callback batch committed but not confirmed on disk; answered with an error");
        for job in batch {
            let _ = job.answer.send(Err(closed(&format!("callback batch not confirmed on disk: {e}"))));
        }
        return;
    }
    if outcomes.iter().any(|o| matches!(o, Ok((_, Seen::First)))) {
        // Something was written and committed: the disk takes writes.
        state.db.note_write(&Ok::<(), sqlx::Error>(()));
    }
    state.outbox_wake.notify_one();
    state.changes.wake();
    for (job, outcome) in batch.into_iter().zip(outcomes) {
        if let Ok((_, Seen::Again)) = &outcome {
            job.state.metrics.duplicates.inc();
            let _in_request = job.span.enter();
            tracing::info!(key = job.inbound.dedup_key(), from = %job.inbound.from, "duplicate callback answered from the inbox");
        }
        // The caller may have gone (its connection closed): its effects stay committed,
        // and WeCom's retry is answered from the inbox.
        let _ = job.answer.send(outcome);
    }
}

/// Answers every callback of `batch` with an error; a write that failed on the disk
/// makes /healthz unhealthy until one succeeds.
fn fail_all(db: &Db, batch: Vec<Job>, error: &sqlx::Error) {
    db.note_write_error(error);
    tracing::error!(error = %error, callbacks = batch.len(), "callback batch rolled back");
    for job in batch {
        let _ = job.answer.send(Err(closed(&format!("callback batch rolled back: {error}"))));
    }
}

/// Each callback's savepoint. It is opened and released by statements sent with the
/// callback's first and last (the inbox lookup and insert), not by statements of
/// their own: on SQLite each statement is a round trip to the connection's thread,
/// and in a batch those round trips are most of a callback's time.
const OPEN: &str = "SAVEPOINT callback";
const RELEASE: &str = "RELEASE callback";
/// Undoes a failed callback's work, leaving the rest of its batch.
const UNDO: &str = "ROLLBACK TO callback; RELEASE callback";
/// Undoes a refused command's work, keeping the savepoint for its answer.
const REFUSED: &str = "ROLLBACK TO callback";

/// One callback inside its savepoint: the dedup check, the effects, the stored answer.
/// Opens the savepoint and, when it succeeds, releases it; when it fails, the
/// savepoint may be open (see [`UNDO`]).
async fn one(state: &AppState, settings: &Settings, conn: &mut Conn, inbound: &Inbound) -> Outcome {
    let key = inbound.dedup_key();
    if let Some(reply) = inbox::find(conn, &key, OPEN).await? {
        sql::statements(conn, RELEASE).await?;
        return Ok((reply, Seen::Again));
    }
    let (reply, refused) = dispatch(state, settings, conn, inbound).await?;
    if refused {
        sql::statements(conn, REFUSED).await?;
    }
    let reply = passive_or_outbox(state, settings, conn, inbound, reply).await?;
    let now = state.clock.now_ms();
    inbox::insert(conn, &key, &inbound.from, kind_name(&inbound.kind), now, &reply, RELEASE).await?;
    Ok((reply, Seen::First))
}

/// The callback's answer, and whether its command refused (so that what it wrote must
/// be rolled back).
async fn dispatch(
    state: &AppState,
    settings: &Settings,
    conn: &mut Conn,
    inbound: &Inbound,
) -> Result<(Reply, bool), sqlx::Error> {
    let now = state.clock.now();
    Ok(match &inbound.kind {
        InboundKind::Text { content } => {
            let answer = commands::handle_text(settings, now, conn, &inbound.from, content).await?;
            (Reply::Text(answer.text), answer.refused)
        }
        InboundKind::TemplateCard(event) => {
            commands::press::handle(settings, now, conn, &inbound.from, event).await?;
            (Reply::Empty, false)
        }
        other => {
            tracing::info!(from = %inbound.from, kind = kind_name(other), "callback ignored");
            (Reply::Empty, false)
        }
    })
}

/// Text too long for a passive reply (2048 bytes) is sent through the API instead, in
/// parts; the HTTP answer is then empty.
async fn passive_or_outbox(
    state: &AppState,
    settings: &Settings,
    conn: &mut Conn,
    inbound: &Inbound,
    reply: Reply,
) -> Result<Reply, sqlx::Error> {
    match reply {
        Reply::Text(text) if text.len() > APP_TEXT_LIMIT => {
            queue_text(conn, settings, state.clock.now_ms(), &[&inbound.from], &text).await?;
            Ok(Reply::Empty)
        }
        other => Ok(other),
    }
}

fn kind_name(kind: &InboundKind) -> &'static str {
    match kind {
        InboundKind::Text { .. } => "text",
        InboundKind::EnterAgent => "enter_agent",
        InboundKind::Click { .. } => "click",
        InboundKind::TemplateCard(_) => "template_card_event",
        InboundKind::Other { .. } => "other",
    }
}
