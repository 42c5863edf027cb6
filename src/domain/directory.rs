//! The directory: departments and people, from configuration or from WeCom. A source
//! produces a `Snapshot`; applying it computes what changed, so both sources share one
//! path and commands never know where the directory came from.

use crate::domain::org::{DeptKind, Level};
use std::collections::{BTreeMap, HashMap};

/// A department as a source describes it; `kind` may be left to inherit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptEntry {
    pub id: i64,
    pub name: String,
    pub parent: Option<i64>,
    pub kind: Option<DeptKind>,
}

/// A person as a source describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonEntry {
    pub userid: String,
    pub name: String,
    pub department: i64,
    pub level: Level,
    pub confirmer: bool,
    /// 工号, when the directory has one.
    pub employee_no: Option<String>,
}

/// The whole directory from one source, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub departments: Vec<DeptEntry>,
    pub people: Vec<PersonEntry>,
}

impl Snapshot {
    /// Each department's effective kind: its own, else its nearest ancestor's, else
    /// `other`. Cycles in bad data end at `other` instead of looping.
    pub fn effective_kinds(&self) -> HashMap<i64, DeptKind> {
        let by_id: HashMap<i64, &DeptEntry> = self.departments.iter().map(|d| (d.id, d)).collect();
        let resolve = |mut id: i64| {
            for _ in 0..by_id.len() + 1 {
                let Some(dept) = by_id.get(&id) else { break };
                if let Some(kind) = dept.kind {
                    return kind;
                }
                match dept.parent {
                    Some(parent) => id = parent,
                    None => break,
                }
            }
            DeptKind::Other
        };
        self.departments.iter().map(|d| (d.id, resolve(d.id))).collect()
    }

    /// A department and every department below it.
    pub fn subtree(&self, root: i64) -> Vec<i64> {
        let mut children: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for d in &self.departments {
            if let Some(p) = d.parent {
                children.entry(p).or_default().push(d.id);
            }
        }
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            for child in children.get(&out[i]).into_iter().flatten() {
                if !out.contains(child) {
                    out.push(*child);
                }
            }
            i += 1;
        }
        out
    }
}

/// A person as stored: what a snapshot is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub entry: PersonEntry,
    pub active: bool,
}

/// What applying a snapshot changes about people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<PersonEntry>,
    /// (person as now, previous department)
    pub moved: Vec<(PersonEntry, i64)>,
    /// Name, level, confirmer or employee number changed.
    pub updated: Vec<PersonEntry>,
    /// Gone from the source: deactivated, records kept.
    pub departed: Vec<String>,
    /// Back in the source after having departed.
    pub returned: Vec<PersonEntry>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.moved.is_empty()
            && self.updated.is_empty()
            && self.departed.is_empty()
            && self.returned.is_empty()
    }
}

/// Compares stored people with a snapshot.
pub fn diff(stored: &[Stored], snapshot: &Snapshot) -> Changes {
    let old: HashMap<&str, &Stored> = stored.iter().map(|s| (s.entry.userid.as_str(), s)).collect();
    let mut changes = Changes::default();
    for person in &snapshot.people {
        match old.get(person.userid.as_str()) {
            None => changes.added.push(person.clone()),
            Some(s) if !s.active => changes.returned.push(person.clone()),
            Some(s) if s.entry.department != person.department => {
                changes.moved.push((person.clone(), s.entry.department))
            }
            Some(s) if s.entry != *person => changes.updated.push(person.clone()),
            Some(_) => {}
        }
    }
    let present: std::collections::HashSet<&str> = snapshot.people.iter().map(|p| p.userid.as_str()).collect();
    changes.departed = stored
        .iter()
        .filter(|s| s.active && !present.contains(s.entry.userid.as_str()))
        .map(|s| s.entry.userid.clone())
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dept(id: i64, parent: Option<i64>, kind: Option<DeptKind>) -> DeptEntry {
        DeptEntry { id, name: format!("d{id}"), parent, kind }
    }

    fn person(userid: &str, department: i64) -> PersonEntry {
        PersonEntry {
            userid: userid.into(),
            name: userid.into(),
            department,
            level: Level::Staff,
            confirmer: false,
            employee_no: None,
        }
    }

    #[test]
    fn sub_departments_inherit_their_kind() {
        let snapshot = Snapshot {
            departments: vec![
                dept(1, None, None),
                dept(2, Some(1), Some(DeptKind::Cs)),
                dept(21, Some(2), None),
                dept(22, Some(21), Some(DeptKind::Tr)),
            ],
            people: vec![],
        };
        let kinds = snapshot.effective_kinds();
        assert_eq!(kinds[&1], DeptKind::Other);
        assert_eq!(kinds[&21], DeptKind::Cs);
        assert_eq!(kinds[&22], DeptKind::Tr);
        assert_eq!(snapshot.subtree(2), vec![2, 21, 22]);
    }

    #[test]
    fn a_parent_cycle_does_not_loop() {
        let snapshot = Snapshot { departments: vec![dept(1, Some(2), None), dept(2, Some(1), None)], people: vec![] };
        assert_eq!(snapshot.effective_kinds()[&1], DeptKind::Other);
    }

    #[test]
    fn diff_finds_added_moved_updated_departed_and_returned() {
        let stored = vec![
            Stored { entry: person("stay", 1), active: true },
            Stored { entry: person("move", 1), active: true },
            Stored { entry: person("gone", 1), active: true },
            Stored { entry: person("back", 1), active: false },
            Stored { entry: person("promoted", 1), active: true },
        ];
        let mut promoted = person("promoted", 1);
        promoted.level = Level::Manager;
        let snapshot = Snapshot {
            departments: vec![],
            people: vec![person("stay", 1), person("move", 2), person("new", 1), person("back", 1), promoted.clone()],
        };
        let changes = diff(&stored, &snapshot);
        assert_eq!(changes.added, vec![person("new", 1)]);
        assert_eq!(changes.moved, vec![(person("move", 2), 1)]);
        assert_eq!(changes.updated, vec![promoted]);
        assert_eq!(changes.departed, vec!["gone".to_owned()]);
        assert_eq!(changes.returned, vec![person("back", 1)]);
    }
}
