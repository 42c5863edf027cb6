//! `leadboard migrate-to-postgres --to postgres://… [--from FILE]`: copies an SQLite
//! leadboard database (by default the one `--config` names) into an empty PostgreSQL
//! database, for replicas (issue 17).
//!
//! - The source is opened read-only and read in one transaction: a consistent snapshot
//!   even while a service writes to it (WAL readers see one commit), and never migrated
//!   (a newer binary must not change the schema under an older running service). It
//!   must be at the latest SQLite migration this binary knows, so that its tables are
//!   the ones the PostgreSQL schema translates.
//! - The target must be empty. Its schema is made by the service's own start-up path
//!   ([`Db::open_postgres`]); the rows are then copied in one transaction, so a failure
//!   anywhere leaves it without rows (and a second attempt finds it empty again).
//! - The copying session runs with `session_replication_role = replica`: user triggers
//!   (and foreign-key triggers) do not fire, so the triggers that maintain derived tables
//!   (`contest_day_counts`, `standings_token`) do not add to the rows copied from the
//!   source, which already hold the source's exact derived values.
//! - Tables are discovered on both sides (`pragma_table_info`, `information_schema`);
//!   a source table or column without a home in the target is refused before any row is
//!   written. SQLite's bookkeeping (`_sqlx_migrations`, `sqlite_*`, the write probe) is
//!   not copied.
//! - Each table is verified before the commit: its row count and a SHA-256 over its
//!   rows in key order, every value rendered the same way from either engine (its type,
//!   then its bytes: integers as integers, text as UTF-8, blobs as bytes, NULL distinct
//!   from ''). Text keys are ordered bytewise on both (`COLLATE "C"` on PostgreSQL, as
//!   SQLite's BINARY). A mismatch rolls everything back and names the table.
//!
//! Exit status 0: copied and verified; 2: refused, nothing copied; 1: failed (nothing
//! copied) or a verification mismatch (rolled back).

use crate::config::{Settings, Source as ConfigSource};
use crate::store::Db;
use anyhow::Context;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, Row, SqliteConnection, TypeInfo, ValueRef};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Source tables that are SQLite's own or one file's bookkeeping, never copied: the
/// target keeps its own migration history, the write probe is the file's, and the log
/// of names feeds SQLite's look-alike index in memory (PostgreSQL keeps its index in
/// tables, built from the copied names when the service starts).
const SKIPPED: [&str; 4] = ["_sqlx_migrations", "write_probe", "name_log", "name_log_identity"];

/// Tables the PostgreSQL migrations fill themselves: their rows are replaced by the
/// source's (the standings token's one row).
const SEEDED: [&str; 1] = ["standings_token"];

/// The busy timeout without a configuration (the configuration's default).
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// At most this many rows per INSERT (and never more than PostgreSQL's 65535
/// parameters).
const BATCH_ROWS: usize = 500;

/// A refusal: nothing was copied, and the message says why (exit status 2).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refuse<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(Refused(message.into()).into())
}

