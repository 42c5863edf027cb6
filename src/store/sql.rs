//! One set of SQL for both engines. A statement is written once, with SQLite's `?`
//! placeholders, and run through sqlx's native driver for the connection at hand:
//! SQLite's as written, PostgreSQL's with the placeholders numbered (`$1`, `$2`, …).
//! Where the engines' SQL differs, a statement names its PostgreSQL text beside
//! ([`Query::postgres`]). Values are bound once, as [`Arg`]s, and each row is decoded by

//!
//! Code takes a connection as `&mut Conn` (a `dyn` [`DbConn`]): an SQLite or PostgreSQL
//! connection, a pooled one, or a transaction of either, so that a store function can be
//! handed `&mut tx` or `&mut *conn` as before. ARCHITECTURE.md says why this and not
//! sqlx's `Any` driver.

use crate::store::direct::{DirectConn, DirectTx, FromDirect};
use crate::store::types::Coded;
use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query as SqlxQuery, QueryAs, QueryScalar};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{
    AssertSqlSafe, Decode, FromRow, PgConnection, PgPool, Postgres, SqlSafeStr, SqlStr, Sqlite, SqliteConnection,
    SqlitePool, Transaction, Type,
};
use std::borrow::Cow;
use std::marker::PhantomData;
use tokio::sync::OwnedMutexGuard;

/// The two engines the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection of either engine, borrowed for one statement: through sqlx, or the
/// group-commit writer's own SQLite connection ([`DirectConn`]).
pub enum Raw<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
    Direct(&'a mut DirectConn),
}

/// Anything a statement can run on inside a transaction or on one connection.
pub trait DbConn: Send {
    fn raw(&mut self) -> Raw<'_>;

    fn engine(&mut self) -> Engine {
        match self.raw() {
            Raw::Sqlite(_) | Raw::Direct(_) => Engine::Sqlite,
            Raw::Postgres(_) => Engine::Postgres,
        }
    }
}

/// A connection, as store functions take it.
pub type Conn = dyn DbConn;

impl DbConn for SqliteConnection {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Sqlite(self)
    }
}

impl DbConn for PgConnection {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Postgres(self)
    }
}

impl DbConn for DirectConn {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Direct(self)
    }
}

impl DbConn for Transaction<'_, Sqlite> {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Sqlite(self)
    }
}

impl DbConn for Transaction<'_, Postgres> {
    fn raw(&mut self) -> Raw<'_> {
        Raw::Postgres(self)
    }
}

/// A savepoint on `conn` (a transaction, if `conn` is not in one).
pub async fn savepoint(conn: &mut Conn) -> Result<Tx<'_>, sqlx::Error> {
    use sqlx::Connection;
    Ok(Tx::ungated(match conn.raw() {
        Raw::Sqlite(c) => Inner::Sqlite(c.begin().await?),
        Raw::Postgres(c) => Inner::Postgres(c.begin().await?),
        Raw::Direct(c) => Inner::Direct(c.begin()?),
    }))
}

/// A connection taken from a [`Pool`]; it goes back when dropped.
pub enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl DbConn for Pooled {
    fn raw(&mut self) -> Raw<'_> {
        match self {
            Pooled::Sqlite(c) => Raw::Sqlite(c),
            Pooled::Postgres(c) => Raw::Postgres(c),
        }
    }
}

/// A transaction (or a savepoint inside one) of either engine: rolled back when
/// dropped without [`Tx::commit`]. A write transaction on SQLite also holds the
/// database's write turn ([`crate::store::Db::begin`]) until it ends.
pub struct Tx<'c> {
    inner: Inner<'c>,
    /// Dropped after `inner`, so the turn passes once the transaction has ended.
    _turn: Option<OwnedMutexGuard<()>>,
}

enum Inner<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
    Direct(DirectTx<'c>),
}

