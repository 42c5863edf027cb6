//! Rewards (the programme's 奖励机制): the rules, as configured, and who is paid how
//! much for each confirmed record of a month under them and the monthly targets, plus
//! PK payouts. Pure: the store gathers the facts, the export writes the files.

use crate::domain::kind::RecordKind;
use crate::domain::money::{Fen, Percent};
use crate::domain::org::DeptKind;
use crate::domain::record::Mode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reward amounts (the programme's 奖励机制), in yuan; A-class as a percentage of the
/// deal. Nothing is paid for what is not configured. Read from `[rewards]`.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct RewardRules {
    /// Customer Success members, paid for B- and A-class clients only in months they met
    /// their target; C-class pays them nothing.
    pub cs: CsClientRewards,
    /// Everyone else, for client kinds.
    pub non_cs: ClientRewards,
    /// Talent Recruitment members, paid for channels and placements only in months they
    /// met their target.
    pub tr: TrRewards,
    /// Everyone else, for channels.
    pub non_tr: NonTrRewards,
    pub referral: ReferralRewards,
}

/// What Customer Success members earn for clients. There is no C-class amount: the
/// programme document says C-class clients earn Customer Success members no reward of
/// any kind, whatever is configured.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct CsClientRewards {
    /// Refused when present, with the reason (not an anonymous unknown key).
    #[serde(skip_serializing)]
    pub lead_c: NoCsLeadCReward,
    pub lead_b: Fen,
    pub lead_a_percent: Percent,
}

/// `rewards.cs.lead_c`: any value is a configuration error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoCsLeadCReward;

impl<'de> Deserialize<'de> for NoCsLeadCReward {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "C类客户对客户成功事业部员工无任何奖励（营销方案的奖励机制），不能设置；请删除 rewards.cs.lead_c",
        ))
    }
}

/// What everyone outside Customer Success earns for clients.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct ClientRewards {
    pub lead_c: Fen,
    pub lead_b: Fen,
    pub lead_a_percent: Percent,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct TrRewards {
    /// 直接促成: the TR member closed it themselves.
    pub school_direct: Fen,
    /// 转接促成: the TR member closed a channel someone else found (paid to the closer).
    pub school_transfer: Fen,
    pub agency_direct: Fen,
    pub agency_transfer: Fen,
    pub person_direct: Fen,
    pub person_transfer: Fen,
    /// Per placement through a new channel, beyond the channel's base indicator.
    pub placement_new_channel: Fen,
    /// Per placement through an old channel (`[channels] existing`).
    pub placement_old_channel: Fen,
    /// Per self-recruited placement (自招).
    pub placement_self: Fen,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct NonTrRewards {
    pub school_direct: Fen,
    /// 首次成功确认关键人并转接: paid to the originator of a transfer.
    pub school_originator: Fen,
    pub agency_direct: Fen,
    pub agency_originator: Fen,
    pub person_direct: Fen,
    pub person_originator: Fen,
}

/// The referral campaign (裂变机制): what the old client is granted.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct ReferralRewards {
    /// The discount or waiver, as account managers should apply it.
    pub benefit: String,
    /// Paid to the employee who reported the referral (0 by default).
    pub reporter: Fen,
}

/// Monthly targets (月度任务指标) in points of the department's own kinds. Read from
/// `[targets]`.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct Targets {
    pub cs: i64,
    pub tr: i64,
    /// Per-person overrides, by userid.
    pub people: std::collections::BTreeMap<String, i64>,
}

/// Which channel a placement came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementSource {
    /// 自招.
    SelfRecruited,
    /// A channel that existed before the programme.
    OldChannel,
    /// A channel reported in the programme (beyond its base indicator).
    NewChannel,
}

