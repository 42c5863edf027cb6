//! The monthly settlement for finance (结算中心): computes every person's rewards for a
//! month and writes `settlement-YYYY-MM.csv` (UTF-8 with BOM, byte-identical for the
//! same data) and `settlement-YYYY-MM.xlsx` (per-person and per-department totals,
//! every line, referrals, unpaid stakes, rule sets). Each run records the rules it
//! used; every line names its rule set (规则集). A month can be closed (paid): its
//! files are kept as they were and never change, and any later change to what it
//! would pay becomes an adjustment (补发 / 扣回) in the first open month after it.
//! Admins can also ask in chat (`结算`): the summary, and the workbook sent as a file.

use crate::clock::{TZ, format_ms};
use crate::config::Settings;
use crate::domain::adjustments;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::month::Month;
use crate::domain::org::DeptKind;
use crate::domain::rewards::{
    self, Decision, Line, Payee, PkFacts, PlacementSource, RecordFacts, RewardRules, Settlement, Targets,
};
use crate::service::access::Operation;
use crate::service::sheet::{Cell, Table};
use crate::service::{Ctx, Outcome, ServiceError, refuse};
use crate::store::Conn;
use crate::store::events::{self, NewEvent};
use crate::store::outbox::{self, Api, NewMessage};
use crate::store::records::Origin;
use crate::store::settlement::{self as store, CloseRow, ClosedLine, MemberRow, NewClose, ReferralRow, RewardRow, Run};
use anyhow::Context;
use base64::Engine;
use rust_xlsxwriter::Workbook;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tracing::instrument;

/// The rules a month's pay is computed under — the reward rules and targets, with the
/// points configuration in effect beside them — known by a short hash of their
/// canonical JSON (`rule_sets.id`): what each settlement line names as its 规则集.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub id: String,
    /// The canonical JSON the id is the hash of.
    pub json: String,
    pub rewards: RewardRules,
    pub targets: Targets,
}

/// Hex digits of the SHA-256 that name a rule set: 48 bits, ample for the few rule sets
/// a programme ever has.
const RULE_SET_ID_LEN: usize = 12;

impl RuleSet {
    /// The rule set configured in `settings`.
    pub fn of(settings: &Settings) -> RuleSet {
        let p = &settings.points;
        // serde_json's maps are ordered by key: the same rules give the same text.
        let json = json!({
            "rewards": settings.rewards,
            "targets": settings.targets,
            "points": {
                "lead_c": p.lead_c,
                "lead_b": p.lead_b,
                "lead_a": p.lead_a,
                "channel_school": p.channel_school,
                "channel_agency": p.channel_agency,
                "channel_person": p.channel_person,
                "placement": p.placement,
                "referral": p.referral,
                "lead_stages": p.lead_stages.code(),
            },
        })
        .to_string();
        RuleSet {
            id: store::sha256_hex(json.as_bytes())[..RULE_SET_ID_LEN].to_owned(),
            json,
            rewards: settings.rewards.clone(),
            targets: settings.targets.clone(),
        }
    }

    /// A stored rule set, read back (the rewards and targets it pays by).
    fn stored(id: &str, json: String) -> Result<RuleSet, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Stored {
            rewards: RewardRules,
            targets: Targets,
        }
        let stored: Stored = serde_json::from_str(&json)?;
        Ok(RuleSet { id: id.to_owned(), json, rewards: stored.rewards, targets: stored.targets })
    }
}

/// Keeps the rule set configured in `settings` (with when it was first seen) and, when
/// it is not the one in force, puts it in force from now on (a new period, see
/// migration 0095); returns its id. The service calls it at start and on each reload:
/// what is reported from then on is paid under it, what came before keeps its rules.
pub async fn note_rule_set(conn: &mut Conn, settings: &Settings, now_ms: i64) -> Result<String, sqlx::Error> {
    let rule_set = RuleSet::of(settings);
    store::note_rule_set(conn, &rule_set.id, &rule_set.json, now_ms).await?;
    Ok(rule_set.id)
}

/// A month's settlement with what finance and account managers need alongside it.
#[derive(Debug)]
pub struct Report {
    pub month: Month,
    pub settlement: Settlement,
    pub referrals: Vec<ReferralRow>,
    pub referral_benefit: String,
    /// Records of the month still waiting for a decision (not paid yet).
    pub pending: i64,
    /// The rules and targets used, as recorded with the run.
    pub rules: String,
    /// Every earlier run of this month under other rules than this one (finance may
    /// hold its files): when, and its total; oldest first.
    pub earlier_rules: Vec<(i64, Fen)>,
    /// The rule set of the configuration this run read, when it is not the one in
    /// force (a file edited but not yet reloaded): settlement does not use it.
    pub unapplied: Option<String>,
    /// The rule set the month's own lines are computed under.
    pub rule_set: String,
    /// Every rule set a line names: `(id, first seen, rules as JSON)`, by id.
    pub rule_sets: Vec<(String, i64, String)>,
    /// The closed months whose adjustments (补发 / 扣回) this month carries.
    pub adjusted: Vec<Month>,
    /// Set when the month is closed: its files are the ones kept at close.
    pub closed: Option<Closed>,
    /// PK stakes not recorded as paid (缴费), by contest.
    pub unpaid_stakes: Vec<UnpaidStake>,
}

/// A member's PK stake not yet recorded as paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpaidStake {
    /// The contest's name.
    pub contest: String,
    pub team: String,
    pub userid: String,
    pub name: String,
    pub employee_no: Option<String>,
    pub unit: String,
    pub department: String,
    pub stake: Fen,
}

/// A closed month: its close, its files as kept, and what has changed since.
#[derive(Debug)]
pub struct Closed {
    pub close: CloseRow,
    csv: Vec<u8>,
    xlsx: Vec<u8>,
    /// The adjustments now due for the month (what it would pay now minus what it
    /// paid), and the first open month after it, which carries them.
    pub due: Vec<Line>,
    pub due_in: Month,
}

