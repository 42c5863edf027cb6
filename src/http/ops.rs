//! `/healthz` and `/metrics`.

use crate::state::AppState;
use crate::store::outbox;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// 200 when the database answers, 503 otherwise.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Prometheus text format; the outbox gauges are read fresh on each scrape.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok((pending, failed)) = outbox::depth(&state.db).await {
        state.metrics.outbox_pending.set(pending);
        state.metrics.outbox_failed.set(failed);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
