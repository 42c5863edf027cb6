//! The chat front end: the command table, the parser, and thin handlers that turn a
//! typed command into a service operation and its outcome into the answer's text.
//! Card presses (`press`) are the other front end of the same operations.

pub mod args;
pub mod corrections;
pub mod help;
pub mod mine;
pub mod parse;
pub mod press;
pub mod standings;
pub mod table;

#[cfg(test)]
mod parse_tests;

use crate::config::Settings;
use crate::service::decide::{self, Via};
use crate::service::{
    Ctx, Identity, Outcome, ServiceError, atomically, audit, board, channels, contest, correct, finalise, identify,
    report, settlement,
};
use crate::store::Conn;
use args::Command;
use chrono::{DateTime, Utc};

/// The answer to a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// The command refused: what it wrote before refusing is still on the connection,
    /// and the caller must roll it back (the callback's savepoint, [`crate::exactly_once`])
    /// before storing the answer.
    pub refused: bool,
}

impl Answer {
    fn given(text: impl Into<String>) -> Answer {
        Answer { text: text.into(), refused: false }
    }
}

/// Answers a text message from `from`. The command runs on `conn` itself, not in a
/// savepoint of its own (each would be two more round trips to SQLite's thread): when
/// it refuses, the answer says so, and the caller rolls back what it wrote.
pub async fn handle_text(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    from: &str,
    text: &str,
) -> Result<Answer, sqlx::Error> {
    let sender = match identify(conn, from).await? {
        Identity::Active(person) => person,
        Identity::Departed => {
            tracing::warn!(from, "message from a deactivated person refused");
            return Ok(Answer::given("您的账号已停用，无法使用全员营销助手。如有疑问请联系管理员。"));
        }
        Identity::Unknown => {
            tracing::warn!(from, "message from a userid not in the directory refused");
            return Ok(Answer::given("抱歉，没有在全员营销通讯录中找到您，暂时无法使用。请联系管理员开通。"));
        }
    };
    let ctx = Ctx::person(settings, now, sender);
    if help::is_greeting(text) {
        return Ok(Answer::given(help::introduction(&ctx).unwrap_or_else(|e| e.to_string())));
    }
    let parsed = match parse::parse(text, ctx.today()) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Answer::given(e.explain(ctx.today()))),
    };
    let refused = |text: String| Ok(Answer { text, refused: true });
    match run(&ctx, conn, &parsed.command).await {
        Ok(reply) => Ok(Answer::given(reply)),
        Err(ServiceError::Forbidden(op)) => {
            refused(format!("「{}」仅限{}使用。发送「帮助」查看您可用的命令。", parsed.spec.name, op.role().label()))
        }
        Err(ServiceError::Refused(message)) => refused(message),
        Err(ServiceError::Db(e)) => Err(e),
    }
}

async fn run(ctx: &Ctx<'_>, conn: &mut Conn, command: &Command) -> Outcome {
    match command {
        Command::Report(input) => report::report(ctx, conn, input).await,
        Command::Mine { month } => mine::run(ctx, conn, *month).await,
        Command::Help { topic: None } => help::text(ctx),
        Command::Help { topic: Some(topic) } => help::command(ctx, topic),
        Command::Decide { id, action } => decide::decide(ctx, conn, *id, action.clone(), Via::Text).await,
        Command::DecideEach { ids, action } => {
            // Each in its own savepoint: one refused leaves the others decided.
            let mut answers = Vec::new();
            for id in ids {
                let outcome =
                    atomically!(conn, async |conn| decide::decide(ctx, conn, *id, action.clone(), Via::Text).await);
                answers.push(match outcome {
                    Ok(answer) => answer,
                    Err(ServiceError::Db(e)) => return Err(ServiceError::Db(e)),
                    Err(refused) => format!("#{id}：{refused}"),
                });
            }
            Ok(answers.join("\n"))
        }
        Command::Standings { contest } => standings::standings(ctx, conn, contest.as_deref()).await,
        Command::Join { team, contest } => contest::join(ctx, conn, team, contest.as_deref()).await,
        Command::Assign { person, team, contest } => contest::assign(ctx, conn, person, team, contest.as_deref()).await,
        Command::Review { contest, page } => standings::review(ctx, conn, contest.as_deref(), *page).await,
        Command::Void { id, reason } => audit::void(ctx, conn, *id, reason).await,
        Command::Restore { id, reason } => audit::restore(ctx, conn, *id, reason.as_deref()).await,
        Command::Finalise { contest, exclude_pending } => {
            finalise::finalise_named(ctx, conn, contest, *exclude_pending).await
        }
        Command::Settle { month } => settlement::send_in_chat(ctx, conn, *month).await,
        Command::Withdraw { id, reason } => correct::withdraw(ctx, conn, *id, reason.as_deref()).await,
        Command::Edit { id, changes } => corrections::edit(ctx, conn, *id, changes).await,
        Command::Appeal { id, reason } => correct::appeal(ctx, conn, *id, reason).await,
        Command::Todo => corrections::todo(ctx, conn).await,
        Command::Judge { id, verdict, note } => correct::judge(ctx, conn, *id, *verdict, note.as_deref(), None).await,
        Command::MarkPaid { person, contest } => contest::mark_paid(ctx, conn, person, contest.as_deref()).await,
        Command::RegisterChannel { name } => channels::register_old(ctx, conn, name).await,
        Command::Move { person, team, contest } => {
            contest::move_team(ctx, conn, person, team, contest.as_deref()).await
        }
        Command::Leave { contest } => contest::leave(ctx, conn, contest.as_deref()).await,
        Command::Remove { person, contest } => contest::remove(ctx, conn, person, contest.as_deref()).await,
        Command::BoardLink { contest, rotate } => board::link(ctx, conn, contest.as_deref(), *rotate).await,
    }
}