impl Report {
    /// A report of a settlement alone (no referrals, stakes or runs): what the files
    /// of a computed settlement look like.
    pub fn of(month: Month, settlement: Settlement) -> Report {
        Report {
            month,
            settlement,
            referrals: Vec::new(),
            referral_benefit: String::new(),
            pending: 0,
            rules: String::new(),
            earlier_rules: Vec::new(),
            unapplied: None,
            rule_set: String::new(),
            rule_sets: Vec::new(),
            adjusted: Vec::new(),
            closed: None,
            unpaid_stakes: Vec::new(),
        }
    }
}

/// What a month is computed from.
struct Facts {
    records: Vec<RecordFacts>,
    pk: Vec<PkFacts>,
    achieved: BTreeMap<(String, DeptKind), i64>,
}

/// Each department's business unit, by id.
type Units = HashMap<i64, String>;

fn unit_of(units: &Units, dept: i64, name: &str) -> String {
    units.get(&dept).cloned().unwrap_or_else(|| name.to_owned())
}

/// The month's counting records, PK payouts and points achieved. `leads` overrides
/// whether a person is a confirmer or manager (which decides their target) with what
/// they were when a closed month was paid.
async fn facts(
    conn: &mut Conn,
    settings: &Settings,
    month: Month,
    units: &Units,
    leads: &BTreeMap<String, bool>,
) -> Result<Facts, sqlx::Error> {
    let (from, to) = month.range_ms();
    let unit = |dept: i64, name: &str| unit_of(units, dept, name);
    let lead = |payee: &mut Payee| {
        if let Some(then) = leads.get(&payee.userid) {
            payee.lead = *then;
        }
    };
    let mut records: Vec<RecordFacts> =
        store::confirmed_in(conn, from, to).await?.iter().map(|r| record_facts(r, &unit)).collect();
    for r in &mut records {
        lead(&mut r.reporter);
        if let Some(closer) = r.closer.as_mut() {
            lead(closer);
        }
    }
    let achieved = store::achieved_in(conn, from, to)
        .await?
        .into_iter()
        .map(|(userid, class, points)| ((userid, class), points))
        .collect();
    let names: BTreeMap<&str, &str> = settings.contests.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    let pk = store::payouts_finalised_in(conn, from, to)
        .await?
        .into_iter()
        .map(|p| PkFacts {
            contest: names.get(p.contest_id.as_str()).map_or_else(|| p.contest_id.clone(), |n| (*n).to_owned()),
            contest_id: p.contest_id,
            rank: p.rank as u32,
            amount: Fen(p.amount_fen),
            decided: p.finalised_at.map(|at| Decision { at, by: p.finalised_by.clone().unwrap_or_default() }),
            payee: Payee {
                unit: unit(p.department_id, &p.department),
                userid: p.userid,
                name: p.name,
                employee_no: p.employee_no,
                department_id: p.department_id,
                department: p.department,
                class: p.class,
                lead: p.lead,
            },
        })
        .collect();
    Ok(Facts { records, pk, achieved })
}

fn tagged(mut lines: Vec<Line>, rule_set: &str) -> Vec<Line> {
    for line in &mut lines {
        line.rule_set = rule_set.to_owned();
    }
    lines
}

/// The month's lines, each record under the rule set in force when it was reported
/// (the period it falls in, `rule_set_periods`; before the first period, the first
/// one's), and the PK payouts under `latest`: a change of rewards or targets applies
/// to what is reported from the change on, never to what came before it.
async fn period_lines(conn: &mut Conn, facts: &Facts, latest: &RuleSet) -> Outcome<Vec<Line>> {
    let periods = store::rule_set_periods(conn).await?;
    let mut by_set: BTreeMap<&str, Vec<RecordFacts>> = BTreeMap::new();
    for record in &facts.records {
        let period = periods.iter().rev().find(|(from, _)| *from <= record.reported_at).or(periods.first());
        let id = period.map_or(latest.id.as_str(), |(_, id)| id.as_str());
        by_set.entry(id).or_default().push(record.clone());
    }
    let mut lines = Vec::new();
    for (id, records) in by_set {
        let set = if id == latest.id { latest.clone() } else { stored_rule_set(conn, id).await? };
        lines.extend(tagged(rewards::lines(&set.rewards, &set.targets, &records, &[], &facts.achieved), id));
    }
    let pk = rewards::lines(&latest.rewards, &latest.targets, &[], &facts.pk, &facts.achieved);
    lines.extend(tagged(pk, &latest.id));
    Ok(lines)
}

/// The rule set in force: the latest period's, as the service applied it (at start or
/// by a reload). On a database no service has run on yet, the configured one becomes
/// the first.
async fn in_force(conn: &mut Conn, settings: &Settings, now_ms: i64) -> Outcome<RuleSet> {
    match store::rule_set_periods(conn).await?.pop() {
        Some((_, id)) => stored_rule_set(conn, &id).await,
        None => {
            let rule_set = RuleSet::of(settings);
            store::note_rule_set(conn, &rule_set.id, &rule_set.json, now_ms).await?;
            Ok(rule_set)
        }
    }
}

/// A rule set as stored, for computing pay under it.
async fn stored_rule_set(conn: &mut Conn, id: &str) -> Outcome<RuleSet> {
    let unreadable = |what: String| {
        tracing::error!(rule_set = %id, "{what}");
        ServiceError::Refused(format!("{what}，无法计算按该规则集发放的明细，请联系管理员查看日志。"))
    };
    let (json, _) = store::rule_set(conn, id).await?.ok_or_else(|| unreadable(format!("规则集 {id} 不存在")))?;
    RuleSet::stored(id, json).map_err(|e| unreadable(format!("规则集 {id} 无法读取（{e}）")))
}

fn month_of(text: &str) -> Outcome<Month> {
    Month::parse(text).ok_or_else(|| ServiceError::Refused(format!("数据库中的结账月份无法识别：{text}")))
}

/// The first month after `month` that is not closed: where its adjustments go.
fn first_open_after(month: Month, closed: &BTreeMap<String, CloseRow>) -> Month {
    let mut next = month.next();
    while closed.contains_key(&next.to_string()) {
        next = next.next();
    }
    next
}

/// For a closed `month`: the first open month after it, where changes to its pay go.
pub async fn adjusted_in(conn: &mut Conn, month: Month) -> Result<Option<Month>, sqlx::Error> {
    let closed: BTreeMap<String, CloseRow> =
        store::closed_months(conn).await?.into_iter().map(|c| (c.month.clone(), c)).collect();
    Ok(closed.contains_key(&month.to_string()).then(|| first_open_after(month, &closed)))
}

