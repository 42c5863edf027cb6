//! A recording WeCom API on loopback for the crash test, the outage soak and the full
//! disk: it answers as WeCom does, records every call with its outcome, applies WeCom's
//! duplicate check to `message/send`, and fails on demand the ways WeCom fails (HTTP
//! 5xx, errcode -1 and 45009, answers too late, refused connections).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A way WeCom's API fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 503 without a body.
    Http5xx,
    /// `errcode: -1` (系统繁忙).
    SystemBusy,
    /// `errcode: 45009` (接口调用超过限制).
    RateLimited,
    /// No answer until long after the service's timeout.
    Timeout,
    /// Nothing listens: connections are refused.
    Refused,
}

impl Fault {
    pub const ALL: [Fault; 5] = [Fault::Http5xx, Fault::SystemBusy, Fault::RateLimited, Fault::Timeout, Fault::Refused];
}

/// What became of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted and shown to its recipients.
    Delivered,
    /// Accepted, and dropped by WeCom's duplicate check: the same `message/send` with
    /// `enable_duplicate_check` within its `duplicate_check_interval`.
    Deduplicated,
    /// Failed (a fault): nothing reached anyone.
    Failed,
}

/// One call to a sending API (`gettoken` is counted, not recorded).
#[derive(Debug, Clone)]
pub struct Call {
    /// The path under `/cgi-bin/`, e.g. `message/send`.
    pub api: String,
    pub body: Value,
    pub outcome: Outcome,
}

#[derive(Default)]
struct Book {
    calls: Vec<Call>,
    /// When each accepted `message/send` body (as text) was last shown.
    shown: HashMap<String, Instant>,
    /// The `response_code`s handed out with sent cards.
    codes: HashSet<String>,
    sequence: u64,
    fault: Option<Fault>,
    token_calls: u64,
    failed_token_calls: u64,
    /// The `response_code`s already used by an update.
    used: HashSet<String>,
    /// The lifetime `gettoken` gives its tokens, in seconds (WeCom's 7,200 unless set).
    token_lifetime: Option<u64>,
    /// Card updates whose `response_code` was never handed out.
    bad_codes: u64,
    /// Card updates refused because their `response_code` had been used.
    reused_codes: u64,
}

type Shared = Arc<Mutex<Book>>;

/// The mock API; its address stays the same through refused spells.
pub struct RecordingWecom {
    pub url: String,
    addr: SocketAddr,
    book: Shared,
    /// Stops the listener and every open connection (a refused spell).
    running: Mutex<Option<CancellationToken>>,
    /// How long a `Timeout` fault holds its answer.
    late: Duration,
}

impl RecordingWecom {
    /// Listens on a fresh loopback port; a `Timeout` answers after `late`.
    pub async fn start(late: Duration) -> RecordingWecom {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("port");
        let addr = listener.local_addr().expect("address");
        let wecom = RecordingWecom {
            url: format!("http://{addr}"),
            addr,
            book: Arc::default(),
            running: Mutex::new(None),
            late,
        };
        wecom.serve(listener);
        wecom
    }

    fn serve(&self, listener: TcpListener) {
        let stop = CancellationToken::new();
        *self.running.lock().unwrap() = Some(stop.clone());
        let router = axum::Router::new().fallback(answer).with_state((self.book.clone(), self.late));
        tokio::spawn(accept(listener, router, stop));
    }

    /// Fails every call this way from now on (`None`: answers again).
    pub async fn fail(&self, fault: Option<Fault>) {
        self.book.lock().unwrap().fault = fault;
        let refusing = fault == Some(Fault::Refused);
        let stop = if refusing { self.running.lock().unwrap().take() } else { None };
        if let Some(stop) = stop {
            stop.cancel();
        }
        if !refusing && self.running.lock().unwrap().is_none() {
            self.serve(rebind(self.addr).await);
        }
    }

    /// Every call recorded so far.
    pub fn calls(&self) -> Vec<Call> {
        self.book.lock().unwrap().calls.clone()
    }

    /// Card updates that named a `response_code` WeCom never handed out.
    pub fn bad_response_codes(&self) -> u64 {
        self.book.lock().unwrap().bad_codes
    }

    /// Card updates refused because their `response_code` had been used already (a
    /// repeat of a delivered update).
    pub fn reused_response_codes(&self) -> u64 {
        self.book.lock().unwrap().reused_codes
    }