/// A person as the settlement sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payee {
    pub userid: String,
    pub name: String,
    /// 工号, when the directory has one.
    pub employee_no: Option<String>,
    /// The business unit (事业部: the department directly under the company) the
    /// department belongs to; the company itself for people at the top.
    pub unit: String,
    /// The department's id (0 when unknown): departments are told apart by it, not by
    /// their names, which may repeat.
    pub department_id: i64,
    pub department: String,
    pub class: DeptKind,
    /// A confirmer or a manager (经理 and above): has a monthly target only when one is
    /// configured for them by userid, not their department's.
    pub lead: bool,
}

/// Who decided something, and when (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub at: i64,
    pub by: String,
}

/// A confirmed record of the month.
#[derive(Debug, Clone)]
pub struct RecordFacts {
    pub id: i64,
    pub kind: RecordKind,
    pub mode: Mode,
    pub reporter: Payee,
    /// The receiving department's member who closed a transfer.
    pub closer: Option<Payee>,
    pub amount: Option<Fen>,
    pub placement: Option<PlacementSource>,
    /// When it was reported (Unix ms).
    pub reported_at: i64,
    /// Its confirmation.
    pub decided: Option<Decision>,
    /// A-class: the contract number, when given.
    pub contract: Option<String>,
}

/// A PK payout of a contest finalised in the month.
#[derive(Debug, Clone)]
pub struct PkFacts {
    /// The contest's id (what a payout is known by) and its name (what is shown).
    pub contest_id: String,
    pub contest: String,
    pub payee: Payee,
    pub rank: u32,
    pub amount: Fen,
    /// The contest's 终审.
    pub decided: Option<Decision>,
}

/// One line of the settlement: who, for what, by which rule, how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub payee: Payee,
    pub record: Option<i64>,
    /// A PK payout's contest id.
    pub contest: Option<String>,
    pub kind: String,
    /// 直接 / 转接 for the kinds reported with a 方式 (C-class clients and channels);
    /// empty for the others, where it means nothing.
    pub mode: String,
    pub rule: String,
    pub amount: Fen,
    /// When the record was reported (none for PK payouts).
    pub reported_at: Option<i64>,
    /// Its confirmation, or the contest's 终审.
    pub decided: Option<Decision>,
    pub contract: Option<String>,
    /// The rule set (`rule_sets.id`) the amount was computed under; set by whoever
    /// knows it (the service), empty until then.
    #[serde(default)]
    pub rule_set: String,
    /// For an adjustment (补发 / 扣回): the closed month whose pay it corrects.
    #[serde(default)]
    pub adjusts: Option<String>,
}

impl Line {
    /// What a line pays for, per person: a record, or a contest's payout.
    pub fn key(&self) -> (String, Option<i64>, Option<String>) {
        (self.payee.userid.clone(), self.record, self.contest.clone())
    }
}

/// A business unit's total, with the total of each of its departments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitTotal {
    pub unit: String,
    pub total: Fen,
    /// `(department, total)`, by name; the unit's own people under the unit's name.
    pub departments: Vec<(String, Fen)>,
}

/// A person's month: target, whether it was met, total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonTotal {
    pub payee: Payee,
    /// `(target, achieved)` for CS and TR members; None for others.
    pub target: Option<(i64, i64)>,
    pub total: Fen,
}

impl PersonTotal {
    pub fn target_met(&self) -> Option<bool> {
        self.target.map(|(target, achieved)| achieved >= target)
    }

