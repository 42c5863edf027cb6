//! Test harness: the real service on a loopback port with its own SQLite file, WeCom's
//! API as a recording mock server, and a peer that signs and encrypts callbacks exactly
//! as WeCom does.

use leadboard::app::Application;
use leadboard::clock::{Clock, ShiftedClock};
use leadboard::config::{Settings, Source};
use leadboard::reload::{Loader, Reloader};
use leadboard::state::AppState;
use leadboard::store::sql;
use leadboard::wecom::crypto::WecomCrypto;
use leadboard::wecom::peer::{CallbackRequest, Peer};
use leadboard::wecom::xml;
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Callback credentials for a test app.
#[derive(Clone, Copy)]
pub struct Credentials {
    pub token: &'static str,
    pub aes_key: &'static str,
    pub corp_id: &'static str,
}

/// The "project_like" configuration of the shared test vectors.
pub const PROJECT: Credentials = Credentials {
    token: "Xq7TkP2mLw9Rb4Vn",
    aes_key: "mUShwlYMZEgbhW1TOtdP7+PTD6Z54A2lcwp03gY7AGI",
    corp_id: "ww3f9a1c27b5d84e60",
};

/// The official sample configuration (vectors `official_*`, `text_*`).
pub const OFFICIAL: Credentials = Credentials {
    token: "QDG6eK",
    aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    corp_id: "wx5823bf96d3bd56c7",
};

impl Credentials {
    /// Credentials of their own (leaked: a few per test run), for a service that a load
    /// resends to across restarts: a callback that reaches another test's service (one
    /// that took the stopped service's port) fails its signature check there instead of
    /// being answered 200 from that service's database.
    pub fn unique() -> Credentials {
        use base64::Engine;
        let key: [u8; 32] = rand::random();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        Credentials {
            token: leak(format!("{:016x}", rand::random::<u64>())),
            aes_key: leak(base64::engine::general_purpose::STANDARD_NO_PAD.encode(key)),
            corp_id: leak(format!("ww{:016x}", rand::random::<u64>())),
        }
    }
}

pub const AGENT_ID: i64 = 1000002;

/// A small organisation: CS and TR with a confirmer and staff each, an other
/// department with an admin, and a general manager in the audit group.
pub const ORG: &str = r#"
[[directory.departments]]
id = 1
name = "集团"
[[directory.departments]]
id = 2
name = "客户成功事业部"
parent = 1
kind = "cs"
[[directory.departments]]
id = 3
name = "招商引才事业部"
parent = 1
kind = "tr"
[[directory.departments]]
id = 4
name = "行政部"
parent = 1
kind = "other"

[[directory.users]]
userid = "zhangwei"
name = "张伟"
department = 2
[[directory.users]]
userid = "cs_lead"
name = "陈经理"
department = 2
level = "manager"
confirmer = true
[[directory.users]]
userid = "cs_lead2"
name = "刘主管"
department = 2
level = "supervisor"
confirmer = true
[[directory.users]]
userid = "tr_lead"
name = "吴总监"
department = 3
level = "director"
confirmer = true
[[directory.users]]
userid = "lina"
name = "李娜"
department = 4
[[directory.users]]
userid = "sunli"
name = "孙丽"
department = 2
[[directory.users]]
userid = "zhengqiang"
name = "郑强"
department = 3
[[directory.users]]
userid = "qianjing"
name = "钱静"
department = 4
[[directory.users]]
userid = "wanggm"
name = "王总"
department = 1
level = "gm"

[roles]
admins = ["lina"]
audit_group = ["wanggm"]
finance = ["qianjing"]
"#;

/// How to build a test app.
pub struct Builder {
    credentials: Credentials,
    extra: String,
    server: String,
    /// Lines for the `[database]` section after its `url`.
    database_lines: String,
    schedules: String,
    clock: Option<Arc<dyn Clock>>,
    mock: Option<MockServer>,
    dir: Option<TempDir>,
    database: Option<PathBuf>,
    /// Another app's database (a replica of it, on PostgreSQL).
    shared_url: Option<String>,
    /// See [`Builder::sqlite`].
    sqlite: bool,
    local_mode: bool,
}

