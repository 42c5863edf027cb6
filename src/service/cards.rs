//! Interactive cards: the 确认/驳回 card sent to confirmers on each report, the 在岗/离职
//! card of the day-3 check, the audit group's 终审 card, their buttons, and their update
//! for every recipient once the matter is decided.

use crate::clock::format_ms;
use crate::config::Settings;
use crate::domain::contest::{ContestDef, TeamStanding};
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::service::access::Operation;
use crate::store::cards::{self, NewCard, Purpose};
use crate::store::directory::Person;
use crate::store::outbox::{self, Api, DigestEntry, NewMessage, RESPONSE_CODE_REF};
use crate::store::records::{self, Record};
use crate::store::{Conn, sql};
use crate::wecom::message::{self, cut_chars as cut};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A card's button: what it does, and its key (`confirm:12`) with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Confirm,
    Reject,
    OnJob,
    Left,
    Finalise,
    /// 维持: an appeal's rejection stands.
    Uphold,
    /// 改判: an appeal overturns the rejection.
    Overturn,
}

impl Button {
    const ALL: [Button; 7] = [
        Button::Confirm,
        Button::Reject,
        Button::OnJob,
        Button::Left,
        Button::Finalise,
        Button::Uphold,
        Button::Overturn,
    ];

    fn code(self) -> &'static str {
        match self {
            Button::Confirm => "confirm",
            Button::Reject => "reject",
            Button::OnJob => "onjob",
            Button::Left => "left",
            Button::Finalise => "finalise",
            Button::Uphold => "uphold",
            Button::Overturn => "overturn",
        }
    }

    /// The key WeCom sends back when the button is pressed.
    pub fn key(self, target: impl std::fmt::Display) -> String {
        format!("{}:{target}", self.code())
    }

    /// A pressed key: the button and its target (a record number or a contest id).
    pub fn parse(key: &str) -> Option<(Button, &str)> {
        let (code, target) = key.split_once(':')?;
        Button::ALL.into_iter().find(|b| b.code() == code).map(|b| (b, target))
    }

    /// What pressing it does, as in the permission table.
    pub fn operation(self) -> Operation {
        match self {
            Button::Confirm => Operation::Confirm,
            Button::Reject => Operation::Reject,
            Button::OnJob => Operation::OnJob,
            Button::Left => Operation::Left,
            Button::Finalise => Operation::Finalise,
            Button::Uphold | Button::Overturn => Operation::Judge,
        }
    }
}

/// A task id unique per app for ever (WeCom refuses reuse): purpose, record, randomness.
pub fn task_id(purpose: Purpose, id: &str) -> String {
    format!("lb-{}-{id}-{:016x}", purpose.code(), rand::random::<u64>())
}

/// Sends a record's card to `recipients` through the outbox and remembers it. False
/// when there is nobody to send it to (nothing is stored).
pub async fn send_record_card(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    record: &Record,
    purpose: Purpose,
    recipients: &[Person],
) -> Result<bool, sqlx::Error> {
    if recipients.is_empty() {
        tracing::warn!(record = record.id, "no confirmer to send the card to");
        return Ok(false);
    }
    let flags = records::flags_of(conn, record.id).await?;
    let notes: Vec<&str> = flags.iter().map(|f| f.detail.as_str()).collect();
    send_record_card_noting(settings, now, conn, record, purpose, recipients, &notes).await
}