/// Runs the command: `from`, or the SQLite database of the configuration at `config`,
/// into the PostgreSQL database at `to`.
pub async fn run(config: Option<&Path>, from: Option<&Path>, to: &str) -> ExitCode {
    let outcome = match source(config, from) {
        Ok((path, busy_timeout)) => migrate(&path, to, busy_timeout).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            eprintln!("错误：{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("错误：{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The source file and the busy timeout to read it with.
fn source(config: Option<&Path>, from: Option<&Path>) -> anyhow::Result<(PathBuf, Duration)> {
    let settings = match config {
        Some(path) => match Settings::load(ConfigSource::File(path)) {
            Ok(settings) => Some(settings),
            Err(errors) => return refuse(errors.to_string()),
        },
        None => None,
    };
    let busy_timeout =
        settings.as_ref().map_or(DEFAULT_BUSY_TIMEOUT, |s| Duration::from_millis(s.database.busy_timeout_ms));
    match (from, &settings) {
        (Some(from), _) => Ok((from.to_owned(), busy_timeout)),
        (None, Some(settings)) if settings.is_postgres() => {
            refuse("配置的 database.url 已经是 PostgreSQL：请用 --from 指定要迁移的 SQLite 数据库文件")
        }
        (None, Some(settings)) => Ok((settings.database_path(), busy_timeout)),
        (None, None) => refuse("请用 --from 指定要迁移的 SQLite 数据库文件（或用 --config 指定服务的配置）"),
    }
}

/// What a column holds, as the target declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Bytes,
}

impl Kind {
    fn of(table: &str, column: &str, data_type: &str) -> anyhow::Result<Kind> {
        Ok(match data_type {
            "bigint" | "integer" | "smallint" => Kind::Int,
            "double precision" | "real" => Kind::Real,
            "text" | "character varying" | "character" => Kind::Text,
            "bytea" => Kind::Bytes,
            other => {
                return refuse(format!(
                    "目标表 {table} 的列 {column} 的类型 {other} 无法从 SQLite 复制，未复制任何数据"
                ));
            }
        })
    }
}

/// One value, from either engine.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Adds a value to a table's checksum: a tag, then the value's bytes (lengths first,
/// so that no two rows render alike).
fn feed(hash: &mut Sha256, value: &Value) {
    match value {
        Value::Null => hash.update(b"N"),
        Value::Int(v) => {
            hash.update(b"I");
            hash.update(v.to_be_bytes());
        }
        Value::Real(v) => {
            hash.update(b"R");
            hash.update(v.to_bits().to_be_bytes());
        }
        Value::Text(v) => {
            hash.update(b"T");
            hash.update((v.len() as u64).to_be_bytes());
            hash.update(v.as_bytes());
        }
        Value::Bytes(v) => {
            hash.update(b"B");
            hash.update((v.len() as u64).to_be_bytes());
            hash.update(v);
        }
    }
}

/// A target column as `information_schema.columns` describes it.
#[derive(Debug, Clone)]
struct TargetColumn {
    name: String,
    /// As `information_schema` names it (`bigint`, `text`, …).
    data_type: String,
    /// Nullable, with a default or an identity: an INSERT may leave it out.
    optional: bool,
    /// Filled by a sequence (an identity or a serial): reset after the copy.
    sequence: bool,
    /// `GENERATED ALWAYS AS IDENTITY`: written only with `OVERRIDING SYSTEM VALUE`.
    always: bool,
}

/// A column copied: what the source selects, the target column it goes to.
#[derive(Debug, Clone)]
struct Column {
    /// The source expression (a quoted column, or `rowid`).
    source: String,
    target: String,
    kind: Kind,
}

/// How one table is copied.
#[derive(Debug)]
struct Plan {
    table: String,
    columns: Vec<Column>,
    /// The order rows are read and checksummed in, as indexes into `columns`.
    key: Vec<usize>,
    overriding: bool,
    /// Sequence-filled target columns, reset to max + 1.
    sequences: Vec<String>,
}

/// What was copied and verified for one table.
struct Tally {
    table: String,
    source_rows: u64,
    source_sum: String,
    target_rows: u64,
    target_sum: String,
}

impl Tally {
    fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_sum == self.target_sum
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `to` as it may be shown: without its password.
fn shown(to: &str) -> String {
    match url::Url::parse(to) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => to.to_owned(),
    }
}

async fn migrate(from: &Path, to: &str, busy_timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return refuse(format!("--to 必须是 PostgreSQL 地址（postgres://用户@主机/数据库）：{}", shown(to)));
    }
    let target_options: PgConnectOptions = match to.parse() {
        Ok(options) => options,
        Err(e) => return refuse(format!("--to 地址无效（{}）：{e}", shown(to))),
    };

    // The source: read-only, one read transaction for everything read from it.
    if !from.is_file() {
        return refuse(format!("源数据库文件不存在：{}", from.display()));
    }
    let options = SqliteConnectOptions::new().filename(from).read_only(true).busy_timeout(busy_timeout);
    let mut source = match options.connect().await {
        Ok(conn) => conn,
        Err(e) => return refuse(format!("无法打开源数据库 {}：{e}", from.display())),
    };
    let mut snapshot = source.begin().await.with_context(|| format!("无法读取源数据库 {}", from.display()))?;
    check_source_migrations(&mut snapshot, from).await?;
    let tables = source_tables(&mut snapshot).await?;

    // The target: empty, its user allowed to turn triggers off for the copy.
    let mut target = target_options.connect().await.with_context(|| format!("无法连接目标数据库 {}", shown(to)))?;
    let filled = filled_tables(&mut target).await?;
    if !filled.is_empty() {
        return refuse(format!(
            "目标数据库 {} 不是空的：表 {} 已有数据。迁移只写入空的数据库，未做任何更改。",
            shown(to),
            filled.join("、")
        ));
    }
    if let Err(e) = sqlx::query("SET session_replication_role = replica").execute(&mut target).await {
        return refuse(format!(
            "目标数据库的用户不能设置 session_replication_role（{e}）：复制时须关闭触发器，以免派生表被重复计算。\
             请由超级用户先执行 GRANT SET ON PARAMETER session_replication_role TO 服务的数据库用户\
             （PostgreSQL 15 起；更早的版本可临时授予 SUPERUSER），再以服务的数据库用户运行本命令（表归它所有）。\
             未做任何更改。"
        ));
    }

    // The schema, as the service makes it at start.
    let db = Db::open_postgres(to, busy_timeout).await.context("无法在目标数据库上建立 PostgreSQL 结构（迁移）")?;
    db.close().await;
    let columns = target_columns(&mut target).await?;
    let plans = plan(&mut snapshot, &tables, &columns).await?;

    crate::cli::line(format!("从 {} 迁移到 {}：{} 张表", from.display(), shown(to), plans.len()));
    let mut copy = target.begin().await.context("无法在目标数据库开始事务")?;
    for table in SEEDED {
        if columns.contains_key(table) {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", quote(table)))).execute(&mut *copy).await?;
        }
    }
    // Checked again inside the transaction: nothing may have arrived since.
    let filled = filled_tables(&mut copy).await?;
    if !filled.is_empty() {
        return refuse(format!("目标数据库在迁移开始时有了数据：表 {}。未复制任何数据。", filled.join("、")));
    }
    let mut tallies = Vec::with_capacity(plans.len());
    for plan in &plans {
        let table_started = Instant::now();
        let (rows, sum) = copy_table(&mut snapshot, &mut copy, plan).await?;
        crate::cli::line(format!("  {}：{rows} 行（{:.1} 秒）", plan.table, table_started.elapsed().as_secs_f64()));
        tallies.push(Tally {
            table: plan.table.clone(),
            source_rows: rows,
            source_sum: sum,
            target_rows: 0,
            target_sum: String::new(),
        });
    }
    for (plan, tally) in plans.iter().zip(&mut tallies) {
        let (rows, sum) = target_checksum(&mut copy, plan).await?;
        tally.target_rows = rows;
        tally.target_sum = sum;
    }
    print_tallies(&tallies);
    let mismatched: Vec<&str> = tallies.iter().filter(|t| !t.matches()).map(|t| t.table.as_str()).collect();
    if !mismatched.is_empty() {
        anyhow::bail!("校验不一致：表 {}。已回滚：目标数据库中没有复制任何数据。", mismatched.join("、"));
    }
    for plan in &plans {
        reset_sequences(&mut copy, plan).await?;
    }
    copy.commit().await.context("无法提交迁移")?;
    snapshot.rollback().await.ok();
    crate::cli::line(format!("迁移完成，校验一致（用时 {:.1} 秒）", started.elapsed().as_secs_f64()));
    Ok(())
}

/// Refuses a source that is not at exactly this binary's latest SQLite migration.
async fn check_source_migrations(source: &mut SqliteConnection, from: &Path) -> anyhow::Result<()> {
    let has_history: Result<i64, sqlx::Error> =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(&mut *source)
            .await;
    match has_history {
        Err(e) => return refuse(format!("无法打开源数据库 {}：{e}", from.display())),
        Ok(0) => return refuse(format!("源数据库 {} 不是 leadboard 的数据库（没有迁移记录）", from.display())),
        Ok(_) => {}
    }
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *source)
            .await
            .context("无法读取源数据库的迁移记录")?;
    let applied: BTreeMap<i64, Vec<u8>> = applied.into_iter().collect();
    let known = sqlx::migrate!("./migrations");
    let missing: Vec<String> =
        known.iter().filter(|m| !applied.contains_key(&m.version)).map(|m| format!("{:04}", m.version)).collect();
    if !missing.is_empty() {
        return refuse(format!(
            "源数据库的结构不是最新版本（缺少迁移 {}）：请先用这个版本的 leadboard 在它上面启动一次服务\
             （启动时自动升级），停止服务后再迁移。",
            missing.join("、")
        ));
    }
    let unknown: Vec<String> =
        applied.keys().filter(|v| !known.version_exists(**v)).map(|v| format!("{v:04}")).collect();
    if !unknown.is_empty() {
        return refuse(format!(
            "源数据库由更新版本的 leadboard 升级过（迁移 {}）：请用那个版本迁移。",
            unknown.join("、")
        ));
    }
    let changed: Vec<String> = known
        .iter()
        .filter(|m| applied.get(&m.version).is_some_and(|sum| sum.as_slice() != &*m.checksum))
        .map(|m| format!("{:04}", m.version))
        .collect();
    if !changed.is_empty() {
        return refuse(format!("源数据库的迁移 {} 与这个版本的 leadboard 不同，无法迁移。", changed.join("、")));
    }
    Ok(())
}

/// The source's tables to copy, parents before the tables that refer to them.
async fn source_tables(source: &mut SqliteConnection) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut *source)
        .await
        .context("无法读取源数据库的表")?;
    let names: Vec<String> =
        names.into_iter().filter(|n| !n.starts_with("sqlite_") && !SKIPPED.contains(&n.as_str())).collect();
    let mut parents = BTreeMap::new();
    for name in &names {
        let refs: Vec<String> = sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)")
            .bind(name)
            .fetch_all(&mut *source)
            .await
            .with_context(|| format!("无法读取源表 {name} 的外键"))?;
        parents.insert(name.clone(), refs);
    }
    // Dependency order is for readability and for any check run without triggers off;
    // the copy itself runs with foreign-key triggers off, so a cycle is no obstacle.
    let mut order = Vec::with_capacity(names.len());
    let mut placed = BTreeSet::new();
    fn visit(
        name: &str,
        parents: &BTreeMap<String, Vec<String>>,
        placed: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
    ) {
        if placed.contains(name) || stack.iter().any(|s| s == name) {
            return;
        }
        stack.push(name.to_owned());
        for parent in parents.get(name).into_iter().flatten() {
            if parents.contains_key(parent) {
                visit(parent, parents, placed, stack, order);
            }
        }
        stack.pop();
        placed.insert(name.to_owned());
        order.push(name.to_owned());
    }
    for name in &names {
        visit(name, &parents, &mut placed, &mut Vec::new(), &mut order);
    }
    Ok(order)
}