impl Builder {
    /// Runs as local mode does: WeCom's API (and its sign-in pages) answered by the
    /// built-in simulator on the service's own listener, instead of the mock.
    pub fn local_mode(mut self) -> Self {
        self.local_mode = true;
        self
    }

    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Credentials of this app's own ([`Credentials::unique`]).
    pub fn unique_credentials(self) -> Self {
        self.credentials(Credentials::unique())
    }

    /// Extra TOML appended to the configuration (replacing the organisation when it
    /// declares its own directory).
    pub fn config(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    /// How long a statement waits for a lock (`database.busy_timeout_ms`).
    pub fn busy_timeout_ms(mut self, ms: u64) -> Self {
        self.database_lines = format!("busy_timeout_ms = {ms}\n");
        self
    }

    /// Lines for the `[server]` section, such as `header_read_timeout_secs = 1`.
    pub fn server(mut self, lines: &str) -> Self {
        self.server.push_str(lines);
        self.server.push('\n');
        self
    }

    /// Turns the built-in scheduler on, with `[schedules]` lines such as
    /// `reminders = "0 7 * * * *"`.
    pub fn scheduler(mut self, lines: &str) -> Self {
        self.schedules = format!("enabled = true\n{lines}");
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Reuses a mock server and data directory (a restart of a stopped app).
    pub fn restart_of(mut self, stopped: Stopped) -> Self {
        self.mock = Some(stopped.mock);
        self.dir = Some(stopped.dir);
        self
    }

    /// On SQLite whatever engine the suite runs on: for what only SQLite has (the
    /// backup command, its file's settings). A restart of such an app stays on it.
    pub fn sqlite(mut self) -> Self {
        self.sqlite = true;
        self
    }

    /// Uses this database file instead of a fresh one in the app's directory.
    pub fn database(mut self, path: &Path) -> Self {
        self.database = Some(path.to_owned());
        self
    }

    /// A replica on the database at `url` (a PostgreSQL one, another app's), with its
    /// own directory, mock WeCom API and control socket.
    pub fn replica_on(mut self, url: &str) -> Self {
        self.shared_url = Some(url.to_owned());
        self
    }

    /// Writes the configuration without starting anything (for the real binary).
    pub async fn configure(self) -> Configured {
        let mock = match self.mock {
            Some(mock) => mock,
            None => wecom_mock().await,
        };
        let dir = self.dir.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
        let database = self.database.clone().unwrap_or_else(|| dir.path().join("leadboard.db"));
        // On PostgreSQL a fresh database per app (or the one it is a replica on), its URL
        // saved in the app's directory, where a restart finds it.
        let saved = database.with_file_name(POSTGRES_URL_FILE);
        let database_url = match (self.shared_url, leadboard::store::testing::postgres_server()) {
            (Some(url), _) => url,
            (None, Some(server)) if self.database.is_none() && !self.sqlite && !database.exists() => {
                match std::fs::read_to_string(&saved) {
                    Ok(url) => url,
                    Err(_) => leadboard::store::testing::fresh_postgres_database(&server)
                        .await
                        .expect("a fresh PostgreSQL database"),
                }
            }
            _ => format!("sqlite://{}", database.display()),
        };
        if database_url.starts_with("postgres") {
            std::fs::write(&saved, &database_url).expect("save the database URL");
        }
        // Apps in one test process share a working directory, where the control socket
        // is by default on PostgreSQL.
        let server = format!("control_socket = \"{}\"\n{}", dir.path().join("leadboard.sock").display(), self.server);
        let c = self.credentials;
        let database_lines = &self.database_lines;
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
{server}
[database]
url = "{db}"
{database_lines}
[wecom]
corp_id = "{corp}"
agent_id = {AGENT_ID}
secret = "test-secret"
token = "{token}"
encoding_aes_key = "{key}"
api_base = "{api}"
timeout_secs = 2
[outbox]
initial_backoff_ms = 20
max_backoff_secs = 1
[schedules]
{schedules}
{extra}
"#,
            schedules = self.schedules,
            db = database_url,
            corp = c.corp_id,
            token = c.token,
            key = c.aes_key,
            api = mock.uri(),
            extra =
                if self.extra.contains("[[directory.") { self.extra.clone() } else { format!("{ORG}\n{}", self.extra) },
        );
        let config_path = dir.path().join("leadboard.toml");
        std::fs::write(&config_path, toml).expect("write config");
        Configured { mock, dir, config_path, database, credentials: c, local_mode: self.local_mode }
    }

    pub async fn spawn(mut self) -> TestApp {
        let shift = Arc::new(ShiftedClock::default());
        let clock = self.clock.take().unwrap_or_else(|| shift.clone());
        self.configure().await.start(clock, shift).await
    }
}

/// A configuration written to a file, with the mock WeCom API it points at.
pub struct Configured {
    pub mock: MockServer,
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub database: PathBuf,
    pub credentials: Credentials,
    /// See [`Builder::local_mode`].
    pub local_mode: bool,
}

impl Configured {
    /// Signs and encrypts callbacks for this configuration, as WeCom does.
    pub fn peer(&self) -> Peer {
        let c = self.credentials;
        Peer {
            crypto: WecomCrypto::new(c.token, c.aes_key, c.corp_id).expect("valid key"),
            corp_id: c.corp_id.to_owned(),
            agent_id: AGENT_ID,
        }
    }

