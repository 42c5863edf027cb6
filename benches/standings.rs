//! Contest standings at scale: one PK contest of 50 teams × 100 people (5,000 people
//! in 61 departments) over 1,000,000 records of its scored kinds, in a real SQLite file.
//!
//! Timed, each on the same database:
//! - `standings/query`: `service::contest::standings`, the query behind `排行`;
//! - `standings/command`: `commands::handle_text(.., "排行")`, the command path inside a
//!   write transaction (rolled back afterwards; the command writes nothing);
//! - `standings/callback`: an encrypted `排行` callback POSTed to the service's router
//!   on loopback, answered as WeCom would receive it (verify, decrypt, dedup, command,
//!   outbox, inbox, commit);
//! - `daily_leaderboard/run_once`: `jobs::run_once(.., Job::DailyLeaderboard)`.
//!
//! Set-up (not timed by criterion, printed once): the configuration is written as TOML
//! and loaded with `Settings::load`, `AppState::new` opens the database, applies the
//! migrations and loads the directory and the contest; the records are then inserted
//! with bulk SQL in one transaction, `records.counted` is set from the
//! `counting_records` view (as migration 0004 does), and `rebuild_scores` fills
//! `contest_scores` (its one-off cost is printed).
//!
//! Run with `cargo bench --bench standings` (`STANDINGS_BENCH_KEEP_DB=1` keeps the
//! database and prints where, e.g. for `EXPLAIN QUERY PLAN`). Results live in `BENCHMARKS.md`.
//!
//! `STANDINGS_BENCH_MIGRATE=1` (with `LEADBOARD_TEST_POSTGRES` naming a PostgreSQL
//! server) times nothing with criterion: it builds the same data set (with reward
//! amounts and targets configured, so that the month's settlement has lines), copies it
//! into a fresh PostgreSQL database with `leadboard migrate-to-postgres` (timed), and
//! requires identical `我的` (seven people), `排行` and March settlement (CSV and summary)
//! from a service state on each database.

use leadboard::store::sql;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use leadboard::clock::{ManualClock, TZ};
use leadboard::commands;
use leadboard::config::{Settings, Source};
use leadboard::domain::contest::ContestDef;
use leadboard::jobs::{self, Job};
use leadboard::service::contest;
use leadboard::state::AppState;
use leadboard::store::contests::rebuild_scores;
use leadboard::wecom::crypto::WecomCrypto;
use leadboard::wecom::peer::Peer;
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// The official WeCom test configuration (the callback is really signed and encrypted).
const TOKEN: &str = "QDG6eK";
const ENCODING_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP_ID: &str = "wx5823bf96d3bd56c7";
const AGENT_ID: i64 = 1_000_002;

const PEOPLE: u32 = 5_000;
const TEAMS: u32 = 50;
/// Regions (departments under the root), each holding `TEAMS / REGIONS` team departments.
const REGIONS: u32 = 10;
const RECORDS: u64 = 1_000_000;
/// Records come in groups of 20 over 14 clients: 14 C, 5 B and 1 A (first claim per
/// client and stage, as the unique index requires).
const GROUP: u64 = 20;
const CLIENTS_PER_GROUP: u64 = 14;

const CONTEST: &str = "bench-pk";
/// An ordinary staff member in a CS team asks for the standings.
const ASKER: &str = "u0042";

/// 2026-03-30 18:05 in Asia/Shanghai: the daily broadcast time, one day before the
/// contest's last day (2026-03-01 to 2026-03-31, cut-off 17:00).
fn now() -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2026, 3, 30, 18, 5, 0).single().expect("valid local time").with_timezone(&Utc)
}