impl<'c> Tx<'c> {
    fn ungated(inner: Inner<'c>) -> Tx<'c> {
        Tx { inner, _turn: None }
    }

    /// An SQLite write transaction through sqlx, holding `turn`.
    pub(crate) fn sqlite(tx: Transaction<'c, Sqlite>, turn: OwnedMutexGuard<()>) -> Tx<'c> {
        Tx { inner: Inner::Sqlite(tx), _turn: Some(turn) }
    }

    /// A write transaction on the writer's own connection, holding `turn`.
    pub(crate) fn direct(tx: DirectTx<'c>, turn: OwnedMutexGuard<()>) -> Tx<'c> {
        Tx { inner: Inner::Direct(tx), _turn: Some(turn) }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(t) => t.commit().await,
            Inner::Postgres(t) => t.commit().await,
            Inner::Direct(t) => t.commit(),
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(t) => t.rollback().await,
            Inner::Postgres(t) => t.rollback().await,
            Inner::Direct(t) => t.rollback(),
        }
    }

    /// A savepoint inside this transaction.
    pub async fn begin(&mut self) -> Result<Tx<'_>, sqlx::Error> {
        use sqlx::Connection;
        Ok(Tx::ungated(match &mut self.inner {
            Inner::Sqlite(t) => Inner::Sqlite(t.begin().await?),
            Inner::Postgres(t) => Inner::Postgres(t.begin().await?),
            Inner::Direct(t) => Inner::Direct(t.begin()?),
        }))
    }
}

/// `&mut *tx` is the transaction's connection, as with sqlx's own transactions.
impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match &self.inner {
            Inner::Sqlite(t) => &**t,
            Inner::Postgres(t) => &**t,
            Inner::Direct(t) => &**t,
        }
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match &mut self.inner {
            Inner::Sqlite(t) => &mut **t,
            Inner::Postgres(t) => &mut **t,
            Inner::Direct(t) => &mut **t,
        }
    }
}

impl DbConn for Tx<'_> {
    fn raw(&mut self) -> Raw<'_> {
        match &mut self.inner {
            Inner::Sqlite(t) => Raw::Sqlite(t),
            Inner::Postgres(t) => Raw::Postgres(t),
            Inner::Direct(t) => Raw::Direct(t),
        }
    }
}

/// A pool of connections of either engine.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub async fn acquire(&self) -> Result<Pooled, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Pooled::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => Pooled::Postgres(p.acquire().await?),
        })
    }

    /// A transaction (`BEGIN`).
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(Tx::ungated(match self {
            Pool::Sqlite(p) => Inner::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Inner::Postgres(p.begin().await?),
        }))
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        match self {
            Pool::Sqlite(p) => p.options().get_max_connections(),
            Pool::Postgres(p) => p.options().get_max_connections(),
        }
    }
}

/// Where a statement runs: a connection (of any kind) or a pool.
pub enum On<'e> {
    Conn(Raw<'e>),
    Sqlite(&'e SqlitePool),
    Postgres(&'e PgPool),
}

/// What a statement can be run on: `&mut` any [`DbConn`], or `&`[`Pool`].
pub trait Executor<'e> {
    fn on(self) -> On<'e>;
}

impl<'e, C: DbConn + ?Sized> Executor<'e> for &'e mut C {
    fn on(self) -> On<'e> {
        On::Conn(self.raw())
    }
}

impl<'e> Executor<'e> for &'e Pool {
    fn on(self) -> On<'e> {
        match self {
            Pool::Sqlite(p) => On::Sqlite(p),
            Pool::Postgres(p) => On::Postgres(p),
        }
    }
}

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// A NULL of the given kind (PostgreSQL types every parameter).
    Null(Kind),
}

/// The kind of a NULL.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int,
    Text,
    Bytes,
}

/// Binds an [`Arg`] to a query of either driver.
macro_rules! bind_arg {
    ($q:expr, $arg:expr) => {
        match $arg {
            Arg::Int(v) => $q.bind(v),
            Arg::Text(v) => $q.bind(v),
            Arg::Bytes(v) => $q.bind(v),
            Arg::Null(Kind::Int) => $q.bind(None::<i64>),
            Arg::Null(Kind::Text) => $q.bind(None::<String>),
            Arg::Null(Kind::Bytes) => $q.bind(None::<Vec<u8>>),
        }
    };
}

/// A value that can be bound to a statement.
pub trait Bind {
    const KIND: Kind;
    fn arg(self) -> Arg;
}

