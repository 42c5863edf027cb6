//! The outbox worker: delivers queued messages, several at once to different
//! recipients and in queue order to each, within WeCom's per-recipient limits
//! (`pacing`), retrying temporary failures with exponential backoff and giving up on
//! permanent ones. Delivery is at-least-once: a crash between WeCom's answer and the
//! status update, or a failed status update, sends that one message again; nothing is
//! lost. Every `message/send` asks WeCom to drop a repeat within its duplicate-check
//! interval, so such a repeat reaches people once; group chats and robots have no such
//! check.
//!
//! Replicas on PostgreSQL: one delivers at a time ([`OutboxWorker::run`]).

pub mod pacing;

use crate::clock::Clock;
use crate::config::OutboxSettings;
use crate::metrics::{DeliveryLabel, Metrics};
use crate::store::Db;
use crate::store::lock::SessionLock;
use crate::store::outbox::{self, Api, Pending, RESPONSE_CODE_REF, Status};
use crate::wecom::client::{ApiError, WecomClient};
use crate::wecom::message::{self, check_duplicates};
use pacing::{Choice, Limits, Pacer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Delivered(i64),
    Retrying(i64),
    GaveUp(i64),
    /// A card update whose card was merged into a digest: there is no card to update.
    Merged(i64),
    /// Nothing may go now; the next message may at this time (ms), if any is pending.
    Idle(Option<i64>),
}

/// WeCom's errcode for a card's `response_code` already used (or expired).
const RESPONSE_CODE_USED: i64 = 60140;

/// How many pending messages one scheduling decision looks at, oldest first.
const QUEUE_WINDOW: i64 = 2_000;
/// After a look at the queue that found nothing to send, the next look a commit's wake
/// asks for waits this long since it: in a rush every batch commit wakes the worker,
/// and a look reads the whole window of pending messages (a paced confirmer's cards
/// among them). A message queued while the worker was idle longer goes at once.
const IDLE_LOOK_INTERVAL: Duration = Duration::from_millis(50);
/// What a card merged into a digest is closed with.
const MERGED: &str = "已合并到汇总消息";

/// What every worker on one database shares: who is being delivered to, and what each
/// recipient got lately.
#[derive(Debug, Default)]
pub struct Shared {
    /// Held while a message is chosen and claimed: two workers (the service's and a
    /// test's) never deliver the same message twice.
    scheduling: Mutex<Scheduling>,
    /// Messages being delivered, with their lanes; read at shutdown to name a delivery
    /// that the grace period abandons.
    delivering: std::sync::Mutex<BTreeMap<i64, String>>,
}

#[derive(Debug, Default)]
struct Scheduling {
    /// The pacer, read from the last hour's deliveries on first use.
    pacer: Option<Pacer>,
    /// Per recipient set: no digest again before this time (ms).
    digest_until: HashMap<String, i64>,
}

impl Shared {
    /// The ids of the messages being delivered now.
    pub fn delivering(&self) -> Vec<i64> {
        self.delivering.lock().expect("delivering lock").keys().copied().collect()
    }
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
    pub shared: Arc<Shared>,
}

/// A message claimed for delivery, counted against its lanes at `at`.
struct Claimed {
    message: Pending,
    at: i64,
}

/// The session lock the delivering replica holds on PostgreSQL.
const LEADER_LOCK: &str = "leadboard:outbox";
/// How often a replica that does not deliver tries to become the one that does, and
/// how often the one that does checks that it still is.
const LEADER_LOOK: Duration = Duration::from_secs(2);
const LEADER_CHECK: Duration = Duration::from_secs(1);

