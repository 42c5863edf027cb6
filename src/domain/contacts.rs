//! WeCom's contact lists turned into a directory `Snapshot`: WeCom knows departments,
//! names and memberships, positions (职务), department leaders and tags; configuration
//! adds what it does not know (department kinds, levels, confirmers), keyed by
//! department id and userid, or — for many people at once — by rules: a level for a
//! position or a tag, and department leaders as confirmers.

use crate::domain::directory::{DeptEntry, PersonEntry, Snapshot};
use crate::domain::org::{DeptKind, Level};
use std::collections::{HashMap, HashSet};

/// A department as WeCom lists it: `department/simplelist`, named from `department/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomDept {
    pub id: i64,
    /// `None` for WeCom's root (parent id 0).
    pub parent: Option<i64>,
    /// `None` when WeCom gave no name for it.
    pub name: Option<String>,
}

/// A member as `user/simplelist` (or `user/list`, with details) lists them, with all
/// their departments in WeCom's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WecomMember {
    pub userid: String,
    pub name: String,
    pub departments: Vec<i64>,
    /// 职务 (`user/list` only).
    pub position: Option<String>,
    /// The departments they lead (负责人; `user/list`'s `is_leader_in_dept`).
    pub leads: Vec<i64>,
}

/// A tag (标签) and whom it names: people, and departments (with their sub-departments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WecomTag {
    pub name: String,
    pub userids: Vec<String>,
    pub departments: Vec<i64>,
}

/// Everything the app can see of the company's contacts, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub departments: Vec<WecomDept>,
    /// Each member once, in the order first met.
    pub members: Vec<WecomMember>,
    /// The tags the level rules name that WeCom has.
    pub tags: Vec<WecomTag>,
}

/// What a level rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Match {
    /// The 职务 exactly as in WeCom (trimmed).
    Position(String),
    /// A tag's name.
    Tag(String),
}

/// People matching `matches` have `level` (unless their override names one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelRule {
    pub matches: Match,
    pub level: Level,
}

impl LevelRule {
    /// `职务“经理”` / `标签“总监级”`, for people.
    pub fn describe(&self) -> String {
        match &self.matches {
            Match::Position(p) => format!("职务“{p}”"),
            Match::Tag(t) => format!("标签“{t}”"),
        }
    }
}

/// What configuration says about one synced person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonOverride {
    pub level: Option<Level>,
    /// `None`: as the rules say (a department leader, with `leaders_confirm`).
    pub confirmer: Option<bool>,
    /// Their main department, for people in several.
    pub department: Option<i64>,
    /// 工号 (WeCom's contact API has no such field).
    pub employee_no: Option<String>,
}

/// What configuration adds to WeCom's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// A department's own kind; departments without one inherit their parent's.
    pub kinds: HashMap<i64, DeptKind>,
    pub people: HashMap<String, PersonOverride>,
    /// Levels by position or tag, the first matching rule winning.
    pub level_rules: Vec<LevelRule>,
    /// The level of synced people without a level override or a matching rule.
    pub default_level: Level,
    /// The leaders (负责人) of a person's main department confirm.
    pub leaders_confirm: bool,
}

impl Overrides {
    /// Whether `user/list` (positions, leaders) is needed instead of `user/simplelist`.
    pub fn wants_details(&self) -> bool {
        self.leaders_confirm || self.level_rules.iter().any(|r| matches!(r.matches, Match::Position(_)))
    }

    /// The tags the level rules name, each once, in the order written.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for rule in &self.level_rules {
            if let Match::Tag(t) = &rule.matches
                && !tags.contains(t)
            {
                tags.push(t.clone());
            }
        }
        tags
    }
}

/// Overrides that name a department or a person WeCom did not list, and rules that
/// match nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unmatched {
    pub departments: Vec<i64>,
    pub userids: Vec<String>,
    /// Tags that WeCom does not have (or the app cannot see).
    pub tags: Vec<String>,
    /// Level rules that matched nobody, described (`职务“总监”`).
    pub rules: Vec<String>,
}