/// [`send_record_card`] for a record whose flags' details the caller has in hand (a
/// report that just stored them), in their stored order.
pub async fn send_record_card_noting(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    record: &Record,
    purpose: Purpose,
    recipients: &[Person],
    flags: &[&str],
) -> Result<bool, sqlx::Error> {
    if recipients.is_empty() {
        tracing::warn!(record = record.id, "no confirmer to send the card to");
        return Ok(false);
    }
    let task = task_id(purpose, &record.id.to_string());
    let users: Vec<String> = recipients.iter().map(|p| p.userid.clone()).collect();
    let notes: Vec<String> = flags.iter().map(|detail| format!("⚠️ {detail}")).collect();
    let mut card = record_card(record, purpose, &task);
    card["jump_list"] = console_link(settings, "在网页控制台处理待办", "/ui/todo");
    if !notes.is_empty() {
        card["sub_title_text"] = json!(cut(&notes.join("；"), SUB_TITLE_MAX));
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut msg = message::template_card(settings.wecom.agent_id, &refs, card, format!("card:{task}"));
    msg.digest = Some(digest_entry(settings, record, purpose));
    let new = NewCard { task_id: &task, purpose, record_id: Some(record.id), contest_id: None, recipients: &users };
    queue_card(conn, now.timestamp_millis(), &msg, &new).await?;
    Ok(true)
}

/// A record card's line in a digest (should a rush merge it into one) and how to decide
/// it in chat: the same commands the card's buttons stand for.
fn digest_entry(settings: &Settings, record: &Record, purpose: Purpose) -> DigestEntry {
    let line = cut(&format!("#{} {} {}：{}", record.id, record.kind.label(), record.reporter_name, record.what()), 40);
    let (how, page) = match purpose {
        Purpose::OnJob => {
            ("回复「在岗 编号」（可写多个编号，如 在岗 12 13）或「离职 编号 原因」；发「待办」查看全部", "/ui/todo")
        }
        Purpose::Appeal => ("回复「维持 编号 原因」或「改判 编号 原因」处理申诉；发「待审」查看全部", "/ui/audit"),
        _ => ("回复「确认 编号」（可写多个编号，如 确认 12 13）或「驳回 编号 原因」；发「待办」查看全部", "/ui/todo"),
    };
    DigestEntry { line, hint: format!("{how}；也可在网页控制台处理：{}", settings.web.link(page)) }
}

/// A card's link to a console page (WeCom's `jump_list`, type 1: a URL), built on
/// `web.public_url`.
fn console_link(settings: &Settings, title: &str, path: &str) -> Value {
    json!([{"type": 1, "title": title, "url": settings.web.link(path)}])
}

/// The longest sub-title a card shows (WeCom cuts longer ones).
const SUB_TITLE_MAX: usize = 100;

fn record_card(record: &Record, purpose: Purpose, task: &str) -> Value {
    let kind = record.kind;
    let button = |b: Button, text: &str, style: i64| json!({"text": text, "style": style, "key": b.key(record.id)});
    let (title, buttons) = match purpose {
        Purpose::OnJob => (
            format!("在岗确认 #{} {}", record.id, record.what()),
            json!([button(Button::OnJob, "在岗", 1), button(Button::Left, "离职", 2)]),
        ),
        Purpose::Appeal => (
            format!("申诉 #{} {}", record.id, kind.label()),
            json!([button(Button::Uphold, "维持", 2), button(Button::Overturn, "改判", 1)]),
        ),
        _ => (
            format!("待确认 #{} {}", record.id, kind.label()),
            json!([button(Button::Confirm, "确认", 1), button(Button::Reject, "驳回", 2)]),
        ),
    };
    // WeCom shows six rows: the reporter, up to four fields, the points; the time is
    // in the title's description.
    let mut rows = vec![json!({"keyname": "报备人", "value": record.reporter_name})];
    for (label, key) in key_fields(kind) {
        if let Some(value) = record.field(key).filter(|_| rows.len() < 5) {
            rows.push(json!({"keyname": label, "value": cut(&value, 30)}));
        }
    }
    rows.push(json!({"keyname": "积分", "value": record.points.to_string()}));
    let note = record.field("备注").map(|n| json!({"type": 0, "quote_text": cut(&format!("备注：{n}"), 160)}));
    let mut card = json!({
        "card_type": "button_interaction",
        "source": {"desc": "全员营销"},
        "main_title": {"title": title, "desc": format!("{} · {}", record.what(), format_ms(record.occurred_at))},
        "horizontal_content_list": rows,
        "task_id": task,
        "button_list": buttons,
    });
    if let Some(note) = note {
        card["quote_area"] = note;
    }
    card
}

/// The fields worth showing on a card's rows, per kind (WeCom shows at most six rows;
/// a 备注 goes in the card's quote area).
fn key_fields(kind: RecordKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RecordKind::LeadC => {
            &[("联系人", "联系人"), ("方向", "方向"), ("方式", "方式"), ("接手", "接手"), ("备注", "备注")]
        }
        RecordKind::LeadB => &[("约面", "约面"), ("需求", "需求"), ("备注", "备注")],
        RecordKind::LeadA => &[("金额(元)", "金额"), ("合同号", "合同号"), ("备注", "备注")],
        RecordKind::Placement => &[("入职", "入职"), ("渠道", "渠道"), ("备注", "备注")],
        RecordKind::Referral => &[("老客户", "老客户"), ("备注", "备注")],
        _ => &[("联系人", "联系人"), ("方式", "方式"), ("接手", "接手"), ("备注", "备注")],
    }
}

