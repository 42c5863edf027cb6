//! The report commands (C类, B类, A类, 院校渠道, 机构渠道, 个人渠道, 上岗, 转介绍): check
//! the programme period and the fields, resolve the client or channel, apply first
//! claim wins, create the record with its points fixed, log it, and answer.

use crate::clock::format_ms;
use crate::commands::cards::{self, Purpose};
use crate::commands::parse::Parsed;
use crate::commands::{CommandError, CommandResult, Ctx, refuse};
use crate::config::LeadStages;
use crate::domain::kind::RecordKind;
use crate::domain::org::DeptKind;
use crate::domain::record::{Mode, RecordState};
use crate::domain::text::{BoundedText, CreditCode, name_key};
use crate::store::directory::{self, Person};
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Family, NewRecord};
use chrono::NaiveDate;
use sqlx::SqliteConnection;

/// What a report claims, once resolved.
struct Claimed {
    subject_id: Option<i64>,
    subject_name: Option<String>,
    slot: Option<&'static str>,
    channel_id: Option<i64>,
}

pub async fn run(ctx: &Ctx<'_>, conn: &mut SqliteConnection, kind: RecordKind, p: &Parsed) -> CommandResult {
    check_period(ctx, kind)?;
    let receiving = kind.receiving_dept();
    let closer = closer(conn, p, receiving).await?;
    let claimed = claim(ctx, conn, kind, p).await?;
    if let (Some(subject_id), Some(slot)) = (claimed.subject_id, claimed.slot)
        && let Some(holder) = records::live_claim(conn, subject_id, slot).await?
    {
        return refuse(already_claimed(ctx, kind, claimed.subject_name.as_deref(), &holder));
    }
    let record = new_record(ctx, kind, p, &claimed, closer);
    if let (Some(person), Some(day)) = (&record.person_key, &record.onboard_date)
        && let Some(holder) = records::live_placement(conn, person, day).await?
    {
        let placed = format!("{}（{day} 入职）", claimed.subject_name.as_deref().unwrap_or_default());
        return refuse(already_claimed(ctx, kind, Some(&placed), &holder));
    }
    let id = match records::insert(conn, &record).await {
        Ok(id) => id,
        // Someone else's claim committed between our check and insert: the index decides.
        Err(e) if records::is_unique_violation(&e) => {
            return refuse(format!("「{}」刚刚已被他人报备，先报先得。", claimed.subject_name.unwrap_or_default()));
        }
        Err(e) => return Err(e.into()),
    };
    let event = NewEvent {
        actor: &ctx.sender.userid,
        entity: "record",
        entity_id: id.to_string(),
        action: "reported",
        new_value: Some(record.state.code().to_owned()),
        data: Some(record.fields.clone()),
        ..Default::default()
    };
    events::append(conn, ctx.now_ms(), event).await?;
    let confirmers: Vec<Person> =
        directory::confirmers(conn, receiving).await?.into_iter().filter(|c| c.userid != ctx.sender.userid).collect();
    if kind != RecordKind::Placement {
        let stored = records::get(conn, id).await?.ok_or(sqlx::Error::RowNotFound)?;
        cards::send_record_card(ctx.settings, ctx.now, conn, &stored, Purpose::Confirm, &confirmers).await?;
    }
    Ok(accepted(id, kind, &record, claimed.subject_name.as_deref(), &confirmers))
}

