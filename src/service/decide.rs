//! Decisions on handoffs — 确认, 驳回, 在岗, 离职 — whether typed or pressed on a card.
//! Idempotent and race-free: the state moves by compare-and-set, so of two presses
//! exactly one decides, and the other is told who decided and when.

use crate::clock::format_ms;
use crate::domain::kind::RecordKind;
use crate::domain::record::{Mode, RecordState};
use crate::service::access::{self, Operation, Role};
use crate::service::cards::{Pressed, close_cards};
use crate::service::report::audit_decides;
use crate::service::{Actor, Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Record};
use chrono::{Days, NaiveDate};
use tracing::instrument;

/// A rejection pressed on a card carries this until the confirmer gives a reason.
pub const DEFAULT_REASON: &str = "未填写原因（卡片驳回）";

/// What the confirmer decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `closer`: a transfer's closer named by the confirmer (`接手`).
    Confirm {
        closer: Option<String>,
    },
    Reject {
        reason: Option<String>,
    },
    OnJob,
    Left {
        reason: Option<String>,
    },
}

impl Action {
    pub fn operation(&self) -> Operation {
        match self {
            Action::Confirm { .. } => Operation::Confirm,
            Action::Reject { .. } => Operation::Reject,
            Action::OnJob => Operation::OnJob,
            Action::Left { .. } => Operation::Left,
        }
    }
}

/// How the decision arrived: typed, or pressed on a card.
#[derive(Debug, Clone, Copy)]
pub enum Via<'a> {
    Text,
    Card(Pressed<'a>),
}

/// Days on the job before the day-3 check (a placement counts once its person has
/// stayed 3 days).
pub const ONJOB_DAYS: u64 = 3;

/// The first day a placement's on-the-job check may be answered.
pub fn onjob_due(onboard: NaiveDate) -> NaiveDate {
    onboard.checked_add_days(Days::new(ONJOB_DAYS)).unwrap_or(onboard)
}

/// What a record's state is called for its reporter today: an onboarded placement whose
/// day-3 check is due waits for its confirmation, not for its 3 days.
pub fn state_label(state: RecordState, onboard: Option<NaiveDate>, today: NaiveDate) -> &'static str {
    match (state, onboard) {
        (RecordState::Onboarded, Some(day)) if onjob_due(day) <= today => "入职已满3天，待确认在岗",
        _ => state.label(),
    }
}

/// Decides record `id`; answers the decider.
#[instrument(level = "debug", skip(ctx, conn, via), fields(actor = ctx.actor_id()))]
pub async fn decide(ctx: &Ctx<'_>, conn: &mut Conn, id: i64, action: Action, via: Via<'_>) -> Outcome {
    // The audit group decides a record whose department has no confirmer but its
    // reporter: an auditor without the confirmer role is let through to that check.
    let auditor = match &ctx.actor {
        Actor::Person(p) if access::has_role(ctx.settings, p, Role::Audit) => Some(p),
        _ => None,
    };
    let (decider, forbidden) = match (ctx.authorize(action.operation()), auditor) {
        (Ok(p), _) => (p, None),
        (Err(e), Some(p)) => (p, Some(e)),
        (Err(e), None) => return Err(e),
    };
    let Some(record) = records::get(conn, id).await? else {
        return match forbidden {
            Some(e) => Err(e),
            None => refuse(format!("没有找到记录 #{id}。")),
        };
    };
    let fallback = auditor.is_some()
        && record.reporter != decider.userid
        && audit_decides(conn, record.kind, &record.reporter).await?;
    if !fallback {
        if let Some(e) = forbidden {
            return Err(e);
        }
        access::may_decide(decider, &record)?;
    }
    if let Action::Reject { reason: Some(reason) } = &action
        && let Some(reply) = amend_reason(ctx, conn, decider, &record, reason).await?
    {
        return Ok(reply);
    }
    let (from, to) = transition(ctx, &record, &action)?;
    let why = reason(&action);
    if !records::transition(conn, id, from, to, &decider.userid, ctx.now_ms(), why).await? {
        // Someone decided between our read and our write.
        let now = records::get(conn, id).await?.unwrap_or(record);
        return refuse(already_decided(&now));
    }
    events::append(
        conn,
        ctx.now_ms(),
        NewEvent::record(&decider.userid, id, to.code()).from(from.code()).to(to.code()).reason(why),
    )
    .await?;
    if let Action::Confirm { closer } = &action {
        set_closer(ctx, conn, decider, &record, closer.as_deref()).await?;
    }
    let outcome = outcome_label(&decider.name, &action, to);
    let pressed = match via {
        Via::Card(pressed) => Some(pressed),
        Via::Text => None,
    };
    close_cards(ctx.settings, ctx.now, conn, Some(id), None, &outcome, pressed).await?;
    let (extra, base) = follow_on(ctx, conn, &record, to).await?;
    // A rejection pressed on a card has no reason yet: the reporter is told at once that
    // it will follow, and told again when it does (see `amend_reason`).
    let told = match action {
        Action::Reject { reason: None } => {
            format!(
                "您报备的 #{} {}「{}」已被{}驳回，驳回原因待补充，补充后会再通知您。",
                id,
                record.kind.label(),
                record.what(),
                decider.name
            )
        }
        _ => reporter_message(&record, to, &decider.name, why, base.as_ref()),
    };
    ctx.notify(conn, &[&record.reporter], &told).await?;
    let mut reply = decider_message(&record, to, via, base.as_ref());
    reply.push_str(&extra);
    Ok(reply)
}