/// The audit group's card for an appeal: the record, the rejection, the appeal, and
/// 维持 / 改判.
pub async fn send_appeal_card(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    record: &Record,
    appeal: &str,
    recipients: &[String],
) -> Result<bool, sqlx::Error> {
    if recipients.is_empty() {
        tracing::warn!(record = record.id, "no auditor to send the appeal card to");
        return Ok(false);
    }
    let task = task_id(Purpose::Appeal, &record.id.to_string());
    let mut card = record_card(record, Purpose::Appeal, &task);
    card["jump_list"] = console_link(settings, "在网页控制台审核", "/ui/audit");
    let rejected = format!(
        "{}驳回：{}",
        record.decided_by_name.as_deref().unwrap_or("确认人"),
        record.reason.as_deref().unwrap_or("未填写原因")
    );
    card["quote_area"] =
        json!({"type": 0, "title": cut(&rejected, 40), "quote_text": cut(&format!("申诉理由：{appeal}"), 160)});
    let refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let mut msg = message::template_card(settings.wecom.agent_id, &refs, card, format!("card:{task}"));
    msg.digest = Some(digest_entry(settings, record, Purpose::Appeal));
    let new =
        NewCard { task_id: &task, purpose: Purpose::Appeal, record_id: Some(record.id), contest_id: None, recipients };
    queue_card(conn, now.timestamp_millis(), &msg, &new).await?;
    Ok(true)
}

/// The card whose button was pressed, and the response code WeCom gave with the press.
#[derive(Debug, Clone, Copy)]
pub struct Pressed<'a> {
    pub task_id: &'a str,
    pub response_code: &'a str,
}

/// Replaces the buttons of every open card about a record (or contest) with `outcome`,
/// for every recipient. The pressed card (if any) uses the press's response code;
/// other cards use the code from their own send.
pub async fn close_cards(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    record_id: Option<i64>,
    contest_id: Option<&str>,
    outcome: &str,
    pressed: Option<Pressed<'_>>,
) -> Result<(), sqlx::Error> {
    let now_ms = now.timestamp_millis();
    for card in cards::open_for(conn, record_id, contest_id).await? {
        let mut payload = json!({
            "userids": card.recipients(),
            "agentid": settings.wecom.agent_id,
            "button": {"replace_name": outcome},
        });
        match pressed {
            Some(p) if p.task_id == card.task_id => payload["response_code"] = json!(p.response_code),
            // The code from the card's own send, looked up when this is delivered (the
            // send may still be in the outbox).
            _ => payload[RESPONSE_CODE_REF] = json!(format!("card:{}", card.task_id)),
        }
        let msg = NewMessage { api: Api::UpdateTemplateCard, target: None, payload, reference: None, digest: None };
        outbox::enqueue(conn, now_ms, &msg).await?;
        cards::close(conn, &card.task_id, outcome, now_ms).await?;
    }
    Ok(())
}

