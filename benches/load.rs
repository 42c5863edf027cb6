//! Load test: the real `leadboard serve` binary on a loopback port, driven by many
//! concurrent signed and encrypted callbacks exactly as WeCom sends them, with WeCom's
//! API a mock server in this process.
//!
//! Each concurrency level sends a fixed number of callbacks: reports (`C类`, each a new
//! client, so each one writes a record, an event, an inbox row and a card for the
//! confirmers), `我的`, `排行`, and retries (the same request again, as WeCom resends a
//! message it got no answer to). It prints throughput and latency percentiles per level,
//! checks every answer (status 200, the reply opens, a retry's answer equals the
//! first's) and, at the end, that every report was stored exactly once and the outbox
//! delivered every card. The WeCom deadline is 5 s per callback; the slowest answer
//! is printed against it.
//!
//! Run with `cargo bench --bench load` (`LOAD_LEVELS=1,8,64 LOAD_REQUESTS=2000` to
//! change the levels and the callbacks per level). Results live in `BENCHMARKS.md`.
//! `LOAD_LOG=sqlx=debug,leadboard::sql=debug` runs the service with that log filter and
//! keeps its log in `target/load-service.log` (each statement with its time at debug:
//! sqlx's, and on SQLite the callback writer's own connection's under `leadboard::sql`;
//! with replicas, `target/load-service-N.log` per replica).
//!
//! The database is an SQLite file by default. `LOAD_DATABASE=postgres` runs on a fresh
//! database of the PostgreSQL server `LEADBOARD_TEST_POSTGRES` names (dropped at the
//! end of a run that passes), and `LOAD_REPLICAS=N` runs N service processes on it,
//! each with its own port, control socket and data directory (its working directory),
//! all with the one WeCom mock. The load's connections are spread round-robin over the
//! replicas, as a load balancer would (connection `c` of a level goes to replica
//! `c % N`; a retry goes where its first request went). Whichever replica holds the
//! outbox lock delivers the cards. Before the load it prints the raw single-row commit
//! rate of that server (through sqlx, on a scratch table in the bench's database) beside
//! SQLite's.
//!
//! With `LOAD_SCREENS=200`, that many TV boards are open during the levels: each loads
//! the board's page and follows its event stream, while a confirmer confirms one of
//! the reports every 250 ms (each confirmation changes the board). It then prints how
//! long after each confirmation's answer every screen had the new board.

use leadboard::store::sql;
use leadboard::wecom::crypto::WecomCrypto;
use leadboard::wecom::peer::{CallbackRequest, Peer};
use leadboard::wecom::xml;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "Xq7TkP2mLw9Rb4Vn";
const AES_KEY: &str = "mUShwlYMZEgbhW1TOtdP7+PTD6Z54A2lcwp03gY7AGI";
const CORP_ID: &str = "ww3f9a1c27b5d84e60";
const AGENT_ID: i64 = 1_000_002;

/// CS teams (departments 21..), people per team, and other-department people.
const CS_TEAMS: usize = 5;
const TEAM_SIZE: usize = 40;
const OTHERS: usize = 100;
/// WeCom's answer deadline for a callback.
const DEADLINE: Duration = Duration::from_secs(5);

/// One callback the load sends, and what its answer must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Report,
    Mine,
    Standings,
    Retry,
}

impl Op {
    /// Six reports, two `我的`, one `排行` and one retry in every ten callbacks.
    fn nth(i: usize) -> Op {
        match i % 10 {
            0..=5 => Op::Report,
            6 | 7 => Op::Mine,
            8 => Op::Standings,
            _ => Op::Retry,
        }
    }
}

/// What a level measured.
struct Level {
    concurrency: usize,
    requests: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    /// Reports stored (each a new record).
    reports: i64,
}

fn userid(i: usize) -> String {
    format!("u{i:04}")
}

fn people() -> usize {
    CS_TEAMS * TEAM_SIZE + OTHERS
}