macro_rules! bind_int {
    ($($t:ty),*) => {$(
        impl Bind for $t {
            const KIND: Kind = Kind::Int;
            fn arg(self) -> Arg {
                Arg::Int(i64::from(self))
            }
        }
    )*};
}
bind_int!(i64, i32, u32, i16, u8);

impl Bind for &i64 {
    const KIND: Kind = Kind::Int;
    fn arg(self) -> Arg {
        Arg::Int(*self)
    }
}

/// A flag is stored as 0 or 1 on both engines (an INTEGER column on SQLite, BIGINT on
/// PostgreSQL), so that SQLite's partial indexes on `x = 1` keep serving the same SQL.
impl Bind for bool {
    const KIND: Kind = Kind::Int;
    fn arg(self) -> Arg {
        Arg::Int(i64::from(self))
    }
}

impl Bind for &str {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        Arg::Text(self.to_owned())
    }
}

impl Bind for &String {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        Arg::Text(self.to_owned())
    }
}

impl Bind for String {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        Arg::Text(self)
    }
}

impl Bind for &[u8] {
    const KIND: Kind = Kind::Bytes;
    fn arg(self) -> Arg {
        Arg::Bytes(self.to_owned())
    }
}

impl Bind for Vec<u8> {
    const KIND: Kind = Kind::Bytes;
    fn arg(self) -> Arg {
        Arg::Bytes(self)
    }
}

impl<T: Coded> Bind for T {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        Arg::Text(self.code().to_owned())
    }
}

impl<T: Bind> Bind for Option<T> {
    const KIND: Kind = T::KIND;
    fn arg(self) -> Arg {
        self.map_or(Arg::Null(T::KIND), Bind::arg)
    }
}

impl Bind for &Option<String> {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        self.as_deref().arg()
    }
}

impl Bind for Cow<'_, str> {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg {
        Arg::Text(self.into_owned())
    }
}

/// The statement's text, numbered for PostgreSQL.
struct Text {
    sqlite: SqlStr,
    postgres: Option<SqlStr>,
    /// Parameterless statements sent with this one ([`Query::preceded_by`],
    /// [`Query::followed_by`]).
    before: Option<&'static str>,
    after: Option<&'static str>,
}

impl Text {
    /// On SQLite the statements sent with this one are one text: sqlx runs every
    /// statement of a text in one call to the connection's thread, binding the
    /// arguments in order across them.
    fn for_sqlite(&self) -> SqlStr {
        match (self.before, self.after) {
            (None, None) => self.sqlite.clone(),
            (before, after) => {
                let mut text = String::with_capacity(self.sqlite.as_str().len() + 64);
                for part in [before, Some(self.sqlite.as_str()), after].into_iter().flatten() {
                    text.push_str(part);
                    text.push_str(";\n");
                }
                AssertSqlSafe(text).into_sql_str()
            }
        }
    }

    fn sent_with_others(&self) -> bool {
        self.before.is_some() || self.after.is_some()
    }

    fn for_postgres(&self) -> SqlStr {
        match &self.postgres {
            Some(sql) => number_placeholders(sql.as_str()),
            None => number_placeholders(self.sqlite.as_str()),
        }
    }
}

