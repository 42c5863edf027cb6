//! Card presses, the chat's other front end: a `template_card_event` names the card
//! and the button; the press runs the same operation, through the same permission
//! check, as the typed command. The presser gets a text when the press is refused or
//! needs a follow-up (a reason for 驳回); otherwise the updated card says it all.

use crate::config::Settings;
use crate::service::cards::{Button, Pressed};
use crate::service::correct::{self, Verdict};
use crate::service::decide::{self, Action, Via};
use crate::service::{Ctx, Identity, Outcome, ServiceError, atomically, finalise, identify};
use crate::store::Conn;
use crate::store::cards;
use crate::wecom::xml::CardEvent;
use chrono::{DateTime, Utc};

/// Applies a button press from `from`.
pub async fn handle(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    from: &str,
    event: &CardEvent,
) -> Result<(), sqlx::Error> {
    let Some((button, target)) = Button::parse(&event.event_key) else {
        tracing::warn!(key = %event.event_key, "card event with an unknown key ignored");
        return Ok(());
    };
    let card = cards::find(conn, &event.task_id).await?;
    let matches = |c: &cards::Card| match button {
        Button::Finalise => c.contest_id.as_deref() == Some(target),
        _ => c.record_id.is_some_and(|id| id.to_string() == target),
    };
    let Some(card) = card.filter(matches) else {
        tracing::warn!(task = %event.task_id, key = %event.event_key, "card event for an unknown card ignored");
        return Ok(());
    };
    let Identity::Active(sender) = identify(conn, from).await? else {
        tracing::warn!(from, "card press by someone not in the directory ignored");
        return Ok(());
    };
    let ctx = Ctx::person(settings, now, sender);
    let pressed = Pressed { task_id: &card.task_id, response_code: &event.response_code };
    // A successful confirmation needs no text: the updated card says it.
    let quiet = !matches!(button, Button::Reject | Button::Finalise | Button::Uphold | Button::Overturn);
    let text = match atomically!(conn, async |conn| press(&ctx, conn, button, target, pressed).await) {
        Ok(reply) => (!quiet).then_some(reply),
        Err(ServiceError::Db(e)) => return Err(e),
        Err(refused) => Some(refused.to_string()),
    };
    if let Some(text) = text {
        ctx.notify(conn, &[from], &text).await?;
    }
    Ok(())
}

async fn press(ctx: &Ctx<'_>, conn: &mut Conn, button: Button, target: &str, pressed: Pressed<'_>) -> Outcome {
    let action = match button {
        Button::Finalise => {
            ctx.authorize(button.operation())?;
            let Some(def) = ctx.settings.contest(target) else {
                return crate::service::refuse("这个比赛已不在配置中。");
            };
            return finalise::finalise(ctx, conn, def, false, Some(pressed)).await;
        }
        Button::Uphold | Button::Overturn => {
            let Ok(id) = target.parse::<i64>() else { return crate::service::refuse("无法识别的按钮。") };
            let verdict = if button == Button::Uphold { Verdict::Uphold } else { Verdict::Overturn };
            return correct::judge(ctx, conn, id, verdict, None, Some(pressed)).await;
        }
        Button::Confirm => Action::Confirm { closer: None },
        Button::Reject => Action::Reject { reason: None },
        Button::OnJob => Action::OnJob,
        Button::Left => Action::Left { reason: None },
    };
    let Ok(id) = target.parse::<i64>() else { return crate::service::refuse("无法识别的按钮。") };
    decide::decide(ctx, conn, id, action, Via::Card(pressed)).await
}