/// A company: root, CS with its teams (the first of each team confirms), others; one
/// contest whose teams are the CS team departments, running today.
fn configuration(database: &str, api: &str, listen: &str, control_socket: Option<&Path>) -> String {
    let socket = control_socket.map(|p| format!("control_socket = \"{}\"\n", p.display())).unwrap_or_default();
    let mut toml = format!(
        "[server]\nlisten = \"{listen}\"\n{socket}[database]\nurl = \"{database}\"\n\
         [wecom]\ncorp_id = \"{CORP_ID}\"\nagent_id = {AGENT_ID}\nsecret = \"load-secret\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{AES_KEY}\"\napi_base = \"{api}\"\n\
         [schedules]\nenabled = false\n\
         [roles]\nadmins = [\"{admin}\"]\naudit_group = [\"{admin}\"]\n\
         [[directory.departments]]\nid = 1\nname = \"集团\"\n\
         [[directory.departments]]\nid = 2\nname = \"客户成功事业部\"\nparent = 1\nkind = \"cs\"\n\
         [[directory.departments]]\nid = 4\nname = \"行政部\"\nparent = 1\nkind = \"other\"\n",
        admin = userid(people() - 1),
    );
    for team in 0..CS_TEAMS {
        toml += &format!(
            "[[directory.departments]]\nid = {}\nname = \"客户成功{}队\"\nparent = 2\nkind = \"cs\"\n",
            21 + team,
            team + 1
        );
    }
    for i in 0..people() {
        let (department, confirmer) =
            if i < CS_TEAMS * TEAM_SIZE { (21 + i / TEAM_SIZE, i % TEAM_SIZE == 0) } else { (4, false) };
        toml += &format!(
            "[[directory.users]]\nuserid = \"{}\"\nname = \"员工{i}\"\ndepartment = {department}\nconfirmer = {confirmer}\n",
            userid(i)
        );
    }
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    toml += &format!(
        "[[contests]]\nid = \"load-pk\"\nname = \"负载PK\"\nkinds = [\"lead_c\", \"lead_b\", \"lead_a\"]\n\
         start = \"{}\"\nend = \"{}\"\nchats = [\"appchat:wrload\"]\n",
        today - chrono::Days::new(7),
        today + chrono::Days::new(7)
    );
    for team in 0..CS_TEAMS {
        toml += &format!("[[contests.teams]]\nname = \"{}队\"\ndepartment = {}\n", team + 1, 21 + team);
    }
    toml
}

/// WeCom's API: a token and success for every POST.
async fn wecom_mock() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/gettoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": "LOAD", "expires_in": 7200}),
        ))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"errcode": 0, "errmsg": "ok", "msgid": "M", "response_code": "R"})),
        )
        .mount(&mock)
        .await;
    mock
}

/// A free loopback port (bound and released; the service binds it right after).
fn free_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("bound address").to_string()
}

/// The service binary as a child process, killed when dropped.
struct Service(Child);

