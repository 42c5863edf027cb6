//! Slow, idle, broken and too many clients, over raw TCP: the server closes connections
//! that hold half a header, trickle a body or sit idle, within the configured
//! timeouts; it keeps room for the callback when many connections are held; it refuses
//! plain-text HTTP/2; and signed callbacks keep being answered throughout.

use crate::helpers::{TestApp, metric, within};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How much later than its timeout the server may close a connection in these tests.
const SLACK: Duration = Duration::from_secs(3);

/// Reads until the server closes the connection (or resets it); everything it sent.
/// Fails the test if the connection is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration, what: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: still open after {limit:?}");
    received
}

/// Whether the server has closed the connection (without waiting).
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    matches!(tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connects")
}

/// Connections that sent half a request header.
async fn half_headers(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = connect(addr).await;
        stream.write_all(b"POST /wecom/callback?timestamp=1 HTTP/1.1\r\nHost: leadboard\r\nContent-Ty").await.unwrap();
        held.push(stream);
    }
    held
}

/// A signed callback, answered with a passive reply.
async fn answers(app: &TestApp) {
    let reply = tokio::time::timeout(Duration::from_secs(5), app.say("zhangwei", "你好")).await;
    assert!(reply.expect("callback answered within 5 s").is_some_and(|r| r.contains("帮助")));
}

