//! The HTTP surface: the WeCom callback, health and metrics, and the web console's
//! routes (`web`).

pub mod callback;
pub mod ops;
pub mod serve;

use crate::state::AppState;
use axum::Router;
use axum::http::HeaderName;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The service's routes with request ids and one tracing span per request.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/wecom/callback", get(callback::verify_url).post(callback::receive))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::web::router())
        .with_state(state.clone())
        .merge(crate::board::router(state))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
