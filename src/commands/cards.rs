//! Interactive cards: the 确认/驳回 card sent to confirmers on each report, the 在岗/离职
//! card of the day-3 check, their update once decided, and the button press callback.

use crate::clock::format_ms;
use crate::commands::decide::{self, Action, Via};
use crate::commands::{CommandError, Ctx, contest, refuse};
use crate::config::Settings;
use crate::domain::contest::{ContestDef, TeamStanding};
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::store::cards::{self, NewCard};
use crate::store::directory::{self, Person};
use crate::store::outbox::{self, NewMessage};
use crate::store::records::Record;
use crate::wecom::message;
use crate::wecom::xml::CardEvent;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::SqliteConnection;

/// What a card asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    OnJob,
}

impl Purpose {
    fn code(self) -> &'static str {
        match self {
            Purpose::Confirm => "confirm",
            Purpose::OnJob => "onjob",
        }
    }
}

/// A task id unique per app for ever (WeCom refuses reuse): purpose, record, randomness.
pub fn task_id(purpose: &str, id: &str) -> String {
    format!("lb-{purpose}-{id}-{:016x}", rand::random::<u64>())
}

/// Sends a record's card to `recipients` through the outbox and remembers it. False
/// when there is nobody to send it to (nothing is stored).
pub async fn send_record_card(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut SqliteConnection,
    record: &Record,
    purpose: Purpose,
    recipients: &[Person],
) -> Result<bool, sqlx::Error> {
    if recipients.is_empty() {
        tracing::warn!(record = record.id, "no confirmer to send the card to");
        return Ok(false);
    }
    let task = task_id(purpose.code(), &record.id.to_string());
    let users: Vec<String> = recipients.iter().map(|p| p.userid.clone()).collect();
    let card = record_card(record, purpose, &task);
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let msg = message::template_card(settings.wecom.agent_id, &refs, card, format!("card:{task}"));
    let now_ms = now.timestamp_millis();
    outbox::enqueue(conn, now_ms, &msg).await?;
    let new = NewCard {
        task_id: &task,
        purpose: purpose.code(),
        record_id: Some(record.id),
        contest_id: None,
        recipients: &users,
    };
    cards::insert(conn, &new, now_ms).await?;
    Ok(true)
}

fn record_card(record: &Record, purpose: Purpose, task: &str) -> Value {
    let kind = record.kind();
    let (title, buttons) = match purpose {
        Purpose::Confirm => (
            format!("待确认 #{} {}", record.id, kind.label()),
            json!([
                {"text": "确认", "style": 1, "key": format!("confirm:{}", record.id)},
                {"text": "驳回", "style": 2, "key": format!("reject:{}", record.id)},
            ]),
        ),
        Purpose::OnJob => (
            format!("在岗确认 #{} {}", record.id, record.what()),
            json!([
                {"text": "在岗", "style": 1, "key": format!("onjob:{}", record.id)},
                {"text": "离职", "style": 2, "key": format!("left:{}", record.id)},
            ]),
        ),
    };
    let mut rows = vec![json!({"keyname": "报备人", "value": record.reporter_name})];
    for (label, key) in key_fields(kind) {
        if let Some(value) = record.field(key) {
            rows.push(json!({"keyname": label, "value": value}));
        }
    }
    rows.push(json!({"keyname": "积分", "value": record.points.to_string()}));
    rows.push(json!({"keyname": "报备时间", "value": format_ms(record.occurred_at)}));
    rows.truncate(6);
    json!({
        "card_type": "button_interaction",
        "source": {"desc": "全员营销"},
        "main_title": {"title": title, "desc": record.what()},
        "horizontal_content_list": rows,
        "task_id": task,
        "button_list": buttons,
    })
}

/// The fields worth showing on a card, per kind (WeCom shows at most six rows).
fn key_fields(kind: RecordKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RecordKind::LeadC => &[("联系人", "联系人"), ("方式", "方式")],
        RecordKind::LeadB => &[("约面", "约面"), ("需求", "需求")],
        RecordKind::LeadA => &[("金额(元)", "金额"), ("合同号", "合同号")],
        RecordKind::Placement => &[("入职", "入职"), ("渠道", "渠道")],
        RecordKind::Referral => &[("老客户", "老客户")],
        _ => &[("联系人", "联系人"), ("方式", "方式")],
    }
}

/// An outbox payload key: take `response_code` from the delivered message with this
/// reference.
pub const RESPONSE_CODE_REF: &str = "response_code_ref";

/// Replaces the buttons of every open card about a record (or contest) with `outcome`,
/// for every recipient. `pressed` is the card whose button was pressed and the response
/// code WeCom gave with the press; other cards use the code from their send.
pub async fn close_cards(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut SqliteConnection,
    record_id: Option<i64>,
    contest_id: Option<&str>,
    outcome: &str,
    pressed: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let now_ms = now.timestamp_millis();
    for card in cards::open_for(conn, record_id, contest_id).await? {
        let mut payload = json!({
            "userids": card.recipients(),
            "agentid": settings.wecom.agent_id,
            "button": {"replace_name": outcome},
        });
        match pressed {
            Some((task, code)) if task == card.task_id => payload["response_code"] = json!(code),
            // The code from the card's own send, looked up when this is delivered (the
            // send may still be in the outbox).
            _ => payload[RESPONSE_CODE_REF] = json!(format!("card:{}", card.task_id)),
        }
        let msg = NewMessage { api: "message/update_template_card".into(), target: None, payload, reference: None };
        outbox::enqueue(conn, now_ms, &msg).await?;
        cards::close(conn, &card.task_id, outcome, now_ms).await?;
    }
    Ok(())
}

