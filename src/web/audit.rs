//! 审核 (placeholder, filled in next).
use super::WebError;
use super::session::{CsrfOnly, Posted, Viewer};
use axum::extract::Path;
use axum::response::Response;

pub async fn page(_viewer: Viewer) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
pub async fn act(Path(_p): Path<(i64, String)>, _posted: Posted<CsrfOnly>) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
pub async fn finalise(Path(_p): Path<String>, _posted: Posted<CsrfOnly>) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
