//! Reporting (C类, B类, A类, 院校渠道, 机构渠道, 个人渠道, 上岗, 转介绍): check the
//! programme period and the fields, resolve the client or channel, apply first claim
//! wins, create the record with its points fixed, log it, send the confirmers' card,
//! and answer.

use crate::clock::format_ms;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::names::{core_name, looks_alike};
use crate::domain::org::DeptKind;
use crate::domain::record::{LeadStages, Mode, RecordState};
use crate::domain::text::{BoundedText, CreditCode};
use crate::service::access::Operation;
use crate::service::cards;
use crate::service::decide::onjob_due;
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::cards::Purpose;
use crate::store::contests;
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Family, FlagKind, NewRecord, Origin};
use crate::store::violated;
use chrono::{NaiveDate, NaiveDateTime};
use tracing::instrument;

/// A report, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportInput {
    pub kind: RecordKind,
    pub subject: Subject,
    pub mode: Mode,
    /// A transfer's closer named by the reporter (`接手`).
    pub closer: Option<BoundedText>,
    /// A deal's amount (A-class).
    pub amount: Option<Fen>,
    /// A B-class client's meeting (`约面`).
    pub meeting: Option<NaiveDateTime>,
    /// Every field as reported (its label → text), stored with the record.
    pub fields: serde_json::Value,
}

/// What a report claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Client {
        name: BoundedText,
        credit_code: Option<CreditCode>,
    },
    Channel {
        name: BoundedText,
    },
    /// `channel`: a channel's name; `None` (or `自招`) for self-recruited.
    Placement {
        person: BoundedText,
        onboard: NaiveDate,
        channel: Option<BoundedText>,
    },
    Referral {
        old_client: BoundedText,
        new_client: BoundedText,
    },
}

/// What a report claims, once resolved and checked under first claim wins.
pub(super) struct Claimed {
    pub subject_id: Option<i64>,
    pub subject_name: String,
    /// The subject's name as stored (a claim by a variant of a known name is the known
    /// subject), for the card.
    pub stored_name: Option<String>,
    /// The subject was created by this report: no record can claim it yet.
    pub new_subject: bool,
    pub slot: Option<&'static str>,
    pub channel_id: Option<i64>,
    /// A placement's placed person (core name) and 入职 date.
    pub person_key: Option<String>,
    pub onboard_date: Option<String>,
    pub closer: Option<Person>,
    /// What the confirmers and the audit group should know (stored once the record is).
    pub flags: Vec<(FlagKind, Option<i64>, String)>,
}

/// Checks a report (new, or an edit of record `except`) and resolves what it claims:
/// the period, the closer, the client or channel under first claim wins, the placement
/// under one-live-placement, and the flags for look-alike names.
pub(super) async fn prepare(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    reporter: &Person,
    input: &ReportInput,
    except: Option<i64>,
) -> Outcome<Claimed> {
    let kind = input.kind;
    check_period(ctx, kind)?;
    if let Some(meeting) = input.meeting {
        check_meeting(ctx, meeting.date())?;
    }
    let closer = closer(conn, input, kind.receiving_dept()).await?;
    let mut claimed = claim(ctx, conn, input, except).await?;
    claimed.closer = closer;
    if let (Some(subject_id), Some(slot)) = (claimed.subject_id, claimed.slot) {
        // A subject this report just created has no claims to check against.
        let claims = !claimed.new_subject;
        if claims && let Some(holder) = records::live_claim(conn, subject_id, slot, except).await? {
            return refuse(already_claimed(reporter, kind, &claimed.subject_name, &holder));
        }
        // A referral's new client is claimed against every stage, and a stage against a
        // colleague's referral: whoever reported the client first has it.
        let others = if claims { records::other_live_claims(conn, subject_id, except).await? } else { Vec::new() };
        for (other_slot, holder) in others {
            let blocks = match kind {
                RecordKind::Referral => other_slot != "referral",
                k if k.is_lead() => other_slot == "referral" && holder.reporter != reporter.userid,
                _ => false,
            };
            if blocks {
                return refuse(already_claimed(reporter, kind, &claimed.subject_name, &holder));
            }
        }
        let family = if kind.receiving_dept() == DeptKind::Tr { Family::Channel } else { Family::Client };
        let key = core_name(&claimed.subject_name);
        let others = records::look_alike_names(conn, family, &key, subject_id).await?;
        flag_look_alikes(&mut claimed, &key, &others);
    }
    if let (Some(person), Some(day)) = (&claimed.person_key, &claimed.onboard_date) {
        if let Some(holder) = records::live_placement(conn, person, day, except).await? {
            let placed = format!("{}（{day} 入职）", claimed.subject_name);
            return refuse(already_claimed(reporter, kind, &placed, &holder));
        }
        let key = person.clone();
        let others = records::look_alike_people(conn, &key, except).await?;
        flag_look_alikes(&mut claimed, &key, &others);
    }
    Ok(claimed)
}