/// `驳回 #N 原因` after a reasonless card rejection by the same person adds the reason.
async fn amend_reason(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    decider: &Person,
    r: &Record,
    reason: &str,
) -> Outcome<Option<String>> {
    let amendable = r.state == RecordState::Rejected
        && r.decided_by.as_deref() == Some(decider.userid.as_str())
        && r.reason.as_deref() == Some(DEFAULT_REASON);
    if !amendable {
        return Ok(None);
    }
    records::set_reason(conn, r.id, reason).await?;
    events::append(conn, ctx.now_ms(), NewEvent::record(&decider.userid, r.id, "reason_added").reason(Some(reason)))
        .await?;
    let text =
        format!("您报备的 #{} {}「{}」的驳回原因（{}）：{reason}。", r.id, r.kind.label(), r.what(), decider.name);
    ctx.notify(conn, &[&r.reporter], &text).await?;
    Ok(Some(format!("已补充 #{} 的驳回原因，已通知{}。", r.id, r.reporter_name)))
}

/// The state change an action makes, or why it cannot.
fn transition(ctx: &Ctx<'_>, r: &Record, action: &Action) -> Outcome<(RecordState, RecordState)> {
    let (kind, state) = (r.kind, r.state);
    if !state.is_open() {
        return refuse(already_decided(r));
    }
    match (action, kind, state) {
        (Action::Reject { .. }, _, _) => Ok((state, RecordState::Rejected)),
        (Action::Confirm { .. }, RecordKind::Placement, _) => {
            refuse(format!("#{} 是上岗记录：请在入职满3天后用「在岗 #{}」确认。", r.id, r.id))
        }
        (Action::Confirm { .. }, RecordKind::ChannelAgency | RecordKind::ChannelPerson, RecordState::Reported) => {
            Ok((state, RecordState::Agreed))
        }
        (Action::Confirm { .. }, _, RecordState::Reported) => Ok((state, RecordState::Confirmed)),
        (Action::OnJob | Action::Left { .. }, kind, _) if kind != RecordKind::Placement => {
            refuse(format!("「在岗」「离职」只用于上岗记录，#{} 是{}。", r.id, kind.label()))
        }
        (Action::OnJob, _, RecordState::Onboarded) => {
            let due = r.onboard_date.as_deref().and_then(|d| d.parse().ok()).map(onjob_due);
            match due {
                Some(due) if ctx.today() < due => refuse(format!("#{} 入职未满3天，{due} 起才能确认在岗。", r.id)),
                _ => Ok((state, RecordState::Confirmed)),
            }
        }
        (Action::Left { .. }, _, RecordState::Onboarded) => Ok((state, RecordState::Left)),
        _ => refuse(format!("#{} 当前状态是“{}”，不能这样处理。", r.id, state.label())),
    }
}

