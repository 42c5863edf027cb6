//! The TV board front end: `/board/{contest}?key=…`, a page for a screen across the
//! room (SPEC section 14), and `/board/{contest}/events?key=…`, the server-sent events
//! that keep it current. Opened without signing in through the contest's read-only
//! link (`service::board`); a missing or wrong key, or an unknown contest, is the same
//! 404. Server-rendered (askama, `templates/board/`), with the stylesheet, Chart.js and
//! `board.js` served by the binary; no inline scripts or styles, so the CSP forbids
//! them.

mod live;
mod page;

pub use live::watch;

use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use live::{Snapshot, Snapshots};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The board's security headers: nothing from elsewhere, no inline code, never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How often an idle event stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the board's handlers share.
#[derive(Clone)]
struct Board {
    app: AppState,
    snapshots: Arc<Snapshots>,
    /// One permit per open event stream (`server.board_streams`).
    streams: Arc<Semaphore>,
}

/// The board's routes.
pub fn router(app: AppState) -> Router {
    let streams = Arc::new(Semaphore::new(app.settings().server.board_stream_bound()));
    let board = Board { app, snapshots: Arc::new(Snapshots::default()), streams };
    Router::new()
        .route("/board/assets/{file}", get(asset))
        .route("/board/{contest}", get(show))
        .route("/board/{contest}/events", get(events))
        .with_state(board)
        .layer(axum::middleware::map_response(secure))
}

#[derive(serde::Deserialize)]
struct BoardQuery {
    #[serde(default)]
    key: String,
    theme: Option<String>,
}

/// The same answer for an unknown contest and a wrong key.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "未找到").into_response()
}

fn failed(e: &anyhow::Error) -> Response {
    tracing::error!(error = %e, "board failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "服务暂时不可用").into_response()
}

/// The snapshot of `contest`, if `key` opens it. The key is checked first, against the
/// stored token, the same way for every contest name: a request without the key costs
/// one lookup, whether the contest exists or not, and never renders a board.
async fn opened(board: &Board, contest: &str, key: &str) -> anyhow::Result<Option<Arc<Snapshot>>> {
    let token = {
        let mut conn = board.app.db.reader().acquire().await?;
        crate::service::board::token(&mut conn, contest).await?
    };
    if !token.is_some_and(|t| crate::service::board::key_matches(&t, key)) {
        return Ok(None);
    }
    let snapshot = board.snapshots.get(&board.app, contest).await?;
    Ok(snapshot.filter(|s| s.opens(key)))
}

/// `GET /board/{contest}?key=…[&theme=light|dark]`.
async fn show(State(board): State<Board>, Path(contest): Path<String>, Query(q): Query<BoardQuery>) -> Response {
    match opened(&board, &contest, &q.key).await {
        Ok(Some(snapshot)) => {
            let theme = q.theme.as_deref().filter(|t| matches!(*t, "light" | "dark"));
            match page::render(&snapshot, &contest, &q.key, theme, board.app.clock.now_ms()) {
                Ok(html) => {
                    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
                        .into_response()
                }
                Err(e) => {
                    tracing::error!(error = %e, "board page failed to render");
                    (StatusCode::INTERNAL_SERVER_ERROR, "服务暂时不可用").into_response()
                }
            }
        }
        Ok(None) => not_found(),
        Err(e) => failed(&e),
    }
}

/// `GET /board/{contest}/events?key=…`: the board now, then again after every change
/// that alters it; ends when the key stops opening the board (rotated) or the service
/// stops.
async fn events(State(board): State<Board>, Path(contest): Path<String>, Query(q): Query<BoardQuery>) -> Response {
    // Subscribed before the first snapshot: a change committed meanwhile is not missed.
    let changes = board.app.changes.subscribe();
    let first = match opened(&board, &contest, &q.key).await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => return not_found(),
        Err(e) => return failed(&e),
    };
    let Ok(permit) = board.streams.clone().try_acquire_owned() else {
        tracing::warn!("board event streams at their bound; refused");
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "10")], "看板连接已满").into_response();
    };
    let stream = live::Stream { board: board.clone(), contest, key: q.key, changes, last: None, _permit: permit };
    let events = futures_util::stream::unfold((stream, Some(first)), |(mut stream, first)| async move {
        let snapshot = match first {
            Some(first) => first,
            None => stream.next().await?,
        };
        let event = Event::default().event("board").data(snapshot.event_data(stream.board.app.clock.now_ms()));
        stream.last = Some(snapshot);
        Some((Ok::<_, Infallible>(event), (stream, None)))
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx would otherwise hold the events back in its buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `GET /board/assets/{file}`: the stylesheet, the script and Chart.js, built into the
/// binary. Pages name them with a hash of their contents, so they may be cached long.
async fn asset(Path(file): Path<String>) -> Response {
    let Some((bytes, kind)) = page::asset(&file) else {
        return not_found();
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], bytes)
        .into_response()
}

/// Adds the security headers to every board answer.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The key is in the address: never send it on.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
