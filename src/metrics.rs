//! Prometheus metrics, one registry per running service (so tests stay independent).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobRunLabel {
    pub job: &'static str,
    /// `done`, `failed`, `busy` (another run held the job) or `already_done` (another
    /// replica's run had done the fire time asked for).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    pub api: String,
    pub kind: &'static str,
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub callback_requests: Family<OutcomeLabel, Counter>,
    pub decrypt_failures: Family<ReasonLabel, Counter>,
    pub duplicates: Counter,
    pub handler_seconds: Histogram,
    /// Callbacks committed together in one write transaction (group commit).
    pub callback_batch_size: Histogram,
    /// Callbacks being handled now; read at shutdown to name what a timeout abandons.
    pub callbacks_in_flight: Gauge,
    pub outbox_pending: Gauge,
    pub outbox_failed: Gauge,
    pub outbox_delivered: Family<DeliveryLabel, Counter>,
    pub outbox_delivery_failures: Family<DeliveryLabel, Counter>,
    /// Cards merged into digests to stay within WeCom's per-member limits.
    pub outbox_merged: Counter,
    pub token_refreshes: Counter,
    /// Runs of scheduled jobs (the scheduler's and commands'), by job and outcome.
    pub job_runs: Family<JobRunLabel, Counter>,
    /// Open HTTP connections.
    pub connections_open: Gauge,
    /// Connections the server closed, by reason (header_timeout, idle_timeout, evicted).
    pub connections_closed: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("leadboard");
        let m = Metrics {
            callback_requests: Family::default(),
            decrypt_failures: Family::default(),
            duplicates: Counter::default(),
            handler_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            callback_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            callbacks_in_flight: Gauge::default(),
            outbox_pending: Gauge::default(),
            outbox_failed: Gauge::default(),
            outbox_delivered: Family::default(),
            outbox_delivery_failures: Family::default(),
            outbox_merged: Counter::default(),
            token_refreshes: Counter::default(),
            job_runs: Family::default(),
            connections_open: Gauge::default(),
            connections_closed: Family::default(),
            registry: Registry::default(),
        };
        registry.register("callback_requests", "Callback requests by outcome", m.callback_requests.clone());
        registry.register(
            "decrypt_failures",
            "Callbacks refused by the crypto layer, by reason",
            m.decrypt_failures.clone(),
        );
        registry.register("duplicates", "Callback retries answered from the inbox", m.duplicates.clone());
        registry.register(
            "callback_handler_seconds",
            "Time to verify, decrypt, process and answer a callback",
            m.handler_seconds.clone(),
        );
        registry.register(
            "callback_batch_size",
            "Callbacks committed together in one write transaction",
            m.callback_batch_size.clone(),
        );
        registry.register(
            "callback_requests_in_flight",
            "Callback requests being handled now",
            m.callbacks_in_flight.clone(),
        );
        registry.register("outbox_pending", "Outbound messages waiting for delivery", m.outbox_pending.clone());
        registry.register("outbox_failed", "Outbound messages given up", m.outbox_failed.clone());
        registry.register("outbox_delivered", "Outbound messages delivered", m.outbox_delivered.clone());
        registry.register(
            "outbox_delivery_failures",
            "Failed delivery attempts (kind = retry or permanent)",
            m.outbox_delivery_failures.clone(),
        );
        registry.register(
            "outbox_merged_cards",
            "Cards merged into a digest to stay within WeCom's per-member limits",
            m.outbox_merged.clone(),
        );
        registry.register(
            "wecom_token_refreshes",
            "Access tokens fetched from gettoken (successful fetches only)",
            m.token_refreshes.clone(),
        );
        registry.register(
            "job_runs",
            "Runs of scheduled jobs by job and outcome (done, failed, busy, already_done)",
            m.job_runs.clone(),
        );
        registry.register("http_connections_open", "Open HTTP connections", m.connections_open.clone());
        registry.register(
            "http_connections_closed",
            "HTTP connections closed by the server, by reason (header_timeout, idle_timeout, evicted)",
            m.connections_closed.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn job_run(&self, job: &'static str, outcome: &'static str) {
        self.job_runs.get_or_create(&JobRunLabel { job, outcome }).inc();
    }

    pub fn outcome(&self, outcome: &'static str) {
        self.callback_requests.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Counts a callback as in flight until the guard is dropped, which also happens
    /// when its request is abandoned.
    pub fn callback_in_flight(&self) -> InFlight {
        self.callbacks_in_flight.inc();
        InFlight(self.callbacks_in_flight.clone())
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One callback in flight; see [`Metrics::callback_in_flight`].
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