/// The target's base tables (other than its migration history) that have rows, less
/// the rows the migrations seed themselves.
async fn filled_tables(target: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut *target)
    .await
    .context("无法读取目标数据库的表")?;
    let mut filled = Vec::new();
    for table in tables {
        if table == "_sqlx_migrations" || SEEDED.contains(&table.as_str()) {
            continue;
        }
        let has_rows: bool =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM {})", quote(&table))))
                .fetch_one(&mut *target)
                .await
                .with_context(|| format!("无法读取目标表 {table}"))?;
        if has_rows {
            filled.push(table);
        }
    }
    Ok(filled)
}

/// A row of `information_schema.columns`: table, column, data type, nullable, default,
/// identity, identity generation.
type ColumnRow = (String, String, String, bool, Option<String>, bool, Option<String>);

/// The target's base tables and their columns, in column order.
async fn target_columns(target: &mut PgConnection) -> anyhow::Result<BTreeMap<String, Vec<TargetColumn>>> {
    let rows: Vec<ColumnRow> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text = 'YES', \
                c.column_default::text, c.is_identity::text = 'YES', c.identity_generation::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&mut *target)
    .await
    .context("无法读取目标数据库的列")?;
    let mut tables: BTreeMap<String, Vec<TargetColumn>> = BTreeMap::new();
    for (table, name, data_type, nullable, default, identity, generation) in rows {
        let serial = default.as_deref().is_some_and(|d| d.starts_with("nextval("));
        tables.entry(table).or_default().push(TargetColumn {
            name,
            data_type,
            optional: nullable || default.is_some() || identity,
            sequence: identity || serial,
            always: identity && generation.as_deref() == Some("ALWAYS"),
        });
    }
    Ok(tables)
}

