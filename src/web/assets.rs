//! The console's static files, built into the binary: its style sheet and the vendored
//! htmx (`assets/vendor/htmx/`, from npm with its licence). Nothing is loaded from
//! outside the service. Names carry a version, so they are cached for a year.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Bumped when a file changes, so that cached copies are not used.
pub const VERSION: &str = "2";

const FILES: [(&str, &str, &[u8]); 3] = [
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../assets/console.css")),
    ("htmx.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/vendor/htmx/htmx.min.js")),
    ("htmx-LICENSE.txt", "text/plain; charset=utf-8", include_bytes!("../../assets/vendor/htmx/LICENSE")),
];

/// `/ui/assets/{VERSION}/{name}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let name = file.strip_prefix(VERSION).and_then(|f| f.strip_prefix('/'));
    let Some((_, kind, bytes)) = name.and_then(|name| FILES.iter().find(|(n, _, _)| *n == name)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}