impl Unmatched {
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty() && self.userids.is_empty() && self.tags.is_empty() && self.rules.is_empty()
    }
}

impl Contacts {
    /// The directory these contacts describe, with configuration's overrides. A
    /// department WeCom gave no name keeps `known_names`' (the stored one), else
    /// `部门 ID`. A person's main department is their override's when it is one of
    /// theirs, else the first of their departments that the app can see.
    pub fn snapshot(&self, overrides: &Overrides, known_names: &HashMap<i64, String>) -> Snapshot {
        let visible: HashSet<i64> = self.departments.iter().map(|d| d.id).collect();
        let departments = self
            .departments
            .iter()
            .map(|d| DeptEntry {
                id: d.id,
                name: d
                    .name
                    .clone()
                    .or_else(|| known_names.get(&d.id).cloned())
                    .unwrap_or_else(|| format!("部门 {}", d.id)),
                parent: d.parent,
                kind: overrides.kinds.get(&d.id).copied(),
            })
            .collect();
        let mut snapshot = Snapshot { departments, people: Vec::new() };
        let tagged = self.tagged(&snapshot);
        snapshot.people = self.members.iter().filter_map(|m| person(m, overrides, &visible, &tagged)).collect();
        snapshot
    }

    /// Each tag's people: those it names, and everyone in a department it names or
    /// below one.
    fn tagged(&self, tree: &Snapshot) -> HashMap<&str, HashSet<&str>> {
        self.tags
            .iter()
            .map(|tag| {
                let departments: HashSet<i64> = tag.departments.iter().flat_map(|d| tree.subtree(*d)).collect();
                let people = self
                    .members
                    .iter()
                    .filter(|m| {
                        tag.userids.contains(&m.userid) || m.departments.iter().any(|d| departments.contains(d))
                    })
                    .map(|m| m.userid.as_str())
                    .collect();
                (tag.name.as_str(), people)
            })
            .collect()
    }

    /// Overrides that match nothing in these contacts (likely typos, or outside the
    /// app's visibility).
    pub fn unmatched(&self, overrides: &Overrides) -> Unmatched {
        let depts: HashSet<i64> = self.departments.iter().map(|d| d.id).collect();
        let users: HashSet<&str> = self.members.iter().map(|m| m.userid.as_str()).collect();
        let mut departments: Vec<i64> = overrides.kinds.keys().filter(|id| !depts.contains(id)).copied().collect();
        let mut userids: Vec<String> =
            overrides.people.keys().filter(|u| !users.contains(u.as_str())).cloned().collect();
        departments.sort_unstable();
        userids.sort_unstable();
        let tags: Vec<String> =
            overrides.tags().into_iter().filter(|t| !self.tags.iter().any(|x| x.name == *t)).collect();
        let tree = Snapshot {
            departments: self
                .departments
                .iter()
                .map(|d| DeptEntry { id: d.id, name: String::new(), parent: d.parent, kind: None })
                .collect(),
            people: Vec::new(),
        };
        let tagged = self.tagged(&tree);
        let rules = overrides
            .level_rules
            .iter()
            .filter(|rule| !matches!(&rule.matches, Match::Tag(t) if tags.contains(t)))
            .filter(|rule| !self.members.iter().any(|m| rule_matches(rule, m, &tagged)))
            .map(LevelRule::describe)
            .collect();
        Unmatched { departments, userids, tags, rules }
    }
}

fn rule_matches(rule: &LevelRule, m: &WecomMember, tagged: &HashMap<&str, HashSet<&str>>) -> bool {
    match &rule.matches {
        Match::Position(p) => m.position.as_deref().is_some_and(|mine| mine.trim() == p),
        Match::Tag(t) => tagged.get(t.as_str()).is_some_and(|people| people.contains(m.userid.as_str())),
    }
}

