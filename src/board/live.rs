//! Live updates: the watcher that publishes a new version when something the boards
//! show has been committed, the snapshots of each contest's board (computed once per
//! version and shared by every screen watching it) and one screen's event stream.

use super::Board;
use super::page;
use crate::service::board as service;
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedSemaphorePermit, watch};
use tokio_util::sync::CancellationToken;

/// How often the watcher looks at the event log while boards are open, for changes it
/// was not woken for (another process's commits, such as `leadboard jobs run`).
const POLL: Duration = Duration::from_secs(1);

/// The version of what the boards show: the latest event and today (a new day empties
/// the board's "today").
async fn version(app: &AppState, conn: &mut crate::service::Conn) -> anyhow::Result<(i64, i64)> {
    let latest = service::version(conn).await?;
    let day = chrono::Datelike::num_days_from_ce(&app.clock.now_local().date_naive());
    Ok((latest, i64::from(day)))
}

/// Publishes the version to the boards whenever it changes, until shutdown; then ends
/// every board's stream. Reads the database only while boards are open.
pub async fn watch(app: AppState, shutdown: CancellationToken) {
    loop {
        if app.changes.listeners() > 0 {
            let read = async {
                let mut conn = app.db.reader().acquire().await?;
                version(&app, &mut conn).await
            };
            match read.await {
                Ok(v) => app.changes.publish(v),
                Err(e) => tracing::warn!(error = %e, "board watcher could not read the event log"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = app.changes.woken() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
    app.changes.close();
}

/// One contest's board at one version.
pub struct Snapshot {
    version: (i64, i64),
    /// The link's token (none: the board cannot be opened).
    token: Option<String>,
    pub name: String,
    /// The part of the page that changes, rendered.
    pub live_html: String,
    /// The chart's data.
    pub series: serde_json::Value,
    pub cutoff_ms: i64,
    pub running: bool,
    /// What the board shows, without the moment it was read (the countdown, the
    /// chart's right end): two snapshots that agree here show the same thing.
    content: u64,
}

/// A digest of what `view` shows, leaving out what changes only with time.
fn content(view: &service::BoardView) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut view = view.clone();
    view.now_ms = 0;
    if view.running {
        view.time_left.clear();
    }
    for series in &mut view.series {
        if let Some(last) = series.points.last_mut() {
            last.0 = 0;
        }
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    format!("{view:?}").hash(&mut hasher);
    hasher.finish()
}

impl Snapshot {
    /// Whether `key` opens this board.
    pub fn opens(&self, key: &str) -> bool {
        self.token.as_deref().is_some_and(|t| service::key_matches(t, key))
    }

    /// The event a screen receives: the changing part, the chart, and the time (for
    /// the countdown).
    pub fn event_data(&self, now_ms: i64) -> String {
        serde_json::json!({
            "html": self.live_html,
            "series": self.series,
            "cutoff": self.cutoff_ms,
            "running": self.running,
            "now": now_ms,
        })
        .to_string()
    }

    fn shows_the_same(&self, other: &Snapshot) -> bool {
        self.content == other.content
    }
}

/// The latest snapshot of each contest's board.
#[derive(Default)]
pub struct Snapshots {
    latest: Mutex<HashMap<String, Arc<Snapshot>>>,
}

impl Snapshots {
    /// The board of `contest` now (none for a contest not configured). Computed once
    /// per version: while one screen computes it, the others wait and share it.
    pub async fn get(&self, app: &AppState, contest: &str) -> anyhow::Result<Option<Arc<Snapshot>>> {
        let settings = app.settings();
        let Some(def) = settings.contests.iter().find(|d| d.id == contest) else {
            return Ok(None);
        };
        // One read transaction: the version and everything shown are of one commit (a
        // confirmation never shows in today's list before it shows in the points).
        let mut read = app.db.reader().begin().await?;
        let version = version(app, &mut read).await?;
        let mut latest = self.latest.lock().await;
        if let Some(s) = latest.get(contest).filter(|s| s.version == version) {
            return Ok(Some(s.clone()));
        }
        let token = service::token(&mut read, &def.id).await?;
        let view = service::view(&mut read, def, app.clock.now()).await?;
        read.rollback().await?;
        let snapshot = Arc::new(Snapshot {
            version,
            token,
            name: view.name.clone(),
            live_html: page::live(&view)?,
            series: serde_json::to_value(&view.series)?,
            cutoff_ms: view.cutoff_ms,
            running: view.running,
            content: content(&view),
        });
        latest.insert(contest.to_owned(), snapshot.clone());
        Ok(Some(snapshot))
    }
}

/// One screen's stream of snapshots.
pub struct Stream {
    pub board: Board,
    pub contest: String,
    pub key: String,
    pub changes: watch::Receiver<(i64, i64)>,
    /// What the screen shows now.
    pub last: Option<Arc<Snapshot>>,
    /// Held while the stream is open (`server.board_streams`).
    pub _permit: OwnedSemaphorePermit,
}

impl Stream {
    /// The next snapshot that shows something new; none when the stream ends (the key
    /// no longer opens the board, or the service stops).
    pub async fn next(&mut self) -> Option<Arc<Snapshot>> {
        let closing = self.board.app.changes.closing();
        loop {
            tokio::select! {
                () = closing.cancelled() => return None,
                changed = self.changes.changed() => changed.ok()?,
            }
            match self.board.snapshots.get(&self.board.app, &self.contest).await {
                Ok(Some(s)) if s.opens(&self.key) => {
                    if self.last.as_ref().is_some_and(|l| l.shows_the_same(&s)) {
                        continue;
                    }
                    return Some(s);
                }
                Ok(_) => return None,
                Err(e) => tracing::warn!(error = %e, contest = %self.contest, "board snapshot failed"),
            }
        }
    }
}