/// Flags the claim when its core name looks like a live claim's (at most three named).
fn flag_look_alikes(claimed: &mut Claimed, key: &str, others: &[records::LiveName]) {
    for other in others.iter().filter(|o| looks_alike(key, &o.name_key)).take(3) {
        let detail = format!(
            "与 #{}「{}」（{}）名称相近，请核实是否同一对象",
            other.record_id, other.subject, other.reporter_name
        );
        claimed.flags.push((FlagKind::LookAlike, Some(other.record_id), detail));
    }
}

/// Stores a record's flags and logs them.
pub(super) async fn store_flags(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    id: i64,
    flags: &[(FlagKind, Option<i64>, String)],
) -> Outcome<()> {
    for (kind, other_id, detail) in flags {
        let flag = records::Flag { record_id: id, other_id: *other_id, kind: *kind, detail: detail.clone() };
        records::insert_flag(conn, &flag, ctx.now_ms()).await?;
        let event = NewEvent::record(ctx.actor_id(), id, "flagged").to(kind.code()).reason(Some(detail.as_str()));
        events::append(conn, ctx.now_ms(), event).await?;
    }
    Ok(())
}

/// Reports; answers the reporter with the record's number, points, state and who was
/// asked to confirm.
#[instrument(level = "debug", skip_all, fields(kind = input.kind.code(), actor = ctx.actor_id()))]
pub async fn report(ctx: &Ctx<'_>, conn: &mut Conn, input: &ReportInput) -> Outcome {
    let reporter = ctx.authorize(Operation::Report)?;
    let kind = input.kind;
    let claimed = prepare(ctx, conn, reporter, input, None).await?;
    let record = new_record(ctx, reporter, input, &claimed);
    let id = match records::insert(conn, &record).await {
        Ok(id) => id,
        // Someone else's claim committed between our check and insert: the index decides.
        Err(e) if violated(&e).is_some() => {
            return refuse(format!("「{}」刚刚已被他人报备，先报先得。", claimed.subject_name));
        }
        Err(e) => return Err(e.into()),
    };
    let event = NewEvent::record(&reporter.userid, id, "reported").to(record.state.code()).data(record.fields.clone());
    events::append(conn, ctx.now_ms(), event).await?;
    store_flags(ctx, conn, id, &claimed.flags).await?;
    let (confirmers, by_audit) = asked_to_confirm(conn, ctx.settings, kind, &reporter.userid).await?;
    // A placement's confirmers are asked on its day-3 check (the day-3 job's card).
    if kind != RecordKind::Placement {
        // The card is built from what was just written, not read back.
        let stored = stored_record(id, reporter, &record, &claimed);
        if cfg!(debug_assertions) {
            let read = records::get(conn, id).await?.ok_or(sqlx::Error::RowNotFound)?;
            assert_eq!(read, stored, "the record built in hand is the one stored");
        }
        let notes: Vec<&str> = claimed.flags.iter().map(|(_, _, detail)| detail.as_str()).collect();
        cards::send_record_card_noting(ctx.settings, ctx.now, conn, &stored, Purpose::Confirm, &confirmers, &notes)
            .await?;
    }
    let day3_due = matches!(&input.subject, Subject::Placement { onboard, .. } if onjob_due(*onboard) <= ctx.today());
    let base = base_channel(conn, &claimed).await?;
    let asked = Asked { confirmers: &confirmers, by_audit, day3_due };
    let mut answer = accepted(id, &record, &claimed, base.as_ref(), &asked);
    answer.push_str(&after_cut_off(ctx, conn, reporter, kind).await?);
    Ok(answer)
}

/// The stored form of a record just inserted, from what was inserted.
fn stored_record(id: i64, reporter: &Person, record: &NewRecord, claimed: &Claimed) -> records::Record {
    records::Record {
        id,
        kind: record.kind,
        mode: record.mode,
        reporter: record.reporter.clone(),
        reporter_name: reporter.name.clone(),
        closer: record.closer.as_ref().map(|c| c.userid.clone()),
        subject_id: record.subject_id,
        subject: claimed.stored_name.clone(),
        channel_id: record.channel_id,
        onboard_date: record.onboard_date.clone(),
        fields: record.fields.to_string(),
        points: record.points,
        state: record.state,
        occurred_at: record.occurred_at,
        decided_by: None,
        decided_by_name: None,
        decided_at: None,
        reason: None,
        base_for: None,
        voided_from: None,
        voided_by_name: None,
        voided_at: None,
        void_reason: None,
    }
}

