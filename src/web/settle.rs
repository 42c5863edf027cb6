//! 结算 (placeholder, filled in next).
use super::WebError;
use super::session::{CsrfOnly, Posted, Viewer};
use axum::extract::Path;
use axum::response::Response;

pub async fn page(_viewer: Viewer) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
pub async fn download(_viewer: Viewer, Path(_p): Path<(String, String)>) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
pub async fn close(Path(_p): Path<String>, _posted: Posted<CsrfOnly>) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