/// People `u0000`..`u4999`, 100 per team department `1000 + t`; regions 0–5 are CS,
/// 6–7 TR, 8–9 other. Each team has a manager (a confirmer in CS), three supervisors,
/// and staff; every tenth team's 50th person is a director.
fn directory_toml() -> String {
    let mut toml = String::from("[[directory.departments]]\nid = 1\nname = \"集团\"\nkind = \"other\"\n");
    for r in 0..REGIONS {
        let kind = match r {
            0..=5 => "cs",
            6..=7 => "tr",
            _ => "other",
        };
        toml += &format!(
            "[[directory.departments]]\nid = {}\nname = \"第{r}大区\"\nparent = 1\nkind = \"{kind}\"\n",
            100 + r
        );
    }
    for t in 0..TEAMS {
        let region = 100 + t / (TEAMS / REGIONS);
        toml += &format!("[[directory.departments]]\nid = {}\nname = \"第{t}营销部\"\nparent = {region}\n", 1000 + t);
    }
    for i in 0..PEOPLE {
        toml += &person_toml(i);
    }
    toml
}

fn person_toml(i: u32) -> String {
    let (level, confirmer) = match i % 100 {
        0 => ("manager", i < 3000),
        1..=3 => ("supervisor", false),
        50 if i % 1000 == 50 => ("director", false),
        _ => ("staff", false),
    };
    format!(
        "[[directory.users]]\nuserid = \"u{i:04}\"\nname = \"{}\"\ndepartment = {}\nlevel = \"{level}\"\nconfirmer = {confirmer}\n",
        person_name(i),
        1000 + i / 100
    )
}

