//! WeCom's contact lists turned into a directory `Snapshot`: WeCom knows departments,
//! names and memberships; configuration adds what it does not know (department kinds,
//! levels, confirmers), keyed by department id and userid.

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

/// A member as `user/simplelist` lists them, with all their departments in WeCom's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomMember {
    pub userid: String,
    pub name: String,
    pub departments: Vec<i64>,
}

/// Everything the app can see of the company's contacts, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub departments: Vec<WecomDept>,
    /// Each member once, in the order first met.
    pub members: Vec<WecomMember>,
}

/// What configuration says about one synced person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonOverride {
    pub level: Option<Level>,
    pub confirmer: bool,
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
    /// The level of synced people without a level override.
    pub default_level: Level,
}

/// Overrides that name a department or a person WeCom did not list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unmatched {
    pub departments: Vec<i64>,
    pub userids: Vec<String>,
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
        let people = self.members.iter().filter_map(|m| person(m, overrides, &visible)).collect();
        Snapshot { departments, people }
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
        Unmatched { departments, userids }
    }
}

fn person(m: &WecomMember, overrides: &Overrides, visible: &HashSet<i64>) -> Option<PersonEntry> {
    let o = overrides.people.get(&m.userid).cloned().unwrap_or_default();
    let theirs = |id: &i64| m.departments.contains(id) && visible.contains(id);
    let department =
        o.department.filter(theirs).or_else(|| m.departments.iter().copied().find(|d| visible.contains(d)));
    let name = if m.name.trim().is_empty() { m.userid.clone() } else { m.name.trim().to_owned() };
    Some(PersonEntry {
        userid: m.userid.clone(),
        name,
        department: department?,
        level: o.level.unwrap_or(overrides.default_level),
        confirmer: o.confirmer,
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
        WecomMember { userid: userid.into(), name: format!("{userid}名"), departments: departments.to_vec() }
    }

    fn contacts() -> Contacts {
        Contacts {
            departments: vec![
                dept(2, Some(1), Some("客户成功事业部")),
                dept(21, Some(2), None),
                dept(3, Some(1), None),
            ],
            members: vec![member("a", &[21]), member("b", &[9, 3, 2]), member("c", &[2, 3])],
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
                PersonOverride { level: Some(Level::Manager), confirmer: true, ..PersonOverride::default() },
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
        assert_eq!(contacts().unmatched(&overrides), Unmatched { departments: vec![99], userids: vec!["zz".into()] });
    }
}
