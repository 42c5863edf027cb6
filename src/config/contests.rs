//! `[[contests]]`: PK contests as configured, checked, and resolved once at load into
//! the domain's `ContestDef`.

use super::Settings;
use super::directory::DirectorySource;
use crate::domain::contest::{self, ContestDef, SplitRule, TeamDef};
use crate::domain::directory::Snapshot;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use crate::wecom::message::Chat;
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashSet;

/// A contest as written in `[[contests]]`.
#[derive(Debug, Deserialize)]
pub struct ContestSettings {
    pub id: String,
    pub name: String,
    pub kinds: Vec<RecordKind>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// `HH:MM[:SS]` on the end date; 17:00 when absent.
    pub cutoff: Option<String>,
    #[serde(default)]
    pub sponsorship: Fen,
    #[serde(default)]
    pub split: SplitRule,
    #[serde(default)]
    pub chats: Vec<String>,
    #[serde(default)]
    pub teams: Vec<TeamSettings>,
}

/// A team: a member list or a whole department.
#[derive(Debug, Deserialize)]
pub struct TeamSettings {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    pub department: Option<i64>,
}

impl ContestSettings {
    /// The contest with its times resolved in Asia/Shanghai; `None` when its cut-off
    /// does not parse (reported by the checks).
    pub fn resolve(&self) -> Option<ContestDef> {
        let cutoff_time = match &self.cutoff {
            Some(text) => contest::parse_cutoff(text)?,
            None => contest::DEFAULT_CUTOFF,
        };
        Some(ContestDef {
            id: self.id.clone(),
            name: self.name.clone(),
            kinds: self.kinds.clone(),
            start: self.start,
            end: self.end,
            cutoff_time,
            start_ms: contest::local_ms(self.start, chrono::NaiveTime::MIN),
            cutoff_ms: contest::local_ms(self.end, cutoff_time),
            sponsorship: self.sponsorship,
            split: self.split,
            chats: self.chats.clone(),
            teams: self
                .teams
                .iter()
                .map(|t| TeamDef { name: t.name.clone(), members: t.members.clone(), department: t.department })
                .collect(),
        })
    }
}

impl Settings {
    pub(super) fn validate_contests(&self, contests: &[ContestSettings], problems: &mut Vec<String>) {
        let mut ids = HashSet::new();
        let snapshot = self.directory_snapshot();
        let static_dir = self.directory.source == DirectorySource::Static;
        for c in contests {
            let at = format!("比赛 {}", c.id);
            if c.id.trim().is_empty() || !ids.insert(c.id.as_str()) {
                problems.push(format!("{at}：id 为空或重复"));
            }
            if c.name.trim().is_empty() {
                problems.push(format!("{at}：name 不能为空"));
            }
            if c.kinds.is_empty() {
                problems.push(format!("{at}：kinds 不能为空"));
            }
            if c.end < c.start {
                problems.push(format!("{at}：结束日期 {} 早于开始日期 {}", c.end, c.start));
            }
            if let Some(cutoff) = c.cutoff.as_deref().filter(|t| contest::parse_cutoff(t).is_none()) {
                problems.push(format!("{at}：cutoff “{cutoff}” 应为 HH:MM 或 HH:MM:SS"));
            }
            for chat in c.chats.iter().filter(|chat| Chat::parse(chat).is_none()).map(|chat| Chat::redacted(chat)) {
                problems.push(format!("{at}：chats 中的 “{chat}” 应为 appchat:群ID 或 webhook:机器人key"));
            }
            if c.teams.is_empty() {
                problems.push(format!("{at}：没有队伍"));
            }
            self.validate_teams(c, &at, static_dir.then_some(&snapshot), problems);
        }
    }

    fn validate_teams(&self, c: &ContestSettings, at: &str, directory: Option<&Snapshot>, problems: &mut Vec<String>) {
        let mut names = HashSet::new();
        let mut member_of: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for team in &c.teams {
            if team.name.trim().is_empty() || !names.insert(team.name.as_str()) {
                problems.push(format!("{at}：队伍名为空或重复（{}）", team.name));
            }
            if team.department.is_some() && !team.members.is_empty() {
                problems.push(format!("{at}：队伍 {} 只能用 members 或 department 之一", team.name));
            }
            let mut members = team.members.clone();
            if let (Some(dept), Some(dir)) = (team.department, directory) {
                if !dir.departments.iter().any(|d| d.id == dept) {
                    problems.push(format!("{at}：队伍 {} 的部门 {dept} 不存在", team.name));
                }
                let depts = dir.subtree(dept);
                members.extend(dir.people.iter().filter(|p| depts.contains(&p.department)).map(|p| p.userid.clone()));
            }
            for userid in members {
                if let Some(dir) = directory
                    && !dir.people.iter().any(|p| p.userid == userid)
                {
                    problems.push(format!("{at}：队伍 {} 的成员 {userid} 不在通讯录中", team.name));
                }
                if let Some(other) = member_of.insert(userid.clone(), &team.name) {
                    problems.push(format!("{at}：{userid} 同时在队伍 {other} 和 {} 中", team.name));
                }
            }
        }
    }
}
