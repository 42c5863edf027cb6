//! 管理 (placeholder, filled in next).
use super::WebError;
use super::session::{CsrfOnly, Posted, Viewer};
use axum::response::Response;

pub async fn page(_viewer: Viewer) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
pub async fn act(_posted: Posted<CsrfOnly>) -> Result<Response, WebError> {
    Err(WebError::Forbidden("建设中".into()))
}