/// A report just after the cut-off of a contest its reporter is in: it does not count
/// there, and they should know.
async fn after_cut_off(ctx: &Ctx<'_>, conn: &mut Conn, reporter: &Person, kind: RecordKind) -> Outcome {
    const WEEK_MS: i64 = 7 * 86_400_000;
    let now = ctx.now_ms();
    let mut missed = Vec::new();
    for def in ctx.settings.contests.iter().filter(|d| d.cutoff_ms <= now && now < d.cutoff_ms + WEEK_MS) {
        if def.kinds.contains(&kind) && contests::membership(conn, &def.id, &reporter.userid).await?.is_some() {
            missed.push(format!("「{}」已于 {} 截止", def.name, format_ms(def.cutoff_ms)));
        }
    }
    if missed.is_empty() {
        return Ok(String::new());
    }
    Ok(format!("\n注意：{}，本条不计入该比赛（仍计入月度奖励）。", missed.join("、")))
}

/// Who is asked to confirm a record of `kind` reported by `reporter`: the receiving
/// department's confirmers other than the reporter; when there is none (a confirmer
/// reported it, and is the only one), the audit group, who may then decide it.
pub async fn confirmers_for(
    conn: &mut Conn,
    settings: &crate::config::Settings,
    kind: RecordKind,
    reporter: &str,
) -> Result<Vec<Person>, sqlx::Error> {
    Ok(asked_to_confirm(conn, settings, kind, reporter).await?.0)
}

/// [`confirmers_for`], and whether they are the audit group standing in.
async fn asked_to_confirm(
    conn: &mut Conn,
    settings: &crate::config::Settings,
    kind: RecordKind,
    reporter: &str,
) -> Result<(Vec<Person>, bool), sqlx::Error> {
    let confirmers: Vec<Person> = directory::confirmers(conn, kind.receiving_dept())
        .await?
        .into_iter()
        .filter(|c| c.userid != reporter)
        .collect();
    if !confirmers.is_empty() {
        return Ok((confirmers, false));
    }
    let mut auditors = Vec::new();
    for userid in settings.roles.audit_group.iter().filter(|a| *a != reporter) {
        if let Some(p) = directory::find(conn, userid).await?.filter(|p| p.active) {
            auditors.push(p);
        }
    }
    Ok((auditors, true))
}

/// Whether a record of `kind` reported by `reporter` has no confirmer but its reporter,
/// so that the audit group decides it.
pub async fn audit_decides(conn: &mut Conn, kind: RecordKind, reporter: &str) -> Result<bool, sqlx::Error> {
    Ok(directory::confirmers(conn, kind.receiving_dept()).await?.iter().all(|c| c.userid == reporter))
}

/// The channel record a placement would count toward (its base indicator), while that
/// channel is not yet valid.
pub(super) async fn base_channel(conn: &mut Conn, claimed: &Claimed) -> Outcome<Option<records::Record>> {
    let Some(subject) = claimed.channel_id else { return Ok(None) };
    Ok(records::channel_record(conn, subject).await?.filter(|c| c.state.is_open() && c.kind.base_indicator().is_some()))
}

/// Reports dated outside the activity period (referrals: their own period) are refused.
fn check_period(ctx: &Ctx<'_>, kind: RecordKind) -> Outcome<()> {
    let Some(programme) = &ctx.settings.programme else { return Ok(()) };
    let (start, end, what) =
        if kind == RecordKind::Referral && (programme.referral_start.is_some() || programme.referral_end.is_some()) {
            (programme.referral_start, programme.referral_end, "裂变活动")
        } else {
            (programme.start, programme.end, "全员营销活动")
        };
    let today = ctx.today();
    let before = start.is_some_and(|s| today < s);
    let after = end.is_some_and(|e| today > e);
    if before || after {
        let show = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "不限".into());
        return refuse(format!("{what}的活动周期是 {} 至 {}，今天不在周期内，无法报备。", show(start), show(end)));
    }
    Ok(())
}