/// Two- or three-character Chinese names (repeats are fine: the directory allows them).
fn person_name(i: u32) -> String {
    const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"];
    const GIVEN: [&str; 16] =
        ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明"];
    let i = i as usize;
    let second = if i.is_multiple_of(3) { "" } else { GIVEN[(i / 7) % GIVEN.len()] };
    format!("{}{}{second}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / SURNAMES.len()) % GIVEN.len()])
}

fn contest_toml() -> String {
    let mut toml = format!(
        "[[contests]]\nid = \"{CONTEST}\"\nname = \"百万记录PK\"\nkinds = [\"lead_c\", \"lead_b\", \"lead_a\"]\n\
         start = \"2026-03-01\"\nend = \"2026-03-31\"\nsponsorship = 50000\n\
         chats = [\"appchat:wrbench\", \"webhook:benchkey\"]\n"
    );
    for t in 0..TEAMS {
        toml += &format!("[[contests.teams]]\nname = \"第{t}营销部队\"\ndepartment = {}\n", 1000 + t);
    }
    toml
}

/// Reward amounts and targets (the example configuration's), for the settlement that
/// `STANDINGS_BENCH_MIGRATE=1` compares; without it the bench's configuration has none.
const REWARDS_TOML: &str = "[rewards.cs]\nlead_b = 200\nlead_a_percent = 1\n\
    [rewards.non_cs]\nlead_c = 50\nlead_b = 300\nlead_a_percent = 2\n[targets]\ncs = 20\ntr = 15\n";

/// Whether this run migrates the data set to PostgreSQL instead of timing.
fn migrating() -> bool {
    std::env::var_os("STANDINGS_BENCH_MIGRATE").is_some()
}

/// The whole configuration file on the database at `url`; the WeCom API is never
/// called (no outbox worker runs).
fn config_toml(url: &str) -> String {
    let rewards = if migrating() { REWARDS_TOML } else { "" };
    format!(
        "[database]\nurl = \"{url}\"\n\
         [wecom]\ncorp_id = \"{CORP_ID}\"\nagent_id = {AGENT_ID}\nsecret = \"bench-secret\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{ENCODING_AES_KEY}\"\napi_base = \"http://127.0.0.1:9\"\n\
         [schedules]\nenabled = false\n[roles]\nadmins = [\"u0000\"]\naudit_group = [\"u0010\"]\n{rewards}{}{}",
        directory_toml(),
        contest_toml()
    )
}

/// Runs `sql` (a statement built by this bench) and returns the rows it changed.
async fn exec(conn: &mut leadboard::store::Conn, sql: String) -> u64 {
    sql::query(sqlx::AssertSqlSafe(sql)).execute(conn).await.expect("bulk SQL runs").rows_affected()
}

/// Clients `1..=clients`, one per C-stage record.
fn subjects_sql(clients: u64, created_at: i64) -> String {
    format!(
        "WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {clients})
         INSERT INTO subjects (id, family, name, name_key, origin, created_at)
         SELECT i + 1, 'client', '云帆' || i || '号科技有限公司', '云帆' || i || '号科技有限公司', 'reported', {created_at}
         FROM n"
    )
}

/// One million records in id order = report order, spread evenly over
/// `[start, end)`: record `i` is stage `j = i % 20` of group `i / 20` (C for clients
/// 0–13 of the group, B for clients 0–4, A for client 0). Each client has one reporter
/// (skewed towards low userids so that there are stars). Each record is decided up to
/// 48 h after it is reported: 86 % confirmed, 5 % voided after confirmation, 9 % still
/// reported, as is every record whose decision would come after `now`.
fn records_sql(start: i64, end: i64, now: i64) -> String {
    let span = end - start;
    format!(
        "WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {RECORDS}),
         a AS (SELECT i, i % {GROUP} AS j, ((i * 2654435761) % 4294967296) * 100 / 4294967296 AS h,
                 (i / {GROUP}) * {CLIENTS_PER_GROUP} + CASE WHEN i % {GROUP} < 14 THEN i % {GROUP}
                      WHEN i % {GROUP} < 19 THEN i % {GROUP} - 14 ELSE 0 END AS client,
                 {start} + i * {span} / {RECORDS} AS occurred,
                 {start} + i * {span} / {RECORDS} + ((i * 40503) % 172800) * 1000 AS decision
               FROM n),
         b AS (SELECT a.*, CASE WHEN j < 14 THEN 'lead_c' WHEN j < 19 THEN 'lead_b' ELSE 'lead_a' END AS kind,
                 CASE WHEN decision >= {now} OR h BETWEEN 86 AND 94 THEN 'reported'
                      WHEN h < 86 THEN 'confirmed' ELSE 'voided' END AS state,
                 ((client * 2654435761) % {PEOPLE}) AS x
               FROM a),
         c AS (SELECT b.*, (x + x * x / {PEOPLE}) / 2 AS p FROM b)
         INSERT INTO records (id, kind, mode, reporter, reporter_dept, reporter_class, closer, subject_id, claim_slot,
             amount_fen, fields, points, stage_rule, state, occurred_at, decided_by, decided_at, reason, voided_from)
         SELECT i + 1, kind,
             CASE WHEN p < 3000 THEN 'direct' ELSE 'transfer' END,
             printf('u%04d', p), 1000 + p / 100,
             CASE WHEN p < 3000 THEN 'cs' WHEN p < 4000 THEN 'tr' ELSE 'other' END,
             CASE WHEN p < 3000 THEN NULL ELSE printf('u%04d', (p * 7) % 3000) END,
             client + 1, kind,
             CASE kind WHEN 'lead_a' THEN 1000000 END,
             json_object('公司', '云帆' || client || '号科技有限公司', '联系人', '王经理'),
             CASE kind WHEN 'lead_c' THEN 1 WHEN 'lead_b' THEN 5 ELSE 30 END,
             'cumulative', state, occurred,
             CASE WHEN state = 'reported' THEN NULL ELSE printf('u%04d', (i % 30) * 100) END,
             CASE WHEN state = 'reported' THEN NULL ELSE decision END,
             CASE WHEN state = 'voided' THEN '核查不实' END,
             CASE WHEN state = 'voided' THEN 'confirmed' END
         FROM c"
    )
}

/// Inserts the clients and records in one transaction and marks the counting records,
/// exactly as migration 0004 does for existing data.
async fn insert_records(state: &AppState, def: &ContestDef, now_ms: i64) {
    let started = Instant::now();
    let mut tx = state.db.begin().await.expect("write transaction");
    let clients = RECORDS / GROUP * CLIENTS_PER_GROUP;
    let subjects = exec(&mut *tx, subjects_sql(clients, def.start_ms)).await;
    let records = exec(&mut *tx, records_sql(def.start_ms, now_ms - 600_000, now_ms)).await;
    let counted =
        exec(&mut *tx, "UPDATE records SET counted = 1 WHERE id IN (SELECT id FROM counting_records)".into()).await;
    tx.commit().await.expect("commit");
    eprintln!(
        "setup: {subjects} clients, {records} records ({counted} counting) inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The one-off cost of recomputing every member's score from the records.
async fn rebuild(state: &AppState) {
    let mut tx = state.db.begin().await.expect("write transaction");
    let started = Instant::now();
    rebuild_scores(&mut tx, CONTEST).await.expect("rebuild_scores");
    let rebuilt = started.elapsed();
    tx.commit().await.expect("commit");
    eprintln!(
        "setup: rebuild_scores took {:.1} ms ({:.1} ms with its commit)",
        rebuilt.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// Each member's kept score must equal a recount from `counting_records` (not from
/// `records.counted`). One grouped pass: the contest tests' per-member recount is
/// planned on `records_state` and would scan the window once per member.
async fn check_scores(state: &AppState) {
    let kept: Vec<(String, i64)> =
        sql::query_as("SELECT userid, points FROM contest_scores WHERE contest_id = ? AND points != 0 ORDER BY userid")
            .bind(CONTEST)
            .fetch_all(state.db.reader())
            .await
            .expect("scores");
    let recounted: Vec<(String, i64)> = sql::query_as(
        "SELECT m.userid, SUM(r.points) FROM counting_records r
         JOIN contest_members m ON m.contest_id = ? AND m.userid = r.reporter JOIN contests c ON c.id = m.contest_id
         WHERE instr(',' || c.kinds || ',', ',' || r.kind || ',') > 0
           AND r.occurred_at >= MAX(c.start_at, m.joined_at) AND r.occurred_at < c.cutoff_at
         GROUP BY m.userid HAVING SUM(r.points) != 0 ORDER BY m.userid",
    )
    .bind(CONTEST)
    .fetch_all(state.db.reader())
    .await
    .expect("recount");
    assert!(kept == recounted, "contest_scores must match a full recount");
    let total: i64 = kept.iter().map(|(_, points)| points).sum();
    eprintln!("setup: {total} points for {} scoring members, equal to a full recount", kept.len());
}

/// Everything the benches share: the service state on its database, and a runtime.
struct World {
    rt: Runtime,
    state: AppState,
    def: ContestDef,
    /// `None` when kept for inspection (`STANDINGS_BENCH_KEEP_DB=1`).
    _dir: Option<TempDir>,
}

fn world() -> World {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("leadboard.toml");
    let db = dir.path().join("leadboard.db");
    std::fs::write(&config, config_toml(&format!("sqlite://{}", db.display()))).expect("write config");
    let settings = Settings::load(Source::File(&config)).unwrap_or_else(|e| panic!("{e}"));
    let def = settings.contests.first().cloned().expect("one contest");
    let state = rt.block_on(async {
        let started = Instant::now();
        let state = AppState::new(settings, Arc::new(ManualClock::new(now()))).await.expect("state builds");
        eprintln!(
            "setup: AppState::new (migrations, 5,000 people, contest) took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        insert_records(&state, &def, now().timestamp_millis()).await;
        rebuild(&state).await;
        check_scores(&state).await;
        state
    });
    report_size(&state);
    let dir = if std::env::var_os("STANDINGS_BENCH_KEEP_DB").is_some() {
        eprintln!("setup: keeping {}", dir.keep().display());
        None
    } else {
        Some(dir)
    };
    World { rt, state, def, _dir: dir }
}

/// The database's size on disk after set-up.
fn report_size(state: &AppState) {
    let path = state.settings().database_path();
    let mib = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or_default() as f64 / (1024.0 * 1024.0);
    let wal = path.with_extension("db-wal");
    eprintln!("setup: database file {:.0} MiB, WAL {:.0} MiB", mib(&path), mib(&wal));
}

impl World {
    /// Runs `task` on a runtime worker thread, where the service's handlers and jobs
    /// run. (Awaiting on the bench's own thread instead adds a thread wake-up to every
    /// row sqlx hands over, which is not what the service pays.)
    fn on_worker<T: Send + 'static>(&self, task: impl Future<Output = T> + Send + 'static) -> T {
        self.rt.block_on(self.rt.spawn(task)).expect("task completes")
    }

    /// The total of `iters` runs of `op` on a worker thread; each run times itself.
    fn repeat<F, Fut>(&self, iters: u64, op: F) -> Duration
    where
        F: Fn(AppState, ContestDef) -> Fut + Send + 'static,
        Fut: Future<Output = Duration> + Send,
    {
        let (state, def) = (self.state.clone(), self.def.clone());
        self.on_worker(async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += op(state.clone(), def.clone()).await;
            }
            total
        })
    }
}

/// `contest::standings` on a pooled read connection (taken before the clock starts).
async fn standings_query(state: AppState, def: ContestDef) -> (contest::Standings, Duration) {
    let mut conn = state.db.reader().acquire().await.expect("reader connection");
    let started = Instant::now();
    let standings = contest::standings(&mut conn, &def).await.expect("standings");
    (standings, started.elapsed())
}

fn bench_query(c: &mut Criterion, w: &World) {
    let (standings, cold) = w.on_worker(standings_query(w.state.clone(), w.def.clone()));
    // The first read after set-up reads the database (set-up changed the scores); the
    // timed ones are served from memory, as every read is until the scores change.
    eprintln!("standings/query: first read (from the database) {:.2} ms", cold.as_secs_f64() * 1e3);
    assert_eq!(standings.len(), TEAMS as usize);
    assert_eq!(standings.iter().map(|t| t.members.len()).sum::<usize>(), PEOPLE as usize);
    let mut group = c.benchmark_group("standings");
    group.sample_size(30).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(10));
    group.bench_function("query", |b| {
        b.iter_custom(|iters| w.repeat(iters, |state, def| async move { standings_query(state, def).await.1 }))
    });
    group.finish();
}

/// `排行` through the command path, in a write transaction that is rolled back.
async fn standings_command(state: &AppState) -> (String, Duration) {
    let mut tx = state.db.begin().await.expect("write transaction");
    let started = Instant::now();
    let answer = commands::handle_text(&state.settings(), now(), &mut tx, ASKER, "排行").await.expect("answer").text;
    let elapsed = started.elapsed();
    tx.rollback().await.expect("rollback");
    (answer, elapsed)
}

fn bench_command(c: &mut Criterion, w: &World) {
    let state = w.state.clone();
    let (answer, _) = w.on_worker(async move { standings_command(&state).await });
    let teams = answer.lines().filter(|l| l.starts_with('第')).count();
    assert!(answer.starts_with("🏆 百万记录PK 排行") && teams == TEAMS as usize, "unexpected answer: {answer}");
    eprintln!("standings/command: the answer is {} bytes, {} lines", answer.len(), answer.lines().count());
    let mut group = c.benchmark_group("standings");
    group.sample_size(30).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(10));
    group.bench_function("command", |b| {
        b.iter_custom(|iters| w.repeat(iters, |state, _| async move { standings_command(&state).await.1 }))
    });
    group.finish();
}

/// Plays WeCom: signed, encrypted `排行` callbacks, each with a new MsgId.
struct Wecom {
    peer: Peer,
    http: reqwest::Client,
    url: String,
    msg_ids: AtomicU64,
}

impl Wecom {
    fn new(addr: SocketAddr) -> Wecom {
        let crypto = WecomCrypto::new(TOKEN, ENCODING_AES_KEY, CORP_ID).expect("valid test key");
        Wecom {
            peer: Peer { crypto, corp_id: CORP_ID.to_owned(), agent_id: AGENT_ID },
            http: reqwest::Client::new(),
            url: format!("http://{addr}/wecom/callback"),
            msg_ids: AtomicU64::new(7_400_000_000_000_000_000),
        }
    }

    /// Builds one callback (not timed), then POSTs it and reads the answer (timed).
    async fn ask(&self) -> (u16, String, Duration) {
        let ts = now().timestamp();
        let id = self.msg_ids.fetch_add(1, Ordering::Relaxed).to_string();
        let request = self.peer.callback(&self.peer.text_xml(ASKER, "排行", &id, ts), ts);
        let started = Instant::now();
        let response =
            self.http.post(format!("{}?{}", self.url, request.query)).body(request.body).send().await.expect("answer");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        (status, body, started.elapsed())
    }
}

/// Serves the service's router (callback, health, metrics) on a loopback port. No
/// outbox worker runs: long answers stay queued instead of going to a WeCom API.
fn serve(w: &World) -> SocketAddr {
    w.rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound address");
        tokio::spawn(axum::serve(listener, leadboard::http::router(w.state.clone())).into_future());
        addr
    })
}

