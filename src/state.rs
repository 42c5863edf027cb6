//! What the running service shares — settings, database, WeCom client and crypto,
//! metrics, clock — built once at start (and by one-shot commands), and handed to the
//! HTTP handlers, the jobs and the outbox worker.

use crate::clock::Clock;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::outbox::OutboxWorker;
use crate::service;
use crate::store::Db;
use crate::wecom::client::WecomClient;
use crate::wecom::crypto::WecomCrypto;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};

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
    /// Held while an outbox step runs, so that steps never overlap in this process.
    pub outbox_step: Arc<Mutex<()>>,
}

impl AppState {
    /// Builds the state for settings already loaded (also used by one-shot commands),
    /// with the configured directory, old channels and contests applied.
    pub async fn new(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        let state = Self::open(settings, clock).await?;
        service::directory::load(&state.db, &state.settings, state.clock.now_ms()).await?;
        Ok(state)
    }

    /// Builds the state without touching the stored directory (`sync-directory`, which
    /// applies and reports it itself).
    pub async fn open(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        let db = Db::open(&settings.database_path(), Duration::from_millis(settings.database.busy_timeout_ms))
            .await
            .map_err(|e| anyhow::anyhow!("无法打开数据库 {}：{e}", settings.database_path().display()))?;
        let w = &settings.wecom;
        let crypto = WecomCrypto::new(w.token(), w.encoding_aes_key(), &w.corp_id)?;
        let metrics = Arc::new(Metrics::new());
        let hook_metrics = metrics.clone();
        let client = WecomClient::new(&w.api_base, &w.corp_id, w.secret(), Duration::from_secs(w.timeout_secs))
            .with_clock(clock.clone())
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
            outbox_step: Arc::new(Mutex::new(())),
        })
    }

    /// An outbox worker on this state; `Application::run` starts exactly one, and tests
    /// step one directly.
    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker {
            db: self.db.clone(),
            client: self.client.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            settings: Arc::new(self.settings.outbox.clone()),
            wake: self.outbox_wake.clone(),
            stepping: self.outbox_step.clone(),
            delivering: Arc::new(AtomicI64::new(0)),
        }
    }
}
