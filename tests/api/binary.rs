//! The real binary as a child process for the long tests (crash, outage, full disk):
//! started on a configuration with `LEADBOARD_*` overrides, killed with SIGKILL or
//! stopped with SIGTERM, its memory read from `/proc`, and its database read from
//! outside while it runs.

use crate::local_mode::BIN;
use crate::shutdown::WAIT;
use leadboard::store::sql::{self, DbConn, Raw};
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// How many of the latest log lines are kept for a failure's message.
const TAIL: usize = 200;

/// `leadboard serve` as a child process.
pub struct Binary {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    /// The peak resident set (`VmHWM`) since the process started.
    pub peak_kib: u64,
}

impl Binary {
    /// Starts `leadboard serve --config FILE` with `LEADBOARD_<KEY>=value` overrides and
    /// waits until it listens.
    pub async fn start(config: &Path, overrides: &[(&str, String)]) -> Binary {
        let mut command = tokio::process::Command::new(BIN);
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("LEADBOARD_CONFIG")
            .env("LEADBOARD_SERVER__LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in overrides {
            command.env(format!("LEADBOARD_{key}"), value);
        }
        let mut child = command.spawn().expect("leadboard starts");
        let pid = child.id().expect("a pid");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let keep = |line: &str| {
            let mut tail = tail.lock().unwrap();
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
        };
        let listening = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                keep(&line);
                let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if parsed["message"] == "leadboard listening" {
                    return parsed["addr"].as_str().map(str::to_owned);
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = listening else {
            panic!(
                "leadboard did not start listening:\n{}",
                tail.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
            );
        };
        let rest = tail.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut tail = rest.lock().unwrap();
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Binary { child, pid, url: format!("http://{addr}"), tail }
    }

    /// The latest log lines.
    pub fn tail(&self) -> String {
        self.tail.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Its resident memory now and at its peak.
    pub fn memory(&self) -> Memory {
        memory_of(self.pid)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL; returns the memory it had just before.
    pub async fn kill(mut self) -> Memory {
        let memory = self.memory();
        self.child.start_kill().expect("SIGKILL sent");
        self.child.wait().await.expect("wait works");
        memory
    }

    /// SIGTERM, and the exit status (within `WAIT`); the memory it had just before.
    pub async fn stop(mut self) -> (ExitStatus, Memory) {
        let memory = self.memory();
        let pid = self.pid.to_string();
        let sent = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
        assert!(sent.success());
        let exited = tokio::time::timeout(WAIT, self.child.wait()).await;
        let status = exited.unwrap_or_else(|_| panic!("leadboard still running after {WAIT:?}:\n{}", self.tail()));
        (status.expect("wait works"), memory)
    }
}

/// `VmRSS` and `VmHWM` from `/proc/PID/status` (zeros when it is gone).
pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory { rss_kib: field("VmRSS:"), peak_kib: field("VmHWM:") }
}

/// A connection of a test's own to its database (the service may be running), as
/// another process's.
pub enum TestConn {
    Sqlite(SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl DbConn for TestConn {
    fn raw(&mut self) -> Raw<'_> {
        match self {
            TestConn::Sqlite(c) => Raw::Sqlite(c),
            TestConn::Postgres(c) => Raw::Postgres(c),
        }
    }
}

/// A connection to the test database `database` names
/// ([`crate::helpers::database_url`]), read-only if asked.
pub async fn connect(database: &Path, read_only: bool) -> TestConn {
    let url = crate::helpers::database_url(database);
    if url.starts_with("postgres") {
        let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a PostgreSQL URL");
        let options = options.options([("default_transaction_read_only", if read_only { "on" } else { "off" })]);
        return TestConn::Postgres(options.connect().await.expect("database opens"));
    }
    let file = SqliteConnectOptions::new().filename(database).read_only(read_only);
    TestConn::Sqlite(file.connect().await.expect("database opens"))
}

/// A read-only connection to the test database `database` names.
pub async fn read_only(database: &Path) -> TestConn {
    connect(database, true).await
}

/// Another process's write transaction: the service's writes wait until it ends (on
/// SQLite the database's write lock; on PostgreSQL every table locked against writes,
/// reads still allowed).
pub struct WriteLock(TestConn);

impl WriteLock {
    pub async fn take(database: &Path) -> WriteLock {
        let mut conn = connect(database, false).await;
        match conn {
            TestConn::Sqlite(ref mut c) => {
                sql::query("BEGIN IMMEDIATE").execute(c).await.expect("write lock taken");
            }
            TestConn::Postgres(ref mut c) => {
                sql::query("BEGIN").execute(&mut *c).await.expect("a transaction");
                let tables: Vec<String> =
                    sql::query_scalar("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'")
                        .fetch_all(&mut *c)
                        .await
                        .expect("the tables");
                let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", tables.join(", "));
                sqlx::query(sqlx::AssertSqlSafe(lock)).execute(&mut *c).await.expect("write lock taken");
            }
        }
        WriteLock(conn)
    }

    pub async fn release(mut self) {
        sql::query("ROLLBACK").execute(&mut self.0).await.expect("write lock released");
    }
}

/// The single integer a query returns.
pub async fn scalar(database: &Path, sql: &'static str) -> i64 {
    let mut conn = read_only(database).await;
    sql::query_scalar(sql).fetch_one(&mut conn).await.expect("query runs")
}