/// What `month`, closed, would pay now under the rules it was closed with (each record's
/// period's rule set, or its one rule set if closed before periods were kept), minus
/// what it paid (its lines at close and the adjustments later closed months carried).
async fn due_for(
    conn: &mut Conn,
    settings: &Settings,
    month: Month,
    close: &CloseRow,
    units: &Units,
) -> Outcome<Vec<Line>> {
    let unreadable = |what: String| {
        tracing::error!(month = %month, rule_set = %close.rule_set, "{what}");
        ServiceError::Refused(format!("{month} 已结账，但{what}，无法计算结账后的调整，请联系管理员查看日志。"))
    };
    let rule_set = stored_rule_set(conn, &close.rule_set).await?;
    let paid = store::paid_for(conn, &close.month)
        .await?
        .iter()
        .map(|line| serde_json::from_str::<Line>(line))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("结账时的明细无法读取（{e}）")))?;
    let leads: BTreeMap<String, bool> = paid.iter().map(|l| (l.payee.userid.clone(), l.payee.lead)).collect();
    let facts = facts(conn, settings, month, units, &leads).await?;
    // As it was closed: period by period, or (closed before periods were kept) all
    // under its one rule set.
    let now = if close.by_period {
        period_lines(conn, &facts, &rule_set).await?
    } else {
        tagged(
            rewards::lines(&rule_set.rewards, &rule_set.targets, &facts.records, &facts.pk, &facts.achieved),
            &rule_set.id,
        )
    };
    let ids: Vec<i64> = paid.iter().filter_map(|l| l.record).collect::<BTreeSet<_>>().into_iter().collect();
    let states =
        store::record_states(conn, &ids).await?.into_iter().map(|(id, state)| (id, state.label().to_owned())).collect();
    Ok(adjustments::adjustments(&close.month, &rule_set.id, &paid, &now, &states))
}

/// Computes a month from the database: an open month under the rules configured now,
/// with the adjustments of the closed months it is the first open month after; a
/// closed month as it was closed, with what has changed since.
#[instrument(level = "debug", skip(conn, settings))]
pub async fn compute(conn: &mut Conn, settings: &Settings, month: Month, now_ms: i64) -> Outcome<Report> {
    let (from, to) = month.range_ms();
    let units = business_units(&store::departments(conn).await?);
    let closed: BTreeMap<String, CloseRow> =
        store::closed_months(conn).await?.into_iter().map(|c| (c.month.clone(), c)).collect();
    let mut report = match closed.get(&month.to_string()) {
        Some(close) => compute_closed(conn, settings, month, close, &closed, &units).await?,
        None => compute_open(conn, settings, month, &closed, &units, now_ms).await?,
    };
    report.pending = store::pending_in(conn, from, to).await?;
    report.unpaid_stakes = unpaid_stakes(conn, settings, &units).await?;
    Ok(report)
}

/// A closed month: the files kept at close (checked against their hashes) and the
/// adjustments now due for it.
async fn compute_closed(
    conn: &mut Conn,
    settings: &Settings,
    month: Month,
    close: &CloseRow,
    closed: &BTreeMap<String, CloseRow>,
    units: &Units,
) -> Outcome<Report> {
    let (csv, csv_sha, xlsx, xlsx_sha) = store::closed_files(conn, &close.month)
        .await?
        .ok_or_else(|| ServiceError::Refused(format!("{month} 已结账，但结账时的文件不存在。")))?;
    if store::sha256_hex(&csv) != csv_sha || store::sha256_hex(&xlsx) != xlsx_sha {
        tracing::error!(month = %month, "the files kept at close do not match their hashes");
        return refuse(format!("{month} 结账时保存的文件校验失败（与结账时的哈希不符），请联系管理员。"));
    }
    let due = due_for(conn, settings, month, close, units).await?;
    let rule_sets = rule_sets_of(conn, [close.rule_set.clone()]).await?;
    Ok(Report {
        rules: rule_sets.first().map(|(_, _, rules)| rules.clone()).unwrap_or_default(),
        rule_set: close.rule_set.clone(),
        rule_sets,
        closed: Some(Closed { close: close.clone(), csv, xlsx, due, due_in: first_open_after(month, closed) }),
        ..Report::of(month, Settlement::default())
    })
}

/// An open month under the rules configured now, with the adjustments it carries.
async fn compute_open(
    conn: &mut Conn,
    settings: &Settings,
    month: Month,
    closed: &BTreeMap<String, CloseRow>,
    units: &Units,
    now_ms: i64,
) -> Outcome<Report> {
    let rule_set = in_force(conn, settings, now_ms).await?;
    let configured = RuleSet::of(settings).id;
    let facts = facts(conn, settings, month, units, &BTreeMap::new()).await?;
    let mut lines = period_lines(conn, &facts, &rule_set).await?;
    let mut adjusted = Vec::new();
    for close in closed.values() {
        let earlier = month_of(&close.month)?;
        if earlier < month && first_open_after(earlier, closed) == month {
            lines.extend(due_for(conn, settings, earlier, close, units).await?);
            adjusted.push(earlier);
        }
    }
    let unit = |dept: i64, name: &str| unit_of(units, dept, name);
    let members: Vec<Payee> = store::target_members(conn).await?.into_iter().map(|m| member_payee(m, &unit)).collect();
    let settlement = rewards::assemble(lines, &rule_set.targets, &facts.achieved, &members);
    let named = settlement.lines.iter().map(|l| l.rule_set.clone()).chain([rule_set.id.clone()]);
    let rules = rules_json(&rule_set.rewards, &rule_set.targets);
    let earlier_rules = store::earlier_runs(conn, &month.to_string())
        .await?
        .into_iter()
        .filter(|(_, earlier, _)| *earlier != rules)
        .map(|(at, _, total)| (at, Fen(total)))
        .collect();
    let (from, to) = month.range_ms();
    Ok(Report {
        referrals: store::referrals_in(conn, from, to).await?,
        referral_benefit: settings.rewards.referral.benefit.clone(),
        rules,
        earlier_rules,
        unapplied: (configured != rule_set.id).then_some(configured),
        rule_set: rule_set.id,
        rule_sets: rule_sets_of(conn, named.collect::<Vec<_>>()).await?,
        adjusted,
        ..Report::of(month, settlement)
    })
}

