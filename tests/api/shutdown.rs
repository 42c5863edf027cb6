//! Stopping on SIGTERM, with the real binary: callbacks in flight are answered and
//! committed, the outbox worker finishes its delivery or leaves it pending for the next
//! start, and the process never takes longer than `server.shutdown_grace_secs`, even
//! when something hangs. A clean stop exits 0; a stop that abandons work exits 1.

use crate::helpers::{AGENT_ID, Configured, TestApp, metric, mount_defaults, next_msg_id, open_reply, within};
use crate::local_mode::BIN;
use leadboard::store::outbox;
use leadboard::store::sql;
use leadboard::wecom::message;
use leadboard::wecom::peer::{CallbackRequest, Peer};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// How long a test waits for anything the service should do promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// `leadboard serve --config FILE` as a child process, logging JSON lines to the test.
pub struct Service {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    pub addr: SocketAddr,
    http: reqwest::Client,
}

impl Service {
    /// Starts the service with `LEADBOARD_<KEY>=value` overrides and waits until it listens.
    pub async fn start(config: &Configured, overrides: &[(&str, &str)]) -> Service {
        Self::start_logging(config, overrides, "info,sqlx=warn").await
    }

    /// [`Service::start`] with this `RUST_LOG` filter.
    pub async fn start_logging(config: &Configured, overrides: &[(&str, &str)], filter: &str) -> Service {
        let mut command = tokio::process::Command::new(BIN);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config.config_path)
            .env_remove("LEADBOARD_CONFIG")
            .env("LEADBOARD_SERVER__LOG_FORMAT", "json")
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in overrides {
            command.env(format!("LEADBOARD_{key}"), value);
        }
        let mut child = command.spawn().expect("leadboard starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(collect(child.stderr.take().expect("stderr is piped"), logs.clone()));
        let mut service =
            Service { child, logs, addr: SocketAddr::from(([127, 0, 0, 1], 0)), http: reqwest::Client::new() };
        let listening = service.log("leadboard listening").await;
        service.addr = listening["addr"].as_str().and_then(|a| a.parse().ok()).expect("address logged");
        service
    }

    /// Waits for the log line with this message and returns it.
    pub async fn log(&self, message: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.find(message) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line “{message}” in:\n{}", self.logs.lock().unwrap().join("\n"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn find(&self, message: &str) -> Option<Value> {
        self.lines().into_iter().find(|l| l["message"] == message)
    }

    /// Every JSON log line so far.
    pub fn lines(&self) -> Vec<Value> {
        let logs = self.logs.lock().unwrap();
        logs.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
    }

    /// POSTs a callback in the background; the answer is its status and body.
    fn post(&self, request: &CallbackRequest) -> JoinHandle<reqwest::Result<(u16, String)>> {
        let call =
            self.http.post(format!("http://{}/wecom/callback?{}", self.addr, request.query)).body(request.body.clone());
        tokio::spawn(async move {
            let response = call.send().await?;
            Ok((response.status().as_u16(), response.text().await?))
        })
    }

    /// Waits until this many callbacks are being handled.
    async fn callbacks_in_flight(&self, wanted: usize) {
        let scrape = || async {
            let text =
                self.http.get(format!("http://{}/metrics", self.addr)).send().await.unwrap().text().await.unwrap();
            metric(&text, "leadboard_callback_requests_in_flight") == wanted as f64
        };
        within(WAIT, &format!("{wanted} callbacks in flight"), scrape).await;
    }

    pub async fn terminate(&self) {
        self.signal("TERM").await;
    }

    /// Sends the service a signal (`TERM`, `HUP`).
    pub async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status =
            tokio::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().await.expect("kill runs");
        assert!(status.success());
    }

    /// Sends a text message as `from` and returns the passive reply's text.
    pub async fn say(&self, peer: &Peer, from: &str, text: &str) -> String {
        let (status, body) = self.post(&text_request(peer, from, text)).await.unwrap().expect("answered");
        assert_eq!(status, 200, "{body}");
        open_reply(peer, &body).expect("a passive reply")
    }

    /// Every JSON log line with this message so far.
    pub fn all(&self, message: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["message"] == message).collect()
    }

    /// The exit status, which must come within `limit`.
    pub async fn exit(&mut self, limit: Duration) -> ExitStatus {
        let exited = tokio::time::timeout(limit, self.child.wait()).await;
        exited.unwrap_or_else(|_| panic!("leadboard still running after {limit:?}")).expect("wait works")
    }
}

async fn collect(stderr: ChildStderr, logs: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.lock().unwrap().push(line);
    }
}

pub fn text_request(peer: &Peer, from: &str, content: &str) -> CallbackRequest {
    let now = chrono::Utc::now().timestamp();
    peer.callback(&peer.text_xml(from, content, &next_msg_id(), now), now)
}