    /// Runs the service in this process.
    /// Runs the service in this process with the default clock (for tests that prepare
    /// the mock before the service starts).
    pub async fn spawn(self) -> TestApp {
        let shift = Arc::new(ShiftedClock::default());
        self.start(shift.clone(), shift).await
    }

    async fn start(self, clock: Arc<dyn Clock>, shift: Arc<ShiftedClock>) -> TestApp {
        let mut settings = Settings::load(Source::File(&self.config_path)).unwrap_or_else(|e| panic!("{e}"));
        settings.local_mode = self.local_mode;
        let path = self.config_path.clone();
        let load: Loader = Arc::new(move || Settings::load(Source::File(&path)));
        let source = self.config_path.display().to_string();
        let app = Application::build(settings, clock.clone()).await.expect("app builds").reloadable(load, source);
        let reloader = app.reloader().expect("reloadable");
        let addr = app.local_addr();
        let state = app.state().clone();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run(shutdown.clone()));
        // `leadboard reload` needs the control socket, bound once the service runs.
        let socket = state.settings().control_socket();
        within(Duration::from_secs(5), "the control socket", || {
            let exists = socket.exists();
            async move { exists }
        })
        .await;
        TestApp {
            addr,
            shift,
            peer: self.peer(),
            mock: self.mock,
            clock,
            state,
            shutdown,
            handle,
            dir: self.dir,
            database: self.database,
            config_path: self.config_path,
            reloader,
            http: reqwest::Client::new(),
        }
    }
}

/// The PostgreSQL server the suite runs on, or `None` after saying why a test that
/// needs one (`what` does) skips.
pub fn postgres_or_skip(what: &str) -> Option<String> {
    let server = leadboard::store::testing::postgres_server();
    if server.is_none() {
        eprintln!("SKIPPED: {what} needs a PostgreSQL server (set LEADBOARD_TEST_POSTGRES; .ci/run does)");
    }
    server
}

/// The URL of the test database named `database`: a test's database is named by its
/// SQLite file, and on PostgreSQL ([`leadboard::store::testing::postgres_server`]) the
/// URL of the app's own database is saved beside where that file would be.
pub fn database_url(database: &Path) -> String {
    match std::fs::read_to_string(database.with_file_name(POSTGRES_URL_FILE)) {
        Ok(url) => url,
        Err(_) => format!("sqlite://{}", database.display()),
    }
}

/// A test's SQL written with SQLite's JSON functions (`json_group_array`, `json_array`,
/// `json_object`, `json`), as text for the engine `app` runs on: PostgreSQL's
/// `json_agg`, `json_build_array` and `json_build_object`, the results as text.
pub fn json_sql(app: &TestApp, sqlite: &str) -> String {
    if !app.state.settings().is_postgres() {
        return sqlite.to_owned();
    }
    let sql = wrap_call(sqlite, "json_group_array(", "COALESCE(json_agg(", ")::text, '[]')");
    let sql = wrap_call(&sql, "json_object(", "json_build_object(", ")::text");
    sql.replace("json_array(", "json_build_array(").replace("json(payload)", "payload::json")
}