fn reason(action: &Action) -> Option<&str> {
    match action {
        Action::Reject { reason: Some(r) } => Some(r.as_str()),
        Action::Reject { reason: None } => Some(DEFAULT_REASON),
        Action::Left { reason } => reason.as_deref(),
        _ => None,
    }
}

/// Who decided a record, when and how: the answer to a second decision.
pub fn already_decided(r: &Record) -> String {
    let (who, at, reason) = match r.state {
        RecordState::Voided => (&r.voided_by_name, r.voided_at, &r.void_reason),
        _ => (&r.decided_by_name, r.decided_at, &r.reason),
    };
    let who = who.as_deref().unwrap_or("系统");
    let when = at.map(format_ms).unwrap_or_default();
    let how = match r.state {
        RecordState::Confirmed if r.kind == RecordKind::Placement => "确认在岗",
        RecordState::Confirmed => "确认",
        RecordState::Rejected => "驳回",
        RecordState::Left => "标记为未满3天离职",
        RecordState::Voided => "作废",
        RecordState::Agreed => "确认协议",
        _ => "处理",
    };
    let reason = reason.as_deref().map(|x| format!("（原因：{x}）")).unwrap_or_default();
    format!("#{} 已由{who}于 {when} {how}{reason}，无需重复操作。", r.id)
}

/// A transfer's closer: as named on confirmation, as named at report, else the confirmer.
async fn set_closer(ctx: &Ctx<'_>, conn: &mut Conn, decider: &Person, r: &Record, named: Option<&str>) -> Outcome<()> {
    if r.mode != Mode::Transfer {
        return Ok(());
    }
    let closer = match named {
        Some(name) => {
            let dept = r.kind.receiving_dept();
            let mut found: Vec<_> =
                directory::find_by_name(conn, name).await?.into_iter().filter(|p| p.kind == dept).collect();
            match found.len() {
                1 => found.remove(0),
                _ => return refuse(format!("“接手”须是{}的一位成员，没有唯一找到“{name}”。", dept.label())),
            }
        }
        None => decider.clone(),
    };
    if records::set_closer(conn, r.id, &closer).await? {
        events::append(conn, ctx.now_ms(), NewEvent::record(&decider.userid, r.id, "closer_set").to(&closer.userid))
            .await?;
    }
    Ok(())
}

fn outcome_label(who: &str, action: &Action, to: RecordState) -> String {
    match (action, to) {
        (Action::Reject { .. }, _) => format!("已由{who}驳回"),
        (Action::OnJob, _) => format!("已由{who}确认在岗"),
        (Action::Left { .. }, _) => format!("已由{who}标记离职"),
        (_, RecordState::Agreed) => format!("已由{who}确认协议"),
        _ => format!("已由{who}确认"),
    }
}

fn reporter_message(r: &Record, to: RecordState, who: &str, reason: Option<&str>, base: Option<&Record>) -> String {
    let head = format!("您报备的 #{} {}「{}」", r.id, r.kind.label(), r.what());
    match to {
        RecordState::Confirmed if let Some(channel) = base => {
            format!(
                "{head}已由{who}确认在岗满3天，计入渠道 #{}「{}」的基础指标（积分归渠道）。",
                channel.id,
                channel.what()
            )
        }
        RecordState::Confirmed if r.kind == RecordKind::Placement => {
            format!("{head}已由{who}确认在岗满3天，{} 分已计入。", r.points)
        }
        RecordState::Confirmed => format!("{head}已由{who}确认，{} 分已计入。", r.points),
        RecordState::Agreed => {
            let need = r.kind.base_indicator().unwrap_or(0);
            format!("{head}的合作协议已由{who}确认；经该渠道 {need} 人在岗满3天后即为有效渠道。")
        }
        RecordState::Rejected => format!("{head}已被{who}驳回，原因：{}。", reason.unwrap_or(DEFAULT_REASON)),
        RecordState::Left => {
            let why = reason.map(|r| format!("，原因：{r}")).unwrap_or_default();
            format!("{head}：上岗人员未满3天离职（{who}确认{why}），不计业绩。")
        }
        _ => format!("{head}状态更新为：{}。", to.label()),
    }
}