    /// Gives tokens this lifetime (seconds) from now on.
    pub fn token_lifetime(&self, secs: u64) {
        self.book.lock().unwrap().token_lifetime = Some(secs);
    }

    /// `gettoken` calls: all, and those that failed.
    pub fn token_calls(&self) -> (u64, u64) {
        let book = self.book.lock().unwrap();
        (book.token_calls, book.failed_token_calls)
    }
}

/// Binds the same address again after a refused spell (the old socket may linger for
/// a moment).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..200 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("could not listen on {addr} again");
}

async fn accept(listener: TcpListener, router: axum::Router, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (router, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
            let served = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = stop.cancelled() => {}
                _ = served => {}
            }
        });
    }
}

async fn answer(State((book, late)): State<(Shared, Duration)>, method: Method, uri: Uri, body: Bytes) -> Response {
    let api = uri.path().trim_start_matches("/cgi-bin/").to_owned();
    let fault = book.lock().unwrap().fault;
    if method == Method::GET && api == "gettoken" {
        let mut b = book.lock().unwrap();
        b.token_calls += 1;
        if fault.is_some() {
            b.failed_token_calls += 1;
        } else {
            let lifetime = b.token_lifetime.unwrap_or(7200);
            return ok(json!({"access_token": format!("TOKEN-{}", b.token_calls), "expires_in": lifetime}));
        }
    } else {
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if fault.is_some() {
            book.lock().unwrap().calls.push(Call { api, body, outcome: Outcome::Failed });
        } else {
            return accepted(&mut book.lock().unwrap(), api, body);
        }
    }
    match fault {
        Some(Fault::Http5xx) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Fault::SystemBusy) => axum::Json(json!({"errcode": -1, "errmsg": "system busy"})).into_response(),
        Some(Fault::RateLimited) => {
            axum::Json(json!({"errcode": 45009, "errmsg": "api freq out of limit"})).into_response()
        }
        // Refused connections never get here; a connection opened just before the
        // spell began is answered as a timeout.
        Some(Fault::Timeout | Fault::Refused) | None => {
            tokio::time::sleep(late).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// A call WeCom takes: recorded (a repeat within the duplicate check is dropped), and
/// answered with fresh ids.
fn accepted(book: &mut Book, api: String, body: Value) -> Response {
    book.sequence += 1;
    let n = book.sequence;
    let mut outcome = Outcome::Delivered;
    if api == "message/send" && body["enable_duplicate_check"] == 1 {
        let interval = Duration::from_secs(body["duplicate_check_interval"].as_u64().unwrap_or(1800));
        let text = normalised(&api, &body).to_string();
        let now = Instant::now();
        match book.shown.get(&text) {
            Some(at) if now.duration_since(*at) < interval => outcome = Outcome::Deduplicated,
            _ => {
                book.shown.insert(text, now);
            }
        }
    }
    if api == "message/update_template_card" {
        // Each response_code updates its card once; WeCom refuses it after that.
        let code = body["response_code"].as_str().unwrap_or_default().to_owned();
        let refusal = if !book.codes.contains(&code) {
            Some(&mut book.bad_codes)
        } else if !book.used.insert(code) {
            Some(&mut book.reused_codes)
        } else {
            None
        };
        if let Some(count) = refusal {
            *count += 1;
            book.calls.push(Call { api, body, outcome: Outcome::Failed });
            return axum::Json(json!({"errcode": 60140, "errmsg": "invalid response_code"})).into_response();
        }
    }
    let code = format!("RC{n}");
    if api == "message/send" && body["msgtype"] == "template_card" {
        book.codes.insert(code.clone());
    }
    book.calls.push(Call { api, body, outcome });
    ok(json!({"invaliduser": "", "msgid": format!("MSG{n}"), "response_code": code, "media_id": format!("MEDIA{n}")}))
}

fn ok(fields: Value) -> Response {
    let mut body = json!({"errcode": 0, "errmsg": "ok"});
    if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
        b.extend(f.clone());
    }
    axum::Json(body).into_response()
}

/// A message as the outbox stored it and as WeCom received it compare equal after this:
/// the duplicate-check fields the worker adds and a card update's `response_code` (or
/// the reference to the send it is taken from) are left out.
pub fn normalised(api: &str, body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("enable_duplicate_check");
        fields.remove("duplicate_check_interval");
        if api == "message/update_template_card" {
            fields.remove("response_code");
            fields.remove(leadboard::store::outbox::RESPONSE_CODE_REF);
        }
    }
    body
}
