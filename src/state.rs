//! What the running service shares — settings, database, WeCom client and crypto,
//! metrics, clock — built once at start (and by one-shot commands), and handed to the
//! HTTP handlers, the jobs and the outbox worker. The settings can be replaced while
//! the service runs (`leadboard reload`): each callback and each job run takes one
//! snapshot ([`AppState::settings`]) and uses it throughout, so that one request sees
//! one configuration.

use crate::clock::Clock;
use crate::config::Settings;
use crate::exactly_once::GroupCommit;
use crate::metrics::Metrics;
use crate::outbox::OutboxWorker;
use crate::service;
use crate::store::Db;
use crate::wecom::client::WecomClient;
use crate::wecom::crypto::WecomCrypto;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// The settings in force, replaced as a whole by a reload; whoever needs to react to a
/// change (the scheduler, for its cron expressions) subscribes.
#[derive(Clone)]
pub struct SharedSettings(Arc<watch::Sender<Arc<Settings>>>);

impl SharedSettings {
    pub fn new(settings: Settings) -> SharedSettings {
        SharedSettings(Arc::new(watch::Sender::new(Arc::new(settings))))
    }

    /// The settings in force now.
    pub fn current(&self) -> Arc<Settings> {
        self.0.borrow().clone()
    }

    /// Puts `settings` in force; returns the settings it replaced.
    pub fn replace(&self, settings: Arc<Settings>) -> Arc<Settings> {
        self.0.send_replace(settings)
    }

    /// A receiver that is told of every replacement.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.0.subscribe()
    }
}

/// What live views (the TV boards) wait for: a version of what people can see — the
/// latest event's id and the day — that the board's watcher publishes after it changes
/// in the database. Whatever commits a change the boards show wakes the watcher
/// ([`Changes::wake`]); the watcher also polls, for commits of other processes. The
/// version is read from the database after the commit, so a board never shows what is
/// not committed.
#[derive(Clone)]
pub struct Changes(Arc<ChangesInner>);

struct ChangesInner {
    wake: Notify,
    version: watch::Sender<(i64, i64)>,
    closing: CancellationToken,
}

impl Changes {
    fn new() -> Changes {
        Changes(Arc::new(ChangesInner {
            wake: Notify::new(),
            version: watch::Sender::new((0, 0)),
            closing: CancellationToken::new(),
        }))
    }

    /// Something was committed that a board may show: check now.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Resolves at the next [`Changes::wake`] (or at once, if one came meanwhile).
    pub async fn woken(&self) {
        self.0.wake.notified().await;
    }

    /// A receiver told of every new version.
    pub fn subscribe(&self) -> watch::Receiver<(i64, i64)> {
        self.0.version.subscribe()
    }

    /// How many live views are listening.
    pub fn listeners(&self) -> usize {
        self.0.version.receiver_count()
    }

    /// Publishes a version; receivers are told only when it differs.
    pub fn publish(&self, version: (i64, i64)) {
        self.0.version.send_if_modified(|v| std::mem::replace(v, version) != version);
    }

    /// Cancelled when the service stops: live streams end, so that shutdown does not
    /// wait for them.
    pub fn closing(&self) -> CancellationToken {
        self.0.closing.clone()
    }

    pub fn close(&self) {
        self.0.closing.cancel();
    }
}

/// What every handler and job shares.
#[derive(Clone)]
pub struct AppState {
    /// The settings in force; take a snapshot with [`AppState::settings`].
    pub config: SharedSettings,
    pub db: Db,
    pub crypto: Arc<WecomCrypto>,
    pub client: Arc<WecomClient>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox worker after messages are queued.
    pub outbox_wake: Arc<Notify>,
    /// Held while an outbox step runs, so that steps never overlap in this process.
    /// What every outbox worker on this state shares (pacing, deliveries under way).
    pub outbox: Arc<crate::outbox::Shared>,
    /// The queue in front of the callback writer (group commit, `exactly_once`).
    pub group_commit: GroupCommit,
    /// Signs the web console's cookies; kept in the database, so sessions survive a
    /// restart.
    pub cookie_key: axum_extra::extract::cookie::Key,
    /// Tells the TV boards that something may have changed.
    pub changes: Changes,
}

impl axum::extract::FromRef<AppState> for axum_extra::extract::cookie::Key {
    fn from_ref(state: &AppState) -> Self {
        state.cookie_key.clone()
    }
}

impl AppState {
    /// Builds the state for settings already loaded (also used by one-shot commands),
    /// with the configured directory, old channels and contests applied.
    pub async fn new(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        let state = Self::open(settings, clock).await?;
        service::directory::load(&state.db, &state.settings(), state.clock.now_ms()).await?;
        // The standings are held in memory: read them now rather than at the first 排行.
        service::contest::warm(&state.db, &state.settings()).await?;
        Ok(state)
    }

    /// Builds the state without touching the stored directory (`sync-directory`, which
    /// applies and reports it itself).
    pub async fn open(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        let db = Db::connect(&settings.database.url, Duration::from_millis(settings.database.busy_timeout_ms))
            .await
            .map_err(|e| anyhow::anyhow!("无法打开数据库 {}：{e}", settings.database_display()))?;
        let w = &settings.wecom;
        let crypto = WecomCrypto::new(w.token(), w.encoding_aes_key(), &w.corp_id)?;
        let cookie_key = {
            let mut tx = db.begin().await?;
            let key = crate::store::web::cookie_key(&mut tx, &rand::random(), clock.now_ms()).await?;
            tx.commit().await?;
            axum_extra::extract::cookie::Key::try_from(key.as_slice())?
        };
        let metrics = Arc::new(Metrics::new());
        let hook_metrics = metrics.clone();
        let client = WecomClient::new(&w.api_base, &w.corp_id, w.secret(), Duration::from_secs(w.timeout_secs))
            .with_clock(clock.clone())
            .with_shared_tokens(db.clone())
            .with_token_hook(move || {
                hook_metrics.token_refreshes.inc();
            });
        let group_commit = GroupCommit::start(&db)?;
        Ok(AppState {
            config: SharedSettings::new(settings),
            db,
            crypto: Arc::new(crypto),
            client: Arc::new(client),
            metrics,
            clock,
            outbox_wake: Arc::new(Notify::new()),
            outbox: Arc::default(),
            group_commit,
            cookie_key,
            changes: Changes::new(),
        })
    }

    /// A snapshot of the settings in force: what one callback or one job run uses
    /// throughout, even when a reload replaces them meanwhile.
    pub fn settings(&self) -> Arc<Settings> {
        self.config.current()
    }

    /// An outbox worker on this state; `Application::run` starts exactly one, and tests
    /// step one directly.
    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker {
            db: self.db.clone(),
            client: self.client.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            // Read once: changing [outbox] needs a restart.
            settings: Arc::new(self.settings().outbox.clone()),
            wake: self.outbox_wake.clone(),
            shared: self.outbox.clone(),
        }
    }
}