/// The receiving department's member named by `接手`, for transfers.
async fn closer(conn: &mut Conn, input: &ReportInput, receiving: DeptKind) -> Outcome<Option<Person>> {
    let Some(name) = &input.closer else { return Ok(None) };
    if input.mode != Mode::Transfer {
        return refuse("只有 方式=转接 的记录才需要填写“接手”。");
    }
    let people = directory::find_by_name(conn, name.as_str()).await?;
    let in_dept: Vec<&Person> = people.iter().filter(|p| p.kind == receiving).collect();
    match in_dept.as_slice() {
        [one] => Ok(Some((*one).clone())),
        [] => refuse(format!("“接手”须是{}的成员，没有找到“{name}”。", receiving.label())),
        many => {
            let ids: Vec<&str> = many.iter().map(|p| p.userid.as_str()).collect();
            refuse(format!("“{name}”有重名，请写账号：{}。", ids.join("、")))
        }
    }
}

async fn claim(ctx: &Ctx<'_>, conn: &mut Conn, input: &ReportInput, except: Option<i64>) -> Outcome<Claimed> {
    let slot = input.kind.claim_slot();
    let claimed = |resolved: Resolved, name: &BoundedText, flags| Claimed {
        subject_id: Some(resolved.id),
        subject_name: name.to_string(),
        stored_name: Some(resolved.stored_name),
        new_subject: resolved.new,
        slot,
        channel_id: None,
        person_key: None,
        onboard_date: None,
        closer: None,
        flags,
    };
    match &input.subject {
        Subject::Client { name, credit_code } => {
            let (resolved, flags) = resolve(ctx, conn, Family::Client, name, credit_code.as_ref()).await?;
            Ok(claimed(resolved, name, flags))
        }
        Subject::Channel { name } => {
            let (resolved, flags) = resolve(ctx, conn, Family::Channel, name, None).await?;
            Ok(claimed(resolved, name, flags))
        }
        Subject::Referral { old_client, new_client } => {
            let (old_key, new_key) = (core_name(old_client.as_str()), core_name(new_client.as_str()));
            if old_key == new_key {
                return refuse(format!("老客户和新客户是同一家（「{old_client}」）：转介绍须介绍一家新的客户。"));
            }
            let mut flags = Vec::new();
            let known = match records::subject_by_name(conn, Family::Client, &old_key).await? {
                Some(s) => records::subject_has_records(conn, s.id, except).await?,
                None => false,
            };
            if !known {
                let detail = format!("老客户「{old_client}」在系统中没有记录（可能是活动前的客户），请核实");
                flags.push((FlagKind::UnknownClient, None, detail));
            }
            let (resolved, more) = resolve(ctx, conn, Family::Client, new_client, None).await?;
            flags.extend(more);
            Ok(claimed(resolved, new_client, flags))
        }
        Subject::Placement { person, onboard, channel } => {
            placement(ctx, conn, person, *onboard, channel.as_ref()).await
        }
    }
}

async fn placement(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    person: &BoundedText,
    onboard: NaiveDate,
    channel: Option<&BoundedText>,
) -> Outcome<Claimed> {
    if onboard > ctx.today() {
        return refuse(format!("入职日期 {onboard} 还没到：请在入职当天或之后报备。"));
    }
    let earliest = earliest_onboarding(ctx);
    if onboard < earliest {
        return refuse(format!("入职日期 {onboard} 太早：只能报备 {earliest} 及以后入职的人员，请核对日期。"));
    }
    let channel_id = match channel.filter(|c| c.as_str() != "自招") {
        None => None,
        Some(name) => {
            let subject = records::subject_by_name(conn, Family::Channel, &core_name(name.as_str())).await?;
            match subject {
                Some(s) if records::channel_is_live(conn, s.id).await? => Some(s.id),
                _ => {
                    return refuse(format!(
                        "没有找到渠道“{name}”：请填写已报备的渠道名称，自己招聘的请写 渠道=自招；\
                         活动前已有的老渠道请招商引才事业部确认人先发送「登记老渠道 名称={name}」。"
                    ));
                }
            }
        }
    };
    Ok(Claimed {
        subject_id: None,
        subject_name: person.to_string(),
        stored_name: None,
        new_subject: false,
        slot: None,
        channel_id,
        person_key: Some(core_name(person.as_str())),
        onboard_date: Some(onboard.to_string()),
        closer: None,
        flags: Vec::new(),
    })
}