/// A button press. The presser gets a text when the press is refused or needs a
/// follow-up (a reason for 驳回); otherwise the updated card says it all.
pub async fn on_event(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut SqliteConnection,
    from: &str,
    event: &CardEvent,
) -> Result<(), sqlx::Error> {
    let Some((action, target)) = event.event_key.split_once(':') else {
        tracing::warn!(key = %event.event_key, "card event with an unknown key ignored");
        return Ok(());
    };
    let card = cards::find(conn, &event.task_id).await?;
    let matches = |c: &cards::Card| match action {
        "finalise" => c.contest_id.as_deref() == Some(target),
        _ => c.record_id.is_some_and(|id| id.to_string() == target),
    };
    let Some(card) = card.filter(matches) else {
        tracing::warn!(task = %event.task_id, key = %event.event_key, "card event for an unknown card ignored");
        return Ok(());
    };
    let sender = match directory::find(conn, from).await? {
        Some(p) if p.active => p,
        _ => {
            tracing::warn!(from, "card press by someone not in the directory ignored");
            return Ok(());
        }
    };
    let ctx = Ctx { settings, now, sender };
    let pressed = (card.task_id.as_str(), event.response_code.as_str());
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    let (result, quiet) = press(&ctx, &mut savepoint, action, target, pressed).await;
    let text = match result {
        Ok(reply) => {
            savepoint.commit().await?;
            (!quiet).then_some(reply)
        }
        Err(CommandError::User(message)) => {
            savepoint.rollback().await?;
            Some(message)
        }
        Err(CommandError::Db(e)) => return Err(e),
    };
    if let Some(text) = text {
        ctx.notify(conn, &[from], &text).await?;
    }
    Ok(())
}

/// Applies a press; the flag says whether a successful press needs no text.
async fn press(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    action: &str,
    target: &str,
    (task_id, response_code): (&str, &str),
) -> (Result<String, CommandError>, bool) {
    if action == "finalise" {
        if !ctx.is_auditor() {
            return (refuse("终审仅限业绩审核组。"), false);
        }
        let Some(def) = contest::def_by_id(ctx.settings, target) else {
            return (refuse("这个比赛已不在配置中。"), false);
        };
        return (contest::finalise(ctx, conn, &def, Some((task_id, response_code))).await, false);
    }
    let action = match action {
        "confirm" => Action::Confirm { closer: None },
        "reject" => Action::Reject { reason: None },
        "onjob" => Action::OnJob,
        "left" => Action::Left,
        _ => return (refuse("无法识别的按钮。"), false),
    };
    let Ok(id) = target.parse::<i64>() else { return (refuse("无法识别的按钮。"), false) };
    let quiet = !matches!(action, Action::Reject { .. });
    let via = Via::Card { task_id: task_id.to_owned(), response_code: response_code.to_owned() };
    (decide::decide(ctx, conn, id, action, via).await, quiet)
}

/// The preliminary ranking with a 终审 button, to the audit group at the cut-off.
pub async fn send_finalise_card(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut SqliteConnection,
    def: &ContestDef,
    standings: &[TeamStanding],
    pool: Fen,
) -> Result<(), sqlx::Error> {
    let auditors = settings.roles.audit_group.clone();
    if auditors.is_empty() {
        tracing::warn!(contest = %def.id, "no audit group to send the finalise card to");
        return Ok(());
    }
    let task = task_id("finalise", &def.id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_"));
    let mut rows: Vec<Value> = standings
        .iter()
        .take(5)
        .map(|t| json!({"keyname": format!("第{}名", t.rank), "value": format!("{} {}分", t.name, t.points)}))
        .collect();
    rows.push(json!({"keyname": "奖池", "value": format!("{pool} 元")}));
    let card = json!({
        "card_type": "button_interaction",
        "source": {"desc": "全员营销 · PK"},
        "main_title": {"title": format!("{} 已截止 · 待终审", def.name), "desc": format!("截止时间 {}，以下为初步排名", format_ms(def.cutoff_ms))},
        "horizontal_content_list": rows,
        "task_id": task,
        "button_list": [{"text": "终审", "style": 1, "key": format!("finalise:{}", def.id)}],
    });
    let users: Vec<&str> = auditors.iter().map(String::as_str).collect();
    let msg = message::template_card(settings.wecom.agent_id, &users, card, format!("card:{task}"));
    let now_ms = now.timestamp_millis();
    outbox::enqueue(conn, now_ms, &msg).await?;
    let new = NewCard {
        task_id: &task,
        purpose: "finalise",
        record_id: None,
        contest_id: Some(&def.id),
        recipients: &auditors,
    };
    cards::insert(conn, &new, now_ms).await
}