async fn inbox_rows(database: &Path) -> i64 {
    crate::binary::scalar(database, "SELECT COUNT(*) FROM inbox").await
}

/// `(status, attempts)` of every outbox message, oldest first.
async fn outbox_rows(database: &Path) -> Vec<(String, i64)> {
    let mut conn = crate::binary::read_only(database).await;
    sql::query_as("SELECT status, attempts FROM outbox ORDER BY id").fetch_all(&mut conn).await.unwrap()
}

/// Queues one text message per entry before the service starts; returns their ids.
async fn queue(database: &Path, texts: &[&str]) -> Vec<i64> {
    let db = crate::helpers::open_database(database).await;
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for text in texts {
        for m in message::text(AGENT_ID, &["zhangwei"], text) {
            ids.push(outbox::enqueue(&mut tx, chrono::Utc::now().timestamp_millis(), &m).await.unwrap());
        }
    }
    tx.commit().await.unwrap();
    db.close().await;
    ids
}

/// A WeCom API that holds every message/send until the test opens its gate, so that a
/// delivery is in flight for exactly as long as a test needs.
struct GatedWecom {
    url: String,
    sent: Arc<Mutex<Vec<String>>>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl GatedWecom {
    async fn start() -> GatedWecom {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (sent, gate) = (Arc::new(Mutex::new(Vec::new())), Arc::new(tokio::sync::Semaphore::new(0)));
        let token = serde_json::json!({"errcode": 0, "access_token": "GATED", "expires_in": 7200});
        let (record, wait) = (sent.clone(), gate.clone());
        let send = move |axum::Json(body): axum::Json<Value>| async move {
            record.lock().unwrap().push(body["text"]["content"].as_str().unwrap_or_default().to_owned());
            wait.acquire().await.expect("gate open").forget();
            axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
        };
        let api = axum::Router::new()
            .route("/cgi-bin/gettoken", get(move || async move { axum::Json(token) }))
            .route("/cgi-bin/message/send", post(send));
        tokio::spawn(async move { axum::serve(listener, api).await });
        GatedWecom { url, sent, gate }
    }

    /// The texts received so far (including those still held).
    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }

    /// Answers the sends held and every later one.
    fn open(&self) {
        self.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }
}

/// WeCom answers message/send only after `delay`.
async fn slow_sends(mock: &MockServer, delay: Duration) {
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/send"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"errcode": 0})).set_delay(delay))
        .with_priority(1)
        .mount(mock)
        .await;
}

