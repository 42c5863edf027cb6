//! `[directory]` and `[roles]`: who is in the programme, from a static list or from
//! WeCom's contacts with what WeCom does not know added by overrides.

use super::Settings;
use crate::domain::contacts::{LevelRule, Match, Overrides, PersonOverride};
use crate::domain::directory::{DeptEntry, PersonEntry, Snapshot};
use crate::domain::org::{DeptKind, Level};
use serde::Deserialize;
use std::collections::HashSet;

/// The directory: a static list (`departments`, `users`), or WeCom's contacts with
/// what WeCom does not know added by `department_overrides` and `user_overrides`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DirectorySettings {
    pub source: DirectorySource,
    pub departments: Vec<DepartmentSettings>,
    pub users: Vec<UserSettings>,
    /// The level of people whose entry (static) or override (WeCom) names none.
    pub default_level: Level,
    /// `source = "wecom"`: department kinds, keyed by WeCom department id.
    pub department_overrides: Vec<DepartmentOverride>,
    /// `source = "wecom"`: levels, confirmers and main departments, keyed by userid.
    pub user_overrides: Vec<UserOverride>,
    /// `source = "wecom"`: levels by WeCom position (职务) or tag, for everyone they
    /// match; the first matching rule wins, a `user_overrides` level wins over all.
    pub level_rules: Vec<LevelRuleSettings>,
    /// `source = "wecom"`: the leaders (负责人) of a person's main department are
    /// confirmers (unless their `user_overrides` entry says `confirmer = false`).
    pub leaders_confirm: bool,
}

/// One level rule: `position` or `tag`, and the level it gives.
#[derive(Debug, Deserialize, Clone)]
pub struct LevelRuleSettings {
    /// The WeCom position (职务) exactly as written there.
    pub position: Option<String>,
    /// The name of a WeCom tag (标签); people in a tagged department count as tagged.
    pub tag: Option<String>,
    pub level: Level,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DirectorySource {
    #[default]
    Static,
    Wecom,
}

#[derive(Debug, Deserialize, Clone)]
pub struct DepartmentSettings {
    pub id: i64,
    pub name: String,
    pub parent: Option<i64>,
    /// cs | tr | other; inherited from the parent department when absent.
    pub kind: Option<DeptKind>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct UserSettings {
    pub userid: String,
    pub name: String,
    pub department: i64,
    /// `directory.default_level` when absent.
    pub level: Option<Level>,
    #[serde(default)]
    pub confirmer: bool,
    /// 工号, shown in the settlement files.
    pub employee_no: Option<String>,
}

/// A synced department's kind (sub-departments without their own inherit it).
#[derive(Debug, Deserialize, Clone)]
pub struct DepartmentOverride {
    pub id: i64,
    pub kind: DeptKind,
}

/// What WeCom does not know about a synced person.
#[derive(Debug, Deserialize, Clone)]
pub struct UserOverride {
    pub userid: String,
    /// `directory.default_level` (or a level rule's) when absent.
    pub level: Option<Level>,
    /// When absent: a confirmer if `leaders_confirm` and they lead their main department.
    pub confirmer: Option<bool>,
    /// The main department of someone in several (default: the first WeCom lists).
    pub department: Option<i64>,
    /// 工号, shown in the settlement files.
    pub employee_no: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RolesSettings {
    pub admins: Vec<String>,
    pub audit_group: Vec<String>,
    /// 结算中心: settlement (the console's 结算 page) and 缴费, beside the admins.
    pub finance: Vec<String>,
}

impl Settings {
    pub(super) fn validate_directory(&self, problems: &mut Vec<String>) {
        match self.directory.source {
            DirectorySource::Static => self.validate_static_directory(problems),
            DirectorySource::Wecom => self.validate_directory_overrides(problems),
        }
    }

    fn validate_static_directory(&self, problems: &mut Vec<String>) {
        let d = &self.directory;
        if !d.department_overrides.is_empty() || !d.user_overrides.is_empty() {
            problems.push(
                "directory.department_overrides 与 directory.user_overrides 只用于 source = \"wecom\"；\
                 静态通讯录请直接在 directory.departments / directory.users 中设置"
                    .into(),
            );
        }
        if !d.level_rules.is_empty() || d.leaders_confirm {
            problems.push(
                "directory.level_rules 与 directory.leaders_confirm 只用于 source = \"wecom\"（职务、标签和部门负责人\
                 来自企业微信）；静态通讯录请在 directory.users 中设置 level 和 confirmer"
                    .into(),
            );
        }
        let mut dept_ids = HashSet::new();
        for dept in &d.departments {
            if !dept_ids.insert(dept.id) {
                problems.push(format!("directory.departments：部门 id {} 重复", dept.id));
            }
        }
        for dept in &d.departments {
            if let Some(parent) = dept.parent.filter(|p| !dept_ids.contains(p)) {
                problems.push(format!("部门 {}（{}）的上级部门 {parent} 不存在", dept.id, dept.name));
            }
        }
        let mut userids = HashSet::new();
        for user in &d.users {
            if !userids.insert(user.userid.as_str()) {
                problems.push(format!("directory.users：userid {} 重复", user.userid));
            }
            if !dept_ids.contains(&user.department) {
                problems.push(format!("用户 {} 的部门 {} 不存在", user.userid, user.department));
            }
        }
        let roles = [
            ("roles.admins", &self.roles.admins),
            ("roles.audit_group", &self.roles.audit_group),
            ("roles.finance", &self.roles.finance),
        ];
        for (role, ids) in roles {
            for id in ids.iter().filter(|id| !userids.contains(id.as_str())) {
                problems.push(format!("{role} 中的 {id} 不在通讯录中"));
            }
        }
    }