/// What the 终审 card says beside the ranking: records that could still change it, and
/// who approved it so far out of how many needed.
#[derive(Debug, Clone, Default)]
pub struct FinaliseStatus {
    pub undecided: usize,
    pub approved: Vec<String>,
    pub quorum: usize,
}

/// The preliminary ranking with a 终审 button, to the audit group at the cut-off (and
/// again after each approval while the quorum is not reached).
pub async fn send_finalise_card(
    settings: &Settings,
    now: DateTime<Utc>,
    conn: &mut Conn,
    def: &ContestDef,
    standings: &[TeamStanding],
    pool: Fen,
    status: &FinaliseStatus,
) -> Result<(), sqlx::Error> {
    let auditors = settings.roles.audit_group.clone();
    if auditors.is_empty() {
        tracing::warn!(contest = %def.id, "no audit group to send the finalise card to");
        return Ok(());
    }
    let safe_id = def.id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_");
    let task = task_id(Purpose::Finalise, &safe_id);
    let mut rows: Vec<Value> = standings
        .iter()
        // Six rows in all: the first three teams, the pool, what is undecided, approvals.
        .take(3)
        .map(|t| json!({"keyname": format!("第{}名", t.rank), "value": format!("{} {}分", t.name, t.points)}))
        .collect();
    let owed = crate::domain::contest::owed(standings);
    let pool_text = if owed.0 > 0 { format!("{pool} 元（未缴 {owed}）") } else { format!("{pool} 元") };
    rows.push(json!({"keyname": "奖池", "value": pool_text}));
    let approved = if status.approved.is_empty() { "暂无".to_owned() } else { status.approved.join("、") };
    rows.push(json!({"keyname": "待定记录", "value": format!("{} 条", status.undecided)}));
    rows.push(
        json!({"keyname": "已同意", "value": format!("{approved}（{}/{}）", status.approved.len(), status.quorum)}),
    );
    rows.truncate(6);
    let mut card = json!({
        "card_type": "button_interaction",
        "source": {"desc": "全员营销 · PK"},
        "main_title": {"title": format!("{} 已截止 · 待终审", def.name), "desc": format!("截止时间 {}，以下为初步排名", format_ms(def.cutoff_ms))},
        "horizontal_content_list": rows,
        "task_id": task,
        "button_list": [{"text": "终审", "style": 1, "key": Button::Finalise.key(&def.id)}],
    });
    card["jump_list"] = console_link(settings, "在网页控制台审核", "/ui/audit");
    if let Some(url) = crate::service::board::link_of(conn, settings, &def.id).await?
        && let Some(links) = card["jump_list"].as_array_mut()
    {
        links.push(json!({"type": 1, "title": "打开实时看板", "url": url}));
    }
    if status.undecided > 0 {
        let note = format!("⚠️ 还有 {} 条记录待确认或申诉中，处理后排名可能变化", status.undecided);
        card["sub_title_text"] = json!(note);
    }
    let users: Vec<&str> = auditors.iter().map(String::as_str).collect();
    let msg = message::template_card(settings.wecom.agent_id, &users, card, format!("card:{task}"));
    let new = NewCard {
        task_id: &task,
        purpose: Purpose::Finalise,
        record_id: None,
        contest_id: Some(&def.id),
        recipients: &auditors,
    };
    queue_card(conn, now.timestamp_millis(), &msg, &new).await
}

/// Queues a card's message and records the card, in one call ([`sql::Batch`]).
async fn queue_card(conn: &mut Conn, now_ms: i64, msg: &NewMessage, card: &NewCard<'_>) -> Result<(), sqlx::Error> {
    let mut batch = sql::Batch::new();
    batch.push(outbox::enqueuing(now_ms, msg));
    batch.push(cards::inserting(card, now_ms));
    batch.execute(conn).await.map(drop)
}
