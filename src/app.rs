//! The running service: shared state, and `Application`, which binds its listener
//! first so that tests and local mode can use port 0 and learn the address.

use crate::clock::Clock;
use crate::config::{DirectorySource, Settings};
use crate::delivery::OutboxWorker;
use crate::domain::text::name_key;
use crate::metrics::Metrics;
use crate::store::Db;
use crate::store::{directory, records};
use crate::wecom::client::WecomClient;
use crate::wecom::crypto::WecomCrypto;
use crate::wecom::simulator::Simulator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What every handler and job shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub crypto: Arc<WecomCrypto>,
    pub client: Arc<WecomClient>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox worker after messages are queued.
    pub outbox_wake: Arc<Notify>,
}

impl AppState {
    /// Builds the state for settings already loaded (also used by one-shot commands).
    pub async fn new(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        let db = Db::open(&settings.database_path(), Duration::from_millis(settings.database.busy_timeout_ms))
            .await
            .map_err(|e| anyhow::anyhow!("无法打开数据库 {}：{e}", settings.database_path().display()))?;
        load_directory(&db, &settings, clock.now_ms()).await?;
        let w = &settings.wecom;
        let crypto = WecomCrypto::new(w.token(), w.encoding_aes_key(), &w.corp_id)?;
        let metrics = Arc::new(Metrics::new());
        let hook_metrics = metrics.clone();
        let client = WecomClient::new(&w.api_base, &w.corp_id, w.secret(), Duration::from_secs(w.timeout_secs))
            .with_token_hook(move || {
                hook_metrics.token_refreshes.inc();
            });
        Ok(AppState {
            settings: Arc::new(settings),
            db,
            crypto: Arc::new(crypto),
            client: Arc::new(client),
            metrics,
            clock,
            outbox_wake: Arc::new(Notify::new()),
        })
    }

    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker {
            db: self.db.clone(),
            client: self.client.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            settings: Arc::new(self.settings.outbox.clone()),
            wake: self.outbox_wake.clone(),
        }
    }
}

/// Brings the stored directory in line with the configuration (static source) and
/// registers the configured old channels. A WeCom-sourced directory is synced by its job.
async fn load_directory(db: &Db, settings: &Settings, now_ms: i64) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    if settings.directory.source == DirectorySource::Static {
        let changes = directory::apply(&mut tx, &settings.directory_snapshot(), "config", now_ms).await?;
        if !changes.is_empty() {
            tracing::info!(
                added = changes.added.len(),
                moved = changes.moved.len(),
                updated = changes.updated.len(),
                departed = changes.departed.len(),
                returned = changes.returned.len(),
                "directory updated from configuration"
            );
        }
    }
    let channels: Vec<(String, String)> =
        settings.channels.existing.iter().map(|n| (n.trim().to_owned(), name_key(n))).collect();
    records::ensure_existing_channels(&mut tx, &channels, now_ms).await?;
    tx.commit().await?;
    Ok(())
}

/// A bound, ready-to-run service.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    simulator: Option<Simulator>,
}

impl Application {
    /// Binds `server.listen`, opens the database and prepares every part. In local mode
    /// the WeCom API is the built-in simulator, served on the same listener.
    pub async fn build(mut settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("无法监听 {}：{e}", settings.server.listen))?;
        let addr = listener.local_addr()?;
        if settings.local_mode {
            settings.wecom.api_base = format!("http://{addr}{}", crate::wecom::simulator::PREFIX);
        }
        let state = AppState::new(settings, clock).await?;
        let simulator = state.settings.local_mode.then(|| Simulator::new(state.db.clone()));
        Ok(Application { listener, state, simulator })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight
    /// callbacks finish, stops the background workers between steps, and closes the
    /// database.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut router = crate::http::router(self.state.clone());
        if let Some(simulator) = &self.simulator {
            router = router.nest(crate::wecom::simulator::PREFIX, simulator.router());
        }
        let worker = tokio::spawn(self.state.outbox_worker().run(shutdown.clone()));
        let scheduler = self
            .state
            .settings
            .schedules
            .enabled
            .then(|| tokio::spawn(crate::jobs::scheduler::run(self.state.clone(), shutdown.clone())));
        tracing::info!(addr = %self.local_addr(), local_mode = self.state.settings.local_mode, "leadboard listening");
        let served =
            axum::serve(self.listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
        shutdown.cancel();
        let _ = worker.await;
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        self.state.db.close().await;
        tracing::info!("leadboard stopped");
        Ok(served?)
    }
}