/// A meeting before the programme (or more than a year back without one) or more than a
/// year ahead is a typo.
fn check_meeting(ctx: &Ctx<'_>, day: NaiveDate) -> Outcome<()> {
    let earliest = earliest_onboarding(ctx);
    let latest = ctx.today().checked_add_days(chrono::Days::new(365)).unwrap_or(ctx.today());
    if day < earliest {
        return refuse(format!("约面日期 {day} 太早：只能填写 {earliest} 及以后的日期，请核对。"));
    }
    if day > latest {
        return refuse(format!("约面日期 {day} 在一年以后，请核对日期（最晚 {latest}）。"));
    }
    Ok(())
}

/// The earliest onboarding a placement may report: the programme's start, or without
/// one a year back (an older date is a typo, and would be due for its day-3 check at once).
fn earliest_onboarding(ctx: &Ctx<'_>) -> NaiveDate {
    let today = ctx.today();
    let year_ago = today.checked_sub_days(chrono::Days::new(365)).unwrap_or(today);
    ctx.settings.programme.as_ref().and_then(|p| p.start).unwrap_or(year_ago)
}

/// The client or channel a name (or credit code) identifies, created on first report,
/// with any flag the resolution raised. A credit code identifies the company only
/// while it is bound to the same core name: a code bound to a different name is not
/// trusted (whoever typed a company's code first under another name must not block
/// the company's genuine report); the claim goes by its name and is flagged. A name
/// that looks like the bound one (杭州云帆科技 for 云帆科技) is the same company. A name
/// registered under a different valid code is refused for the reporter to check.
/// The subject a claim resolved to.
struct Resolved {
    id: i64,
    stored_name: String,
    /// Created now, by this claim.
    new: bool,
}

async fn resolve(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    family: Family,
    name: &BoundedText,
    code: Option<&CreditCode>,
) -> Outcome<(Resolved, Vec<(FlagKind, Option<i64>, String)>)> {
    let now_ms = ctx.now_ms();
    let known = |s: records::Subject| Resolved { id: s.id, stored_name: s.name, new: false };
    let key = core_name(name.as_str());
    let mut flags = Vec::new();
    let mut code = code;
    if let Some(c) = code
        && let Some(s) = records::subject_by_code(conn, family, c.as_str()).await?
    {
        let bound = core_name(&s.name);
        if bound == key || looks_alike(&bound, &key) {
            return Ok((known(s), flags));
        }
        let holder = records::first_record_of(conn, s.id).await?;
        let detail = match holder {
            Some(id) => format!("信用代码 {} 已登记在「{}」（#{id}）名下，请核实", c.as_str(), s.name),
            None => format!("信用代码 {} 已登记在「{}」名下，请核实", c.as_str(), s.name),
        };
        flags.push((FlagKind::CreditCode, holder, detail));
        code = None;
    }
    match records::subject_by_name(conn, family, &key).await? {
        Some(s) => match (code, &s.credit_code) {
            (Some(_), Some(_)) => refuse(format!(
                "「{}」已登记了不同的统一社会信用代码：请核对您填写的代码；如确属另一家公司，请联系业绩审核组处理。",
                s.name
            )),
            (Some(code), None) => {
                records::set_subject_code(conn, s.id, code.as_str()).await?;
                let event = NewEvent::new(ctx.actor_id(), "subject", s.id, "credit_code_set").to(code.as_str());
                events::append(conn, now_ms, event).await?;
                Ok((known(s), flags))
            }
            (None, _) => Ok((known(s), flags)),
        },
        None => {
            let code = code.map(CreditCode::as_str);
            let id = records::insert_subject(conn, family, name.as_str(), &key, code, Origin::Reported, now_ms).await?;
            Ok((Resolved { id, stored_name: name.to_string(), new: true }, flags))
        }
    }
}

fn new_record(ctx: &Ctx<'_>, reporter: &Person, input: &ReportInput, claimed: &Claimed) -> NewRecord {
    let kind = input.kind;
    let is_lead = matches!(kind, RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA);
    let stage_rule = match ctx.settings.points.lead_stages {
        LeadStages::Highest if is_lead => LeadStages::Highest,
        _ => LeadStages::Cumulative,
    };
    NewRecord {
        kind,
        mode: input.mode,
        reporter: reporter.userid.clone(),
        reporter_dept: reporter.department_id,
        reporter_class: reporter.kind,
        closer: claimed.closer.clone(),
        subject_id: claimed.subject_id,
        claim_slot: claimed.slot,
        channel_id: claimed.channel_id,
        onboard_date: claimed.onboard_date.clone(),
        person_key: claimed.person_key.clone(),
        amount_fen: input.amount.map(|a| a.0),
        fields: input.fields.clone(),
        points: ctx.settings.points.for_kind(kind),
        stage_rule,
        state: if kind == RecordKind::Placement { RecordState::Onboarded } else { RecordState::Reported },
        occurred_at: ctx.now_ms(),
    }
}

