//! `/healthz` and `/metrics`.

use crate::state::AppState;
use crate::store::outbox;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// 200 when the database answers and can be written, 503 otherwise (a full or
/// read-only disk: callbacks are refused until it can be written again).
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(e) = state.db.ping().await {
        tracing::error!(error = %e, "health check: database unavailable");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    }
    if let Some(problem) = state.db.write_problem().await {
        tracing::error!(%problem, "health check: database not writable");
        return (StatusCode::SERVICE_UNAVAILABLE, "database not writable");
    }
    (StatusCode::OK, "ok")
}

/// Prometheus text format; the outbox gauges are read fresh on each scrape.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok((pending, failed)) = outbox::depth(&state.db).await {
        state.metrics.outbox_pending.set(pending);
        state.metrics.outbox_failed.set(failed);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