/// The stakes not recorded as paid, with the contests' names.
async fn unpaid_stakes(conn: &mut Conn, settings: &Settings, units: &Units) -> Result<Vec<UnpaidStake>, sqlx::Error> {
    let names: BTreeMap<&str, &str> = settings.contests.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    Ok(store::unpaid_stakes(conn)
        .await?
        .into_iter()
        .map(|s| UnpaidStake {
            contest: names.get(s.contest_id.as_str()).map_or_else(|| s.contest_id.clone(), |n| (*n).to_owned()),
            team: s.team,
            unit: unit_of(units, s.department_id, &s.department),
            userid: s.userid,
            name: s.name,
            employee_no: s.employee_no,
            department: s.department,
            stake: Fen(s.stake_fen),
        })
        .collect())
}

/// `(contest, members, owed)` of every contest with unpaid stakes, in the order listed.
fn stakes_by_contest(stakes: &[UnpaidStake]) -> Vec<(&str, usize, Fen)> {
    let mut out: Vec<(&str, usize, Fen)> = Vec::new();
    for s in stakes {
        match out.last_mut() {
            Some((contest, n, owed)) if *contest == s.contest => {
                *n += 1;
                *owed = *owed + s.stake;
            }
            _ => out.push((&s.contest, 1, s.stake)),
        }
    }
    out
}

/// `(id, first seen, rules)` of each of these rule sets, by id.
async fn rule_sets_of(
    conn: &mut Conn,
    ids: impl IntoIterator<Item = String>,
) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    let mut out = Vec::new();
    for id in ids.into_iter().collect::<BTreeSet<_>>() {
        if let Some((rules, first_seen)) = store::rule_set(conn, &id).await? {
            out.push((id, first_seen, rules));
        }
    }
    Ok(out)
}

/// Closes `month` (marks it paid) for `by`: refused when it is closed already, has not
/// ended, or (unless `force`) has records still pending. Its files are computed,
/// kept with every line it pays, and returned in the report; from now on they never
/// change, and later changes to what it would pay are adjustments in the first open
/// month after it.
pub async fn close(
    conn: &mut Conn,
    settings: &Settings,
    month: Month,
    by: &str,
    force: bool,
    now_ms: i64,
) -> Outcome<Report> {
    let mut report = compute(conn, settings, month, now_ms).await?;
    if let Some(closed) = &report.closed {
        let c = &closed.close;
        return refuse(format!(
            "{month} 已于 {} 由 {} 结账，不能重复结账。不加 --close 再次结算可取得结账时的文件；结账后的变动计入 {} 的补发/扣回。",
            format_ms(c.closed_at),
            c.closed_by,
            closed.due_in
        ));
    }
    let today = chrono::DateTime::from_timestamp_millis(now_ms).map(|t| t.with_timezone(&TZ).date_naive());
    if today.is_none_or(|today| today < month.next().first_day()) {
        return refuse(format!("{month} 还没有结束，不能结账（{} 起可以结账）。", month.next().first_day()));
    }
    if report.pending > 0 && !force {
        return refuse(format!(
            "{month} 还有 {} 条记录待确认，不能结账。请先处理；或加 --force 结账，之后确认的记录将作为补发计入下一个未结账月份。",
            report.pending
        ));
    }
    let (close, csv, xlsx) = keep(conn, &report, by, now_ms).await?;
    let closed = store::closed_months(conn).await?.into_iter().map(|c| (c.month.clone(), c)).collect();
    let due_in = first_open_after(month, &closed);
    report.closed = Some(Closed { close, csv, xlsx, due: Vec::new(), due_in });
    Ok(report)
}

/// Stores an open month's close: its files, every line it pays, an event.
async fn keep(conn: &mut Conn, report: &Report, by: &str, now_ms: i64) -> Outcome<(CloseRow, Vec<u8>, Vec<u8>)> {
    let built = |e: anyhow::Error| {
        tracing::error!(error = %e, "settlement files could not be built");
        ServiceError::Refused("结算文件生成失败，请联系管理员查看日志。".into())
    };
    let (csv, xlsx) = (report.csv().map_err(built)?, report.xlsx().map_err(built)?);
    let month = report.month.to_string();
    let close = CloseRow {
        month: month.clone(),
        closed_at: now_ms,
        closed_by: by.to_owned(),
        rule_set: report.rule_set.clone(),
        pending: report.pending,
        total_fen: report.settlement.total().0,
        lines: report.settlement.lines.len() as i64,
        by_period: true,
    };
    let mut lines = Vec::new();
    for line in &report.settlement.lines {
        lines.push(ClosedLine {
            for_month: line.adjusts.clone().unwrap_or_else(|| month.clone()),
            userid: line.payee.userid.clone(),
            record: line.record,
            contest: line.contest.clone(),
            amount_fen: line.amount.0,
            line: serde_json::to_string(line).map_err(|e| built(e.into()))?,
        });
    }
    if !store::close_month(conn, &NewClose { close: &close, csv: &csv, xlsx: &xlsx, lines }).await? {
        return refuse(format!("{month} 刚刚已被结账，不能重复结账。"));
    }
    let event = NewEvent::new(by, "month", &month, "closed")
        .to("closed")
        .reason((report.pending > 0).then(|| format!("强制结账：还有 {} 条记录待确认", report.pending)))
        .data(json!({
            "total_fen": close.total_fen,
            "lines": close.lines,
            "pending": close.pending,
            "rule_set": close.rule_set,
            "adjusts": report.adjusted.iter().map(Month::to_string).collect::<Vec<_>>(),
            "csv_sha256": store::sha256_hex(&csv),
            "xlsx_sha256": store::sha256_hex(&xlsx),
        }));
    events::append(conn, now_ms, event).await?;
    Ok((close, csv, xlsx))
}

/// A CS or TR member as the settlement (and `我的`) sees them.
pub fn member_payee(m: MemberRow, unit: &impl Fn(i64, &str) -> String) -> Payee {
    Payee {
        unit: unit(m.department_id, &m.department),
        userid: m.userid,
        name: m.name,
        employee_no: m.employee_no,
        department_id: m.department_id,
        department: m.department,
        class: m.class,
        lead: m.lead,
    }
}