impl OutboxWorker {
    /// Delivers until shutdown, up to `outbox.concurrency` messages at once. Shutdown
    /// is honoured between deliveries only: deliveries under way are finished, or
    /// abandoned by the caller and then stay pending.
    ///
    /// Of several replicas on one PostgreSQL database one delivers at a time: the one
    /// holding the session lock [`LEADER_LOCK`]. One scheduler sees every delivery, so
    /// WeCom's per-recipient limits and the digests hold across replicas as on one
    /// node; the others look again every [`LEADER_LOOK`], and one of them takes over
    /// within that when the deliverer's connection ends (its replica died, or its
    /// database connection was lost, which it notices within [`LEADER_CHECK`] and
    /// then stops).
    pub async fn run(self, shutdown: CancellationToken) {
        if !self.db.is_shared() {
            self.deliver_all(shutdown).await;
            tracing::info!("outbox worker stopped");
            return;
        }
        while !shutdown.is_cancelled() {
            match SessionLock::try_take(&self.db, LEADER_LOCK).await {
                Ok(Some(lock)) => self.lead(lock, &shutdown).await,
                Ok(None) => {
                    if let Err(e) = self.refresh_gauges().await {
                        tracing::error!(error = %e, "outbox gauges not refreshed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "outbox leadership not sought"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(LEADER_LOOK) => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Delivers while `lock` is held (until shutdown, or until the lock's connection is
    /// lost), then lets it go.
    async fn lead(&self, mut lock: SessionLock, shutdown: &CancellationToken) {
        tracing::info!("this replica delivers the outbox");
        // What the last deliverer counted is read again from the deliveries it recorded.
        *self.shared.scheduling.lock().await = Scheduling::default();
        let stop = shutdown.child_token();
        let delivering = self.clone().deliver_all(stop.clone());
        tokio::pin!(delivering);
        loop {
            tokio::select! {
                _ = &mut delivering => break,
                _ = tokio::time::sleep(LEADER_CHECK), if !stop.is_cancelled() => {
                    if !lock.held().await {
                        tracing::warn!("outbox leadership lost with its database connection; delivery stops here");
                        stop.cancel();
                    }
                }
            }
        }
        lock.release().await;
    }

    /// [`OutboxWorker::run`]'s delivery, on its own.
    async fn deliver_all(self, shutdown: CancellationToken) {
        let mut under_way = JoinSet::new();
        let concurrency = self.settings.concurrency.max(1);
        while !shutdown.is_cancelled() {
            let mut wait = None;
            let mut idle_look = None;
            while under_way.len() < concurrency {
                match self.claim().await {
                    Ok(Ok(claimed)) => {
                        let worker = self.clone();
                        under_way.spawn(async move {
                            if let Err(e) = worker.finish(claimed).await {
                                worker.db.note_write_error(&e);
                                tracing::error!(error = %e, "outbox step failed");
                            }
                        });
                    }
                    Ok(Err(next)) => {
                        if under_way.is_empty()
                            && let Err(e) = self.refresh_gauges().await
                        {
                            tracing::error!(error = %e, "outbox gauges not refreshed");
                        }
                        // Waiting only for a delivery under way: its end wakes the loop.
                        let behind_one_under_way =
                            !under_way.is_empty() && next.is_some_and(|at| at <= self.clock.now_ms());
                        wait = (!behind_one_under_way).then(|| self.time_until(next));
                        idle_look = Some(tokio::time::Instant::now());
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "outbox step failed");
                        wait = Some(Duration::from_secs(1));
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {
                    if let Some(looked) = idle_look {
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep_until(looked + IDLE_LOOK_INTERVAL) => {}
                        }
                    }
                }
                Some(_) = under_way.join_next(), if !under_way.is_empty() => {}
                _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            }
        }
        while under_way.join_next().await.is_some() {}
    }

    /// Sleeps at most two seconds: messages queued by another process (`leadboard jobs
    /// run`) cannot wake this one, and an indexed poll is cheap.
    fn time_until(&self, next_ms: Option<i64>) -> Duration {
        match next_ms {
            Some(at) => Duration::from_millis((at - self.clock.now_ms()).clamp(10, 2_000) as u64),
            None => Duration::from_secs(2),
        }
    }

    /// Steps until nothing is pending, waiting out retries' backoff and pacing; returns
    /// the steps that delivered or gave up.
    pub async fn drain(&self) -> Result<Vec<Step>, sqlx::Error> {
        let mut done = Vec::new();
        loop {
            match self.step().await? {
                Step::Idle(None) => return Ok(done),
                Step::Idle(at) => tokio::time::sleep(self.time_until(at)).await,
                Step::Retrying(_) => {}
                step => done.push(step),
            }
        }
    }

    /// Delivers the next message that may go, if any.
    #[instrument(level = "debug", skip_all)]
    pub async fn step(&self) -> Result<Step, sqlx::Error> {
        match self.claim().await? {
            Ok(claimed) => self.finish(claimed).await,
            Err(next) => {
                self.refresh_gauges().await?;
                Ok(Step::Idle(next))
            }
        }
    }

    /// Chooses the next message and claims it (counted against its recipients' budgets,
    /// marked as being delivered); merges a rush of cards into a digest on the way.
    /// `Err(next)` when nothing may go now.
    async fn claim(&self) -> Result<Result<Claimed, Option<i64>>, sqlx::Error> {
        let limits = Limits::from_settings(&self.settings);
        let mut scheduling = self.shared.scheduling.lock().await;
        let now = self.clock.now_ms();
        if scheduling.pacer.is_none() {
            let mut pacer = Pacer::default();
            for (lanes, at) in outbox::delivered_since(&self.db, now - 3_600_000).await? {
                pacer.record(&lanes, at);
            }
            scheduling.pacer = Some(pacer);
        }
        // A digest merge changes the queue; a claim after it sees the digest.
        for _ in 0..3 {
            let queue = outbox::queue(&self.db, QUEUE_WINDOW).await?;
            let busy: HashSet<String> = {
                let delivering = self.shared.delivering.lock().expect("delivering lock");
                delivering.values().flat_map(|l| pacing::lanes(l).map(str::to_owned)).collect()
            };
            let Scheduling { pacer, digest_until } = &mut *scheduling;
            let pacer = pacer.as_mut().expect("loaded above");
            match pacing::choose(&queue, &busy, pacer, &limits, digest_until, now) {
                Choice::Idle(next) => return Ok(Err(next)),
                Choice::Deliver(id) => {
                    let Some(message) = outbox::pending(&self.db, id).await? else { continue };
                    pacer.record(&message.lanes, now);
                    self.shared.delivering.lock().expect("delivering lock").insert(id, message.lanes.clone());
                    return Ok(Ok(Claimed { message, at: now }));
                }
                Choice::Digest(ids) => {
                    let lanes = queue.iter().find(|q| q.id == ids[0]).map(|q| q.lanes.clone()).unwrap_or_default();
                    self.merge(&ids, &lanes, now).await?;
                    digest_until.insert(lanes, now + self.settings.digest_interval_secs as i64 * 1000);
                }
            }
        }
        Ok(Err(Some(now + 10)))
    }

    /// Replaces the cards `ids` (to the members of `lanes`) by one digest.
    async fn merge(&self, ids: &[i64], lanes: &str, now: i64) -> Result<(), sqlx::Error> {
        let entries = outbox::digest_entries(&self.db, ids).await?;
        let users: Vec<&str> = pacing::lanes(lanes).filter_map(|l| l.strip_prefix("u:")).collect();
        let agent_id = self.client_agent_id(ids).await?;
        let digest = message::digest(agent_id, &users, &entries);
        if let Some(id) = outbox::merge(&self.db, ids, &digest, MERGED, now).await? {
            let parts = digest.len();
            tracing::info!(id, cards = ids.len(), parts, "cards merged into a digest to stay within WeCom's limits");
            self.metrics.outbox_merged.inc_by(ids.len() as u64);
        }
        Ok(())
    }

    /// The agent id the first card was sent with (the digest goes from the same app).
    async fn client_agent_id(&self, ids: &[i64]) -> Result<i64, sqlx::Error> {
        let first = outbox::pending(&self.db, ids[0]).await?;
        Ok(first
            .and_then(|m| serde_json::from_str::<serde_json::Value>(&m.payload).ok())
            .and_then(|p| p["agentid"].as_i64())
            .unwrap_or_default())
    }

    /// Delivers a claimed message and records what came of it.
    async fn finish(&self, claimed: Claimed) -> Result<Step, sqlx::Error> {
        let Claimed { message, at } = claimed;
        let delivering = Delivering { shared: &self.shared, id: message.id };
        // A card merged into a digest closes the updates queued for it with it; one
        // queued by a change that committed beside the merge (on PostgreSQL, where
        // writers run side by side) is closed here.
        if message.api == Api::UpdateTemplateCard && outbox::updates_a_merged_card(&self.db, message.id).await? {
            tracing::info!(id = message.id, "card update closed: its card was merged into a digest");
            if let Some(pacer) = self.shared.scheduling.lock().await.pacer.as_mut() {
                pacer.forget(&message.lanes, at);
            }
            drop(delivering);
            self.refresh_gauges().await?;
            return Ok(Step::Merged(message.id));
        }
        let result = self.deliver(&message).await;
        let finished = self.clock.now_ms();
        // WeCom counted the message at some moment between the claim and its answer:
        // pacing counts it at the answer, so that no window of WeCom's holds more than the
        // budget however long the call took. A refusal by WeCom reached nobody.
        if let Some(pacer) = self.shared.scheduling.lock().await.pacer.as_mut() {
            pacer.forget(&message.lanes, at);
            if !result.as_ref().is_err_and(ApiError::was_refused) {
                pacer.record(&message.lanes, finished);
            }
        }
        let label = |kind| DeliveryLabel { api: message.api.code().to_owned(), kind };
        let result = match result {
            // A card update sent again after an attempt whose answer was lost (a crash,
            // a timeout): WeCom refuses the response code it already used, so the first
            // attempt updated the card.
            Err(ApiError::Permanent { code: RESPONSE_CODE_USED, .. })
                if message.api == Api::UpdateTemplateCard && message.attempts > 0 =>
            {
                tracing::info!(id = message.id, "card update already applied by an earlier attempt (60140)");
                Ok(serde_json::json!({"errcode": RESPONSE_CODE_USED, "applied_by_earlier_attempt": true}))
            }
            other => other,
        };
        let step = match result {
            Ok(response) => {
                if let Some(invalid) = partial_failure(&response) {
                    tracing::warn!(id = message.id, %invalid, "delivered, but some recipients were invalid");
                }
                outbox::mark_delivered(&self.db, message.id, finished, &response).await?;
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

    /// `initial × 2^attempts`, capped. Each recipient's messages go in order, so no jitter.
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

/// A claimed message's place among the deliveries under way, given up when dropped
/// (also when a delivery fails or is abandoned).
struct Delivering<'a> {
    shared: &'a Shared,
    id: i64,
}

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        if let Ok(mut delivering) = self.shared.delivering.lock() {
            delivering.remove(&self.id);
        }
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