/// `sql` for PostgreSQL: each placeholder outside quotes numbered as SQLite numbers it
/// (`?NNN` is parameter NNN; a bare `?` is one more than the largest number so far),
/// and SQLite's planner hints dropped: `INDEXED BY <index>`, and `CROSS JOIN` (with its
/// `ON`, which PostgreSQL refuses) made a plain `JOIN`.
fn number_placeholders(sql: &str) -> SqlStr {
    if !sql.contains('?') && !sql.contains("INDEXED BY") && !sql.contains("CROSS JOIN") {
        return AssertSqlSafe(sql.to_owned()).into_sql_str();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut quote = None;
    let mut largest = 0u32;
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if q == c => quote = None,
            (None, '?') => {
                let digits: String =
                    std::iter::from_fn(|| chars.next_if(|(_, d)| d.is_ascii_digit()).map(|(_, d)| d)).collect();
                let n = digits.parse().unwrap_or(largest + 1);
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            // SQLite's join-order hint; PostgreSQL has no `CROSS JOIN … ON`.
            (None, 'C') if sql[at..].starts_with("CROSS JOIN ") => {
                out.push_str("JOIN ");
                while chars.next_if(|(i, _)| *i < at + "CROSS JOIN ".len()).is_some() {}
                continue;
            }
            (None, 'I') if sql[at..].starts_with("INDEXED BY ") => {
                let rest = &sql[at + "INDEXED BY ".len()..];
                let name = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                let skip = "INDEXED BY ".len() + name;
                while chars.next_if(|(i, _)| *i < at + skip).is_some() {}
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    AssertSqlSafe(out).into_sql_str()
}

/// A statement and its bound values; `O` is what a row decodes to.
pub struct Query<O, M> {
    text: Text,
    args: Vec<Arg>,
    _out: PhantomData<fn() -> (O, M)>,
}

/// Rows as structs or tuples (`FromRow`).
pub struct AsRows;
/// The first column of each row.
pub struct AsScalar;

/// A statement whose rows are not read.
pub fn query(sql: impl SqlSafeStr) -> Query<(), ()> {
    new(sql)
}

/// A statement whose rows decode to `O` (a `FromRow` struct or a tuple).
pub fn query_as<O>(sql: impl SqlSafeStr) -> Query<O, AsRows> {
    new(sql)
}

/// A statement whose rows' first column decodes to `O`.
pub fn query_scalar<O>(sql: impl SqlSafeStr) -> Query<O, AsScalar> {
    new(sql)
}

fn new<O, M>(sql: impl SqlSafeStr) -> Query<O, M> {
    let text = Text { sqlite: sql.into_sql_str(), postgres: None, before: None, after: None };
    Query { text, args: Vec::new(), _out: PhantomData }
}

/// Statements whose rows are not read, run in turn in one call: on SQLite through sqlx
/// as one text (one round trip to the connection's thread; sqlx binds the arguments in
/// order across the statements), on PostgreSQL and on a [`DirectConn`] one after another. Each statement numbers its
/// placeholders with bare `?` only (a `?NNN` would name another statement's argument).
/// When one fails, those before it have run and those after it have not.
#[derive(Default)]
pub struct Batch {
    statements: Vec<Query<(), ()>>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, statement: Query<(), ()>) {
        let numbered =
            statement.text.sqlite.as_str().as_bytes().windows(2).any(|w| w[0] == b'?' && w[1].is_ascii_digit());
        debug_assert!(
            !numbered && !statement.text.sent_with_others(),
            "a batched statement has bare placeholders only and nothing sent with it"
        );
        self.statements.push(statement);
    }

    /// Runs the statements on `conn`; the rows they changed, all together.
    pub async fn execute(self, conn: &mut Conn) -> Result<Done, sqlx::Error> {
        let mut statements = self.statements.into_iter();
        let Some(first) = statements.next() else { return Ok(Done { rows: 0 }) };
        if !matches!(conn.raw(), Raw::Sqlite(_)) {
            let mut rows = first.execute(&mut *conn).await?.rows;
            for statement in statements {
                rows += statement.execute(&mut *conn).await?.rows;
            }
            return Ok(Done { rows });
        }
        let (mut text, mut args) = (first.text.sqlite.as_str().to_owned(), first.args);
        for statement in statements {
            text.push_str(";\n");
            text.push_str(statement.text.sqlite.as_str());
            args.extend(statement.args);
        }
        let combined = Query::<(), ()> { args, ..query(AssertSqlSafe(text)) };
        combined.execute(conn).await
    }
}

/// What a statement that returns no rows did.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    rows: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows
    }
}

impl<O: 'static, M: 'static> Query<O, M> {
    pub fn bind(mut self, value: impl Bind) -> Self {
        self.args.push(value.arg());
        self
    }

    /// The statement's text on PostgreSQL, where it differs from SQLite's (still with
    /// `?` placeholders).
    pub fn postgres(mut self, sql: impl SqlSafeStr) -> Self {
        self.text.postgres = Some(sql.into_sql_str());
        self
    }

