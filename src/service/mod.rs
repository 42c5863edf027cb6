//! The operations of the programme — report, confirm, reject, void, restore, join a
//! team, finalise a contest, settle a month, and the jobs' work — shared by every entry
//! point: chat commands, card presses, scheduled jobs, the command line (and the web
//! console). Each operation takes a [`Ctx`] (who acts, and when), a connection inside
//! the caller's transaction, and typed arguments; it checks permission through the one
//! table in [`access`], appends to the event log, and queues what must be sent. So a
//! button and a typed command cannot behave differently.

pub mod access;
pub mod audit;
pub mod board;
pub mod cards;
pub mod channels;
pub mod contest;
pub mod correct;
pub mod decide;
pub mod directory;
pub mod finalise;
pub mod leaderboard;
pub mod mine;
pub mod onjob;
pub mod reload;
pub mod reminders;
pub mod report;
pub mod review;
pub mod sessions;
pub mod settlement;
pub mod sheet;

use crate::clock::TZ;
use crate::config::Settings;
pub use crate::store::Conn;
use crate::store::Tx;
use crate::store::directory::{self as people, Person};
use crate::store::outbox;
use crate::wecom::message;
use access::Operation;
use chrono::{DateTime, NaiveDate, Utc};

/// Who acts.
#[derive(Debug, Clone)]
pub enum Actor {
    /// Someone in the directory (active: entry points refuse anyone else first).
    Person(Person),
    /// The service itself: scheduled jobs, startup.
    System,
}

/// What an operation needs to know about the moment and the actor.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub now: DateTime<Utc>,
    pub actor: Actor,
}

impl<'a> Ctx<'a> {
    pub fn person(settings: &'a Settings, now: DateTime<Utc>, person: Person) -> Self {
        Ctx { settings, now, actor: Actor::Person(person) }
    }

    pub fn system(settings: &'a Settings, now: DateTime<Utc>) -> Self {
        Ctx { settings, now, actor: Actor::System }
    }

    pub fn now_ms(&self) -> i64 {
        self.now.timestamp_millis()
    }

    /// Today in Asia/Shanghai.
    pub fn today(&self) -> NaiveDate {
        self.now.with_timezone(&TZ).date_naive()
    }

    /// The actor's userid, or `system`, as the event log records it.
    pub fn actor_id(&self) -> &str {
        match &self.actor {
            Actor::Person(p) => &p.userid,
            Actor::System => "system",
        }
    }

    /// The person acting, if they may do `op` (the permission table in [`access`]).
    pub fn authorize(&self, op: Operation) -> Result<&Person, ServiceError> {
        match &self.actor {
            Actor::Person(p) if access::allows(self.settings, p, op) => Ok(p),
            Actor::Person(_) => Err(ServiceError::Forbidden(op)),
            Actor::System => Err(ServiceError::Refused(format!("「{}」须由人操作。", op.label()))),
        }
    }

    /// Queues a text message to people (sent after the transaction commits).
    pub async fn notify(&self, conn: &mut Conn, users: &[&str], text: &str) -> Result<(), sqlx::Error> {
        queue_text(conn, self.settings, self.now_ms(), users, text).await
    }
}

/// Queues a text message to people, split to fit WeCom's limit.
pub async fn queue_text(
    conn: &mut Conn,
    settings: &Settings,
    now_ms: i64,
    users: &[&str],
    text: &str,
) -> Result<(), sqlx::Error> {
    for m in message::text(settings.wecom.agent_id, users, text) {
        outbox::enqueue(conn, now_ms, &m).await?;
    }
    Ok(())
}

/// Why an operation did not happen: the actor may not do it, it was refused with a
/// precise message for them, or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("「{}」仅限{}使用。", .0.label(), .0.role().label())]
    Forbidden(Operation),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What an operation answers its actor, or why it did not happen.
pub type Outcome<T = String> = Result<T, ServiceError>;

/// Refuses with a message for the actor.
pub fn refuse<T>(message: impl Into<String>) -> Outcome<T> {
    Err(ServiceError::Refused(message.into()))
}

/// Runs an operation inside a savepoint of the caller's transaction: when it refuses,
/// nothing it wrote remains. `atomically!(conn, async |c| body)`: `body` (an
/// `Outcome`) runs with `c` the savepoint. A macro, not a function taking an async
/// closure: the compiler cannot show an async closure over `&mut Conn` to be `Send`
/// for every lifetime, which the spawned callback batch and axum's handlers need.
macro_rules! atomically {
    ($conn:expr, async |$c:ident| $body:expr) => {
        match $crate::store::sql::savepoint($conn).await {
            Err(e) => Err($crate::service::ServiceError::Db(e)),
            Ok(mut savepoint) => {
                let outcome = async {
                    let $c: &mut $crate::store::Conn = &mut *savepoint;
                    $body
                }
                .await;
                $crate::service::settle(savepoint, outcome).await
            }
        }
    };
}
pub(crate) use atomically;

/// Ends an [`atomically!`] savepoint: released when the operation succeeded, rolled
/// back when it refused (a database error rolls back the whole transaction).
pub async fn settle<T>(savepoint: Tx<'_>, outcome: Outcome<T>) -> Outcome<T> {
    match outcome {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(ServiceError::Db(e)) => Err(ServiceError::Db(e)),
        Err(refused) => {
            savepoint.rollback().await?;
            Err(refused)
        }
    }
}

/// Who a userid is to the programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Active(Person),
    /// In the directory, but deactivated (left the company, or outside the app's reach).
    Departed,
    Unknown,
}

/// Looks a userid up in the directory.
pub async fn identify(conn: &mut Conn, userid: &str) -> Result<Identity, sqlx::Error> {
    Ok(match people::find(conn, userid).await? {
        Some(person) if person.active => Identity::Active(person),
        Some(_) => Identity::Departed,
        None => Identity::Unknown,
    })
}