/// Each department's business unit (事业部): the department directly under a root of
/// the tree (the company), or the root itself. Bad data (a cycle) ends where it loops.
pub fn business_units(departments: &[(i64, String, Option<i64>)]) -> HashMap<i64, String> {
    let tree: HashMap<i64, (&str, Option<i64>)> =
        departments.iter().map(|(id, name, parent)| (*id, (name.as_str(), *parent))).collect();
    let parent = |id: i64| tree.get(&id).and_then(|(_, p)| *p).filter(|p| tree.contains_key(p));
    let unit = |mut id: i64| {
        for _ in 0..tree.len() {
            match parent(id) {
                Some(up) if parent(up).is_some() => id = up,
                _ => break,
            }
        }
        tree.get(&id).map_or_else(String::new, |(name, _)| (*name).to_owned())
    };
    tree.keys().map(|id| (*id, unit(*id))).collect()
}

fn record_facts(r: &RewardRow, unit: &impl Fn(i64, &str) -> String) -> RecordFacts {
    let closer = match (&r.closer, &r.closer_name) {
        (Some(userid), Some(name)) => {
            let department = r.closer_dept.clone().unwrap_or_default();
            Some(Payee {
                userid: userid.clone(),
                name: name.clone(),
                employee_no: r.closer_no.clone(),
                unit: r.closer_dept_id.map_or_else(|| department.clone(), |id| unit(id, &department)),
                department_id: r.closer_dept_id.unwrap_or(0),
                department,
                class: r.closer_class.unwrap_or(DeptKind::Other),
                lead: r.closer_lead.unwrap_or(false),
            })
        }
        _ => None,
    };
    RecordFacts {
        id: r.id,
        kind: r.kind,
        mode: r.mode,
        reporter: Payee {
            userid: r.reporter.clone(),
            name: r.reporter_name.clone(),
            employee_no: r.reporter_no.clone(),
            unit: unit(r.reporter_dept_id, &r.reporter_dept),
            department_id: r.reporter_dept_id,
            department: r.reporter_dept.clone(),
            class: r.reporter_class,
            lead: r.reporter_lead,
        },
        closer,
        reported_at: r.occurred_at,
        decided: r.decided_at.map(|at| Decision { at, by: r.decided_by.clone().unwrap_or_default() }),
        contract: r.contract.clone(),
        amount: r.amount_fen.map(Fen),
        placement: (r.kind == RecordKind::Placement).then_some(match r.channel_origin {
            None => PlacementSource::SelfRecruited,
            Some(Origin::Existing) => PlacementSource::OldChannel,
            Some(Origin::Reported) => PlacementSource::NewChannel,
        }),
    }
}

/// `结算 月份`: the month's summary for the admin who asked, and the workbook sent to
/// them as a file (for a closed month, the one kept at close).
pub async fn send_in_chat(ctx: &Ctx<'_>, conn: &mut Conn, month: Month) -> Outcome {
    let admin = ctx.authorize(Operation::Settle)?;
    let report = compute(conn, ctx.settings, month, ctx.now_ms()).await?;
    if report.is_empty() {
        return refuse(format!("{month} 没有可结算的记录（待确认 {} 条）。", report.pending));
    }
    let xlsx = report.xlsx().map_err(|e| {
        tracing::error!(error = %e, "settlement workbook could not be built");
        ServiceError::Refused("结算文件生成失败，请联系管理员查看日志。".into())
    })?;
    let file_name = format!("{}.xlsx", report.file_stem());
    let payload = json!({
        "touser": admin.userid,
        "agentid": ctx.settings.wecom.agent_id,
        "file_name": file_name,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(xlsx),
    });
    let msg = NewMessage { api: Api::FileSend, target: None, payload, reference: None, digest: None };
    outbox::enqueue(conn, ctx.now_ms(), &msg).await?;
    report.record(conn, &admin.userid, ctx.now_ms()).await?;
    Ok(format!(
        "{}
结算文件 {file_name} 随后发送给您。",
        report.summary()
    ))
}

