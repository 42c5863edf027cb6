//! `[programme]`, `[points]`, `[stakes]`, `[channels]`, `[reminders]` and `[targets]`:
//! the activity period and the programme's rules.

use super::Settings;
use super::directory::DirectorySource;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::domain::org::Level;
use crate::domain::record::LeadStages;
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashSet;

/// The activity period (活动周期); reports outside it are refused.
#[derive(Debug, Deserialize)]
pub struct ProgrammeSettings {
    #[serde(default)]
    pub name: Option<String>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub referral_start: Option<NaiveDate>,
    pub referral_end: Option<NaiveDate>,
}

/// Points per record kind (defaults: C 1, B 5, A 30) and how client stages add up.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PointsSettings {
    pub lead_c: i64,
    pub lead_b: i64,
    pub lead_a: i64,
    pub channel_school: i64,
    pub channel_agency: i64,
    pub channel_person: i64,
    pub placement: i64,
    pub referral: i64,
    pub lead_stages: LeadStages,
}

impl Default for PointsSettings {
    fn default() -> Self {
        Self {
            lead_c: 1,
            lead_b: 5,
            lead_a: 30,
            channel_school: 10,
            channel_agency: 10,
            channel_person: 5,
            placement: 2,
            referral: 0,
            lead_stages: LeadStages::Cumulative,
        }
    }
}

impl PointsSettings {
    pub fn for_kind(&self, kind: RecordKind) -> i64 {
        match kind {
            RecordKind::LeadC => self.lead_c,
            RecordKind::LeadB => self.lead_b,
            RecordKind::LeadA => self.lead_a,
            RecordKind::ChannelSchool => self.channel_school,
            RecordKind::ChannelAgency => self.channel_agency,
            RecordKind::ChannelPerson => self.channel_person,
            RecordKind::Placement => self.placement,
            RecordKind::Referral => self.referral,
        }
    }
}

/// PK stake per level, in yuan (defaults: staff 100, supervisor 200, manager 300,
/// director 500). A level without a stake cannot join a contest.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct StakesSettings {
    pub staff: Option<Fen>,
    pub supervisor: Option<Fen>,
    pub manager: Option<Fen>,
    pub director: Option<Fen>,
    pub vp: Option<Fen>,
    pub gm: Option<Fen>,
    /// How and to whom stakes are paid, told to whoever joins a team.
    pub payment_note: String,
}

impl Default for StakesSettings {
    fn default() -> Self {
        Self {
            staff: Some(Fen::from_yuan(100)),
            supervisor: Some(Fen::from_yuan(200)),
            manager: Some(Fen::from_yuan(300)),
            director: Some(Fen::from_yuan(500)),
            vp: None,
            gm: None,
            payment_note: "请按PK组织方的通知缴纳".into(),
        }
    }
}

impl StakesSettings {
    pub fn for_level(&self, level: Level) -> Option<Fen> {
        match level {
            Level::Staff => self.staff,
            Level::Supervisor => self.supervisor,
            Level::Manager => self.manager,
            Level::Director => self.director,
            Level::Vp => self.vp,
            Level::Gm => self.gm,
        }
    }
}

/// Recruiting channels that existed before the programme (老渠道): placements may
/// name them, and are paid at the old-channel rate.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ChannelsSettings {
    pub existing: Vec<String>,
}

/// When undecided handoffs are chased: confirmers are reminded, then the audit group told.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ReminderSettings {
    /// Confirmers are reminded after this many hours.
    pub first_after_hours: u64,
    /// The audit group is told after this many hours.
    pub escalate_after_hours: u64,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        Self { first_after_hours: 24, escalate_after_hours: 72 }
    }
}

/// `[audit]`: appeals and the final ranking.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// A rejection may be appealed for this many days.
    pub appeal_days: u32,
    /// How many members of the audit group must approve a contest's ranking (终审).
    pub finalise_quorum: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { appeal_days: 7, finalise_quorum: 1 }
    }
}

impl Settings {
    pub(super) fn validate_audit(&self, problems: &mut Vec<String>) {
        let a = &self.audit;
        if a.appeal_days == 0 {
            problems.push("audit.appeal_days 须大于 0".into());
        }
        if a.finalise_quorum == 0 {
            problems.push("audit.finalise_quorum 须大于 0".into());
        } else if a.finalise_quorum > 1 && a.finalise_quorum > self.roles.audit_group.len() {
            problems.push(format!(
                "audit.finalise_quorum（{}）大于业绩审核组人数（{}）：比赛将永远无法终审",
                a.finalise_quorum,
                self.roles.audit_group.len()
            ));
        }
    }

    pub(super) fn validate_targets(&self, problems: &mut Vec<String>) {
        let t = &self.targets;
        if t.cs < 0 || t.tr < 0 || t.people.values().any(|v| *v < 0) {
            problems.push("targets：月度任务指标不能为负数".into());
        }
        if self.directory.source == DirectorySource::Static {
            let known: HashSet<&str> = self.directory.users.iter().map(|u| u.userid.as_str()).collect();
            for userid in t.people.keys().filter(|u| !known.contains(u.as_str())) {
                problems.push(format!("targets.people 中的 {userid} 不在通讯录中"));
            }
        }
    }

    pub(super) fn validate_reminders(&self, problems: &mut Vec<String>) {
        let r = &self.reminders;
        if r.first_after_hours == 0 || r.escalate_after_hours <= r.first_after_hours {
            problems
                .push("reminders：first_after_hours 须大于 0，escalate_after_hours 须大于 first_after_hours".into());
        }
    }

    pub(super) fn validate_programme(&self, problems: &mut Vec<String>) {
        let Some(p) = &self.programme else { return };
        for (what, start, end) in [
            ("programme.start/end", p.start, p.end),
            ("programme.referral_start/referral_end", p.referral_start, p.referral_end),
        ] {
            if let (Some(start), Some(end)) = (start, end)
                && end < start
            {
                problems.push(format!("{what}：结束日期 {end} 早于开始日期 {start}"));
            }
        }
    }
}
