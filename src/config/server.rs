//! `[server]`, `[database]` and `[outbox]`: where the service listens, its database, and
//! how outbound messages are retried.

use super::Settings;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub listen: String,
    /// Larger callback bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Callbacks whose timestamp is further than this from now are refused.
    pub timestamp_window_secs: u64,
    /// `text` (human) or `json` (one JSON object per line).
    pub log_format: LogFormat,
    /// Shutdown waits at most this long for in-flight work.
    pub shutdown_grace_secs: u64,
    /// A request's whole header must arrive within this long of the connection being
    /// opened (or of the request's first byte, on a kept-alive connection).
    pub header_read_timeout_secs: u64,
    /// A request's whole body must arrive within this long of its header; a callback
    /// whose body is late is answered 408.
    pub body_read_timeout_secs: u64,
    /// A kept-alive connection on which no next request starts within this long is closed.
    pub idle_timeout_secs: u64,
    /// At most this many connections are open at once. At the bound, the connection that
    /// has waited longest without a complete request is closed to make room, so a
    /// callback always finds room; only when every connection is being answered does a
    /// new one wait.
    pub max_connections: usize,
    /// Plain-text HTTP/2 (h2c). Off: WeCom and the reverse proxy speak HTTP/1.1, and
    /// an HTTP/2 preface is refused.
    pub h2c: bool,
    /// Inbox rows (the keys that make each callback's effect happen once) are kept this
    /// many days, then pruned by the `inbox_prune` job. WeCom retries within seconds.
    pub inbox_retention_days: u64,
    /// At most this many TV boards follow live updates at once (each holds an open
    /// connection; never more than half of `max_connections`, so that callbacks always
    /// find room); more are answered 503 and their browsers retry.
    pub board_streams: usize,
    /// The control socket `leadboard reload` talks to. By default beside the SQLite
    /// file (`leadboard.sock` in the working directory on PostgreSQL); replicas that
    /// share a working directory each need their own.
    pub control_socket: Option<PathBuf>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            timestamp_window_secs: 300,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 20,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            idle_timeout_secs: 75,
            max_connections: 1024,
            h2c: false,
            inbox_retention_days: 3,
            board_streams: 256,
            control_socket: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct DatabaseSettings {
    pub url: String,
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "sqlite://data/leadboard.db".into(), busy_timeout_ms: 5000 }
    }
}

/// Delivery of outbound messages.
#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct OutboxSettings {
    /// First retry delay; doubles on each failure up to `max_backoff_secs`.
    pub initial_backoff_ms: u64,
    pub max_backoff_secs: u64,
    /// A message still failing this long after it was queued is given up.
    pub give_up_after_secs: u64,
    /// App messages (sends and card updates) one member may get in any 60 seconds, and
    /// in any hour: WeCom silently drops what goes beyond 30 and 1,000.
    pub member_per_minute: u32,
    pub member_per_hour: u32,
    /// Messages per group robot in any 60 seconds (WeCom: 20).
    pub robot_per_minute: u32,
    /// Messages per app chat in any 60 seconds.
    pub appchat_per_minute: u32,
    /// Deliveries under way at once (to different recipients; one recipient's messages
    /// go in order, one at a time).
    pub concurrency: usize,
    /// In a rush, a member's waiting cards are merged into one digest at most this often.
    pub digest_interval_secs: u64,
}

/// WeCom's own limits: settings may be lower, never higher.
pub const WECOM_MEMBER_PER_MINUTE: u32 = 30;
pub const WECOM_MEMBER_PER_HOUR: u32 = 1000;
pub const WECOM_ROBOT_PER_MINUTE: u32 = 20;
/// Each member gets at most 200 app-chat messages a minute from one app.
pub const WECOM_APPCHAT_PER_MINUTE: u32 = 200;

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 1000,
            max_backoff_secs: 300,
            give_up_after_secs: 48 * 3600,
            member_per_minute: WECOM_MEMBER_PER_MINUTE,
            member_per_hour: WECOM_MEMBER_PER_HOUR,
            robot_per_minute: WECOM_ROBOT_PER_MINUTE,
            appchat_per_minute: 20,
            concurrency: 8,
            digest_interval_secs: 60,
        }
    }
}