    /// The points still missing to the target: 0 once it is met (never a surplus).
    pub fn missing(&self) -> Option<i64> {
        self.target.map(|(target, achieved)| (target - achieved).max(0))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Paid lines first, then the lines that pay nothing.
    pub lines: Vec<Line>,
    pub people: Vec<PersonTotal>,
    /// By business unit, with its departments.
    pub units: Vec<UnitTotal>,
}

impl Settlement {
    pub fn total(&self) -> Fen {
        self.lines.iter().map(|l| l.amount).sum()
    }
}

/// A payment a record earns before the target check: payee, rule, amount, and the
/// department class whose target gates it (if any).
struct Due {
    payee: Payee,
    rule: String,
    amount: Fen,
    gate: Option<DeptKind>,
}

/// The month's target of a person for `class`'s kinds (CS and TR only): their own,
/// else their department's — except for confirmers and managers, who have one only
/// when it is configured for them.
pub fn target_of(targets: &Targets, payee: &Payee, class: DeptKind) -> Option<i64> {
    let base = match class {
        DeptKind::Cs => targets.cs,
        DeptKind::Tr => targets.tr,
        DeptKind::Other => return None,
    };
    match targets.people.get(&payee.userid) {
        Some(own) => Some(*own),
        None if payee.lead => None,
        None => Some(base),
    }
}

/// Computes the month. `achieved` is each (person, class)'s points in their own
/// department's kinds this month; `members` are the CS and TR members who get a
/// met / not met total even without a single line.
pub fn settle(
    rules: &RewardRules,
    targets: &Targets,
    records: &[RecordFacts],
    pk: &[PkFacts],
    achieved: &BTreeMap<(String, DeptKind), i64>,
    members: &[Payee],
) -> Settlement {
    assemble(lines(rules, targets, records, pk, achieved), targets, achieved, members)
}

/// The month's lines, unordered and without a rule set: what each record and PK payout
/// pays whom under `rules` and `targets`.
pub fn lines(
    rules: &RewardRules,
    targets: &Targets,
    records: &[RecordFacts],
    pk: &[PkFacts],
    achieved: &BTreeMap<(String, DeptKind), i64>,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for record in records {
        for due in dues(rules, record) {
            let (rule, amount) = match due.gate.and_then(|class| gate(targets, achieved, &due.payee, class)) {
                Some(short) => (format!("{}；未完成月度任务指标（差 {short} 分），不发放", due.rule), Fen(0)),
                None => (due.rule, due.amount),
            };
            lines.push(Line {
                payee: due.payee,
                record: Some(record.id),
                contest: None,
                kind: record.kind.label().to_owned(),
                mode: if record.kind.takes_mode() { record.mode.label().to_owned() } else { String::new() },
                rule,
                amount,
                reported_at: Some(record.reported_at),
                decided: record.decided.clone(),
                contract: record.contract.clone(),
                rule_set: String::new(),
                adjusts: None,
            });
        }
    }
    for p in pk {
        lines.push(Line {
            payee: p.payee.clone(),
            record: None,
            contest: Some(p.contest_id.clone()),
            kind: "PK奖金".into(),
            mode: String::new(),
            rule: format!("{} 第{}名", p.contest, p.rank),
            amount: p.amount,
            reported_at: None,
            decided: p.decided.clone(),
            contract: None,
            rule_set: String::new(),
            adjusts: None,
        });
    }
    lines
}

/// The settlement of a month's lines (its own and any adjustments it carries): lines in
/// order, and the roll-ups per person, per department and per business unit. Every
/// roll-up adds up to the same grand total, [`Settlement::total`].
pub fn assemble(
    mut lines: Vec<Line>,
    targets: &Targets,
    achieved: &BTreeMap<(String, DeptKind), i64>,
    members: &[Payee],
) -> Settlement {
    lines.sort_by(line_order);
    let people = totals(targets, achieved, &lines, members);
    Settlement { units: unit_totals(&people), lines, people }
}

/// Lines that pay something first; then by business unit, department, person, the
/// month's own lines before adjustments, record (PK last).
fn line_order(a: &Line, b: &Line) -> std::cmp::Ordering {
    let (p, q) = (&a.payee, &b.payee);
    (a.amount.0 == 0, &p.unit, &p.department, p.department_id, &p.userid)
        .cmp(&(b.amount.0 == 0, &q.unit, &q.department, q.department_id, &q.userid))
        .then_with(|| (&a.adjusts, a.record.is_none(), a.record).cmp(&(&b.adjusts, b.record.is_none(), b.record)))
        .then_with(|| (&a.contest, &a.rule).cmp(&(&b.contest, &b.rule)))
}

/// Totals by business unit and, beneath, by department (told apart by id; a name two
/// departments of one unit share is shown with each one's id), from the people's: every
/// department of a person listed is listed, and each adds up to its people.
fn unit_totals(people: &[PersonTotal]) -> Vec<UnitTotal> {
    let mut units: BTreeMap<&str, BTreeMap<(&str, i64), Fen>> = BTreeMap::new();
    for person in people {
        let p = &person.payee;
        let total = units.entry(&p.unit).or_default().entry((&p.department, p.department_id)).or_default();
        *total = *total + person.total;
    }
    units
        .into_iter()
        .map(|(unit, departments)| {
            let shared = |name: &str| departments.keys().filter(|(n, _)| *n == name).count() > 1;
            UnitTotal {
                unit: unit.to_owned(),
                total: departments.values().copied().sum(),
                departments: departments
                    .iter()
                    .map(|((name, id), total)| {
                        let label =
                            if shared(name) { format!("{name}（部门ID {id}）") } else { (*name).to_owned() };
                        (label, *total)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// How many points short of the target, when not met.
fn gate(
    targets: &Targets,
    achieved: &BTreeMap<(String, DeptKind), i64>,
    payee: &Payee,
    class: DeptKind,
) -> Option<i64> {
    let target = target_of(targets, payee, class)?;
    let got = achieved.get(&(payee.userid.clone(), class)).copied().unwrap_or(0);
    (got < target).then_some(target - got)
}

/// Per person: everyone with a line, and every CS or TR member with a target above 0
/// (at 0.00 when they have no line), by business unit, department and userid.
fn totals(
    targets: &Targets,
    achieved: &BTreeMap<(String, DeptKind), i64>,
    lines: &[Line],
    members: &[Payee],
) -> Vec<PersonTotal> {
    let target = |payee: &Payee| {
        target_of(targets, payee, payee.class)
            .map(|t| (t, achieved.get(&(payee.userid.clone(), payee.class)).copied().unwrap_or(0)))
    };
    let key = |p: &Payee| (p.unit.clone(), p.department.clone(), p.department_id, p.userid.clone());
    let mut people: BTreeMap<(String, String, i64, String), PersonTotal> = BTreeMap::new();
    for line in lines {
        let key = key(&line.payee);
        let entry = people.entry(key).or_insert_with(|| PersonTotal {
            payee: line.payee.clone(),
            target: target(&line.payee),
            total: Fen(0),
        });
        entry.total = entry.total + line.amount;
    }
    let listed: std::collections::BTreeSet<String> = people.values().map(|p| p.payee.userid.clone()).collect();
    for payee in members.iter().filter(|m| !listed.contains(&m.userid)) {
        if let Some(target) = target(payee).filter(|(t, _)| *t > 0) {
            people.insert(key(payee), PersonTotal { payee: payee.clone(), target: Some(target), total: Fen(0) });
        }
    }
    people.into_values().collect()
}

/// What a record earns, per the programme's matrix of kind, department and mode.
fn dues(rules: &RewardRules, r: &RecordFacts) -> Vec<Due> {
    let reporter = &r.reporter;
    let due = |payee: &Payee, rule: String, amount: Fen, gate: Option<DeptKind>| Due {
        payee: payee.clone(),
        rule,
        amount,
        gate,
    };
    match r.kind {
        RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA => {
            let cs = reporter.class == DeptKind::Cs;
            let (who, lead_b, percent) = if cs {
                ("客户成功部员工", rules.cs.lead_b, rules.cs.lead_a_percent)
            } else {
                ("非客户成功部员工", rules.non_cs.lead_b, rules.non_cs.lead_a_percent)
            };
            let (rule, amount) = match (r.kind, r.amount) {
                // Not configurable: the programme pays CS members nothing for C.
                (RecordKind::LeadC, _) if cs => (format!("{who} C类客户：无任何奖励"), Fen(0)),
                (RecordKind::LeadC, _) => (format!("{who} C类客户"), rules.non_cs.lead_c),
                (RecordKind::LeadB, _) => (format!("{who} B类客户"), lead_b),
                (_, amount) => {
                    let deal = amount.unwrap_or_default();
                    (format!("{who} A类客户 成交额 {deal} 元 × {percent}"), percent.of(deal))
                }
            };
            vec![due(reporter, rule, amount, cs.then_some(DeptKind::Cs))]
        }
        RecordKind::ChannelSchool | RecordKind::ChannelAgency | RecordKind::ChannelPerson => channel_dues(rules, r),
        RecordKind::Placement => {
            if reporter.class != DeptKind::Tr {
                return vec![due(reporter, "非招商引才部员工 安置上岗：无奖励".into(), Fen(0), None)];
            }
            let t = &rules.tr;
            let (rule, amount) = match r.placement.unwrap_or(PlacementSource::SelfRecruited) {
                PlacementSource::NewChannel => ("新渠道", t.placement_new_channel),
                PlacementSource::OldChannel => ("老渠道", t.placement_old_channel),
                PlacementSource::SelfRecruited => ("自招", t.placement_self),
            };
            vec![due(reporter, format!("招商引才部员工 安置上岗 {rule}"), amount, Some(DeptKind::Tr))]
        }
        RecordKind::Referral => {
            vec![due(reporter, "转介绍（老客户权益见转介绍清单）".into(), rules.referral.reporter, None)]
        }
    }
}

/// Whether the 接手 of a transfer of `kind` is paid for it: Talent Recruitment members
/// closing a channel (转接促成); a client's closer is not.
pub fn closer_is_paid(kind: RecordKind, closer_class: DeptKind) -> bool {
    kind.receiving_dept() == DeptKind::Tr && kind != RecordKind::Placement && closer_class == DeptKind::Tr
}

fn channel_dues(rules: &RewardRules, r: &RecordFacts) -> Vec<Due> {
    let label = r.kind.label();
    let (tr_direct, tr_transfer, direct, originator) = match r.kind {
        RecordKind::ChannelSchool => (
            rules.tr.school_direct,
            rules.tr.school_transfer,
            rules.non_tr.school_direct,
            rules.non_tr.school_originator,
        ),
        RecordKind::ChannelAgency => (
            rules.tr.agency_direct,
            rules.tr.agency_transfer,
            rules.non_tr.agency_direct,
            rules.non_tr.agency_originator,
        ),
        _ => (
            rules.tr.person_direct,
            rules.tr.person_transfer,
            rules.non_tr.person_direct,
            rules.non_tr.person_originator,
        ),
    };
    let reporter = &r.reporter;
    let tr = reporter.class == DeptKind::Tr;
    let due = |payee: &Payee, rule: String, amount: Fen, gate: Option<DeptKind>| Due {
        payee: payee.clone(),
        rule,
        amount,
        gate,
    };
    match (r.mode, tr) {
        (Mode::Direct, true) => {
            vec![due(reporter, format!("招商引才部员工 {label} 直接促成"), tr_direct, Some(DeptKind::Tr))]
        }
        (Mode::Direct, false) => vec![due(reporter, format!("非招商引才部员工 {label} 直接促成"), direct, None)],
        (Mode::Transfer, _) => {
            let mut dues = Vec::new();
            if !tr {
                dues.push(due(reporter, format!("非招商引才部员工 {label} 首次确认关键人并转接"), originator, None));
            }
            if let Some(closer) = r.closer.as_ref().filter(|c| closer_is_paid(r.kind, c.class)) {
                dues.push(due(
                    closer,
                    format!("招商引才部员工 {label} 转接促成（接手）"),
                    tr_transfer,
                    Some(DeptKind::Tr),
                ));
            }
            dues
        }
    }
}
