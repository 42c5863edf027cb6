//! Reporting (C类, B类, A类, 院校渠道, 机构渠道, 个人渠道, 上岗, 转介绍): check the
//! programme period and the fields, resolve the client or channel, apply first claim
//! wins, create the record with its points fixed, log it, send the confirmers' card,
//! and answer.

use crate::clock::format_ms;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::org::DeptKind;
use crate::domain::record::{LeadStages, Mode, RecordState};
use crate::domain::text::{BoundedText, CreditCode, name_key};
use crate::service::access::Operation;
use crate::service::cards;
use crate::service::{Ctx, Outcome, refuse};
use crate::store::cards::Purpose;
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Family, NewRecord, Origin};
use crate::store::violated;
use chrono::NaiveDate;
use sqlx::SqliteConnection;
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

/// What a report claims, once resolved.
struct Claimed {
    subject_id: Option<i64>,
    subject_name: String,
    slot: Option<&'static str>,
    channel_id: Option<i64>,
}

/// Reports; answers the reporter with the record's number, points, state and who was
/// asked to confirm.
#[instrument(level = "debug", skip_all, fields(kind = input.kind.code(), actor = ctx.actor_id()))]
pub async fn report(ctx: &Ctx<'_>, conn: &mut SqliteConnection, input: &ReportInput) -> Outcome {
    let reporter = ctx.authorize(Operation::Report)?;
    let kind = input.kind;
    check_period(ctx, kind)?;
    let receiving = kind.receiving_dept();
    let closer = closer(conn, input, receiving).await?;
    let claimed = claim(ctx, conn, input).await?;
    if let (Some(subject_id), Some(slot)) = (claimed.subject_id, claimed.slot)
        && let Some(holder) = records::live_claim(conn, subject_id, slot).await?
    {
        return refuse(already_claimed(reporter, kind, &claimed.subject_name, &holder));
    }
    let record = new_record(ctx, reporter, input, &claimed, closer);
    if let (Some(person), Some(day)) = (&record.person_key, &record.onboard_date)
        && let Some(holder) = records::live_placement(conn, person, day).await?
    {
        let placed = format!("{}（{day} 入职）", claimed.subject_name);
        return refuse(already_claimed(reporter, kind, &placed, &holder));
    }
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
    let confirmers: Vec<Person> =
        directory::confirmers(conn, receiving).await?.into_iter().filter(|c| c.userid != reporter.userid).collect();
    if kind != RecordKind::Placement {
        let stored = records::get(conn, id).await?.ok_or(sqlx::Error::RowNotFound)?;
        cards::send_record_card(ctx.settings, ctx.now, conn, &stored, Purpose::Confirm, &confirmers).await?;
    }
    Ok(accepted(id, kind, &record, &claimed.subject_name, &confirmers))
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
async fn closer(conn: &mut SqliteConnection, input: &ReportInput, receiving: DeptKind) -> Outcome<Option<Person>> {
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

async fn claim(ctx: &Ctx<'_>, conn: &mut SqliteConnection, input: &ReportInput) -> Outcome<Claimed> {
    let claimed = |subject_id, name: &BoundedText, slot| Claimed {
        subject_id: Some(subject_id),
        subject_name: name.to_string(),
        slot: Some(slot),
        channel_id: None,
    };
    match &input.subject {
        Subject::Client { name, credit_code } => {
            let id = resolve(ctx, conn, Family::Client, name, credit_code.as_ref()).await?;
            Ok(claimed(id, name, input.kind.code()))
        }
        Subject::Channel { name } => {
            Ok(claimed(resolve(ctx, conn, Family::Channel, name, None).await?, name, "channel"))
        }
        Subject::Referral { old_client, new_client } => {
            resolve(ctx, conn, Family::Client, old_client, None).await?;
            Ok(claimed(resolve(ctx, conn, Family::Client, new_client, None).await?, new_client, "referral"))
        }
        Subject::Placement { person, onboard, channel } => {
            placement(ctx, conn, person, *onboard, channel.as_ref()).await
        }
    }
}

async fn placement(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
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
            let subject = records::subject_by_name(conn, Family::Channel, &name_key(name.as_str())).await?;
            match subject {
                Some(s) if records::channel_is_live(conn, s.id).await? => Some(s.id),
                _ => {
                    return refuse(format!("没有找到渠道“{name}”：请填写已报备的渠道名称，自己招聘的请写 渠道=自招。"));
                }
            }
        }
    };
    Ok(Claimed { subject_id: None, subject_name: person.to_string(), slot: None, channel_id })
}

/// The earliest onboarding a placement may report: the programme's start, or without
/// one a year back (an older date is a typo, and would be due for its day-3 check at once).
fn earliest_onboarding(ctx: &Ctx<'_>) -> NaiveDate {
    let today = ctx.today();
    let year_ago = today.checked_sub_days(chrono::Days::new(365)).unwrap_or(today);
    ctx.settings.programme.as_ref().and_then(|p| p.start).unwrap_or(year_ago)
}

