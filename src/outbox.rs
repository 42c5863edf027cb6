//! The outbox worker: delivers queued messages one at a time, oldest first, retrying
//! temporary failures with exponential backoff and giving up on permanent ones.
//! Delivery is at-least-once: a crash between WeCom's answer and the status update, or
//! a failed status update, sends that one message again; nothing is lost. Every
//! `message/send` asks WeCom to drop a repeat within its duplicate-check interval, so
//! such a repeat reaches people once; group chats and robots have no such check.

use crate::clock::Clock;
use crate::config::OutboxSettings;
use crate::metrics::{DeliveryLabel, Metrics};
use crate::store::Db;
use crate::store::outbox::{self, Api, Pending, RESPONSE_CODE_REF, Status};
use crate::wecom::client::{ApiError, WecomClient};
use crate::wecom::message::check_duplicates;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tracing::instrument;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Delivered(i64),
    Retrying(i64),
    GaveUp(i64),
    /// Nothing due; the next message falls due at this time (ms), if any is pending.
    Idle(Option<i64>),
}

#[derive(Clone)]
pub struct OutboxWorker {
    pub db: Db,
    pub client: Arc<WecomClient>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<OutboxSettings>,
    /// Signalled after a transaction that queued messages commits.
    pub wake: Arc<Notify>,
    /// Held for the length of a step: workers sharing it never deliver the same message
    /// twice (tests step the service's worker while it runs).
    pub stepping: Arc<Mutex<()>>,
    /// The id of the message being delivered, 0 between deliveries; read at shutdown
    /// to name a delivery that the grace period abandons.
    pub delivering: Arc<AtomicI64>,
}

impl OutboxWorker {
    /// Delivers until shutdown. Shutdown is honoured between deliveries only: a delivery
    /// under way is finished, or abandoned by the caller and then stays pending.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let wait = match self.step().await {
                Ok(Step::Idle(next)) => self.time_until(next),
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "outbox step failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Sleeps at most two seconds: messages queued by another process (`leadboard jobs
    /// run`) cannot wake this one, and an indexed poll is cheap.
    fn time_until(&self, next_ms: Option<i64>) -> Duration {
        match next_ms {
            Some(at) => Duration::from_millis((at - self.clock.now_ms()).clamp(10, 2_000) as u64),
            None => Duration::from_secs(2),
        }
    }

    /// Steps until nothing is pending, waiting out retries' backoff; returns the steps
    /// that delivered or gave up.
    pub async fn drain(&self) -> Result<Vec<Step>, sqlx::Error> {
        let mut done = Vec::new();
        loop {
            match self.step().await? {
                Step::Idle(None) => return Ok(done),
                Step::Idle(Some(at)) => tokio::time::sleep(self.time_until(Some(at))).await,
                Step::Retrying(_) => {}
                step => done.push(step),
            }
        }
    }

    /// Delivers the oldest due message, if any.
    #[instrument(level = "debug", skip_all)]
    pub async fn step(&self) -> Result<Step, sqlx::Error> {
        let _stepping = self.stepping.lock().await;
        let now = self.clock.now_ms();
        let Some(message) = outbox::next_due(&self.db, now).await? else {
            self.refresh_gauges().await?;
            return Ok(Step::Idle(outbox::next_due_at(&self.db).await?));
        };
        let delivering = Delivering::start(&self.delivering, message.id);
        let result = self.deliver(&message).await;
        let label = |kind| DeliveryLabel { api: message.api.code().to_owned(), kind };
        let step = match result {
            Ok(response) => {
                if let Some(invalid) = partial_failure(&response) {
                    tracing::warn!(id = message.id, %invalid, "delivered, but some recipients were invalid");
                }
                outbox::mark_delivered(&self.db, message.id, self.clock.now_ms(), &response).await?;
                self.metrics.outbox_delivered.get_or_create(&label("ok")).inc();
                Step::Delivered(message.id)
            }
            Err(error) if error.is_retryable() && !self.expired(&message) => {
                let backoff = self.clock.now_ms() + self.backoff(message.attempts).as_millis() as i64;
                let next = backoff.max(error.not_before().unwrap_or(0));
                let attempts = message.attempts + 1;
                if error.not_before().is_some() {
                    // Known to fail until then (gettoken cool-down, logged once by the client).
                    tracing::debug!(id = message.id, api = message.api.code(), attempts, %error, "delivery waits");
                } else {
                    tracing::warn!(id = message.id, api = message.api.code(), attempts, %error, "delivery failed, will retry");
                }
                let error = error.to_string();
                outbox::reschedule(&self.db, message.id, next, &error).await?;
                self.metrics.outbox_delivery_failures.get_or_create(&label("retry")).inc();
                Step::Retrying(message.id)
            }
            Err(error) => {
                tracing::error!(id = message.id, api = message.api.code(), %error, "delivery given up");
                outbox::mark_failed(&self.db, message.id, &error.to_string()).await?;
                self.metrics.outbox_delivery_failures.get_or_create(&label("permanent")).inc();
                Step::GaveUp(message.id)
            }
        };
        drop(delivering);
        self.refresh_gauges().await?;
        Ok(step)
    }