/// Matches each source table and column to the target's; refuses what has no home.
async fn plan(
    source: &mut SqliteConnection,
    tables: &[String],
    targets: &BTreeMap<String, Vec<TargetColumn>>,
) -> anyhow::Result<Vec<Plan>> {
    let mut plans = Vec::with_capacity(tables.len());
    for table in tables {
        let Some(target) = targets.get(table) else {
            return refuse(format!(
                "源表 {table} 在目标数据库中没有对应的表：这个版本的 PostgreSQL 结构不含它，未复制任何数据。"
            ));
        };
        let info: Vec<(String, i64)> = sqlx::query_as("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *source)
            .await
            .with_context(|| format!("无法读取源表 {table} 的列"))?;
        let mut columns = Vec::with_capacity(target.len());
        let mut primary: Vec<(i64, usize)> = Vec::new();
        for (name, pk) in &info {
            let Some(home) = target.iter().find(|c| &c.name == name) else {
                return refuse(format!("源表 {table} 的列 {name} 在目标数据库中没有对应的列，未复制任何数据。"));
            };
            if *pk > 0 {
                primary.push((*pk, columns.len()));
            }
            let kind = Kind::of(table, name, &home.data_type)?;
            columns.push(Column { source: quote(name), target: name.clone(), kind });
        }
        let mut rowid = None;
        for extra in target.iter().filter(|c| !info.iter().any(|(name, _)| name == &c.name)) {
            // SQLite's implicit rowid, which PostgreSQL has as a column (record_flags
            // are ordered by it): copied, so that the order survives.
            if extra.name == "rowid" && extra.data_type == "bigint" {
                rowid = Some(columns.len());
                columns.push(Column { source: "rowid".into(), target: extra.name.clone(), kind: Kind::Int });
            } else if !extra.optional {
                return refuse(format!(
                    "目标表 {table} 的列 {} 在源数据库中没有对应的列，且没有默认值，未复制任何数据。",
                    extra.name
                ));
            }
        }
        primary.sort();
        let key: Vec<usize> = match (primary.is_empty(), rowid) {
            (false, _) => primary.into_iter().map(|(_, i)| i).collect(),
            (true, Some(i)) => vec![i],
            (true, None) => (0..columns.len()).collect(),
        };
        let copied: BTreeSet<&str> = columns.iter().map(|c| c.target.as_str()).collect();
        let overriding = target.iter().any(|c| c.always && copied.contains(c.name.as_str()));
        let sequences = target.iter().filter(|c| c.sequence).map(|c| c.name.clone()).collect();
        plans.push(Plan { table: table.clone(), columns, key, overriding, sequences });
    }
    Ok(plans)
}

/// Reads one source value as the target column's kind wants it.
fn source_value(row: &SqliteRow, index: usize, plan: &Plan) -> anyhow::Result<Value> {
    let column = &plan.columns[index];
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    let value = match (type_name.as_str(), column.kind) {
        ("INTEGER", Kind::Int) => Value::Int(row.try_get(index)?),
        ("REAL", Kind::Real) => Value::Real(row.try_get(index)?),
        ("INTEGER", Kind::Real) => Value::Real(row.try_get::<i64, _>(index)? as f64),
        ("TEXT", Kind::Text) => Value::Text(row.try_get(index)?),
        ("BLOB", Kind::Bytes) => Value::Bytes(row.try_get(index)?),
        (found, kind) => anyhow::bail!(
            "表 {} 的列 {} 有一个 {found} 值，目标列的类型是 {kind:?}：无法复制",
            plan.table,
            column.target
        ),
    };
    Ok(value)
}

/// Reads one target value of a column's kind.
fn target_value(row: &PgRow, index: usize, kind: Kind) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        Kind::Int => row.try_get::<Option<i64>, _>(index)?.map_or(Value::Null, Value::Int),
        Kind::Real => row.try_get::<Option<f64>, _>(index)?.map_or(Value::Null, Value::Real),
        Kind::Text => row.try_get::<Option<String>, _>(index)?.map_or(Value::Null, Value::Text),
        Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(index)?.map_or(Value::Null, Value::Bytes),
    })
}