/// The client or channel a name (or credit code) identifies, created on first report.
/// A credit code wins over the name; a name already registered under a different code
/// is a different company and must be told apart.
async fn resolve(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    family: Family,
    name: &BoundedText,
    code: Option<&CreditCode>,
) -> Outcome<i64> {
    let now_ms = ctx.now_ms();
    if let Some(code) = code
        && let Some(s) = records::subject_by_code(conn, family, code.as_str()).await?
    {
        return Ok(s.id);
    }
    let key = name_key(name.as_str());
    match records::subject_by_name(conn, family, &key).await? {
        Some(s) => match (code, &s.credit_code) {
            (Some(_), Some(_)) => refuse(format!(
                "已有同名公司“{}”登记了不同的统一社会信用代码：请核对代码，或在名称中注明区别（如所在城市）。",
                s.name
            )),
            (Some(code), None) => {
                records::set_subject_code(conn, s.id, code.as_str()).await?;
                let event = NewEvent::new(ctx.actor_id(), "subject", s.id, "credit_code_set").to(code.as_str());
                events::append(conn, now_ms, event).await?;
                Ok(s.id)
            }
            (None, _) => Ok(s.id),
        },
        None => {
            let code = code.map(CreditCode::as_str);
            Ok(records::insert_subject(conn, family, name.as_str(), &key, code, Origin::Reported, now_ms).await?)
        }
    }
}

fn new_record(
    ctx: &Ctx<'_>,
    reporter: &Person,
    input: &ReportInput,
    claimed: &Claimed,
    closer: Option<Person>,
) -> NewRecord {
    let kind = input.kind;
    let is_lead = matches!(kind, RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA);
    let stage_rule = match ctx.settings.points.lead_stages {
        LeadStages::Highest if is_lead => LeadStages::Highest,
        _ => LeadStages::Cumulative,
    };
    let (onboard_date, person_key) = match &input.subject {
        Subject::Placement { person, onboard, .. } => (Some(onboard.to_string()), Some(name_key(person.as_str()))),
        _ => (None, None),
    };
    NewRecord {
        kind,
        mode: input.mode,
        reporter: reporter.userid.clone(),
        reporter_dept: reporter.department_id,
        reporter_class: reporter.kind,
        closer,
        subject_id: claimed.subject_id,
        claim_slot: claimed.slot,
        channel_id: claimed.channel_id,
        onboard_date,
        person_key,
        amount_fen: input.amount.map(|a| a.0),
        fields: input.fields.clone(),
        points: ctx.settings.points.for_kind(kind),
        stage_rule,
        state: if kind == RecordKind::Placement { RecordState::Onboarded } else { RecordState::Reported },
        occurred_at: ctx.now_ms(),
    }
}

fn already_claimed(reporter: &Person, kind: RecordKind, subject: &str, holder: &records::Claim) -> String {
    let who = if holder.reporter == reporter.userid { "您".to_owned() } else { holder.reporter_name.clone() };
    let what = match kind {
        RecordKind::Referral => "转介绍".to_owned(),
        RecordKind::Placement => "安置上岗".to_owned(),
        k if k.receiving_dept() == DeptKind::Tr => "渠道".to_owned(),
        k => k.label().to_owned(),
    };
    format!(
        "「{subject}」的{what}已由{who}于 {} 报备（#{}，{}），先报先得，本次不予登记。",
        format_ms(holder.occurred_at),
        holder.record_id,
        holder.state.label()
    )
}

/// The answer to an accepted report.
fn accepted(id: i64, kind: RecordKind, r: &NewRecord, subject: &str, confirmers: &[Person]) -> String {
    let mut lines = vec![format!("✅ 已登记 #{id} {}", kind.label())];
    let label = match kind {
        RecordKind::Placement => "人员",
        RecordKind::Referral => "新客户",
        k if k.receiving_dept() == DeptKind::Tr => "渠道",
        _ => "公司",
    };
    lines.push(format!("{label}：{subject}"));
    if r.mode == Mode::Transfer {
        lines.push("方式：转接".into());
    }
    lines.push(format!("积分：{} 分（确认后计入）", r.points));
    lines.push(format!("状态：{}", r.state.label()));
    let names: Vec<&str> = confirmers.iter().map(|c| c.name.as_str()).collect();
    let who =
        if names.is_empty() { "尚未配置确认人，请联系管理员".to_owned() } else { names.join("、") };
    let dept = kind.receiving_dept().label();
    lines.push(match kind {
        RecordKind::Placement => format!("确认：入职第3天起由{dept}（{who}）确认在岗"),
        RecordKind::ChannelAgency => format!("确认：{dept}（{who}）确认协议；经该渠道3人在岗满3天后有效"),
        RecordKind::ChannelPerson => format!("确认：{dept}（{who}）确认协议；经该渠道1人在岗满3天后有效"),
        _ => format!("确认：{dept}（{who}）"),
    });
    lines.join("\n")
}