impl Service {
    /// The service's peak resident set size so far (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `leadboard serve` with `config`, its log to `log`, in `workdir` if given (on
/// PostgreSQL a replica keeps its files in its working directory).
fn start_service(config: &Path, log: &Path, workdir: Option<&Path>) -> Service {
    let log = std::fs::File::create(log).expect("create the service log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadboard"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", std::env::var("LOAD_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(dir) = workdir {
        command.current_dir(dir);
    }
    Service(command.spawn().expect("start leadboard serve"))
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "the service did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one callback; returns the time to the full answer and the answer's text.
async fn post(http: &reqwest::Client, base: &str, peer: &Peer, request: &CallbackRequest) -> (Duration, String) {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/wecom/callback?{}", request.query))
        .body(request.body.clone())
        .send()
        .await
        .expect("the service answers");
    let status = response.status();
    let body = response.text().await.expect("answer body");
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "callback refused: {body}");
    let plain = peer.open_reply(&body).expect("the passive reply opens").unwrap_or_default();
    (elapsed, xml::parse_text_reply(&plain).unwrap_or(plain))
}

/// The callbacks of one level: `requests` of them from `concurrency` workers.
/// Worker `c` sends to replica `c % bases.len()` (round-robin, as a load balancer
/// spreads connections).
async fn run_level(
    http: &reqwest::Client,
    bases: &[String],
    peer: &Peer,
    level: usize,
    concurrency: usize,
    requests: usize,
) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|c| {
            let base = bases[c % bases.len()].clone();
            let (http, peer, next) = (http.clone(), peer.clone(), next.clone());
            tokio::spawn(async move { worker(&http, &base, &peer, level, &next, requests).await })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut reports = 0;
    for w in workers {
        let (l, r) = w.await.expect("worker");
        latencies.extend(l);
        reports += r;
    }
    Level { concurrency, requests, wall: started.elapsed(), latencies, reports }
}

async fn worker(
    http: &reqwest::Client,
    base: &str,
    peer: &Peer,
    level: usize,
    next: &AtomicUsize,
    requests: usize,
) -> (Vec<Duration>, i64) {
    let mut latencies = Vec::new();
    let mut reports = 0;
    let mut last: Option<(CallbackRequest, String)> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= requests {
            return (latencies, reports);
        }
        let op = Op::nth(i);
        if let (Op::Retry, Some((request, first))) = (op, &last) {
            let (elapsed, answer) = post(http, base, peer, request).await;
            assert_eq!(&answer, first, "a retry got a different answer");
            latencies.push(elapsed);
            continue;
        }
        let from = userid(i % people());
        let text = match op {
            Op::Mine => "我的".to_owned(),
            Op::Standings => "排行".to_owned(),
            // A worker's first callback has nothing to retry: it reports instead.
            Op::Report | Op::Retry => format!("C类 公司={}科技有限公司 联系人=王经理", company(level, i)),
        };
        let msg_id = format!("{}{:08}", 7_400_000_000 + level as u64, i);
        let now = chrono::Utc::now().timestamp();
        let request = peer.callback(&peer.text_xml(&from, &text, &msg_id, now), now);
        let (elapsed, answer) = post(http, base, peer, &request).await;
        if text.starts_with("C类") {
            assert!(answer.contains("已登记"), "report not accepted: {answer}");
            reports += 1;
        }
        latencies.push(elapsed);
        last = Some((request, answer));
    }
}

/// Characters of the generated company names: common, simplified, not confusable with
/// one another.
const NAME_CHARS: [char; 64] = [
    '云', '帆', '星', '河', '海', '天', '山', '川', '林', '木', '花', '草', '金', '银', '铜', '铁', '明', '光', '华',
    '彩', '青', '松', '白', '雪', '东', '南', '西', '北', '春', '夏', '秋', '冬', '江', '湖', '湾', '岛', '风', '雷',
    '电', '雨', '晨', '曦', '朝', '阳', '月', '影', '水', '石', '泉', '溪', '竹', '梅', '兰', '菊', '龙', '凤', '鹤',
    '鹿', '智', '信', '达', '远', '恒', '瑞',
];

/// A company name core unique to (level, i) and unlike every other one: eight
/// characters from a bijective scramble of the index, so that two names almost never
/// differ by one character or contain one another (which would flag them as look-alikes
/// and measure the rare path instead of the normal one).
fn company(level: usize, i: usize) -> String {
    const BITS: u32 = 48;
    let index = ((level as u64) << 32) | i as u64;
    // Multiplication by an odd constant is a bijection modulo 2^48.
    let mut x = index.wrapping_mul(0x9E37_79B9_7F4B) & ((1 << BITS) - 1);
    (0..BITS / 6)
        .map(|_| {
            let c = NAME_CHARS[(x & 63) as usize];
            x >>= 6;
            c
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print_level(level: &mut Level) {
    level.latencies.sort();
    let l = &level.latencies;
    println!(
        "| {} | {} | {:.0} | {} | {} | {} | {} |",
        level.concurrency,
        level.requests,
        level.requests as f64 / level.wall.as_secs_f64(),
        ms(percentile(l, 0.50)),
        ms(percentile(l, 0.90)),
        ms(percentile(l, 0.99)),
        ms(*l.last().expect("a level sends callbacks")),
    );
}

/// Every report stored once, every message answered once, every card delivered.
async fn check_effects(pool: &sql::Pool, reports: i64) {
    let count = |statement: &'static str| {
        let pool = pool.clone();
        async move { sql::query_scalar::<i64>(statement).fetch_one(&pool).await.expect("count") }
    };
    assert_eq!(count("SELECT COUNT(*) FROM records").await, reports, "records stored");
    // WeCom's pacing (30 messages a minute per member) merges a rush of cards to one
    // confirmer into digests of many parts, sent at that rate: draining takes minutes
    // after a long run. It must keep moving: two minutes without a message leaving
    // the queue is a stall.
    let drained = Instant::now();
    let (mut left, mut moved) = (i64::MAX, Instant::now());
    loop {
        let pending = count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").await;
        if pending == 0 {
            break;
        }
        if pending < left {
            (left, moved) = (pending, Instant::now());
        }
        assert!(moved.elapsed() < Duration::from_secs(120), "the outbox stalled with {pending} messages pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'").await, 0, "undeliverable messages");
    let delivered = count("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'").await;
    let merged = count("SELECT COUNT(*) FROM outbox WHERE status = 'merged'").await;
    let cards = count("SELECT COUNT(*) FROM cards").await;
    let flags = count("SELECT COUNT(*) FROM record_flags").await;
    println!(
        "\nrecords: {reports} (each once, {flags} look-alike flags); cards: {cards}; outbox: {delivered} messages \
         delivered, {merged} cards merged into digests ({} s after the last callback to drain the rest)",
        drained.elapsed().as_secs()
    );
}

/// How long each raw commit-rate measurement runs.
const RAW_SECONDS: f64 = 2.0;
/// Rows per transaction in the batched raw measurement.
const RAW_BATCH: usize = 100;

/// The commit rate of SQLite itself on the file system the service uses, with its
/// settings (WAL, `synchronous = FULL`): one-row transactions per second, and rows per
/// second in 100-row transactions, through sqlx (as the service talks to SQLite) and
/// through rusqlite (the same bundled SQLite, called directly).
async fn raw_commit_rates(dir: &Path) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{ConnectOptions, Connection};
    let path = dir.join("raw-sqlx.db");
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .expect("open the raw database");
    sql::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, at INTEGER NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create");
    let mut rates = Vec::new();
    for rows in [1, RAW_BATCH] {
        let started = Instant::now();
        let mut committed = 0usize;
        while started.elapsed().as_secs_f64() < RAW_SECONDS {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            for _ in 0..rows {
                sql::query("INSERT INTO t (name, at) VALUES (?, ?)")
                    .bind("负载测试有限公司")
                    .bind(committed as i64)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
            tx.commit().await.expect("commit");
            committed += rows;
        }
        rates.push(committed as f64 / started.elapsed().as_secs_f64());
    }
    conn.close().await.expect("close");
    let direct = tokio::task::spawn_blocking({
        let path = dir.join("raw-rusqlite.db");
        move || raw_rusqlite(&path)
    })
    .await
    .expect("rusqlite run");
    println!("Raw SQLite commit rate on the same file system (WAL, synchronous = FULL), {RAW_SECONDS} s each:\n");
    println!("| through | 1-row transactions/s | rows/s in {RAW_BATCH}-row transactions |");
    println!("| --- | --- | --- |");
    println!("| sqlx | {:.0} | {:.0} |", rates[0], rates[1]);
    println!("| rusqlite | {:.0} | {:.0} |\n", direct.0, direct.1);
}

fn raw_rusqlite(path: &Path) -> (f64, f64) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
    conn.pragma_update(None, "synchronous", "FULL").expect("full");
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, at INTEGER NOT NULL)", [])
        .expect("create");
    let mut rates = [0.0; 2];
    for (rate, rows) in rates.iter_mut().zip([1, RAW_BATCH]) {
        let started = Instant::now();
        let mut committed = 0usize;
        while started.elapsed().as_secs_f64() < RAW_SECONDS {
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
            let mut insert = conn.prepare_cached("INSERT INTO t (name, at) VALUES (?, ?)").expect("prepare");
            for _ in 0..rows {
                insert.execute(rusqlite::params!["负载测试有限公司", committed as i64]).expect("insert");
            }
            drop(insert);
            conn.execute_batch("COMMIT").expect("commit");
            committed += rows;
        }
        *rate = committed as f64 / started.elapsed().as_secs_f64();
    }
    (rates[0], rates[1])
}

/// Connections of the concurrent raw PostgreSQL measurement.
const RAW_CONNECTIONS: usize = 32;

/// The commit rate of the PostgreSQL server itself, through sqlx with the service's
/// `synchronous_commit = on`, on a scratch table in the bench's database (dropped
/// afterwards): one-row transactions per second over one connection and over
/// [`RAW_CONNECTIONS`] connections at once, and rows per second in 100-row transactions
/// over one connection.
async fn raw_postgres_commit_rates(url: &str) {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let options: PgConnectOptions = url.parse().expect("a PostgreSQL URL");
    let options = options.options([("synchronous_commit", "on")]);
    let pool = PgPoolOptions::new()
        .max_connections(RAW_CONNECTIONS as u32)
        .connect_with(options)
        .await
        .expect("connect to PostgreSQL");
    let show = |name: &'static str| {
        let pool = pool.clone();
        async move {
            let statement = sqlx::AssertSqlSafe(format!("SHOW {name}"));
            sqlx::query_scalar::<_, String>(statement).fetch_one(&pool).await.expect("SHOW")
        }
    };
    let (version, fsync, sync_commit) =
        (show("server_version").await, show("fsync").await, show("synchronous_commit").await);
    sqlx::query("CREATE TABLE raw_commits (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, at BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .expect("create the scratch table");
    let one = raw_postgres(&pool, 1, 1).await;
    let many = raw_postgres(&pool, RAW_CONNECTIONS, 1).await;
    let batched = raw_postgres(&pool, 1, RAW_BATCH).await;
    sqlx::query("DROP TABLE raw_commits").execute(&pool).await.expect("drop the scratch table");
    pool.close().await;
    println!(
        "Raw PostgreSQL {version} commit rate on the bench's server (fsync = {fsync}, synchronous_commit = \
         {sync_commit}), through sqlx, {RAW_SECONDS} s each:\n"
    );
    println!("| connections | 1-row transactions/s | rows/s in {RAW_BATCH}-row transactions |");
    println!("| --- | --- | --- |");
    println!("| 1 | {one:.0} | {batched:.0} |");
    println!("| {RAW_CONNECTIONS} | {many:.0} | |\n");
}

/// Rows per second committed by `connections` connections at once, each in a loop of
/// `rows`-row transactions for [`RAW_SECONDS`].
async fn raw_postgres(pool: &sqlx::PgPool, connections: usize, rows: usize) -> f64 {
    use sqlx::Connection;
    let ready = Arc::new(tokio::sync::Barrier::new(connections));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, ready) = (pool.clone(), ready.clone());
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.expect("a connection");
                ready.wait().await;
                let started = Instant::now();
                let mut committed = 0usize;
                while started.elapsed().as_secs_f64() < RAW_SECONDS {
                    let mut tx = conn.begin().await.expect("begin");
                    for _ in 0..rows {
                        sqlx::query("INSERT INTO raw_commits (name, at) VALUES ($1, $2)")
                            .bind("负载测试有限公司")
                            .bind(committed as i64)
                            .execute(&mut *tx)
                            .await
                            .expect("insert");
                    }
                    tx.commit().await.expect("commit");
                    committed += rows;
                }
                (committed, started.elapsed())
            })
        })
        .collect();
    let mut total = 0;
    let mut longest = Duration::ZERO;
    for task in tasks {
        let (committed, elapsed) = task.await.expect("raw task");
        total += committed;
        longest = longest.max(elapsed);
    }
    total as f64 / longest.as_secs_f64()
}

