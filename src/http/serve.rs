//! Serving connections within bounds of time and number, so that slow or idle clients
//! cannot hold the service: every connection is watched, and one that takes too long
//! to send a request header, or sits idle between requests, is closed (`[server]`
//! `header_read_timeout_secs`, `idle_timeout_secs`); a request body that has not
//! arrived in full within `body_read_timeout_secs` of its header fails (the callback
//! answers 408). At most `max_connections` are open; at the bound, the connection that
//! has waited longest without a complete request is closed to make room, so a WeCom
//! callback (which sends its whole request at once) is always served. Plain-text
//! HTTP/2 is refused unless `server.h2c` is set.
//!
//! hyper's own header timeout is not used: it runs whenever a connection waits for a
//! request head, idle or not, so it cannot tell a slow header from a kept-alive
//! connection. The watch here sees the bytes arrive and can.

use crate::config::ServerSettings;
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The connection limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
    pub h2c: bool,
}

impl Limits {
    pub fn from_settings(s: &ServerSettings) -> Limits {
        Limits {
            header_read: Duration::from_secs(s.header_read_timeout_secs),
            body_read: Duration::from_secs(s.body_read_timeout_secs),
            idle: Duration::from_secs(s.idle_timeout_secs),
            max_connections: s.max_connections.max(1),
            h2c: s.h2c,
        }
    }
}

/// A request body that did not arrive in full within `server.body_read_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets every open
/// connection finish its request and returns when all are closed. Dropping the future
/// closes every connection at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let server = Arc::new(Server {
        limits,
        metrics,
        router,
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        open: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        builder: builder(limits),
    });
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors or memory: wait rather than spin.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = tokio::select! {
            slot = server.slot() => slot,
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(server.clone().connection(stream, slot, shutdown.clone()));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection's read buffer, and so the largest request header, in bytes: a WeCom
/// callback's header is well under 1 KiB (hyper's default of ~400 KiB per connection
/// would let held connections take gigabytes).
const MAX_HEADER_BYTES: usize = 16 * 1024;

fn builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(MAX_HEADER_BYTES);
    builder.http2().timer(TokioTimer::new());
    if limits.h2c { builder } else { builder.http1_only() }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

struct Server {
    limits: Limits,
    metrics: Arc<Metrics>,
    router: Router,
    slots: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    builder: auto::Builder<TokioExecutor>,
}

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

impl Closed {
    fn reason(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
        }
    }
}