/// Copies one table in batches; returns its row count and checksum as read.
async fn copy_table(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    plan: &Plan,
) -> anyhow::Result<(u64, String)> {
    let selected: Vec<&str> = plan.columns.iter().map(|c| c.source.as_str()).collect();
    let order: Vec<&str> = plan.key.iter().map(|&i| plan.columns[i].source.as_str()).collect();
    let select = format!("SELECT {} FROM {} ORDER BY {}", selected.join(", "), quote(&plan.table), order.join(", "));
    let batch_rows = (60_000 / plan.columns.len().max(1)).clamp(1, BATCH_ROWS);
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *source);
    let mut hash = Sha256::new();
    let mut count = 0u64;
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(batch_rows);
    while let Some(row) = rows.try_next().await.with_context(|| format!("无法读取源表 {}", plan.table))? {
        let values =
            (0..plan.columns.len()).map(|i| source_value(&row, i, plan)).collect::<anyhow::Result<Vec<_>>>()?;
        values.iter().for_each(|v| feed(&mut hash, v));
        count += 1;
        batch.push(values);
        if batch.len() == batch_rows {
            insert(target, plan, &batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        insert(target, plan, &batch).await?;
    }
    Ok((count, hex::encode(hash.finalize())))
}

async fn insert(target: &mut PgConnection, plan: &Plan, batch: &[Vec<Value>]) -> anyhow::Result<()> {
    let names: Vec<String> = plan.columns.iter().map(|c| quote(&c.target)).collect();
    let mut sql = format!("INSERT INTO {} ({})", quote(&plan.table), names.join(", "));
    if plan.overriding {
        sql.push_str(" OVERRIDING SYSTEM VALUE");
    }
    sql.push_str(" VALUES ");
    let width = plan.columns.len();
    for row in 0..batch.len() {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            let _ = write!(sql, "{}${}", if column == 0 { "" } else { ", " }, row * width + column + 1);
        }
        sql.push(')');
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for values in batch {
        for (value, column) in values.iter().zip(&plan.columns) {
            // A NULL is bound with the column's type: PostgreSQL types every parameter.
            query = match (value, column.kind) {
                (Value::Null, Kind::Int) => query.bind(None::<i64>),
                (Value::Null, Kind::Real) => query.bind(None::<f64>),
                (Value::Null, Kind::Text) => query.bind(None::<String>),
                (Value::Null, Kind::Bytes) => query.bind(None::<Vec<u8>>),
                (Value::Int(v), _) => query.bind(*v),
                (Value::Real(v), _) => query.bind(*v),
                (Value::Text(v), _) => query.bind(v.clone()),
                (Value::Bytes(v), _) => query.bind(v.clone()),
            };
        }
    }
    query.execute(&mut *target).await.with_context(|| format!("无法写入目标表 {}", plan.table))?;
    Ok(())
}

/// The row count and checksum of a copied table as the target holds it, read in the
/// source's order.
async fn target_checksum(target: &mut PgConnection, plan: &Plan) -> anyhow::Result<(u64, String)> {
    let selected: Vec<String> = plan.columns.iter().map(|c| quote(&c.target)).collect();
    let order: Vec<String> = plan
        .key
        .iter()
        .map(|&i| {
            let column = &plan.columns[i];
            let collate = if column.kind == Kind::Text { " COLLATE \"C\"" } else { "" };
            format!("{}{collate} NULLS FIRST", quote(&column.target))
        })
        .collect();
    let select = format!("SELECT {} FROM {} ORDER BY {}", selected.join(", "), quote(&plan.table), order.join(", "));
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *target);
    let mut hash = Sha256::new();
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await.with_context(|| format!("无法读取目标表 {}", plan.table))? {
        for (i, column) in plan.columns.iter().enumerate() {
            feed(&mut hash, &target_value(&row, i, column.kind)?);
        }
        count += 1;
    }
    Ok((count, hex::encode(hash.finalize())))
}