/// Everything the amounts depend on, as one canonical JSON text.
fn rules_json(rewards: &RewardRules, targets: &Targets) -> String {
    serde_json::json!({ "rewards": rewards, "targets": targets }).to_string()
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.closed.is_none() && self.settlement.lines.is_empty() && self.referrals.is_empty()
    }

    /// The CSV: a row per line (paid lines first), then the roll-ups — per person, per
    /// department, per business unit — and the grand total, each row marked in the
    /// first column (行类型); UTF-8 with a byte-order mark for Excel. A closed month's
    /// is the one kept at close.
    pub fn csv(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(closed) = &self.closed {
            return Ok(closed.csv.clone());
        }
        let mut header = vec!["行类型"];
        header.extend(LINE_HEADER);
        let mut table = Table::new("明细", &header);
        for row in self.lines_table().rows {
            let mut cells = vec![Cell::text("明细")];
            cells.extend(row.cells);
            table.push(cells);
        }
        for (kind, mut cells) in self.rollup_rows() {
            cells.insert(0, Cell::text(kind));
            table.push(cells);
        }
        let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        table.write_csv(&mut writer)?;
        Ok(writer.into_inner()?)
    }

    /// The roll-ups as rows in the columns of the lines: each person, each department,
    /// each business unit, and the grand total, with what kind of row it is.
    fn rollup_rows(&self) -> Vec<(&'static str, Vec<Cell>)> {
        let month = self.month.to_string();
        let row = |fill: &[(&str, Cell)], amount: Fen| {
            let mut cells = vec![Cell::Empty; LINE_HEADER.len()];
            cells[0] = Cell::text(&month);
            for (column, cell) in fill {
                if let Some(at) = LINE_HEADER.iter().position(|c| c == column) {
                    cells[at] = cell.clone();
                }
            }
            cells[LINE_HEADER.len() - 1] = Cell::Yuan(amount);
            cells
        };
        let mut rows = Vec::new();
        for p in &self.settlement.people {
            let who = &p.payee;
            let fill = [
                ("账号", Cell::text(&who.userid)),
                ("工号", Cell::text(who.employee_no.clone().unwrap_or_default())),
                ("姓名", Cell::text(&who.name)),
                ("事业部", Cell::text(&who.unit)),
                ("部门", Cell::text(&who.department)),
            ];
            rows.push(("个人合计", row(&fill, p.total)));
        }
        for u in &self.settlement.units {
            for (department, total) in &u.departments {
                let fill = [("事业部", Cell::text(&u.unit)), ("部门", Cell::text(department))];
                rows.push(("部门合计", row(&fill, *total)));
            }
        }
        for u in &self.settlement.units {
            rows.push(("事业部合计", row(&[("事业部", Cell::text(&u.unit))], u.total)));
        }
        let count = format!("{} 条", self.settlement.lines.len());
        rows.push(("合计", row(&[("编号", Cell::text(count))], self.settlement.total())));
        for s in &self.unpaid_stakes {
            let fill = [
                ("账号", Cell::text(&s.userid)),
                ("工号", Cell::text(s.employee_no.clone().unwrap_or_default())),
                ("姓名", Cell::text(&s.name)),
                ("事业部", Cell::text(&s.unit)),
                ("部门", Cell::text(&s.department)),
                ("类型", Cell::text("未缴PK金")),
                ("规则", Cell::text(format!("{} {}", s.contest, s.team))),
            ];
            rows.push(("未缴PK金", row(&fill, s.stake)));
        }
        for (contest, members, owed) in stakes_by_contest(&self.unpaid_stakes) {
            let fill = [("类型", Cell::text("未缴PK金")), ("规则", Cell::text(format!("{contest} 共 {members} 人")))];
            rows.push(("未缴PK金合计", row(&fill, owed)));
        }
        rows
    }

    /// Each contest's unpaid stakes, with the contest's total beneath (bold).
    fn stakes_table(&self) -> Table {
        let header = ["比赛", "队伍", "账号", "工号", "姓名", "事业部", "部门", "PK金(元)"];
        let mut table = Table::new("未缴PK金", &header);
        let by_contest = stakes_by_contest(&self.unpaid_stakes);
        let mut stakes = self.unpaid_stakes.iter();
        for (contest, members, owed) in &by_contest {
            for s in stakes.by_ref().take(*members) {
                table.push(vec![
                    Cell::text(&s.contest),
                    Cell::text(&s.team),
                    Cell::text(&s.userid),
                    Cell::text(s.employee_no.clone().unwrap_or_default()),
                    Cell::text(&s.name),
                    Cell::text(&s.unit),
                    Cell::text(&s.department),
                    Cell::Yuan(s.stake),
                ]);
            }
            let mut subtotal = vec![Cell::text(*contest), Cell::text("小计")];
            subtotal.resize(header.len() - 2, Cell::Empty);
            subtotal.extend([Cell::text(format!("{members} 人")), Cell::Yuan(*owed)]);
            table.push_bold(subtotal);
        }
        let mut last = vec![Cell::text("合计")];
        last.resize(header.len() - 2, Cell::Empty);
        last.extend([
            Cell::text(format!("{} 人", self.unpaid_stakes.len())),
            Cell::Yuan(self.unpaid_stakes.iter().map(|s| s.stake).sum()),
        ]);
        table.push_bold(last);
        table
    }

    /// The workbook: per person, per business unit and department, every line,
    /// referrals, the rule sets the lines name; each sheet with a total row. A closed
    /// month's is the one kept at close.
    pub fn xlsx(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(closed) = &self.closed {
            return Ok(closed.xlsx.clone());
        }
        let mut book = Workbook::new();
        self.people_table().write_sheet(&mut book)?;
        self.units_table().write_sheet(&mut book)?;
        let mut lines = self.lines_table();
        let total = self.settlement.total();
        let mut last = vec![Cell::text(self.month.to_string()), Cell::text("合计")];
        last.resize(LINE_HEADER.len() - 2, Cell::Empty);
        last.extend([Cell::text(format!("{} 条", self.settlement.lines.len())), Cell::Yuan(total)]);
        lines.push_bold(last);
        lines.write_sheet(&mut book)?;
        self.referrals_table().write_sheet(&mut book)?;
        self.stakes_table().write_sheet(&mut book)?;
        self.rule_sets_table().write_sheet(&mut book)?;
        Ok(book.save_to_buffer()?)
    }

    fn lines_table(&self) -> Table {
        let mut table = Table::new("明细", &LINE_HEADER);
        let month = self.month.to_string();
        let date = |ms: Option<i64>| ms.map(format_date).unwrap_or_default();
        for l in &self.settlement.lines {
            let p = &l.payee;
            table.push(vec![
                Cell::text(&month),
                Cell::text(&p.userid),
                Cell::text(p.employee_no.clone().unwrap_or_default()),
                Cell::text(&p.name),
                Cell::text(&p.unit),
                Cell::text(&p.department),
                Cell::text(l.record.map(|n| format!("#{n}")).unwrap_or_default()),
                Cell::text(&l.kind),
                Cell::text(l.adjusts.clone().unwrap_or_default()),
                Cell::text(&l.mode),
                Cell::text(&l.rule),
                Cell::text(&l.rule_set),
                Cell::text(date(l.reported_at)),
                Cell::text(date(l.decided.as_ref().map(|d| d.at))),
                Cell::text(l.decided.as_ref().map(|d| d.by.clone()).unwrap_or_default()),
                Cell::text(l.contract.clone().unwrap_or_default()),
                Cell::Yuan(l.amount),
            ]);
        }
        table
    }

    /// The rule sets the lines name, with what they are.
    fn rule_sets_table(&self) -> Table {
        let mut table = Table::new("规则集", &["规则集", "首次使用", "内容"]);
        for (id, first_seen, rules) in &self.rule_sets {
            table.push(vec![Cell::text(id), Cell::text(format_ms(*first_seen)), Cell::text(rules)]);
        }
        table.push_bold(vec![Cell::text("合计"), Cell::text(format!("{} 个", self.rule_sets.len()))]);
        table
    }

    fn people_table(&self) -> Table {
        let header =
            ["月份", "账号", "工号", "姓名", "事业部", "部门", "月度指标", "完成积分", "是否完成", "差额", "金额(元)"];
        let mut table = Table::new("个人合计", &header);
        let month = self.month.to_string();
        for p in &self.settlement.people {
            let who = &p.payee;
            let mut row = vec![
                Cell::text(&month),
                Cell::text(&who.userid),
                Cell::text(who.employee_no.clone().unwrap_or_default()),
                Cell::text(&who.name),
                Cell::text(&who.unit),
                Cell::text(&who.department),
            ];
            match (p.target, p.missing()) {
                (Some((target, achieved)), Some(missing)) => row.extend([
                    Cell::Int(target),
                    Cell::Int(achieved),
                    Cell::text(if missing == 0 { "完成" } else { "未完成" }),
                    Cell::Int(missing),
                ]),
                _ => row.extend([Cell::Empty, Cell::Empty, Cell::Empty, Cell::Empty]),
            }
            row.push(Cell::Yuan(p.total));
            table.push(row);
        }
        let mut last = vec![Cell::text(&month), Cell::text("合计")];
        last.resize(header.len() - 2, Cell::Empty);
        last.extend([Cell::text(format!("{} 人", self.settlement.people.len())), Cell::Yuan(self.settlement.total())]);
        table.push_bold(last);
        table
    }

    /// Each business unit (bold, with its total), its departments beneath.
    fn units_table(&self) -> Table {
        let mut table = Table::new("部门合计", &["月份", "事业部", "部门", "金额(元)"]);
        let month = self.month.to_string();
        for u in &self.settlement.units {
            table.push_bold(vec![Cell::text(&month), Cell::text(&u.unit), Cell::Empty, Cell::Yuan(u.total)]);
            for (department, total) in &u.departments {
                table.push(vec![Cell::text(&month), Cell::Empty, Cell::text(department), Cell::Yuan(*total)]);
            }
        }
        table.push_bold(vec![Cell::text(&month), Cell::text("合计"), Cell::Empty, Cell::Yuan(self.settlement.total())]);
        table
    }

    fn referrals_table(&self) -> Table {
        let header = ["月份", "编号", "老客户", "新客户", "报备人", "报备时间", "老客户权益"];
        let mut table = Table::new("转介绍", &header);
        let month = self.month.to_string();
        for r in &self.referrals {
            table.push(vec![
                Cell::text(&month),
                Cell::text(format!("#{}", r.id)),
                Cell::text(&r.old_client),
                Cell::text(&r.new_client),
                Cell::text(&r.reporter_name),
                Cell::text(format_ms(r.occurred_at)),
                Cell::text(&self.referral_benefit),
            ]);
        }
        let count = format!("{} 条", self.referrals.len());
        table.push_bold(vec![Cell::text(&month), Cell::text("合计"), Cell::text(count)]);
        table
    }

    /// A few lines for the person who asked.
    pub fn summary(&self) -> String {
        if let Some(closed) = &self.closed {
            return self.closed_summary(closed);
        }
        let paid = self.settlement.people.iter().filter(|p| p.total.0 > 0).count();
        let mut lines = vec![format!(
            "{} 结算：{} 条明细，{paid} 人获奖，合计 {} 元（规则集 {}）。",
            self.month,
            self.settlement.lines.len(),
            self.settlement.total(),
            self.rule_set
        )];
        let adjustments: Vec<&Line> = self.settlement.lines.iter().filter(|l| l.adjusts.is_some()).collect();
        if !adjustments.is_empty() {
            let months: Vec<String> = self.adjusted.iter().map(Month::to_string).collect();
            lines.push(format!(
                "含已结账月份 {} 的调整 {} 条：{}。",
                months.join("、"),
                adjustments.len(),
                adjustment_totals(&adjustments)
            ));
        }
        let missed: Vec<String> = self
            .settlement
            .people
            .iter()
            .filter(|p| p.target_met() == Some(false))
            .map(|p| format!("{}（{}/{}）", p.payee.name, p.target.map_or(0, |t| t.1), p.target.map_or(0, |t| t.0)))
            .collect();
        if !missed.is_empty() {
            lines.push(format!("未完成月度任务指标：{}。", missed.join("、")));
        }
        if !self.referrals.is_empty() {
            lines.push(format!("转介绍 {} 条，老客户权益见“转介绍”表。", self.referrals.len()));
        }
        if self.pending > 0 {
            lines.push(format!("注意：本月还有 {} 条记录待确认，确认后需重新结算。", self.pending));
        }
        if let Some(stakes) = self.stakes_summary("见“未缴PK金”表") {
            lines.push(stakes);
        }
        if !self.earlier_rules.is_empty() {
            lines.push(format!(
                "注意：本月此前有 {} 次结算时生效的奖励规则与本次不同：{}。当时生成的文件可能与本次金额不同；每条记录按其报备时生效的规则计算。",
                self.earlier_rules.len(),
                earlier_runs_text(&self.earlier_rules)
            ));
        }
        if let Some(unapplied) = &self.unapplied {
            lines.push(format!(
                "注意：配置文件中的奖励规则（规则集 {unapplied}）尚未生效，本次按正在生效的规则集 {} 结算。\
                 leadboard reload（或重启服务）后新规则生效，适用于此后报备的记录。",
                self.rule_set
            ));
        }
        lines.join("\n")
    }

    /// `未缴PK金：客户开发PK 2 人 200.00 元；…（见“未缴PK金”表）。`, when any is unpaid.
    fn stakes_summary(&self, note: &str) -> Option<String> {
        let contests: Vec<String> = stakes_by_contest(&self.unpaid_stakes)
            .into_iter()
            .map(|(contest, members, owed)| format!("{contest} {members} 人 {owed} 元"))
            .collect();
        (!contests.is_empty()).then(|| format!("未缴PK金：{}（{note}）。", contests.join("；")))
    }

    fn closed_summary(&self, closed: &Closed) -> String {
        let c = &closed.close;
        let mut lines = vec![format!(
            "{} 已结账（{}，{}）：文件为结账时保存的文件，不再变化；{} 条明细，合计 {} 元（规则集 {}）。",
            self.month,
            format_ms(c.closed_at),
            c.closed_by,
            c.lines,
            Fen(c.total_fen),
            c.rule_set
        )];
        if c.pending > 0 {
            lines.push(format!("结账时有 {} 条记录待确认。", c.pending));
        }
        if closed.due.is_empty() {
            lines.push("结账后没有影响本月金额的变动。".to_owned());
        } else {
            let due: Vec<&Line> = closed.due.iter().collect();
            lines.push(format!(
                "结账后有 {} 项变动，计入 {} 结算：{}。",
                due.len(),
                closed.due_in,
                adjustment_totals(&due)
            ));
        }
        if self.pending > 0 {
            lines.push(format!("本月仍有 {} 条记录待确认，确认后计入 {} 的补发。", self.pending, closed.due_in));
        }
        if let Some(stakes) = self.stakes_summary("文件中为结账时的名单") {
            lines.push(format!("当前{stakes}"));
        }
        lines.join("\n")
    }

    /// Records the run (rules used, totals).
    pub async fn record(&self, conn: &mut Conn, by: &str, now_ms: i64) -> Result<(), sqlx::Error> {
        let month = self.month.to_string();
        let (total_fen, lines) = match &self.closed {
            Some(closed) => (closed.close.total_fen, closed.close.lines),
            None => (self.settlement.total().0, self.settlement.lines.len() as i64),
        };
        let run = Run {
            month: &month,
            run_at: now_ms,
            run_by: by,
            rules: &self.rules,
            rule_set: &self.rule_set,
            total_fen,
            lines,
            pending: self.pending,
        };
        store::record_run(conn, &run).await
    }

    pub fn file_stem(&self) -> String {
        format!("settlement-{}", self.month)
    }
}