/// The texts WeCom received through message/send.
async fn sent(mock: &MockServer) -> Vec<String> {
    let requests = mock.received_requests().await.unwrap_or_default();
    let sends = requests.iter().filter(|r| r.url.path() == "/cgi-bin/message/send");
    sends.map(|r| r.body_json::<Value>().unwrap()["text"]["content"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn callbacks_in_flight_at_sigterm_are_answered_and_committed_and_the_exit_is_clean() {
    let config = TestApp::builder().configure().await;
    let overrides = [("SERVER__SHUTDOWN_GRACE_SECS", "10"), ("DATABASE__BUSY_TIMEOUT_MS", "30000")];
    let mut service = Service::start(&config, &overrides).await;
    let peer = config.peer();

    let lock = crate::binary::WriteLock::take(&config.database).await;
    let callbacks: Vec<_> = (0..5)
        .map(|i| service.post(&text_request(&peer, "zhangwei", &format!("C类 公司=停机{i} 联系人=王"))))
        .collect();
    service.callbacks_in_flight(5).await;
    service.terminate().await;
    service.log("shutdown requested").await;
    lock.release().await;

    for answer in futures::future::join_all(callbacks).await {
        let (status, body) = answer.unwrap().expect("answered");
        assert_eq!(status, 200);
        assert!(open_reply(&peer, &body).expect("a passive reply").contains("已登记"));
    }
    assert!(service.exit(WAIT).await.success(), "a clean stop exits 0");
    assert_eq!(inbox_rows(&config.database).await, 5, "every answered callback is committed");
}

#[tokio::test]
async fn hung_callbacks_are_abandoned_when_the_grace_period_ends_and_their_retries_are_processed_once() {
    let config = TestApp::builder().configure().await;
    let grace = Duration::from_secs(1);
    // The callbacks hang on the write lock, which is held until after the exit; left
    // to themselves they would wait a minute (the busy timeout) before failing.
    let hang = Duration::from_secs(60);
    let overrides = [("SERVER__SHUTDOWN_GRACE_SECS", "1"), ("DATABASE__BUSY_TIMEOUT_MS", "60000")];
    let mut service = Service::start(&config, &overrides).await;
    let peer = config.peer();
    let requests: Vec<_> = (0..3).map(|i| text_request(&peer, "zhangwei", &format!("第{i}条"))).collect();

    let lock = crate::binary::WriteLock::take(&config.database).await;
    let callbacks: Vec<_> = requests.iter().map(|r| service.post(r)).collect();
    service.callbacks_in_flight(3).await;
    let stopping = Instant::now();
    service.terminate().await;
    let status = service.exit(grace + WAIT).await;
    let took = stopping.elapsed();

    // Stopped by the grace period, not by the hang: no sooner, and long before the
    // hang could end (the margin absorbs a loaded machine).
    assert!(took >= grace && took < grace + WAIT && grace + WAIT < hang, "stopped after {took:?}");
    assert_eq!(status.code(), Some(1), "a stop that abandons work is not clean");
    let abandoned = service.log("shutdown grace period over: in-flight requests abandoned (WeCom retries them)").await;
    assert_eq!(abandoned["callbacks"], 3);
    for answer in futures::future::join_all(callbacks).await {
        assert!(answer.unwrap().is_err(), "an abandoned callback gets no answer");
    }
    lock.release().await;
    assert_eq!(inbox_rows(&config.database).await, 0, "nothing of them was committed");

    // WeCom retries every unanswered callback; the restarted service processes each once.
    let mut service = Service::start(&config, &[]).await;
    for request in requests.iter().chain(&requests) {
        let (status, _) = service.post(request).await.unwrap().expect("answered");
        assert_eq!(status, 200);
    }
    assert_eq!(inbox_rows(&config.database).await, 3);
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());
}

#[tokio::test]
async fn a_delivery_in_flight_at_sigterm_is_finished_and_the_next_one_waits_for_the_restart() {
    let config = TestApp::builder().configure().await;
    let wecom = GatedWecom::start().await;
    queue(&config.database, &["第一条", "第二条"]).await;
    let overrides = [("SERVER__SHUTDOWN_GRACE_SECS", "10"), ("WECOM__API_BASE", wecom.url.as_str())];
    let mut service = Service::start(&config, &overrides).await;
    within(WAIT, "a delivery in flight", || async { wecom.sent().len() == 1 }).await;

    service.terminate().await;
    service.log("shutdown requested").await;
    // WeCom answers the delivery under way only once the service is stopping.
    wecom.open();
    assert!(service.exit(WAIT).await.success(), "a clean stop exits 0");
    let rows = outbox_rows(&config.database).await;
    assert_eq!(rows, [("delivered".to_owned(), 1), ("pending".to_owned(), 0)], "stopped between deliveries");
    assert_eq!(wecom.sent(), ["第一条"], "no delivery started after SIGTERM");

    // Restarted against the usual mock WeCom.
    let mut service = Service::start(&config, &[]).await;
    within(WAIT, "the second delivery", || async { outbox_rows(&config.database).await[1].0 == "delivered" }).await;
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());
    assert_eq!(sent(&config.mock).await, ["第二条"], "the first is not repeated");
}

#[tokio::test]
async fn a_delivery_hung_at_sigterm_stays_pending_and_is_delivered_exactly_once_after_restart() {
    let config = TestApp::builder().configure().await;
    slow_sends(&config.mock, Duration::from_secs(60)).await;
    let ids = queue(&config.database, &["重启前一", "重启前二"]).await;
    let overrides = [("SERVER__SHUTDOWN_GRACE_SECS", "1"), ("WECOM__TIMEOUT_SECS", "60")];
    let mut service = Service::start(&config, &overrides).await;
    within(WAIT, "a delivery in flight", || async { sent(&config.mock).await.len() == 1 }).await;

    service.terminate().await;
    assert_eq!(service.exit(WAIT).await.code(), Some(1), "a stop that abandons work is not clean");
    let abandoned = service.log("shutdown grace period over: delivery abandoned; the message stays pending").await;
    assert_eq!(abandoned["id"], ids[0]);
    let pending = ("pending".to_owned(), 0);
    assert_eq!(outbox_rows(&config.database).await, [pending.clone(), pending], "nothing confirmed");

    config.mock.reset().await;
    mount_defaults(&config.mock).await;
    let mut service = Service::start(&config, &[]).await;
    let all_delivered =
        || async { outbox_rows(&config.database).await.iter().all(|(status, _)| status == "delivered") };
    within(WAIT, "both deliveries", all_delivered).await;
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());

    assert_eq!(sent(&config.mock).await, ["重启前一", "重启前二"], "each sent once after the restart");
    let delivered_once = ("delivered".to_owned(), 1);
    assert_eq!(outbox_rows(&config.database).await, [delivered_once.clone(), delivered_once]);
}
