//! Chat commands: the table, the parser, and one module per command. The dispatcher
//! checks who is asking and what they may do, once; commands only do their work.
//! A command runs inside a savepoint: when it refuses, nothing it wrote remains.

pub mod audit;
pub mod cards;
pub mod contest;
pub mod decide;
pub mod help;
pub mod mine;
pub mod parse;
pub mod report;
pub mod settle;
pub mod table;

#[cfg(test)]
mod parse_tests;

use crate::clock::TZ;
use crate::config::Settings;
use crate::store::directory::{self, Person};
use crate::wecom::message;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::SqliteConnection;
use table::{CommandId, Role};

/// What a command needs to know about the moment and the asker.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub now: DateTime<Utc>,
    pub sender: Person,
}

impl Ctx<'_> {
    pub fn now_ms(&self) -> i64 {
        self.now.timestamp_millis()
    }

    pub fn today(&self) -> NaiveDate {
        self.now.with_timezone(&TZ).date_naive()
    }

    pub fn is_admin(&self) -> bool {
        self.settings.roles.admins.contains(&self.sender.userid)
    }

    pub fn is_auditor(&self) -> bool {
        self.settings.roles.audit_group.contains(&self.sender.userid)
    }

    pub fn may(&self, role: Role) -> bool {
        match role {
            Role::Everyone => true,
            Role::Confirmer => self.sender.confirmer,
            Role::Audit => self.is_auditor(),
            Role::Admin => self.is_admin(),
        }
    }

    /// Queues a text message to people (sent after the transaction commits).
    pub async fn notify(&self, conn: &mut SqliteConnection, users: &[&str], text: &str) -> Result<(), sqlx::Error> {
        queue_text(conn, self.settings, self.now_ms(), users, text).await
    }
}

/// Queues a text message to people, split to fit WeCom's limit.
pub async fn queue_text(
    conn: &mut SqliteConnection,
    settings: &Settings,
    now_ms: i64,
    users: &[&str],
    text: &str,
) -> Result<(), sqlx::Error> {
    for m in message::text(settings.wecom.agent_id, users, text) {
        crate::store::outbox::enqueue(conn, now_ms, &m).await?;
    }
    Ok(())
}

/// A command's failure: a precise message for the asker, or a database error.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    User(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type CommandResult = Result<String, CommandError>;

/// Refuses with a message for the asker.
pub fn refuse<T>(message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError::User(message.into()))
}

/// Answers a text message from `from`.
pub async fn handle_text(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut SqliteConnection,
    from: &str,
    text: &str,
) -> Result<String, sqlx::Error> {
    let sender = match directory::find(conn, from).await? {
        Some(person) if person.active => person,
        Some(_) => {
            tracing::warn!(from, "message from a deactivated person refused");
            return Ok("您的账号已停用，无法使用全员营销助手。如有疑问请联系管理员。".into());
        }
        None => {
            tracing::warn!(from, "message from a userid not in the directory refused");
            return Ok("抱歉，没有在全员营销通讯录中找到您，暂时无法使用。请联系管理员开通。".into());
        }
    };
    let ctx = Ctx { settings, now, sender };
    let parsed = match parse::parse(text, ctx.today()) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(e.to_string()),
    };
    if !ctx.may(parsed.spec.role) {
        return Ok(format!(
            "「{}」仅限{}使用。发送「帮助」查看您可用的命令。",
            parsed.spec.name,
            parsed.spec.role.label()
        ));
    }
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    let result = run(&ctx, &mut savepoint, &parsed).await;
    match result {
        Ok(reply) => {
            savepoint.commit().await?;
            Ok(reply)
        }
        Err(CommandError::User(message)) => {
            savepoint.rollback().await?;
            Ok(message)
        }
        Err(CommandError::Db(e)) => Err(e),
    }
}

async fn run(ctx: &Ctx<'_>, conn: &mut SqliteConnection, parsed: &parse::Parsed) -> CommandResult {
    match parsed.spec.id {
        CommandId::Report(kind) => report::run(ctx, conn, kind, parsed).await,
        CommandId::Mine => mine::run(ctx, conn, parsed).await,
        CommandId::Help => Ok(help::text(ctx)),
        CommandId::Confirm | CommandId::Reject | CommandId::OnJob | CommandId::LeftJob => {
            let id = parsed.record_no("编号").ok_or_else(|| CommandError::User("缺少编号".into()))?;
            let action = match parsed.spec.id {
                CommandId::Confirm => decide::Action::Confirm { closer: parsed.text("接手").map(|t| t.to_string()) },
                CommandId::Reject => decide::Action::Reject { reason: parsed.text("原因").map(|t| t.to_string()) },
                CommandId::OnJob => decide::Action::OnJob,
                _ => decide::Action::Left,
            };
            decide::decide(ctx, conn, id, action, decide::Via::Text).await
        }
        CommandId::Standings => contest::standings_command(ctx, conn, parsed).await,
        CommandId::JoinPk => contest::join_command(ctx, conn, parsed, false).await,
        CommandId::Assign => contest::join_command(ctx, conn, parsed, true).await,
        CommandId::Review => contest::review_command(ctx, conn, parsed).await,
        CommandId::Void => audit::void(ctx, conn, parsed).await,
        CommandId::Restore => audit::restore(ctx, conn, parsed).await,
        CommandId::Finalise => {
            let defs = ctx.settings.contest_defs();
            let def = contest::find(&defs, parsed.text("比赛").map(|t| t.as_str()), ctx.now)?.remove(0);
            contest::finalise(ctx, conn, def, None).await
        }
        CommandId::Settle => settle::run(ctx, conn, parsed).await,
    }
}