/// The columns of the 明细 sheet (and, after 行类型, of the CSV).
const LINE_HEADER: [&str; 17] = [
    "月份",
    "账号",
    "工号",
    "姓名",
    "事业部",
    "部门",
    "编号",
    "类型",
    "调整月份",
    "方式",
    "规则",
    "规则集",
    "报备日期",
    "确认日期",
    "确认人",
    "合同号",
    "金额(元)",
];

/// `补发 200.00 元、扣回 300.00 元` of these adjustment lines.
fn adjustment_totals(lines: &[&Line]) -> String {
    let more: Fen = lines.iter().filter(|l| l.amount.0 > 0).map(|l| l.amount).sum();
    let less: Fen = lines.iter().filter(|l| l.amount.0 < 0).map(|l| Fen(-l.amount.0)).sum();
    let mut parts = Vec::new();
    if more.0 > 0 {
        parts.push(format!("补发 {more} 元"));
    }
    if less.0 > 0 {
        parts.push(format!("扣回 {less} 元"));
    }
    parts.join("、")
}

/// `2026-11-29` in Asia/Shanghai.
fn format_date(ms: i64) -> String {
    format_ms(ms).split(' ').next().unwrap_or_default().to_owned()
}

/// `2023-07-15 18:00（合计 7440.00 元）、…`: the latest few runs, oldest first.
fn earlier_runs_text(runs: &[(i64, Fen)]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = runs
        .iter()
        .skip(runs.len().saturating_sub(SHOWN))
        .map(|(at, total)| format!("{}（合计 {total} 元）", format_ms(*at)))
        .collect();
    let more = if runs.len() > SHOWN { format!("（仅列出最近 {SHOWN} 次）") } else { String::new() };
    format!("{}{more}", shown.join("、"))
}