pub(super) fn already_claimed(reporter: &Person, kind: RecordKind, subject: &str, holder: &records::Claim) -> String {
    if holder.reporter == reporter.userid {
        return format!(
            "「{subject}」您已于 {} 报备过（#{}，{}），无需重复报备。发送「我的」查看。",
            format_ms(holder.occurred_at),
            holder.record_id,
            holder.state.label()
        );
    }
    let what = match kind {
        RecordKind::Referral => "客户".to_owned(),
        RecordKind::Placement => "安置上岗".to_owned(),
        k if k.receiving_dept() == DeptKind::Tr => "渠道".to_owned(),
        _ => "客户".to_owned(),
    };
    format!(
        "「{subject}」的{what}已由{}于 {} 报备（#{}，{}），先报先得，本次不予登记。",
        holder.reporter_name,
        format_ms(holder.occurred_at),
        holder.record_id,
        holder.state.label()
    )
}

/// Who a report's answer says was asked to confirm it.
struct Asked<'a> {
    confirmers: &'a [Person],
    /// The audit group, for want of another confirmer.
    by_audit: bool,
    /// A placement reported late: its day-3 check is due already.
    day3_due: bool,
}

/// The answer to an accepted report.
fn accepted(id: i64, r: &NewRecord, claimed: &Claimed, base: Option<&records::Record>, asked: &Asked<'_>) -> String {
    let (kind, confirmers, by_audit, day3_due) = (r.kind, asked.confirmers, asked.by_audit, asked.day3_due);
    let mut lines = vec![format!("✅ 已登记 #{id} {}", kind.label())];
    let label = match kind {
        RecordKind::Placement => "人员",
        RecordKind::Referral => "新客户",
        k if k.receiving_dept() == DeptKind::Tr => "渠道",
        _ => "公司",
    };
    lines.push(format!("{label}：{}", claimed.subject_name));
    // What was recorded, as the record keeps it.
    let field = |key: &str| r.fields.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(amount) = r.amount_fen {
        lines.push(format!("金额：{} 元", Fen(amount).grouped()));
    }
    for key in ["老客户", "约面", "入职"] {
        if let Some(value) = field(key) {
            lines.push(format!("{key}：{value}"));
        }
    }
    if kind == RecordKind::Placement {
        lines.push(format!("渠道：{}", field("渠道").unwrap_or_else(|| "自招".into())));
    }
    if r.mode == Mode::Transfer {
        lines.push("方式：转接".into());
    }
    if let Some(closer) = &r.closer {
        lines.push(format!("接手：{}", closer.name));
    }
    lines.push(match base {
        Some(channel) => {
            format!("积分：计入渠道 #{}「{}」的基础指标（渠道有效后积分归渠道）", channel.id, channel.what())
        }
        None => format!("积分：{} 分（确认后计入）", r.points),
    });
    lines.push(if day3_due {
        "状态：入职已满3天，待确认在岗".to_owned()
    } else {
        format!("状态：{}", r.state.label())
    });
    for (_, _, detail) in &claimed.flags {
        lines.push(format!("⚠️ {detail}"));
    }
    let names: Vec<&str> = confirmers.iter().map(|c| c.name.as_str()).collect();
    let who =
        if names.is_empty() { "尚未配置确认人，请联系管理员".to_owned() } else { names.join("、") };
    let dept = if by_audit && !confirmers.is_empty() {
        format!("{}无其他确认人，由业绩审核组", kind.receiving_dept().label())
    } else {
        kind.receiving_dept().label().to_owned()
    };
    lines.push(match kind {
        RecordKind::Placement if day3_due => format!("确认：{dept}（{who}）将收到在岗确认卡片"),
        RecordKind::Placement => format!("确认：入职第3天起由{dept}（{who}）确认在岗"),
        RecordKind::ChannelAgency => format!("确认：{dept}（{who}）确认协议；经该渠道3人在岗满3天后有效"),
        RecordKind::ChannelPerson => format!("确认：{dept}（{who}）确认协议；经该渠道1人在岗满3天后有效"),
        _ => format!("确认：{dept}（{who}）"),
    });
    lines.push(format!("如需更正：「修改 #{id} 字段=新值」或「撤回 #{id}」"));
    lines.join("\n")
}