    /// `source = "wecom"`: no static list, and overrides that can name something in WeCom.
    fn validate_directory_overrides(&self, problems: &mut Vec<String>) {
        let d = &self.directory;
        if !d.departments.is_empty() || !d.users.is_empty() {
            problems.push(
                "directory.source = \"wecom\" 时部门和成员来自企业微信，directory.departments 与 directory.users \
                 必须为空（部门类型、级别和确认人用 directory.department_overrides / directory.user_overrides 设置）"
                    .into(),
            );
        }
        let mut ids = HashSet::new();
        for o in &d.department_overrides {
            if o.id <= 0 {
                problems.push(format!(
                    "directory.department_overrides：部门 id {} 无效（企业微信的部门 id 是正整数）",
                    o.id
                ));
            } else if !ids.insert(o.id) {
                problems.push(format!("directory.department_overrides：部门 {} 重复", o.id));
            }
        }
        let mut userids = HashSet::new();
        for o in &d.user_overrides {
            if !well_formed_userid(&o.userid) {
                problems.push(format!(
                    "directory.user_overrides：“{}” 不是有效的企业微信 userid（1 到 64 个字母、数字或 _-@.，以字母或数字开头）",
                    o.userid
                ));
            } else if !userids.insert(o.userid.as_str()) {
                problems.push(format!("directory.user_overrides：userid {} 重复", o.userid));
            }
            if let Some(dept) = o.department.filter(|id| *id <= 0) {
                problems.push(format!("directory.user_overrides：{} 的部门 id {dept} 无效", o.userid));
            }
        }
        self.validate_level_rules(problems);
    }

    /// Each rule names exactly one non-empty position or tag, and none twice.
    fn validate_level_rules(&self, problems: &mut Vec<String>) {
        let mut seen = HashSet::new();
        for (i, rule) in self.directory.level_rules.iter().enumerate() {
            let at = format!("directory.level_rules 第 {} 条", i + 1);
            let matches = match (rule.position.as_deref().map(str::trim), rule.tag.as_deref().map(str::trim)) {
                (Some(p), None) if !p.is_empty() => Match::Position(p.to_owned()),
                (None, Some(t)) if !t.is_empty() => Match::Tag(t.to_owned()),
                (Some(_), Some(_)) => {
                    problems.push(format!("{at}：position 与 tag 只能写一个（各写一条规则）"));
                    continue;
                }
                _ => {
                    problems.push(format!("{at}：需要非空的 position（企业微信职务）或 tag（企业微信标签名）"));
                    continue;
                }
            };
            let rule = LevelRule { matches, level: rule.level };
            if !seen.insert(rule.matches.clone()) {
                problems.push(format!("{at}：{}重复（先写的规则生效）", rule.describe()));
            }
        }
    }

    /// The directory as configured (`source = "static"`).
    pub fn directory_snapshot(&self) -> Snapshot {
        let d = &self.directory;
        Snapshot {
            departments: d
                .departments
                .iter()
                .map(|x| DeptEntry { id: x.id, name: x.name.clone(), parent: x.parent, kind: x.kind })
                .collect(),
            people: d
                .users
                .iter()
                .map(|u| PersonEntry {
                    userid: u.userid.clone(),
                    name: u.name.clone(),
                    department: u.department,
                    level: u.level.unwrap_or(d.default_level),
                    confirmer: u.confirmer,
                    employee_no: employee_no(u.employee_no.as_deref()),
                })
                .collect(),
        }
    }

    /// What configuration adds to a directory synced from WeCom (`source = "wecom"`).
    pub fn directory_overrides(&self) -> Overrides {
        let d = &self.directory;
        Overrides {
            kinds: d.department_overrides.iter().map(|o| (o.id, o.kind)).collect(),
            people: d
                .user_overrides
                .iter()
                .map(|o| {
                    let person = PersonOverride {
                        level: o.level,
                        confirmer: o.confirmer,
                        department: o.department,
                        employee_no: employee_no(o.employee_no.as_deref()),
                    };
                    (o.userid.clone(), person)
                })
                .collect(),
            level_rules: d.level_rules.iter().filter_map(LevelRuleSettings::rule).collect(),
            default_level: d.default_level,
            leaders_confirm: d.leaders_confirm,
        }
    }
}

impl LevelRuleSettings {
    /// The rule, trimmed; `None` for a rule the checks refuse.
    fn rule(&self) -> Option<LevelRule> {
        let text = |t: &Option<String>| t.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
        let matches = match (text(&self.position), text(&self.tag)) {
            (Some(p), None) => Match::Position(p),
            (None, Some(t)) => Match::Tag(t),
            _ => return None,
        };
        Some(LevelRule { matches, level: self.level })
    }
}

/// An employee number as written, trimmed; blank is none.
fn employee_no(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// A WeCom userid: 1 to 64 bytes of letters, digits and `_-@.`, starting with a letter
/// or digit (WeCom's rule for 账号).
fn well_formed_userid(userid: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-@.".contains(c);
    (1..=64).contains(&userid.len())
        && userid.starts_with(|c: char| c.is_ascii_alphanumeric())
        && userid.chars().all(allowed)
}