/// Times at which each screen received a board (one list per screen).
type Received = Arc<Vec<Mutex<Vec<Instant>>>>;

/// Opens `n` boards: the page, then its event stream, each read until the process ends.
async fn open_screens(http: &reqwest::Client, base: &str, key: &str, n: usize) -> Received {
    let received: Received = Arc::new((0..n).map(|_| Mutex::new(Vec::new())).collect());
    for screen in 0..n {
        let page = http.get(format!("{base}/board/load-pk?key={key}")).send().await.expect("the board");
        assert_eq!(page.status(), 200, "the board's page");
        page.text().await.expect("the page");
        let mut events = http.get(format!("{base}/board/load-pk/events?key={key}")).send().await.expect("events");
        assert_eq!(events.status(), 200, "screen {screen}: the event stream");
        let received = received.clone();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = events.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if block.starts_with("event: board") {
                        received[screen].lock().unwrap().push(Instant::now());
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.iter().any(|r| r.lock().unwrap().is_empty()) {
        assert!(Instant::now() < deadline, "every screen gets the board at once");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received
}

/// The board's key, as the admin gets it in chat.
async fn board_key(http: &reqwest::Client, base: &str, peer: &Peer) -> String {
    let now = chrono::Utc::now().timestamp();
    let request =
        peer.callback(&peer.text_xml(&userid(people() - 1), "看板链接 load-pk", "7399000000000001", now), now);
    let (_, answer) = post(http, base, peer, &request).await;
    let at = answer.find("key=").unwrap_or_else(|| panic!("no link: {answer}")) + 4;
    answer[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// Confirms a pending report every 250 ms as the first team's confirmer, until `stop`;
/// returns when each confirmation was answered.
async fn confirm_steadily(
    http: reqwest::Client,
    base: String,
    peer: Peer,
    pool: sql::Pool,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Instant> {
    let confirmer = userid(TEAM_SIZE);
    let mut answered = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let id: Option<i64> =
            sql::query_scalar("SELECT id FROM records WHERE state = 'reported' AND reporter != ? ORDER BY id LIMIT 1")
                .bind(&confirmer)
                .fetch_optional(&pool)
                .await
                .expect("a pending report");
        let Some(id) = id else { continue };
        n += 1;
        let now = chrono::Utc::now().timestamp();
        let xml = peer.text_xml(&confirmer, &format!("确认 #{id}"), &format!("{}", 7_398_000_000_000_000_000 + n), now);
        let (_, answer) = post(&http, &base, &peer, &peer.callback(&xml, now)).await;
        assert!(answer.contains("已确认"), "{answer}");
        answered.push(Instant::now());
    }
    answered
}

/// For each confirmation, how long after its answer the last screen had a new board.
fn print_screens(received: &Received, answered: &[Instant]) {
    let mut delays: Vec<Duration> = Vec::new();
    let mut missed = 0;
    for at in answered {
        let latest = received
            .iter()
            .map(|r| r.lock().unwrap().iter().find(|t| *t >= at).map(|t| t.duration_since(*at)))
            .collect::<Option<Vec<_>>>();
        match latest.and_then(|l| l.into_iter().max()) {
            Some(d) => delays.push(d),
            None => missed += 1,
        }
    }
    delays.sort();
    let events: usize = received.iter().map(|r| r.lock().unwrap().len()).sum();
    println!(
        "\n{} screens, {} confirmations, {events} board events received; every screen updated after a \
         confirmation's answer within: p50 {} ms, p90 {} ms, max {} ms ({missed} not seen by every screen)",
        received.len(),
        answered.len(),
        delays.first().map(|_| ms(percentile(&delays, 0.5))).unwrap_or_default(),
        delays.first().map(|_| ms(percentile(&delays, 0.9))).unwrap_or_default(),
        delays.last().map(|d| ms(*d)).unwrap_or_default(),
    );
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let levels: Vec<usize> = std::env::var("LOAD_LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 32, 128]);
    let requests = setting("LOAD_REQUESTS", 3000usize);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(load(&levels, requests));
}

/// The service's database.
enum Database {
    /// An SQLite file (the default).
    Sqlite(PathBuf),
    /// A fresh database on the PostgreSQL server `server`.
    Postgres { server: String, url: String },
}

impl Database {
    /// `LOAD_DATABASE`: `sqlite` (the default, a file in `dir`) or `postgres`.
    async fn chosen(dir: &Path) -> Database {
        match std::env::var("LOAD_DATABASE").as_deref() {
            Err(_) | Ok("sqlite") => Database::Sqlite(dir.join("leadboard.db")),
            Ok("postgres") => {
                let server = leadboard::store::testing::postgres_server()
                    .expect("LOAD_DATABASE=postgres needs LEADBOARD_TEST_POSTGRES (a PostgreSQL server URL)");
                let url = leadboard::store::testing::fresh_postgres_database(&server)
                    .await
                    .expect("a fresh PostgreSQL database");
                Database::Postgres { server, url }
            }
            Ok(other) => panic!("LOAD_DATABASE must be sqlite or postgres, not {other}"),
        }
    }

    fn url(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres { url, .. } => url.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Database::Sqlite(_) => "SQLite (WAL, synchronous = FULL)".to_owned(),
            Database::Postgres { url, .. } => {
                let name = url.rsplit('/').next().unwrap_or_default();
                format!("PostgreSQL (fresh database {name} on LEADBOARD_TEST_POSTGRES)")
            }
        }
    }

    /// A pool for the bench's own reads (read-only on SQLite).
    async fn reader(&self) -> sql::Pool {
        match self {
            Database::Sqlite(path) => {
                let url = format!("sqlite://{}?mode=ro", path.display());
                sql::Pool::Sqlite(sqlx::SqlitePool::connect(&url).await.expect("open the database read-only"))
            }
            Database::Postgres { url, .. } => {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(url).await;
                sql::Pool::Postgres(pool.expect("connect to the PostgreSQL database"))
            }
        }
    }

    /// Drops a PostgreSQL run's database (the services are gone).
    async fn remove(self) {
        if let Database::Postgres { server, url } = self {
            use sqlx::{ConnectOptions, Connection};
            let name = url.rsplit('/').next().unwrap_or_default().to_owned();
            let options: sqlx::postgres::PgConnectOptions = server.parse().expect("the server URL");
            let mut conn = options.database("postgres").connect().await.expect("connect to the server");
            let statement = sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"));
            sqlx::query(statement).execute(&mut conn).await.expect("drop the run's database");
            conn.close().await.expect("close");
        }
    }
}

/// One running service: its process, address and log.
struct Replica {
    service: Service,
    base: String,
    log: PathBuf,
}

/// Starts `n` services on `database`, one after another (the first applies the
/// migrations), each healthy before the next starts. On PostgreSQL each has its own
/// directory under `dir` (its working directory, configuration, control socket, log).
async fn start_replicas(http: &reqwest::Client, dir: &Path, database: &Database, api: &str, n: usize) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for r in 0..n {
        let listen = free_port();
        let home = match database {
            Database::Sqlite(_) => None,
            Database::Postgres { .. } => {
                let home = dir.join(format!("replica-{r}"));
                std::fs::create_dir_all(&home).expect("the replica's directory");
                Some(home)
            }
        };
        let here = home.as_deref().unwrap_or(dir);
        let config = here.join("leadboard.toml");
        let socket = home.as_ref().map(|h| h.join("leadboard.sock"));
        std::fs::write(&config, configuration(&database.url(), api, &listen, socket.as_deref()))
            .expect("write the configuration");
        let log = match std::env::var_os("LOAD_LOG") {
            Some(_) if n == 1 => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/load-service.log"),
            Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/load-service-{r}.log")),
            None => here.join("service.log"),
        };
        let service = start_service(&config, &log, home.as_deref());
        let base = format!("http://{listen}");
        wait_healthy(http, &base).await;
        replicas.push(Replica { service, base, log });
    }
    replicas
}

async fn load(levels: &[usize], requests: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = Database::chosen(dir.path()).await;
    let n = setting("LOAD_REPLICAS", 1usize).max(1);
    assert!(
        n == 1 || matches!(database, Database::Postgres { .. }),
        "replicas share one PostgreSQL database: LOAD_REPLICAS needs LOAD_DATABASE=postgres"
    );
    let mock = wecom_mock().await;
    raw_commit_rates(dir.path()).await;
    if let Database::Postgres { url, .. } = &database {
        raw_postgres_commit_rates(url).await;
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(512).build().expect("http client");
    let replicas = start_replicas(&http, dir.path(), &database, &mock.uri(), n).await;
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let base = &bases[0];
    let reader = database.reader().await;
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP_ID).expect("valid key");
    let peer = Peer { crypto, corp_id: CORP_ID.to_owned(), agent_id: AGENT_ID };

    let screens = setting("LOAD_SCREENS", 0usize);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watching = None;
    if screens > 0 {
        let key = board_key(&http, base, &peer).await;
        let received = open_screens(&http, base, &key, screens).await;
        let confirming =
            tokio::spawn(confirm_steadily(http.clone(), base.clone(), peer.clone(), reader.clone(), stop.clone()));
        watching = Some((received, confirming));
    }
    println!(
        "database: {}; {n} service process(es), the load's connections round-robin over them",
        database.describe()
    );
    println!("{} people, {requests} callbacks per level (6 reports, 2 我的, 1 排行, 1 retry in 10)", people());
    println!("{screens} TV boards open, a confirmation every 250 ms while they are\n");
    println!("| concurrency | callbacks | callbacks/s | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut slowest = Duration::ZERO;
    let mut reports = 0;
    for (level_no, &concurrency) in levels.iter().enumerate() {
        let mut level = run_level(&http, &bases, &peer, level_no, concurrency, requests).await;
        print_level(&mut level);
        slowest = slowest.max(*level.latencies.last().expect("latencies"));
        reports += level.reports;
    }
    if let Some((received, confirming)) = watching {
        stop.store(true, Ordering::Relaxed);
        let answered = confirming.await.expect("the confirmer");
        // The last confirmation's events are on their way.
        tokio::time::sleep(Duration::from_millis(500)).await;
        print_screens(&received, &answered);
    }
    check_effects(&reader, reports).await;
    let verdict = if slowest < DEADLINE { "within" } else { "OVER" };
    println!("slowest answer {} ms: {verdict} WeCom's 5 s deadline", ms(slowest));
    for (r, replica) in replicas.iter().enumerate() {
        let who = if n == 1 { String::new() } else { format!("replica {r} ({}): ", replica.base) };
        if let Ok(response) = http.get(format!("{}/metrics", replica.base)).send().await
            && let Ok(text) = response.text().await
        {
            let series = |name: &str| {
                text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or_default()
            };
            let (batches, callbacks) =
                (series("leadboard_callback_batch_size_count"), series("leadboard_callback_batch_size_sum"));
            println!(
                "{who}group commit: {callbacks:.0} callbacks in {batches:.0} write transactions ({:.1} per commit on average, all levels)",
                callbacks / batches.max(1.0)
            );
        }
        match replica.service.peak_rss_kib() {
            Some(kib) => println!("{who}service peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
            None => println!("{who}service peak RSS: not available (no /proc)"),
        }
    }
    for (r, replica) in replicas.iter().enumerate() {
        if std::env::var_os("LOAD_LOG").is_none()
            && let Ok(log) = std::fs::read_to_string(&replica.log)
            && !log.trim().is_empty()
        {
            let who = if n == 1 { String::new() } else { format!(" (replica {r})") };
            println!("\nservice warnings{who}:\n{}", log.lines().take(20).collect::<Vec<_>>().join("\n"));
        }
    }
    reader.close().await;
    drop(replicas);
    database.remove().await;
}