fn person(
    m: &WecomMember,
    overrides: &Overrides,
    visible: &HashSet<i64>,
    tagged: &HashMap<&str, HashSet<&str>>,
) -> Option<PersonEntry> {
    let o = overrides.people.get(&m.userid).cloned().unwrap_or_default();
    let theirs = |id: &i64| m.departments.contains(id) && visible.contains(id);
    let department =
        o.department.filter(theirs).or_else(|| m.departments.iter().copied().find(|d| visible.contains(d)))?;
    let name = if m.name.trim().is_empty() { m.userid.clone() } else { m.name.trim().to_owned() };
    let ruled = overrides.level_rules.iter().find(|rule| rule_matches(rule, m, tagged)).map(|rule| rule.level);
    let leader = overrides.leaders_confirm && m.leads.contains(&department);
    Some(PersonEntry {
        userid: m.userid.clone(),
        name,
        department,
        level: o.level.or(ruled).unwrap_or(overrides.default_level),
        confirmer: o.confirmer.unwrap_or(leader),
        employee_no: o.employee_no,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dept(id: i64, parent: Option<i64>, name: Option<&str>) -> WecomDept {
        WecomDept { id, parent, name: name.map(str::to_owned) }
    }

    fn member(userid: &str, departments: &[i64]) -> WecomMember {
        WecomMember {
            userid: userid.into(),
            name: format!("{userid}名"),
            departments: departments.to_vec(),
            ..WecomMember::default()
        }
    }

    fn contacts() -> Contacts {
        Contacts {
            departments: vec![
                dept(2, Some(1), Some("客户成功事业部")),
                dept(21, Some(2), None),
                dept(3, Some(1), None),
            ],
            members: vec![member("a", &[21]), member("b", &[9, 3, 2]), member("c", &[2, 3])],
            tags: Vec::new(),
        }
    }

    #[test]
    fn names_come_from_wecom_then_from_what_is_stored_then_from_the_id() {
        let known = HashMap::from([(3, "招商引才事业部".to_owned())]);
        let snapshot = contacts().snapshot(&Overrides::default(), &known);
        let names: Vec<&str> = snapshot.departments.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["客户成功事业部", "部门 21", "招商引才事业部"]);
    }

    #[test]
    fn kinds_come_from_overrides_and_sub_departments_inherit_them() {
        let overrides = Overrides { kinds: HashMap::from([(2, DeptKind::Cs)]), ..Default::default() };
        let kinds = contacts().snapshot(&overrides, &HashMap::new()).effective_kinds();
        assert_eq!((kinds[&2], kinds[&21], kinds[&3]), (DeptKind::Cs, DeptKind::Cs, DeptKind::Other));
    }

    #[test]
    fn the_main_department_is_the_first_visible_one_unless_an_override_names_another_of_theirs() {
        let overrides = Overrides {
            people: HashMap::from([
                ("c".to_owned(), PersonOverride { department: Some(3), ..Default::default() }),
                ("a".to_owned(), PersonOverride { department: Some(3), ..Default::default() }),
            ]),
            ..Default::default()
        };
        let snapshot = contacts().snapshot(&overrides, &HashMap::new());
        let main: Vec<(&str, i64)> = snapshot.people.iter().map(|p| (p.userid.as_str(), p.department)).collect();
        // b's first department (9) is outside the app's visibility; a is not in 3.
        assert_eq!(main, [("a", 21), ("b", 3), ("c", 3)]);
    }

    #[test]
    fn levels_and_confirmers_come_from_overrides_with_a_default_level() {
        let overrides = Overrides {
            people: HashMap::from([(
                "a".to_owned(),
                PersonOverride { level: Some(Level::Manager), confirmer: Some(true), ..PersonOverride::default() },
            )]),
            default_level: Level::Supervisor,
            ..Default::default()
        };
        let snapshot = contacts().snapshot(&overrides, &HashMap::new());
        let a = &snapshot.people[0];
        assert_eq!((a.level, a.confirmer, a.name.as_str()), (Level::Manager, true, "a名"));
        assert_eq!((snapshot.people[1].level, snapshot.people[1].confirmer), (Level::Supervisor, false));
    }

    #[test]
    fn overrides_that_match_nothing_are_named() {
        let overrides = Overrides {
            kinds: HashMap::from([(2, DeptKind::Cs), (99, DeptKind::Tr)]),
            people: HashMap::from([("a".to_owned(), PersonOverride::default()), ("zz".to_owned(), Default::default())]),
            ..Default::default()
        };
        let unmatched = contacts().unmatched(&overrides);
        assert_eq!(unmatched, Unmatched { departments: vec![99], userids: vec!["zz".into()], ..Default::default() });
    }

    /// `a` 经理 in 21 leading 21; `b` in 3 (tagged 总监级) leading 2; `c` in 2, under 21's parent.
    fn company() -> Contacts {
        let mut contacts = contacts();
        contacts.members[0].position = Some(" 经理 ".into());
        contacts.members[0].leads = vec![21];
        contacts.members[1].leads = vec![2];
        contacts.members[2].position = Some("经理".into());
        contacts.tags = vec![WecomTag { name: "总监级".into(), userids: vec!["b".into()], departments: vec![] }];
        contacts
    }

    fn rule(matches: Match, level: Level) -> LevelRule {
        LevelRule { matches, level }
    }

    #[test]
    fn levels_come_from_the_first_matching_position_or_tag_rule_unless_an_override_names_one() {
        let overrides = Overrides {
            level_rules: vec![
                rule(Match::Tag("总监级".into()), Level::Director),
                rule(Match::Position("经理".into()), Level::Manager),
                rule(Match::Position("总监".into()), Level::Director),
                rule(Match::Tag("没有的标签".into()), Level::Gm),
            ],
            people: HashMap::from([("c".to_owned(), PersonOverride { level: Some(Level::Vp), ..Default::default() })]),
            ..Default::default()
        };
        let levels: Vec<Level> =
            company().snapshot(&overrides, &HashMap::new()).people.iter().map(|p| p.level).collect();
        assert_eq!(levels, [Level::Manager, Level::Director, Level::Vp]);
        let unmatched = company().unmatched(&overrides);
        assert_eq!(unmatched.tags, ["没有的标签"]);
        assert_eq!(unmatched.rules, ["职务“总监”"], "the missing tag is named once, as missing");
        assert!(overrides.wants_details());
        assert_eq!(overrides.tags(), ["总监级", "没有的标签"]);
    }

    #[test]
    fn a_tagged_department_tags_everyone_in_it_and_below() {
        let mut contacts = company();
        contacts.tags = vec![WecomTag { name: "客户成功".into(), userids: vec![], departments: vec![2] }];
        let overrides = Overrides {
            level_rules: vec![rule(Match::Tag("客户成功".into()), Level::Supervisor)],
            ..Default::default()
        };
        let levels: Vec<(String, Level)> =
            contacts.snapshot(&overrides, &HashMap::new()).people.into_iter().map(|p| (p.userid, p.level)).collect();
        // a is in 21 (below 2), b is in 2 as well as 3 and 9, c is in 2.
        assert_eq!(
            levels,
            [("a".into(), Level::Supervisor), ("b".into(), Level::Supervisor), ("c".into(), Level::Supervisor)]
        );
        assert!(!overrides.wants_details(), "tags alone need no details");
    }

    #[test]
    fn leaders_of_their_main_department_confirm_when_asked_unless_an_override_says_no() {
        let mut overrides = Overrides { leaders_confirm: true, ..Default::default() };
        let confirmers = |o: &Overrides| -> Vec<bool> {
            company().snapshot(o, &HashMap::new()).people.iter().map(|p| p.confirmer).collect()
        };
        // b leads 2, but their main department is 3.
        assert_eq!(confirmers(&overrides), [true, false, false]);
        overrides.people.insert("a".into(), PersonOverride { confirmer: Some(false), ..Default::default() });
        overrides.people.insert("b".into(), PersonOverride { department: Some(2), ..Default::default() });
        assert_eq!(confirmers(&overrides), [false, true, false]);
        assert_eq!(confirmers(&Overrides::default()), [false, false, false], "off by default");
    }
}