    #[instrument(level = "debug", skip_all, fields(id = message.id, api = message.api.code()))]
    async fn deliver(&self, message: &Pending) -> Result<serde_json::Value, ApiError> {
        let mut payload: serde_json::Value = serde_json::from_str(&message.payload)
            .map_err(|e| ApiError::Permanent { code: 0, message: format!("stored payload unreadable: {e}") })?;
        self.resolve_response_code(&mut payload).await?;
        match (message.api, &message.target) {
            (Api::WebhookSend, Some(key)) => self.client.webhook(key, &payload).await,
            (Api::WebhookSend, None) => {
                Err(ApiError::Permanent { code: 0, message: "queued webhook message without its key".into() })
            }
            (Api::FileSend, _) => self.send_file(&payload).await,
            (Api::MessageSend, _) => {
                check_duplicates(&mut payload);
                self.client.post(Api::MessageSend.code(), &payload).await
            }
            (api @ (Api::AppchatSend | Api::UpdateTemplateCard), _) => self.client.post(api.code(), &payload).await,
        }
    }

    /// Uploads a queued file (`media/upload`) and sends it as a file message.
    async fn send_file(&self, payload: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
        use base64::Engine;
        let unreadable = |what: &str| ApiError::Permanent { code: 0, message: format!("queued file without {what}") };
        let name = payload["file_name"].as_str().ok_or_else(|| unreadable("file_name"))?;
        let bytes = payload["content_base64"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or_else(|| unreadable("content"))?;
        let media_id = self.client.upload_media("file", name, bytes).await?;
        let mut file = serde_json::json!({
            "touser": payload["touser"],
            "agentid": payload["agentid"],
            "msgtype": "file",
            "file": { "media_id": media_id },
        });
        check_duplicates(&mut file);
        self.client.post(Api::MessageSend.code(), &file).await
    }

    /// A card update queued before its card was delivered names the card's send; the
    /// `response_code` WeCom answered that send with is filled in now.
    async fn resolve_response_code(&self, payload: &mut serde_json::Value) -> Result<(), ApiError> {
        let Some(reference) = payload.get(RESPONSE_CODE_REF).and_then(|r| r.as_str()).map(str::to_owned) else {
            return Ok(());
        };
        let found = outbox::referenced(&self.db, &reference).await.map_err(|e| ApiError::retryable(e.to_string()))?;
        match found {
            Some((Status::Pending, _)) => Err(ApiError::retryable(format!("{reference} not delivered yet"))),
            Some((_, Some(response))) if response["response_code"].is_string() => {
                payload["response_code"] = response["response_code"].clone();
                if let Some(map) = payload.as_object_mut() {
                    map.remove(RESPONSE_CODE_REF);
                }
                Ok(())
            }
            _ => Err(ApiError::Permanent { code: 0, message: format!("{reference} was never delivered") }),
        }
    }

    fn expired(&self, message: &Pending) -> bool {
        self.clock.now_ms() - message.created_at > self.settings.give_up_after_secs as i64 * 1000
    }

    /// `initial × 2^attempts`, capped. One worker delivers in order, so no jitter.
    fn backoff(&self, attempts: i64) -> Duration {
        let initial = self.settings.initial_backoff_ms.max(1);
        let factor = 1u64 << attempts.clamp(0, 20);
        Duration::from_millis(initial.saturating_mul(factor)).min(Duration::from_secs(self.settings.max_backoff_secs))
    }

    async fn refresh_gauges(&self) -> Result<(), sqlx::Error> {
        let (pending, failed) = outbox::depth(&self.db).await?;
        self.metrics.outbox_pending.set(pending);
        self.metrics.outbox_failed.set(failed);
        Ok(())
    }
}

/// Marks a message as being delivered until dropped.
struct Delivering<'a>(&'a AtomicI64);

impl<'a> Delivering<'a> {
    fn start(slot: &'a AtomicI64, id: i64) -> Self {
        slot.store(id, Ordering::SeqCst);
        Delivering(slot)
    }
}

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

/// `invaliduser` / `invalidparty` / `invalidtag` of a successful send, if any is set.
fn partial_failure(response: &serde_json::Value) -> Option<String> {
    let parts: Vec<String> = ["invaliduser", "invalidparty", "invalidtag"]
        .iter()
        .filter_map(|k| response[k].as_str().filter(|v| !v.is_empty()).map(|v| format!("{k}={v}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