fn decider_message(r: &Record, to: RecordState, via: Via<'_>, base: Option<&Record>) -> String {
    let what = format!("#{} {}「{}」（{}）", r.id, r.kind.label(), r.what(), r.reporter_name);
    match to {
        RecordState::Confirmed if let Some(channel) = base => {
            format!("已确认 {what} 在岗，计入渠道 #{}「{}」的基础指标（积分归渠道）。", channel.id, channel.what())
        }
        RecordState::Rejected if matches!(via, Via::Card(_)) => {
            format!("已驳回 {what}。请回复「驳回 #{} 原因」补充驳回原因，报备人会收到。", r.id)
        }
        RecordState::Rejected => format!("已驳回 {what}，已通知报备人。"),
        RecordState::Left => format!("已记录 {what} 未满3天离职，不计业绩。"),
        RecordState::Agreed => format!("已确认 {what} 的合作协议。"),
        _ => format!("已确认 {what}，{} 分计入{}。", r.points, r.reporter_name),
    }
}

/// After an agreement or an on-the-job confirmation: a new channel's base indicator.
/// Returns extra lines for the decider, and the channel a confirmed placement became
/// a base placement of.
pub(super) async fn follow_on(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    r: &Record,
    to: RecordState,
) -> Outcome<(String, Option<Record>)> {
    let channel = match (r.kind, to) {
        (RecordKind::ChannelAgency | RecordKind::ChannelPerson, RecordState::Agreed) => Some(r.clone()),
        (RecordKind::Placement, RecordState::Confirmed) => match r.channel_id {
            Some(subject) => records::channel_record(conn, subject).await?,
            None => None,
        },
        _ => None,
    };
    let Some(channel) = channel else { return Ok((String::new(), None)) };
    let Some(need) = channel.kind.base_indicator() else { return Ok((String::new(), None)) };
    let mut have = records::base_count(conn, channel.id).await?;
    let mut base = None;
    if r.kind == RecordKind::Placement && have < need && channel.state.is_open() {
        make_base(ctx, conn, r.id, &channel).await?;
        have += 1;
        base = Some(channel.clone());
    }
    if channel.state == RecordState::Agreed || (to == RecordState::Agreed && r.id == channel.id) {
        if have >= need {
            return Ok((channel_valid(ctx, conn, &channel, have).await?, base));
        }
        return Ok((format!("\n渠道「{}」基础指标：{have}/{need} 人在岗满3天。", channel.what()), base));
    }
    Ok((String::new(), base))
}

/// Makes a confirmed placement one of a channel's base placements (its points become
/// the channel's), logged.
async fn make_base(ctx: &Ctx<'_>, conn: &mut Conn, placement: i64, channel: &Record) -> Outcome<()> {
    records::set_base_for(conn, placement, channel.id).await?;
    let event = NewEvent::record(ctx.actor_id(), placement, "base_placement")
        .to(channel.id)
        .reason(Some(format!("计入渠道 #{} 的基础指标（积分归渠道）", channel.id)));
    events::append(conn, ctx.now_ms(), event).await?;
    Ok(())
}