/// The latest queued message to the asker: the standings, as WeCom would deliver them.
async fn queued_answer(state: &AppState) -> String {
    let payloads: Vec<String> =
        sql::query_scalar("SELECT payload FROM outbox WHERE api = 'message/send' ORDER BY id DESC LIMIT 4")
            .fetch_all(state.db.reader())
            .await
            .expect("outbox query");
    payloads.into_iter().rev().collect::<Vec<_>>().join("\n")
}

fn bench_callback(c: &mut Criterion, w: &World) {
    let wecom = Wecom::new(serve(w));
    let (status, body, _) = w.rt.block_on(wecom.ask());
    // The answer is longer than a passive reply may be (2,048 bytes): the service
    // answers the callback with an empty 200 and sends the text through its outbox.
    assert_eq!((status, body.as_str()), (200, ""), "empty 200 expected");
    let queued = w.rt.block_on(queued_answer(&w.state));
    assert!(queued.contains("百万记录PK 排行") && queued.contains(ASKER), "standings queued to the asker");
    let mut group = c.benchmark_group("standings");
    group.sample_size(30).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(10));
    // WeCom's side runs on the bench's thread; the service handles each request on the
    // runtime's worker threads, as in production.
    group.bench_function("callback", |b| {
        b.iter_custom(|iters| {
            w.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (status, _, elapsed) = wecom.ask().await;
                    assert_eq!(status, 200);
                    total += elapsed;
                }
                total
            })
        })
    });
    group.finish();
}