impl Server {
    /// A connection slot: free, or made free by closing the connection that has waited
    /// longest without a complete request. When every connection is being answered,
    /// waits for one to finish.
    async fn slot(&self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return slot;
        }
        let victim = {
            let open = lock(&self.open);
            open.values().filter_map(|c| c.evictable().map(|rank| (rank, c.clone()))).min_by_key(|(rank, _)| *rank)
        };
        if let Some((_, victim)) = victim {
            victim.evict.cancel();
        }
        // The closed acquire error cannot happen: the semaphore is never closed.
        self.slots.clone().acquire_owned().await.expect("connection slots are never closed")
    }

    async fn connection(self: Arc<Self>, stream: TcpStream, slot: OwnedSemaphorePermit, shutdown: CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new());
        lock(&self.open).insert(id, conn.clone());
        self.metrics.connections_open.inc();

        let service = {
            let (conn, router, body_read) = (conn.clone(), self.router.clone(), self.limits.body_read);
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                conn.request_started(!request.body().is_end_stream());
                let body_conn = conn.clone();
                let request = request.map(|body| axum::body::Body::new(Watched::new(body, body_conn, body_read)));
                let (conn, router) = (conn.clone(), router.clone());
                async move {
                    let response = router.oneshot(request).await;
                    response.map(|r| r.map(|body| Answering::new(body, conn)))
                }
            })
        };
        let io = TokioIo::new(WatchedIo { inner: stream, conn: conn.clone() });
        let served = self.builder.serve_connection(io, service);
        tokio::pin!(served);
        let mut stopping = false;
        let closed = loop {
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break None;
                }
                reason = conn.expired(&self.limits) => break Some(reason),
                () = conn.evict.cancelled() => break Some(Closed::Evicted),
                () = shutdown.cancelled(), if !stopping => {
                    // A connection waiting for a request closes now; one with a request
                    // in progress finishes it, then closes.
                    if conn.waiting() {
                        break None;
                    }
                    stopping = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        };
        if let Some(closed) = closed {
            self.metrics
                .connections_closed
                .get_or_create(&crate::metrics::ReasonLabel { reason: closed.reason() })
                .inc();
            tracing::debug!(reason = closed.reason(), "connection closed by the server");
        }
        lock(&self.open).remove(&id);
        self.metrics.connections_open.dec();
        drop(slot);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves the data consistent (plain
    // assignments), so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One open connection, as its watch sees it.
struct Conn {
    state: Mutex<ConnState>,
    changed: Notify,
    evict: CancellationToken,
}

#[derive(Debug)]
struct ConnState {
    /// Requests handed to the router and not yet answered (at most one on HTTP/1.1).
    in_flight: u32,
    /// Of those, requests whose body is still arriving.
    receiving: u32,
    /// Since when the connection has waited for a request (no request in flight), or
    /// since when a body has been arriving.
    since: Instant,
    /// Whether the connection is new (no request answered yet on it).
    fresh: bool,
    /// When the first byte arrived since the connection started waiting.
    first_byte: Option<Instant>,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            state: Mutex::new(ConnState {
                in_flight: 0,
                receiving: 0,
                since: Instant::now(),
                fresh: true,
                first_byte: None,
            }),
            changed: Notify::new(),
            evict: CancellationToken::new(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut ConnState)) {
        change(&mut lock(&self.state));
        self.changed.notify_one();
    }

    fn bytes_arrived(&self) {
        let mut state = lock(&self.state);
        if state.in_flight == 0 && state.first_byte.is_none() {
            state.first_byte = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn request_started(&self, has_body: bool) {
        self.update(|s| {
            s.in_flight += 1;
            if has_body {
                if s.receiving == 0 {
                    s.since = Instant::now();
                }
                s.receiving += 1;
            }
        });
    }

    fn body_finished(&self) {
        self.update(|s| s.receiving = s.receiving.saturating_sub(1));
    }

    fn request_answered(&self) {
        self.update(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.since = Instant::now();
                s.fresh = false;
                s.first_byte = None;
            }
        });
    }

    /// Whether no request is in progress (the connection waits for one).
    fn waiting(&self) -> bool {
        lock(&self.state).in_flight == 0
    }

    /// When the connection is closed for waiting, and why; none while a request is
    /// being answered (a late body fails on its own, see [`Watched`]).
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Closed)> {
        let s = lock(&self.state);
        if s.in_flight > 0 {
            return None;
        }
        Some(match (s.first_byte, s.fresh) {
            (Some(first), _) => (first + limits.header_read, Closed::HeaderTimeout),
            (None, true) => (s.since + limits.header_read, Closed::HeaderTimeout),
            (None, false) => (s.since + limits.idle, Closed::IdleTimeout),
        })
    }

    /// Resolves when the connection has waited past its deadline.
    async fn expired(&self, limits: &Limits) -> Closed {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.deadline(limits) {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Whether the connection may be closed to make room, ranked (lower first): one
    /// waiting for a request, longest first; then one whose body is still arriving,
    /// longest first. Never one being answered.
    fn evictable(&self) -> Option<(u8, Instant)> {
        let s = lock(&self.state);
        if s.in_flight == 0 {
            Some((0, s.first_byte.unwrap_or(s.since)))
        } else if s.receiving > 0 {
            Some((1, s.since))
        } else {
            None
        }
    }
}

/// The socket, telling the watch when bytes arrive.
struct WatchedIo {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must arrive in full by a deadline, and tells the watch when it
/// has (or was given up).
struct Watched {
    inner: Incoming,
    conn: Option<Arc<Conn>>,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl Watched {
    fn new(inner: Incoming, conn: Arc<Conn>, limit: Duration) -> Watched {
        let receiving = !inner.is_end_stream();
        Watched { inner, conn: receiving.then_some(conn), deadline: Box::pin(tokio::time::sleep(limit)), limit }
    }

    fn finished(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.body_finished();
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.finished();
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.conn.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if frame.is_none() || self.inner.is_end_stream() || matches!(frame, Some(Err(_))) {
                    self.finished();
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.finished();
                    Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells the connection's watch when it has been sent (or
/// dropped): until then the request is in progress, so a streamed response (a TV
/// board's events) keeps its connection busy rather than idle, and is neither closed
/// by the idle timeout nor the first to be evicted.
struct Answering {
    inner: axum::body::Body,
    conn: Option<Arc<Conn>>,
}

impl Answering {
    fn new(inner: axum::body::Body, conn: Arc<Conn>) -> Answering {
        let mut answering = Answering { conn: Some(conn), inner };
        if answering.inner.is_end_stream() {
            answering.done();
        }
        answering
    }

    fn done(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.request_answered();
        }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.done();
    }
}

impl HttpBody for Answering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) || self.inner.is_end_stream() {
            self.done();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