/// The settlement's files written under temporary names (`….partial`) beside where
/// they go, not yet in place. Dropped without [`Staged::publish`], they are removed.
#[derive(Debug)]
pub struct Staged {
    /// `(temporary, final)` paths.
    files: Vec<(PathBuf, PathBuf)>,
}

/// Writes the CSV and the XLSX under temporary names in `dir`: both, or neither.
pub fn stage(dir: &Path, stem: &str, csv: &[u8], xlsx: &[u8]) -> anyhow::Result<Staged> {
    let mut staged = Staged { files: Vec::new() };
    for (ext, bytes) in [("csv", csv), ("xlsx", xlsx)] {
        let target = dir.join(format!("{stem}.{ext}"));
        let temp = PathBuf::from(format!("{}.partial", target.display()));
        std::fs::write(&temp, bytes).with_context(|| format!("无法写入目录 {}", dir.display()))?;
        staged.files.push((temp, target));
    }
    Ok(staged)
}

impl Staged {
    /// Moves both files into place, or neither: on any failure the files already moved
    /// are taken back out, the ones they replaced are put back, and nothing new remains.
    pub fn publish(self) -> anyhow::Result<Published> {
        let mut published = Published { placed: Vec::new(), replaced: Vec::new(), kept: false };
        for (temp, target) in &self.files {
            if let Ok(meta) = std::fs::symlink_metadata(target) {
                if meta.is_dir() {
                    anyhow::bail!("无法写入 {}：已有同名目录", target.display());
                }
                // The file of an earlier run is kept aside until both new files are in place.
                let aside = PathBuf::from(format!("{}.previous", target.display()));
                std::fs::rename(target, &aside).with_context(|| format!("无法替换 {}", target.display()))?;
                published.replaced.push((aside, target.clone()));
            }
            std::fs::rename(temp, target).with_context(|| format!("无法写入 {}", target.display()))?;
            published.placed.push(target.clone());
        }
        Ok(published)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (temp, _) in &self.files {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Both files in place. Dropped without [`Published::keep`] (the run could not be
/// recorded), they are taken out again and the files they replaced are put back.
#[derive(Debug)]
pub struct Published {
    placed: Vec<PathBuf>,
    /// `(set aside, original)` paths of the files of an earlier run.
    replaced: Vec<(PathBuf, PathBuf)>,
    kept: bool,
}

impl Published {
    /// Keeps the new files (the run is recorded) and returns their paths.
    pub fn keep(mut self) -> Vec<PathBuf> {
        self.kept = true;
        for (aside, _) in &self.replaced {
            let _ = std::fs::remove_file(aside);
        }
        std::mem::take(&mut self.placed)
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for path in &self.placed {
            let _ = std::fs::remove_file(path);
        }
        for (aside, original) in &self.replaced {
            if let Err(e) = std::fs::rename(aside, original) {
                tracing::error!(error = %e, file = %original.display(), "settlement file of an earlier run could not be put back");
            }
        }
    }
}