async fn daily_leaderboard(state: &AppState) -> (String, Duration) {
    let started = Instant::now();
    let summary = jobs::run_once(state, Job::DailyLeaderboard).await.expect("job runs");
    (summary, started.elapsed())
}

fn bench_job(c: &mut Criterion, w: &World) {
    let state = w.state.clone();
    let (summary, first) = w.on_worker(async move { daily_leaderboard(&state).await });
    assert!(summary.starts_with("播报了 1 个比赛"), "unexpected summary: {summary}");
    eprintln!("daily_leaderboard: {summary}; first run {:.1} ms", first.as_secs_f64() * 1e3);
    let mut group = c.benchmark_group("daily_leaderboard");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(20));
    group.bench_function("run_once", |b| {
        b.iter_custom(|iters| w.repeat(iters, |state, _| async move { daily_leaderboard(&state).await.1 }))
    });
    group.finish();
}

/// People whose `我的` is compared: stars (low userids), the asker, a manager, a TR
/// member, an other-department member and the last person.
const COMPARED: [&str; 7] = ["u0000", "u0007", "u0042", "u0100", "u2999", "u3500", "u4999"];

/// What the service answers on a database: `我的` of [`COMPARED`], `排行`, and the
/// month's settlement (its CSV and summary), each in a transaction rolled back after.
async fn answers(state: AppState) -> Vec<(String, String)> {
    let settings = state.settings();
    let mut out = Vec::new();
    let mut tx = state.db.begin().await.expect("write transaction");
    for who in COMPARED {
        let answer = commands::handle_text(&settings, now(), &mut tx, who, "我的").await.expect("我的").text;
        out.push((format!("{who} 我的"), answer));
    }
    let answer = commands::handle_text(&settings, now(), &mut tx, ASKER, "排行").await.expect("排行").text;
    out.push((format!("{ASKER} 排行"), answer));
    tx.rollback().await.expect("rollback");
    let month = leadboard::domain::month::Month::of(now().with_timezone(&TZ).date_naive());
    let mut tx = state.db.begin().await.expect("write transaction");
    let started = Instant::now();
    let report = leadboard::service::settlement::compute(&mut tx, &settings, month, now().timestamp_millis())
        .await
        .unwrap_or_else(|e| panic!("settlement: {e}"));
    let computed = started.elapsed();
    tx.rollback().await.expect("rollback");
    let csv = String::from_utf8(report.csv().expect("the CSV")).expect("UTF-8");
    eprintln!(
        "migrate: {month} settlement computed in {:.2} s: {} lines, CSV {} bytes",
        computed.as_secs_f64(),
        report.settlement.lines.len(),
        csv.len()
    );
    out.push((format!("{month} 结算 CSV"), csv));
    out.push((format!("{month} 结算 摘要"), report.summary()));
    out
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// `STANDINGS_BENCH_MIGRATE=1`: copies the data set into a fresh database on the
/// PostgreSQL server `LEADBOARD_TEST_POSTGRES` names with the real binary (`leadboard
/// migrate-to-postgres --from FILE --to URL`, timed), starts a second service state on
/// it with the same configuration, and requires the same answers from both. The
/// database is dropped afterwards unless `STANDINGS_BENCH_KEEP_DB` is set.
fn migrate_to_postgres(w: &World) {
    let server = leadboard::store::testing::postgres_server()
        .expect("STANDINGS_BENCH_MIGRATE needs LEADBOARD_TEST_POSTGRES (a PostgreSQL server URL)");
    let url = w.rt.block_on(leadboard::store::testing::fresh_postgres_database(&server)).expect("a fresh database");
    let from = w.state.settings().database_path();
    let before = w.on_worker(answers(w.state.clone()));

    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_leadboard"))
        .args(["migrate-to-postgres", "--from"])
        .arg(&from)
        .args(["--to", &url])
        .output()
        .expect("run leadboard migrate-to-postgres");
    let took = started.elapsed();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "migrate-to-postgres failed ({}):\n{printed}", output.status);
    eprintln!(
        "migrate: leadboard migrate-to-postgres took {:.1} s; it printed:\n{}",
        took.as_secs_f64(),
        printed.trim_end()
    );

    let config = from.with_file_name("leadboard-postgres.toml");
    std::fs::write(&config, config_toml(&url)).expect("write config");
    let settings = Settings::load(Source::File(&config)).unwrap_or_else(|e| panic!("{e}"));
    let postgres = w.rt.block_on(async {
        let started = Instant::now();
        let state = AppState::new(settings, Arc::new(ManualClock::new(now()))).await.expect("state builds");
        eprintln!("migrate: AppState::new on PostgreSQL took {:.1} s", started.elapsed().as_secs_f64());
        state
    });
    let after = w.on_worker(answers(postgres.clone()));

    eprintln!("\n| answer | bytes | SHA-256 (first 16) on SQLite | on PostgreSQL | same |");
    eprintln!("| --- | --- | --- | --- | --- |");
    let mut different = Vec::new();
    for ((what, sqlite), (_, pg)) in before.iter().zip(&after) {
        let same = sqlite == pg;
        eprintln!(
            "| {what} | {} | {} | {} | {} |",
            sqlite.len(),
            &sha256_hex(sqlite)[..16],
            &sha256_hex(pg)[..16],
            if same { "yes" } else { "**no**" }
        );
        if !same {
            different.push(format!("{what}:\n--- SQLite\n{sqlite}\n--- PostgreSQL\n{pg}"));
        }
    }
    assert!(before.len() == after.len() && different.is_empty(), "answers differ:\n{}", different.join("\n"));
    eprintln!("migrate: all {} answers identical on SQLite and PostgreSQL", before.len());

    w.rt.block_on(async move {
        postgres.db.reader().close().await;
        drop(postgres);
        if std::env::var_os("STANDINGS_BENCH_KEEP_DB").is_some() {
            eprintln!("migrate: keeping {url}");
            return;
        }
        use sqlx::{ConnectOptions, Connection};
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        let options: sqlx::postgres::PgConnectOptions = server.parse().expect("the server URL");
        let mut conn = options.database("postgres").connect().await.expect("connect to the server");
        let statement = sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"));
        sqlx::query(statement).execute(&mut conn).await.expect("drop the database");
        conn.close().await.expect("close");
    });
}

fn benches(c: &mut Criterion) {
    let w = world();
    if migrating() {
        migrate_to_postgres(&w);
        return;
    }
    bench_query(c, &w);
    bench_command(c, &w);
    bench_callback(c, &w);
    bench_job(c, &w);
}

criterion_group!(standings, benches);
criterion_main!(standings);