/// Sets each sequence of a table to continue after the largest value copied.
async fn reset_sequences(target: &mut PgConnection, plan: &Plan) -> anyhow::Result<()> {
    for column in &plan.sequences {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max({}) FROM {}), 0) + 1, false)",
            quote(column),
            quote(&plan.table)
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(quote(&plan.table))
            .bind(column)
            .execute(&mut *target)
            .await
            .with_context(|| format!("无法重置表 {} 的序列 {column}", plan.table))?;
    }
    Ok(())
}

/// Display width: CJK characters take two columns.
fn width(text: &str) -> usize {
    text.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum()
}

fn pad(text: &str, to: usize) -> String {
    format!("{text}{}", " ".repeat(to.saturating_sub(width(text))))
}

/// The verification table: counts and checksums (their first 16 hex digits) per table.
fn print_tallies(tallies: &[Tally]) {
    let headings = ["表", "源行数", "目标行数", "源校验和 (SHA-256)", "目标校验和 (SHA-256)", "结果"];
    let rows: Vec<[String; 6]> = tallies
        .iter()
        .map(|t| {
            [
                t.table.clone(),
                t.source_rows.to_string(),
                t.target_rows.to_string(),
                t.source_sum[..16.min(t.source_sum.len())].to_owned(),
                t.target_sum[..16.min(t.target_sum.len())].to_owned(),
                if t.matches() { "一致".to_owned() } else { "不一致".to_owned() },
            ]
        })
        .collect();
    let mut widths = headings.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| pad(c, w)).collect();
        crate::cli::line(padded.join("  ").trim_end());
    };
    line(headings.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(values: &[Value]) -> String {
        let mut hash = Sha256::new();
        values.iter().for_each(|v| feed(&mut hash, v));
        hex::encode(hash.finalize())
    }

    #[test]
    fn null_empty_text_zero_and_empty_bytes_checksum_apart() {
        let sums: BTreeSet<String> = [Value::Null, Value::Text(String::new()), Value::Int(0), Value::Bytes(Vec::new())]
            .into_iter()
            .map(|v| sum(&[v]))
            .collect();
        assert_eq!(sums.len(), 4);
    }

    #[test]
    fn values_do_not_run_into_each_other() {
        let split = sum(&[Value::Text("ab".into()), Value::Text("c".into())]);
        let joined = sum(&[Value::Text("a".into()), Value::Text("bc".into())]);
        assert_ne!(split, joined);
        assert_ne!(sum(&[Value::Int(12)]), sum(&[Value::Text("12".into())]));
    }

    #[test]
    fn identifiers_are_quoted_with_their_quotes_doubled() {
        assert_eq!(quote("records"), "\"records\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn a_password_is_not_shown() {
        assert_eq!(shown("postgres://lb:secret@db/leadboard"), "postgres://lb:***@db/leadboard");
        assert_eq!(shown("postgres://lb@db/leadboard"), "postgres://lb@db/leadboard");
    }

    #[test]
    fn chinese_headings_take_two_columns_each() {
        assert_eq!(width("源行数"), 6);
        assert_eq!(pad("表", 4), "表  ");
    }
}