impl ServerSettings {
    /// How many TV board event streams may be open at once: `board_streams`, and at
    /// most half of `max_connections`.
    pub fn board_stream_bound(&self) -> usize {
        self.board_streams.min(self.max_connections / 2).max(1)
    }
}

impl Settings {
    /// `web.public_url` without a trailing slash, when set (the service sets it at
    /// start when the configuration does not): links in chat are built from it.
    pub fn public_url(&self) -> Option<&str> {
        (!self.web.public_url.is_empty()).then(|| self.web.base())
    }

    pub(super) fn validate_server(&self, problems: &mut Vec<String>) {
        if SocketAddr::from_str(&self.server.listen).is_err() {
            problems.push(format!("server.listen 不是有效的地址:端口：{}", self.server.listen));
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("server.max_body_bytes 至少为 1024".into());
        }
        if self.server.timestamp_window_secs == 0 {
            problems.push("server.timestamp_window_secs 必须大于 0".into());
        }
        for (name, secs) in [
            ("header_read_timeout_secs", self.server.header_read_timeout_secs),
            ("body_read_timeout_secs", self.server.body_read_timeout_secs),
            ("idle_timeout_secs", self.server.idle_timeout_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                problems.push(format!("server.{name} 必须在 1 到 3600 之间：{secs}"));
            }
        }
        if self.server.board_streams == 0 {
            problems.push("server.board_streams 至少为 1".into());
        }
        if self.server.max_connections < 16 {
            problems.push(format!("server.max_connections 至少为 16：{}", self.server.max_connections));
        }
        if !(1..=3650).contains(&self.server.inbox_retention_days) {
            problems.push(format!(
                "server.inbox_retention_days 必须在 1 到 3650 之间（企业微信会在几秒内重试回调）：{}",
                self.server.inbox_retention_days
            ));
        }
        let outbox = &self.outbox;
        for (name, value, max) in [
            ("member_per_minute", outbox.member_per_minute, WECOM_MEMBER_PER_MINUTE),
            ("member_per_hour", outbox.member_per_hour, WECOM_MEMBER_PER_HOUR),
            ("robot_per_minute", outbox.robot_per_minute, WECOM_ROBOT_PER_MINUTE),
            ("appchat_per_minute", outbox.appchat_per_minute, WECOM_APPCHAT_PER_MINUTE),
        ] {
            if !(1..=max).contains(&value) {
                problems
                    .push(format!("outbox.{name} 必须在 1 到 {max} 之间（企业微信会静默丢弃超出上限的消息）：{value}"));
            }
        }
        if !(1..=64).contains(&outbox.concurrency) {
            problems.push(format!("outbox.concurrency 必须在 1 到 64 之间：{}", outbox.concurrency));
        }
        if !(1..=3600).contains(&outbox.digest_interval_secs) {
            problems
                .push(format!("outbox.digest_interval_secs 必须在 1 到 3600 之间：{}", outbox.digest_interval_secs));
        }
        if !self.database.url.starts_with("sqlite:") && !self.is_postgres() {
            problems.push(format!("database.url 必须以 sqlite: 或 postgres:// 开头：{}", self.database_display()));
        }
    }

    /// Whether `database.url` names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.database.url.starts_with("postgres://") || self.database.url.starts_with("postgresql://")
    }

    /// `database.url` as it may be shown: a PostgreSQL URL without its password.
    pub fn database_display(&self) -> String {
        match url::Url::parse(&self.database.url) {
            Ok(mut url) if self.is_postgres() && url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.database.url.clone(),
        }
    }

    /// The control socket: `server.control_socket`, or beside the database.
    pub fn control_socket(&self) -> PathBuf {
        self.server.control_socket.clone().unwrap_or_else(|| crate::control::socket_path(&self.database_path()))
    }

    /// The SQLite file path named by `database.url`. On PostgreSQL, `leadboard` in the
    /// working directory: what the service keeps beside its database (the control socket
    /// `leadboard.sock`, the settlement exports) is kept there, one per replica.
    pub fn database_path(&self) -> PathBuf {
        if self.is_postgres() {
            return PathBuf::from("leadboard");
        }
        let url = &self.database.url;
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        PathBuf::from(path.split('?').next().unwrap_or(path))
    }
}