/// Reports dated outside the activity period (referrals: their own period) are refused.
fn check_period(ctx: &Ctx<'_>, kind: RecordKind) -> Result<(), CommandError> {
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
async fn closer(conn: &mut SqliteConnection, p: &Parsed, receiving: DeptKind) -> Result<Option<Person>, CommandError> {
    let Some(name) = p.text("接手") else { return Ok(None) };
    if p.mode() != Mode::Transfer {
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

async fn claim(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    kind: RecordKind,
    p: &Parsed,
) -> Result<Claimed, CommandError> {
    let claimed = |subject_id, name: &BoundedText, slot| Claimed {
        subject_id: Some(subject_id),
        subject_name: Some(name.to_string()),
        slot: Some(slot),
        channel_id: None,
    };
    match kind {
        RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA => {
            let name = required(p, "公司")?;
            let id = resolve(ctx, conn, Family::Client, name, p.credit_code()).await?;
            Ok(claimed(id, name, kind.code()))
        }
        RecordKind::ChannelSchool | RecordKind::ChannelAgency | RecordKind::ChannelPerson => {
            let name = required(p, "名称")?;
            Ok(claimed(resolve(ctx, conn, Family::Channel, name, None).await?, name, "channel"))
        }
        RecordKind::Referral => {
            let old = required(p, "老客户")?;
            resolve(ctx, conn, Family::Client, old, None).await?;
            let new = required(p, "新客户")?;
            Ok(claimed(resolve(ctx, conn, Family::Client, new, None).await?, new, "referral"))
        }
        RecordKind::Placement => placement(ctx, conn, p).await,
    }
}

async fn placement(ctx: &Ctx<'_>, conn: &mut SqliteConnection, p: &Parsed) -> Result<Claimed, CommandError> {
    let onboard = p.date("入职").ok_or_else(|| CommandError::User("缺少入职日期".into()))?;
    if onboard > ctx.today() {
        return refuse(format!("入职日期 {onboard} 还没到：请在入职当天或之后报备。"));
    }
    let earliest = earliest_onboarding(ctx);
    if onboard < earliest {
        return refuse(format!("入职日期 {onboard} 太早：只能报备 {earliest} 及以后入职的人员，请核对日期。"));
    }
    let channel = p.text("渠道").filter(|c| c.as_str() != "自招");
    let channel_id = match channel {
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
    Ok(Claimed { subject_id: None, subject_name: p.text("姓名").map(|n| n.to_string()), slot: None, channel_id })
}

/// The earliest onboarding a placement may report: the programme's start, or without
/// one a year back (an older date is a typo, and would be due for its day-3 check at once).
fn earliest_onboarding(ctx: &Ctx<'_>) -> NaiveDate {
    let today = ctx.today();
    let year_ago = today.checked_sub_days(chrono::Days::new(365)).unwrap_or(today);
    ctx.settings.programme.as_ref().and_then(|p| p.start).unwrap_or(year_ago)
}

fn required<'p>(p: &'p Parsed, key: &str) -> Result<&'p BoundedText, CommandError> {
    p.text(key).ok_or_else(|| CommandError::User(format!("缺少“{key}”")))
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
) -> Result<i64, CommandError> {
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
                let event = NewEvent {
                    actor: &ctx.sender.userid,
                    entity: "subject",
                    entity_id: s.id.to_string(),
                    action: "credit_code_set",
                    new_value: Some(code.as_str().to_owned()),
                    ..Default::default()
                };
                events::append(conn, now_ms, event).await?;
                Ok(s.id)
            }
            (None, _) => Ok(s.id),
        },
        None => Ok(records::insert_subject(
            conn,
            family,
            name.as_str(),
            &key,
            code.map(CreditCode::as_str),
            "reported",
            now_ms,
        )
        .await?),
    }
}

fn new_record(ctx: &Ctx<'_>, kind: RecordKind, p: &Parsed, claimed: &Claimed, closer: Option<Person>) -> NewRecord {
    let is_lead = matches!(kind, RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA);
    let stage_rule = match ctx.settings.points.lead_stages {
        LeadStages::Highest if is_lead => "highest",
        _ => "cumulative",
    };
    NewRecord {
        kind,
        mode: p.mode(),
        reporter: ctx.sender.userid.clone(),
        reporter_dept: ctx.sender.department_id,
        reporter_class: ctx.sender.kind.as_str(),
        closer,
        subject_id: claimed.subject_id,
        claim_slot: claimed.slot,
        channel_id: claimed.channel_id,
        onboard_date: p.date("入职").map(|d| d.to_string()),
        person_key: p.text("姓名").filter(|_| kind == RecordKind::Placement).map(|n| name_key(n.as_str())),
        amount_fen: p.amount("金额").map(|a| a.0),
        fields: p.to_json(),
        points: ctx.settings.points.for_kind(kind),
        stage_rule,
        state: if kind == RecordKind::Placement { RecordState::Onboarded } else { RecordState::Reported },
        occurred_at: ctx.now_ms(),
    }
}

fn already_claimed(ctx: &Ctx<'_>, kind: RecordKind, subject: Option<&str>, holder: &records::Claim) -> String {
    let state = crate::domain::record::RecordState::parse(&holder.state).map(|s| s.label()).unwrap_or("");
    let who = if holder.reporter == ctx.sender.userid { "您".to_owned() } else { holder.reporter_name.clone() };
    let what = match kind {
        RecordKind::Referral => "转介绍".to_owned(),
        RecordKind::Placement => "安置上岗".to_owned(),
        k if k.receiving_dept() == DeptKind::Tr => "渠道".to_owned(),
        k => k.label().to_owned(),
    };
    format!(
        "「{}」的{what}已由{who}于 {} 报备（#{}，{state}），先报先得，本次不予登记。",
        subject.unwrap_or_default(),
        format_ms(holder.occurred_at),
        holder.record_id
    )
}

/// The answer to an accepted report.
fn accepted(id: i64, kind: RecordKind, r: &NewRecord, subject: Option<&str>, confirmers: &[Person]) -> String {
    let mut lines = vec![format!("✅ 已登记 #{id} {}", kind.label())];
    if let Some(subject) = subject {
        let label = match kind {
            RecordKind::Placement => "人员",
            RecordKind::Referral => "新客户",
            k if k.receiving_dept() == DeptKind::Tr => "渠道",
            _ => "公司",
        };
        lines.push(format!("{label}：{subject}"));
    }
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