/// `sql` with each call `open…)` of a function written `open_with…close`.
fn wrap_call(sql: &str, open: &str, open_with: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find(open) {
        out.push_str(&rest[..at]);
        out.push_str(open_with);
        rest = &rest[at + open.len()..];
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced parentheses");
        out.push_str(&rest[..end]);
        out.push_str(close);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Where an app on PostgreSQL keeps its database's URL, in its directory.
const POSTGRES_URL_FILE: &str = "postgres-url";

/// Opens the test database `database` names, as the service does.
pub async fn open_database(database: &Path) -> leadboard::store::Db {
    leadboard::store::Db::connect(&database_url(database), Duration::from_secs(5)).await.expect("the database opens")
}

/// A WeCom API mock that answers gettoken and every send with success.
pub async fn wecom_mock() -> MockServer {
    let mock = MockServer::start().await;
    mount_defaults(&mock).await;
    mock
}

/// The happy-path answers: a token, and success for every POST.
pub async fn mount_defaults(mock: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/cgi-bin/gettoken"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"errcode": 0, "errmsg": "ok", "access_token": "TOKEN-1", "expires_in": 7200})),
        )
        .with_priority(10)
        .mount(mock)
        .await;
    let counter = Arc::new(AtomicU64::new(0));
    Mock::given(method("POST"))
        .respond_with(move |_: &wiremock::Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(json!({
                "errcode": 0, "errmsg": "ok", "invaliduser": "",
                "msgid": format!("MSG{n}"), "response_code": format!("RC{n}"), "media_id": format!("MEDIA{n}"),
            }))
        })
        .with_priority(10)
        .mount(mock)
        .await;
}

/// A running service and everything around it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Moves the default clock forward (tests that set their own clock move that one).
    shift: Arc<ShiftedClock>,
    pub mock: MockServer,
    pub peer: Peer,
    pub clock: Arc<dyn Clock>,
    pub state: AppState,
    /// The configuration file the service was started from.
    pub config_path: PathBuf,
    /// Reloads that file, as `leadboard reload` and SIGHUP do.
    pub reloader: Reloader,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
    dir: TempDir,
    /// Names the app's database ([`database_url`]).
    database: PathBuf,
    http: reqwest::Client,
}

/// What is left of a stopped app: enough to start it again on the same data.
pub struct Stopped {
    pub mock: MockServer,
    pub dir: TempDir,
}

/// An HTTP answer to a callback.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

static MSG_IDS: AtomicU64 = AtomicU64::new(7_300_000_000_000_000_000);