    /// Runs the statement, reading no rows.
    pub fn execute<'e>(self, on: impl Executor<'e>) -> BoxFuture<'e, Result<Done, sqlx::Error>> {
        let on = on.on();
        Box::pin(async move {
            let rows = match on {
                On::Conn(Raw::Direct(c)) => c.execute(self.text.sqlite.as_str(), self.args)?,
                On::Conn(Raw::Sqlite(c)) => self.sqlite_query().execute(c).await?.rows_affected(),
                On::Sqlite(p) => self.sqlite_query().execute(p).await?.rows_affected(),
                On::Conn(Raw::Postgres(c)) => self.pg_query().execute(c).await?.rows_affected(),
                On::Postgres(p) => self.pg_query().execute(p).await?.rows_affected(),
            };
            Ok(Done { rows })
        })
    }

    fn sqlite_query(self) -> SqlxQuery<'static, Sqlite, SqliteArguments> {
        let mut q = sqlx::query(self.text.for_sqlite());
        for arg in self.args {
            q = bind_arg!(q, arg);
        }
        q
    }

    fn pg_query(self) -> SqlxQuery<'static, Postgres, PgArguments> {
        let mut q = sqlx::query(self.text.for_postgres());
        for arg in self.args {
            q = bind_arg!(q, arg);
        }
        q
    }
}

/// Decodes a row of either engine, and of a [`DirectConn`].
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + FromDirect + Send + Unpin {}
impl<T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + FromDirect + Send + Unpin> Row for T {}

/// Decodes a value of either engine, and of a [`DirectConn`].
pub trait Value:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + rusqlite::types::FromSql
    + Send
    + Unpin
{
}
impl<T> Value for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + rusqlite::types::FromSql
        + Send
        + Unpin
{
}

macro_rules! fetchers {
    ($mode:ty, $bound:ident, $make:ident, $decode:expr) => {
        impl<O: $bound + 'static> Query<O, $mode> {
            /// Sends the parameterless statement `sql` (one that returns no rows, such as
            /// `SAVEPOINT x`) just before this one: on SQLite in the same call to the
            /// connection's thread, saving a round trip between threads; on PostgreSQL as
            /// a statement of its own, first. Only on a connection, not a pool. When this
            /// statement fails, `sql` has run; when `sql` fails, this one has not. (Only
            /// for statements whose rows are read: SQLite's count of changed rows would
            /// count the other statements' too.)
            pub fn preceded_by(mut self, sql: &'static str) -> Self {
                self.text.before = Some(sql);
                self
            }

            /// Sends the parameterless statement `sql` (one that returns no rows, such as
            /// `RELEASE x`) just after this one, as [`Query::preceded_by`] does before
            /// it; it runs only if this statement succeeded, after all its rows are read.
            pub fn followed_by(mut self, sql: &'static str) -> Self {
                self.text.after = Some(sql);
                self
            }

            pub fn fetch_one<'e>(self, on: impl Executor<'e>) -> BoxFuture<'e, Result<O, sqlx::Error>> {
                fetch!(self, on, $make, $decode, fetch_one, true, |rows: Vec<O>| rows
                    .into_iter()
                    .next()
                    .ok_or(sqlx::Error::RowNotFound))
            }

            pub fn fetch_optional<'e>(self, on: impl Executor<'e>) -> BoxFuture<'e, Result<Option<O>, sqlx::Error>> {
                fetch!(self, on, $make, $decode, fetch_optional, true, |rows: Vec<O>| Ok(rows.into_iter().next()))
            }

            pub fn fetch_all<'e>(self, on: impl Executor<'e>) -> BoxFuture<'e, Result<Vec<O>, sqlx::Error>> {
                fetch!(self, on, $make, $decode, fetch_all, false, Ok)
            }
        }
    };
}