/// A connection that sent a whole header and trickles its body, a byte every 200 ms.
async fn trickling(app: &TestApp) -> TcpStream {
    let request = app.text_request("zhangwei", "你好");
    let mut stream = connect(app.addr).await;
    let head = format!(
        "POST /wecom/callback?{} HTTP/1.1\r\nHost: leadboard\r\nContent-Length: {}\r\n\r\n",
        request.query,
        request.body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Hundreds of connections holding half a header or trickling a body: callbacks keep
/// being answered, and the server closes every held connection within its timeout.
#[tokio::test]
async fn held_connections_are_closed_within_their_timeouts_while_callbacks_are_answered() {
    const HALF_HEADERS: usize = 200;
    const TRICKLING: usize = 100;
    let app = TestApp::builder().server("header_read_timeout_secs = 1\nbody_read_timeout_secs = 1").spawn().await;
    let started = Instant::now();
    let mut held = half_headers(app.addr, HALF_HEADERS).await;
    let mut trickles = Vec::new();
    for _ in 0..TRICKLING {
        let (reader, mut writer) = trickling(&app).await.into_split();
        let task = tokio::spawn(async move {
            while writer.write_all(b"<").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        trickles.push((reader, task));
    }
    for _ in 0..3 {
        answers(&app).await;
    }
    for stream in &mut held {
        let sent = closed_within(stream, Duration::from_secs(1) + SLACK, "a half-sent header").await;
        assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
    }
    for (reader, task) in &mut trickles {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(1) + SLACK, reader.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "a trickled body: still open");
        assert!(answer.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&answer));
        task.abort();
    }
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before their timeouts");
    answers(&app).await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, r#"leadboard_http_connections_closed_total{reason="header_timeout"}"#),
        HALF_HEADERS as f64
    );
    assert_eq!(metric(&metrics, r#"leadboard_callback_requests_total{outcome="body_timeout"}"#), TRICKLING as f64);
    within(Duration::from_secs(5), "only the test's own client connection to be open", || async {
        metric(&app.metrics().await, "leadboard_http_connections_open") == 1.0
    })
    .await;
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_and_closed_within_the_body_timeout() {
    let app = TestApp::builder().server("body_read_timeout_secs = 1").spawn().await;
    let request = app.text_request("zhangwei", "你好");
    let mut stream = connect(app.addr).await;
    let head = format!(
        "POST /wecom/callback?{} HTTP/1.1\r\nHost: leadboard\r\nContent-Length: {}\r\n\r\n",
        request.query,
        request.body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let body = request.body.clone().into_bytes();
    // One byte every 100 ms: the whole body would take minutes.
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    answers(&app).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1) + SLACK, reader.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a trickled body: still open");
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"leadboard_callback_requests_total{outcome="body_timeout"}"#), 1.0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox WHERE kind = 'text'").await, 1, "only the answered callback");
    answers(&app).await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::builder().server("idle_timeout_secs = 1\nheader_read_timeout_secs = 60").spawn().await;
    let mut stream = connect(app.addr).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: leadboard\r\n\r\n").await.unwrap();
    let mut first = [0u8; 17];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK\r\n");
    let started = Instant::now();
    closed_within(&mut stream, Duration::from_secs(1) + SLACK, "an idle keep-alive connection").await;
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before its timeout");
    // A half-sent header on another connection is governed by the (long) header timeout.
    let mut held = half_headers(app.addr, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!is_closed(&mut held[0]).await, "closed by the idle timeout instead of the header timeout");
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"leadboard_http_connections_closed_total{reason="idle_timeout"}"#), 1.0);
}

/// More connections than the bound, all holding half a header (and none timing out):
/// the server closes the oldest to make room, and a callback is answered.
#[tokio::test]
async fn held_connections_beyond_the_bound_do_not_keep_a_callback_out() {
    const BOUND: usize = 64;
    const HELD: usize = 300;
    let app = TestApp::builder()
        .server(&format!("max_connections = {BOUND}\nheader_read_timeout_secs = 60\nidle_timeout_secs = 60"))
        .spawn()
        .await;
    let mut held = half_headers(app.addr, HELD).await;
    answers(&app).await;
    answers(&app).await;
    // The oldest were closed to make room; at most the bound stayed open on the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut closed = vec![false; HELD];
    while closed.iter().filter(|c| **c).count() < HELD - BOUND {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: the server to close the connections beyond its bound"
        );
        for (stream, closed) in held.iter_mut().zip(closed.iter_mut()) {
            *closed = *closed || is_closed(stream).await;
        }
    }
    assert!(closed[..HELD - BOUND].iter().all(|c| *c), "the oldest connections were closed first");
    let metrics = app.metrics().await;
    assert!(metric(&metrics, "leadboard_http_connections_open") <= BOUND as f64);
    assert!(metric(&metrics, r#"leadboard_http_connections_closed_total{reason="evicted"}"#) >= (HELD - BOUND) as f64);
    // The newest held connections are still open: eviction took the oldest.
    assert!(!is_closed(held.last_mut().unwrap()).await, "the newest held connection was closed");
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Whether `bytes` begin with an HTTP/2 SETTINGS frame (the server's half of the handshake).
fn is_h2_settings(bytes: &[u8]) -> bool {
    bytes.len() >= 9 && bytes[3] == 4
}

async fn h2_handshake(addr: SocketAddr) -> Vec<u8> {
    let mut stream = connect(addr).await;
    stream.write_all(H2_PREFACE).await.unwrap();
    stream.write_all(H2_SETTINGS).await.unwrap();
    let mut buf = vec![0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(n)) => buf.truncate(n),
        Ok(Err(_)) => buf.clear(),
        Err(_) => panic!("no answer to an HTTP/2 preface"),
    }
    buf
}

#[tokio::test]
async fn plain_text_http2_is_refused_unless_configured() {
    let app = TestApp::spawn().await;
    let answer = h2_handshake(app.addr).await;
    assert!(!is_h2_settings(&answer), "h2c accepted: {answer:?}");
    answers(&app).await;

    let allowed = TestApp::builder().server("h2c = true").spawn().await;
    assert!(is_h2_settings(&h2_handshake(allowed.addr).await), "h2c = true: no HTTP/2 handshake");
}

/// A body shorter than its Content-Length (the client gave up) is counted as truncated,
/// not as too large, and changes nothing.
#[tokio::test]
async fn a_truncated_body_is_counted_as_truncated() {
    let app = TestApp::spawn().await;
    let request = app.text_request("zhangwei", "你好");
    let mut stream = connect(app.addr).await;
    let head = format!(
        "POST /wecom/callback?{} HTTP/1.1\r\nHost: leadboard\r\nContent-Length: {}\r\n\r\n",
        request.query,
        request.body.len() + 100
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(request.body.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    closed_within(&mut stream, SLACK, "a truncated body").await;
    within(Duration::from_secs(5), "the truncated body to be counted", || async {
        metric(&app.metrics().await, r#"leadboard_callback_requests_total{outcome="truncated"}"#) == 1.0
    })
    .await;
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, r#"leadboard_callback_requests_total{outcome="too_large"}"#), 0.0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0);
    answers(&app).await;
}

/// A request header far larger than any callback's is refused, not buffered.
#[tokio::test]
async fn an_oversized_request_header_is_refused() {
    let app = TestApp::spawn().await;
    let mut stream = connect(app.addr).await;
    let head = format!("GET /healthz HTTP/1.1\r\nHost: leadboard\r\nX-Padding: {}\r\n\r\n", "x".repeat(64 * 1024));
    let _ = stream.write_all(head.as_bytes()).await;
    let answer = closed_within(&mut stream, SLACK, "an oversized header").await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    answers(&app).await;
}

/// Stopping closes connections that wait for a request at once: held half headers do
/// not keep the service from stopping cleanly.
#[tokio::test]
async fn held_connections_do_not_delay_a_stop() {
    let app = TestApp::builder().server("header_read_timeout_secs = 60\nshutdown_grace_secs = 5").spawn().await;
    let mut held = half_headers(app.addr, 10).await;
    answers(&app).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(4), app.stop()).await.expect("stopped before the grace period ended");
    assert!(started.elapsed() < Duration::from_secs(4));
    for stream in &mut held {
        closed_within(stream, SLACK, "a held connection at shutdown").await;
    }
}

/// The issue's slow-client run against the real binary: 1,000 connections holding half a
/// header and 1,000 trickling a body while signed callbacks are sent every 100 ms; every
/// callback is answered within 1 s, every held connection is closed within its timeout,
/// and the service's memory returns to its level before. Figures in RELIABILITY.md:
/// `cargo test --release --test api two_thousand -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "long: cargo test --release --test api two_thousand -- --ignored --nocapture"]
async fn two_thousand_slow_clients_leave_callbacks_answered_within_a_second_and_memory_where_it_was() {
    use crate::binary::Binary;
    const HALF_HEADERS: usize = 1_000;
    const TRICKLING: usize = 1_000;
    let config = TestApp::builder().configure().await;
    let overrides = [
        // Long enough that all 2,000 are still held while the callbacks are timed (opening
        // them one by one takes seconds on a busy machine).
        ("SERVER__HEADER_READ_TIMEOUT_SECS", "15".to_owned()),
        ("SERVER__BODY_READ_TIMEOUT_SECS", "15".to_owned()),
        ("SERVER__MAX_CONNECTIONS", "4096".to_owned()),
    ];
    let service = Binary::start(&config.config_path, &overrides).await;
    let addr: SocketAddr = service.url.trim_start_matches("http://").parse().unwrap();
    let peer = config.peer();
    let http = reqwest::Client::new();
    let callback = |n: usize| {
        let xml = peer.text_xml("zhangwei", "你好", &format!("9{n:018}"), chrono::Utc::now().timestamp());
        let request = peer.callback(&xml, chrono::Utc::now().timestamp());
        let post = http.post(format!("{}/wecom/callback?{}", service.url, request.query)).body(request.body);
        async move {
            let started = Instant::now();
            let response = post.timeout(Duration::from_secs(5)).send().await.expect("answered");
            assert_eq!(response.status(), 200);
            started.elapsed()
        }
    };
    for n in 0..50 {
        callback(n).await;
    }
    let before = service.memory();

    let started = Instant::now();
    let mut held = half_headers(addr, HALF_HEADERS).await;
    let mut trickles = Vec::with_capacity(TRICKLING);
    for _ in 0..TRICKLING {
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /wecom/callback?timestamp=1 HTTP/1.1\r\nHost: leadboard\r\nContent-Length: 4096\r\n\r\n")
            .await
            .unwrap();
        let (reader, mut writer) = stream.into_split();
        let task = tokio::spawn(async move {
            while writer.write_all(b"<").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        trickles.push((reader, task));
    }
    let opened = started.elapsed();
    let held_memory = service.memory();
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    let timing = Instant::now();
    while timing.elapsed() < Duration::from_secs(4) {
        slowest = slowest.max(callback(1_000 + answered).await);
        answered += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for stream in &mut held {
        closed_within(stream, Duration::from_secs(15) + SLACK, "a half-sent header").await;
    }
    for (reader, task) in &mut trickles {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15) + SLACK, reader.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "a trickled body: still open");
        task.abort();
    }
    let all_closed = started.elapsed();
    // Let the allocator hand back what the connections used.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = service.memory();
    println!(
        "slow clients: {HALF_HEADERS} half headers + {TRICKLING} trickled bodies opened in {opened:?}; \
         {answered} callbacks answered meanwhile, slowest {slowest:?}; all held closed after {all_closed:?}; \
         RSS before {} KiB, while held {} KiB, after {} KiB, peak {} KiB",
        before.rss_kib, held_memory.rss_kib, after.rss_kib, after.peak_kib
    );
    assert!(slowest < Duration::from_secs(1), "a callback took {slowest:?}");
    assert!(
        after.rss_kib <= before.rss_kib + 8 * 1024,
        "memory did not return: {} KiB before, {} KiB after",
        before.rss_kib,
        after.rss_kib
    );
    let (status, _) = service.stop().await;
    assert!(status.success());
}