/// After a placement stopped counting (voided) or counts again (restored): the channel
/// it is a base placement of is checked again. A valid channel short of its base
/// indicator takes another placement through it that is not a base yet, or else goes
/// back to waiting for its base indicator (its points no longer count), and its
/// reporter and confirmers are told. A restored placement beyond what the channel needs
/// counts as a placement again. Returns a line for the actor.
pub async fn recheck_channel(ctx: &Ctx<'_>, conn: &mut Conn, placement: &Record) -> Outcome {
    let Some(channel_id) = placement.base_for else { return Ok(String::new()) };
    let Some(channel) = records::get(conn, channel_id).await? else { return Ok(String::new()) };
    let Some(need) = channel.kind.base_indicator() else { return Ok(String::new()) };
    let mut have = records::base_count(conn, channel.id).await?;
    let restored = records::get(conn, placement.id).await?.is_some_and(|p| p.state == RecordState::Confirmed);
    if restored {
        if have > need {
            records::clear_base_for(conn, placement.id).await?;
            return Ok(String::new());
        }
        if channel.state == RecordState::Agreed && have >= need {
            return channel_valid(ctx, conn, &channel, have).await;
        }
        return Ok(String::new());
    }
    if channel.state != RecordState::Confirmed || have >= need {
        return Ok(String::new());
    }
    for spare in records::spare_placements(conn, channel.id).await? {
        if have >= need {
            break;
        }
        make_base(ctx, conn, spare, &channel).await?;
        have += 1;
    }
    if have >= need {
        return Ok(format!("\n渠道 #{}「{}」的基础指标由其他在岗人员补足，仍为有效渠道。", channel.id, channel.what()));
    }
    let (from, to) = (RecordState::Confirmed, RecordState::Agreed);
    let why = format!("基础指标不足：#{} 不再计入，现 {have}/{need} 人在岗满3天", placement.id);
    if !records::transition(conn, channel.id, from, to, ctx.actor_id(), ctx.now_ms(), None).await? {
        return Ok(String::new());
    }
    let event = NewEvent::record(ctx.actor_id(), channel.id, to.code())
        .from(from.code())
        .to(to.code())
        .reason(Some(why.as_str()));
    events::append(conn, ctx.now_ms(), event).await?;
    let text = format!(
        "您报备的 #{} {}「{}」{why}，暂不再是有效渠道，{} 分暂不计入；再有人经该渠道在岗满3天后恢复。",
        channel.id,
        channel.kind.label(),
        channel.what(),
        channel.points
    );
    ctx.notify(conn, &[&channel.reporter], &text).await?;
    let confirmers: Vec<String> = directory::confirmers(conn, channel.kind.receiving_dept())
        .await?
        .into_iter()
        .map(|p| p.userid)
        .filter(|u| *u != channel.reporter)
        .collect();
    let refs: Vec<&str> = confirmers.iter().map(String::as_str).collect();
    if !refs.is_empty() {
        let note = format!("渠道 #{}「{}」{why}，已退回“{}”。", channel.id, channel.what(), to.label());
        ctx.notify(conn, &refs, &note).await?;
    }
    Ok(format!("\n渠道 #{}「{}」{why}，已退回“{}”，已通知报备人和确认人。", channel.id, channel.what(), to.label()))
}

async fn channel_valid(ctx: &Ctx<'_>, conn: &mut Conn, channel: &Record, have: i64) -> Outcome {
    let (from, to) = (RecordState::Agreed, RecordState::Confirmed);
    if !records::transition(conn, channel.id, from, to, ctx.actor_id(), ctx.now_ms(), None).await? {
        return Ok(String::new());
    }
    let event = NewEvent::record(ctx.actor_id(), channel.id, to.code())
        .from(from.code())
        .to(to.code())
        .reason(Some(format!("基础指标达成：{have} 人在岗满3天")));
    events::append(conn, ctx.now_ms(), event).await?;
    let text = format!(
        "🎉 您报备的 #{} {}「{}」已有 {have} 人在岗满3天，成为有效渠道，{} 分已计入。",
        channel.id,
        channel.kind.label(),
        channel.what(),
        channel.points
    );
    ctx.notify(conn, &[&channel.reporter], &text).await?;
    Ok(format!("\n渠道「{}」基础指标达成，已成为有效渠道。", channel.what()))
}