/// `$how` reads the rows of a statement run alone; `$pick` takes what `$how` returns
/// from all the rows, for a statement sent with others on SQLite (where reading only
/// the first row would stop the call before the statements after it). On a
/// [`DirectConn`] the rows decode with `$decode`, only the first if `$first`.
macro_rules! fetch {
    ($self:ident, $on:ident, $make:ident, $decode:expr, $how:ident, $first:expr, $pick:expr) => {{
        let Query { text, args, .. } = $self;
        let on = $on.on();
        Box::pin(async move {
            let (before, after) = (text.before, text.after);
            match on {
                On::Conn(Raw::Direct(c)) => {
                    if let Some(sql) = before {
                        c.statements(sql)?;
                    }
                    let rows = c.fetch(text.sqlite.as_str(), args, $first, $decode)?;
                    if let Some(sql) = after {
                        c.statements(sql)?;
                    }
                    $pick(rows)
                }
                On::Conn(Raw::Sqlite(c)) if text.sent_with_others() => {
                    $pick($make!(sqlite, text, args).fetch_all(c).await?)
                }
                On::Conn(Raw::Sqlite(c)) => $make!(sqlite, text, args).$how(c).await,
                On::Conn(Raw::Postgres(c)) => {
                    run_raw(c, before).await?;
                    let out = $make!(pg, text, args).$how(&mut *c).await?;
                    run_raw(c, after).await?;
                    Ok(out)
                }
                _ if text.sent_with_others() => Err(not_on_a_pool()),
                On::Sqlite(p) => $make!(sqlite, text, args).$how(p).await,
                On::Postgres(p) => $make!(pg, text, args).$how(p).await,
            }
        })
    }};
}

/// A statement sent beside another, on PostgreSQL (simple protocol: no parameters).
async fn run_raw(c: &mut PgConnection, sql: Option<&'static str>) -> Result<(), sqlx::Error> {
    if let Some(sql) = sql {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(c).await?;
    }
    Ok(())
}

/// Runs `sql`, one or more parameterless statements (such as `ROLLBACK TO x; RELEASE x`),
/// in one call, reading no rows.
pub async fn statements(conn: &mut Conn, sql: &'static str) -> Result<(), sqlx::Error> {
    match conn.raw() {
        Raw::Sqlite(c) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(c).await.map(drop),
        Raw::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(c).await.map(drop),
        Raw::Direct(c) => c.statements(sql),
    }
}

fn not_on_a_pool() -> sqlx::Error {
    sqlx::Error::Protocol("statements sent together need one connection, not a pool".into())
}

macro_rules! rows {
    (sqlite, $text:ident, $args:ident) => {{
        let mut q: QueryAs<'static, Sqlite, O, SqliteArguments> = sqlx::query_as($text.for_sqlite());
        for arg in $args {
            q = bind_arg!(q, arg);
        }
        q
    }};
    (pg, $text:ident, $args:ident) => {{
        let mut q: QueryAs<'static, Postgres, O, PgArguments> = sqlx::query_as($text.for_postgres());
        for arg in $args {
            q = bind_arg!(q, arg);
        }
        q
    }};
}

macro_rules! scalars {
    (sqlite, $text:ident, $args:ident) => {{
        let mut q: QueryScalar<'static, Sqlite, O, SqliteArguments> = sqlx::query_scalar($text.for_sqlite());
        for arg in $args {
            q = bind_arg!(q, arg);
        }
        q
    }};
    (pg, $text:ident, $args:ident) => {{
        let mut q: QueryScalar<'static, Postgres, O, PgArguments> = sqlx::query_scalar($text.for_postgres());
        for arg in $args {
            q = bind_arg!(q, arg);
        }
        q
    }};
}