pub fn next_msg_id() -> String {
    MSG_IDS.fetch_add(1, Ordering::SeqCst).to_string()
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder {
            credentials: PROJECT,
            extra: String::new(),
            server: String::new(),
            database_lines: String::new(),
            schedules: "enabled = false".into(),
            clock: None,
            mock: None,
            dir: None,
            database: None,
            shared_url: None,
            sqlite: false,
            local_mode: false,
        }
    }

    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    /// Names the app's database, for [`database_url`] and `crate::binary::connect`.
    pub fn database(&self) -> PathBuf {
        self.database.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Jumps the service's clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.shift.advance(by);
    }

    /// Today in Asia/Shanghai, by the service's clock.
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.now_local().date_naive()
    }

    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// POSTs a callback request as is.
    pub async fn post(&self, request: &CallbackRequest) -> Answer {
        self.post_raw(&request.query, request.body.clone()).await
    }

    pub async fn post_raw(&self, query: &str, body: impl Into<reqwest::Body>) -> Answer {
        let response = self
            .http
            .post(self.url(&format!("/wecom/callback?{query}")))
            .body(body)
            .send()
            .await
            .expect("service answers");
        Answer { status: response.status().as_u16(), body: response.text().await.expect("body") }
    }

    /// The callback WeCom would send for a text message.
    pub fn text_request(&self, from: &str, content: &str) -> CallbackRequest {
        let now = self.now();
        self.peer.callback(&self.peer.text_xml(from, content, &next_msg_id(), now), now)
    }

    /// Sends a text message and returns the passive reply's text (None for an empty 200).
    pub async fn say(&self, from: &str, content: &str) -> Option<String> {
        let answer = self.post(&self.text_request(from, content)).await;
        assert_eq!(answer.status, 200, "callback refused: {answer:?}");
        self.open(&answer)
    }

    /// Opens a passive reply: verifies its signature, decrypts, reads its content.
    pub fn open(&self, answer: &Answer) -> Option<String> {
        open_reply(&self.peer, &answer.body)
    }

    /// Every request the mock WeCom API received on `api` (e.g. `message/send`).
    pub async fn api_calls(&self, api: &str) -> Vec<Value> {
        let wanted = format!("/cgi-bin/{api}");
        self.mock
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == wanted)
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    /// Delivers everything queued so far by stepping the outbox worker (steps never
    /// overlap with the service's own worker), for at most five seconds.
    pub async fn drain(&self) {
        let worker = self.state.outbox_worker();
        let drained = tokio::time::timeout(Duration::from_secs(5), worker.drain()).await;
        drained.expect("timed out waiting for: the outbox to drain").expect("outbox steps");
    }

    /// Template cards sent to `user`, oldest first (after the outbox drains).
    pub async fn cards_to(&self, user: &str) -> Vec<Value> {
        self.drain().await;
        self.api_calls("message/send")
            .await
            .into_iter()
            .filter(|m| m["msgtype"] == "template_card")
            .filter(|m| m["touser"].as_str().is_some_and(|t| t.split('|').any(|u| u == user)))
            .map(|m| m["template_card"].clone())
            .collect()
    }

    /// Texts sent to `user` through the API, oldest first (after the outbox drains).
    pub async fn texts_to(&self, user: &str) -> Vec<String> {
        self.drain().await;
        self.api_calls("message/send")
            .await
            .into_iter()
            .filter(|m| m["msgtype"] == "text")
            .filter(|m| m["touser"].as_str().is_some_and(|t| t.split('|').any(|u| u == user)))
            .filter_map(|m| m["text"]["content"].as_str().map(str::to_owned))
            .collect()
    }

    /// Presses a card's button as `user` would: the template_card_event WeCom sends,
    /// built from the sent card's task id and the button's key.
    pub async fn press(&self, user: &str, card: &Value, button_text: &str) -> Answer {
        let answer = self.post(&self.press_request(user, card, button_text)).await;
        assert_eq!(answer.status, 200, "press refused: {answer:?}");
        answer
    }

    /// The callback WeCom sends (and resends, unchanged) when `user` presses a button.
    pub fn press_request(&self, user: &str, card: &Value, button_text: &str) -> CallbackRequest {
        let task = card["task_id"].as_str().expect("card has a task id");
        let button = card["button_list"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["text"] == button_text))
            .unwrap_or_else(|| panic!("no button {button_text} on {card}"));
        let key = button["key"].as_str().expect("button key");
        let now = self.now();
        let xml = self.peer.card_event_xml(user, task, key, &format!("RC-{user}-{task}"), now);
        self.peer.callback(&xml, now)
    }

    /// Every record's cached `counted` flag agrees with the `counting_records` view.
    pub async fn assert_counted_is_consistent(&self) {
        let stale = self
            .count("SELECT COUNT(*) FROM records r WHERE (r.counted <> 0) != EXISTS (SELECT 1 FROM counting_records c WHERE c.id = r.id)")
            .await;
        assert_eq!(stale, 0, "records whose counted flag is stale");
    }

    /// Counts rows of a query's single integer result.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sql::query_scalar(sql).fetch_one(self.state.db.reader()).await.expect("query runs")
    }

    pub async fn metrics(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text")
    }

    pub async fn healthy(&self) -> bool {
        let r = self.http.get(self.url("/healthz")).send().await.expect("healthz");
        r.status().is_success()
    }

    /// Stops the service as SIGTERM would and waits for it to finish.
    pub async fn stop(self) -> Stopped {
        self.shutdown.cancel();
        self.handle.await.expect("service task").expect("service stops cleanly");
        Stopped { mock: self.mock, dir: self.dir }
    }
}

/// Opens a passive reply: verifies its signature, decrypts, reads its content.
pub fn open_reply(peer: &Peer, body: &str) -> Option<String> {
    let plain = peer.open_reply(body).expect("reply opens")?;
    Some(xml::parse_text_reply(&plain).unwrap_or(plain))
}

/// Polls `check` until it is true, for at most five seconds.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(Duration::from_secs(5), what, check).await
}

/// Polls `check` until it is true, for at most `limit`.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of a metric line `name{labels} value`, 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}