fetchers!(AsRows, Row, rows, FromDirect::from_direct);
fetchers!(AsScalar, Value, scalars, |row: &rusqlite::Row<'_>| row.get(0));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        let sql = number_placeholders("SELECT '?', \"a?\" FROM t WHERE a = ? AND b IN (?, ?)");
        assert_eq!(sql.as_str(), "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(number_placeholders("SELECT 1").as_str(), "SELECT 1");
        let numbered = number_placeholders("SELECT ?2, ?1 WHERE x = ? AND y = ?10 AND z = ?");
        assert_eq!(numbered.as_str(), "SELECT $2, $1 WHERE x = $3 AND y = $10 AND z = $11");
    }

    /// sqlx deprecates several statements in one text with parameters (only its SQLite
    /// driver runs them): this pins that they all run, in order, with the arguments
    /// bound across them, and that a failing statement stops the ones after it.
    #[tokio::test]
    async fn statements_sent_together_all_run_and_a_failure_stops_the_rest() {
        let (db, _dir) = crate::store::testing::test_db().await;
        let mut tx = db.begin().await.unwrap();
        query("CREATE TABLE t (a BIGINT UNIQUE)").execute(&mut tx).await.unwrap();
        let got: Option<i64> = query_scalar("INSERT INTO t (a) VALUES (?) RETURNING a")
            .preceded_by("SAVEPOINT s")
            .followed_by("RELEASE s")
            .bind(7)
            .fetch_optional(&mut tx)
            .await
            .unwrap();
        assert_eq!(got, Some(7));
        // The savepoint was opened and released: another of that name nests no deeper.
        statements(&mut tx, "SAVEPOINT s; INSERT INTO t (a) VALUES (8); ROLLBACK TO s; RELEASE s").await.unwrap();
        let refused = query_scalar::<i64>("INSERT INTO t (a) VALUES (?) RETURNING a")
            .preceded_by("SAVEPOINT s")
            .followed_by("RELEASE s")
            .bind(7)
            .fetch_one(&mut tx)
            .await;
        assert!(refused.is_err(), "a duplicate");
        // The savepoint opened before the failure is still open: RELEASE was not run.
        statements(&mut tx, "ROLLBACK TO s; RELEASE s").await.unwrap();
        let rows: Vec<i64> = query_scalar("SELECT a FROM t ORDER BY a").fetch_all(&mut tx).await.unwrap();
        assert_eq!(rows, [7]);
        tx.commit().await.unwrap();
        let on_a_pool = query_scalar::<i64>("SELECT 1").preceded_by("SAVEPOINT s").fetch_one(db.reader()).await;
        assert!(on_a_pool.is_err(), "statements sent together need one connection");
    }

    #[tokio::test]
    async fn a_batch_binds_each_statements_arguments_and_stops_at_a_failure() {
        let (db, _dir) = crate::store::testing::test_db().await;
        let mut tx = db.begin().await.unwrap();
        query("CREATE TABLE t (a BIGINT UNIQUE, b TEXT)").execute(&mut tx).await.unwrap();
        let mut batch = Batch::new();
        batch.push(query("INSERT INTO t (a, b) VALUES (?, ?)").bind(1).bind("one"));
        batch.push(query("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)").bind(2).bind("two").bind(3).bind("three"));
        assert_eq!(batch.execute(&mut tx).await.unwrap().rows_affected(), 3);
        assert_eq!(Batch::new().execute(&mut tx).await.unwrap().rows_affected(), 0);
        let rows: Vec<(i64, String)> = query_as("SELECT a, b FROM t ORDER BY a").fetch_all(&mut tx).await.unwrap();
        assert_eq!(rows, [(1, "one".into()), (2, "two".into()), (3, "three".into())]);

        statements(&mut tx, "SAVEPOINT s").await.unwrap();
        let mut failing = Batch::new();
        failing.push(query("INSERT INTO t (a, b) VALUES (?, ?)").bind(4).bind("four"));
        failing.push(query("INSERT INTO t (a, b) VALUES (?, ?)").bind(1).bind("again"));
        failing.push(query("INSERT INTO t (a, b) VALUES (?, ?)").bind(5).bind("five"));
        assert!(failing.execute(&mut tx).await.is_err(), "a duplicate");
        // (On PostgreSQL the failure aborted everything since the savepoint: nothing can
        // be read until it is rolled back.)
        if tx.engine() == Engine::Sqlite {
            let after: Vec<i64> = query_scalar("SELECT a FROM t WHERE a > 3").fetch_all(&mut tx).await.unwrap();
            assert_eq!(after, [4], "the statement before the failure ran, the one after did not");
        }
        statements(&mut tx, "ROLLBACK TO s; RELEASE s").await.unwrap();
        let count: i64 = query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut tx).await.unwrap();
        assert_eq!(count, 3);
    }

    #[test]
    fn index_hints_are_dropped_for_postgres() {
        let sql =
            number_placeholders("FROM records r INDEXED BY records_decided\n CROSS JOIN x ON x.a = r.a WHERE r.id = ?");
        assert_eq!(sql.as_str(), "FROM records r \n JOIN x ON x.a = r.a WHERE r.id = $1");
    }
}
