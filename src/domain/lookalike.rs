//! The look-alike test's index of claimed core names, held in memory (on SQLite:
//! `store::names` keeps it in step with the database).
//!
//! On disk the index was a B-tree entry for each of a name's one-character deletions
//! and each of its 8-character windows: about 16 entries for a name of 8 characters,
//! each on a page of its own, so a report wrote some 16 pages of index that its commit
//! had to put in the WAL (BENCHMARKS.md, issue 16: most of what the callback writer
//! spent on a report). Here a name costs some 20 hash-map entries (about 235 bytes,
//! BENCHMARKS.md) and no I/O.
//!
//! [`NameIndex::look_alikes`] gives exactly the owners whose current name
//! [`looks_alike`] the key: each space's candidates are found through fingerprints (a
//! 32-bit hash of a run of characters, so two runs may share one) and each is then
//! checked against its owner's name. Candidates, for a key of two or more characters:
//! - one character apart (or the same): a name shares one of the key's [`deletions`]
//!   (each name is filed under its own deletions, itself among them);
//! - inside the key: a name is one of the key's runs (filed under itself, above);
//! - containing the key: a name has every pair of adjacent characters the key has, so
//!   it is among the names filed under the key's rarest pair.

use crate::domain::names::{deletions, looks_alike};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

/// The name spaces the look-alike test compares within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Client,
    Channel,
    Person,
}

impl Space {
    /// The space of a stored code (`subjects.family`, or `person` for placed people).
    pub fn parse(code: &str) -> Option<Space> {
        match code {
            "client" => Some(Space::Client),
            "channel" => Some(Space::Channel),
            "person" => Some(Space::Person),
            _ => None,
        }
    }
}

/// Owners filed under fingerprints: the first under a fingerprint in `first`, any
/// more in `more` (most fingerprints have one owner).
#[derive(Debug, Default)]
struct Postings {
    first: HashMap<u32, u32>,
    more: HashMap<u32, Vec<u32>>,
}

impl Postings {
    fn add(&mut self, print: u32, owner: u32) {
        match self.first.get(&print) {
            None => {
                self.first.insert(print, owner);
            }
            Some(&first) if first == owner => {}
            Some(_) => {
                // An owner's name is filed at once, so a repeat of its pair comes
                // right after; one filed again later (renamed) is deduplicated by
                // `look_alikes`.
                let more = self.more.entry(print).or_default();
                if more.last() != Some(&owner) {
                    more.push(owner);
                }
            }
        }
    }

    fn get(&self, print: u32) -> impl Iterator<Item = u32> + '_ {
        let more = self.more.get(&print).map(Vec::as_slice).unwrap_or_default();
        self.first.get(&print).copied().into_iter().chain(more.iter().copied())
    }

    fn count(&self, print: u32) -> usize {
        usize::from(self.first.contains_key(&print)) + self.more.get(&print).map_or(0, Vec::len)
    }
}

/// One owner (a subject, or a placement's record) and where its current name is in
/// the arena (`len` 0: none).
#[derive(Debug, Clone, Copy)]
struct Owner {
    id: i64,
    start: u32,
    len: u32,
}

/// Claimed core names by space and owner, and the fingerprints that find them.
#[derive(Debug, Default)]
pub struct NameIndex {
    spaces: [Names; 3],
}

/// One space's names.
#[derive(Debug, Default)]
struct Names {
    /// In the order they were filed: a posting is a position here.
    owners: Vec<Owner>,
    /// Positions by id, only once an owner came after one with a greater id (owners
    /// come in id order, as the log gives them, and are found by binary search).
    by_id: Option<HashMap<i64, u32>>,
    /// Every name filed, one after another; a renamed owner's earlier name stays
    /// (renames are rare: a change of the normaliser).
    arena: String,
    /// Each name's one-character deletions, and the name itself.
    deletions: Postings,
    /// Each name's pairs of adjacent characters.
    pairs: Postings,
}

impl Names {
    fn position(&self, id: i64) -> Option<u32> {
        match &self.by_id {
            Some(by_id) => by_id.get(&id).copied(),
            None => self.owners.binary_search_by_key(&id, |o| o.id).ok().map(|p| p as u32),
        }
    }

    fn name(&self, owner: &Owner) -> &str {
        &self.arena[owner.start as usize..(owner.start + owner.len) as usize]
    }

    fn set(&mut self, id: i64, key: Option<&str>) {
        let (start, len) = match key {
            Some(key) => {
                let start = self.arena.len();
                self.arena.push_str(key);
                (start as u32, key.len() as u32)
            }
            None => (0, 0),
        };
        let owner = Owner { id, start, len };
        let position = match self.position(id) {
            Some(p) => {
                self.owners[p as usize] = owner;
                p
            }
            None => {
                let p = self.owners.len() as u32;
                if self.by_id.is_none() && self.owners.last().is_some_and(|last| last.id > id) {
                    self.by_id = Some(self.owners.iter().enumerate().map(|(p, o)| (o.id, p as u32)).collect());
                }
                if let Some(by_id) = &mut self.by_id {
                    by_id.insert(id, p);
                }
                self.owners.push(owner);
                p
            }
        };
        let Some(key) = key else { return };
        let chars: Vec<char> = key.chars().collect();
        if chars.len() < 2 {
            return;
        }
        for variant in deletions(key) {
            self.deletions.add(print(variant.chars()), position);
        }
        for pair in chars.windows(2) {
            self.pairs.add(print(pair.iter().copied()), position);
        }
    }

    fn look_alikes(&self, key: &str, skip: impl Fn(i64) -> bool) -> Vec<i64> {
        let chars: Vec<char> = key.chars().collect();
        if chars.len() < 2 {
            return Vec::new();
        }
        let mut candidates: Vec<u32> = Vec::new();
        for variant in deletions(key) {
            candidates.extend(self.deletions.get(print(variant.chars())));
        }
        for start in 0..chars.len() {
            for end in start + 2..=chars.len() {
                if end - start < chars.len() {
                    candidates.extend(self.deletions.get(print(chars[start..end].iter().copied())));
                }
            }
        }
        let rarest = chars.windows(2).map(|pair| print(pair.iter().copied())).min_by_key(|&p| self.pairs.count(p));
        candidates.extend(rarest.into_iter().flat_map(|p| self.pairs.get(p)));
        candidates.sort_unstable();
        candidates.dedup();
        let mut found: Vec<i64> = candidates
            .into_iter()
            .map(|p| &self.owners[p as usize])
            .filter(|o| o.len > 0 && !skip(o.id) && looks_alike(key, self.name(o)))
            .map(|o| o.id)
            .collect();
        found.sort_unstable();
        found
    }
}

impl NameIndex {
    fn names(&self, space: Space) -> &Names {
        &self.spaces[space as usize]
    }

    /// Files `owner`'s current name in `space` (None: it has none now). A name filed
    /// before stays findable under its fingerprints, but is never given again: each
    /// candidate is checked against its owner's current name.
    pub fn set(&mut self, space: Space, owner: i64, key: Option<&str>) {
        self.spaces[space as usize].set(owner, key);
    }

    /// The owners in `space` whose current name looks like `key` (contains it, is
    /// inside it, or is one character apart; never the same name), in id order, except
    /// those `skip` names (owners whose name the caller knows to have changed).
    pub fn look_alikes(&self, space: Space, key: &str, skip: impl Fn(i64) -> bool) -> Vec<i64> {
        self.names(space).look_alikes(key, skip)
    }
}

/// The fingerprint of a run of characters.
fn print(chars: impl Iterator<Item = char>) -> u32 {
    let mut hasher = DefaultHasher::new();
    for c in chars {
        hasher.write_u32(c as u32);
    }
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the index must give: every owner whose name looks alike, by comparing them all.
    fn every(names: &[(Space, i64, String)], space: Space, key: &str) -> Vec<i64> {
        let mut current: HashMap<(Space, i64), &str> = HashMap::new();
        for (s, id, name) in names {
            current.insert((*s, *id), name);
        }
        let mut out: Vec<i64> = current
            .iter()
            .filter(|((s, _), name)| *s == space && looks_alike(key, name))
            .map(|((_, id), _)| *id)
            .collect();
        out.sort_unstable();
        out
    }

    fn space() -> impl Strategy<Value = Space> {
        prop_oneof![Just(Space::Client), Just(Space::Channel), Just(Space::Person)]
    }

    /// Names from a small alphabet, so that many of them look alike.
    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(vec!['杭', '州', '云', '帆', '网', 'a']), 0..10)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        /// The index gives exactly the look-alikes a comparison with every name gives,
        /// also after owners were renamed or lost their names.
        #[test]
        fn the_index_finds_exactly_the_look_alikes(
            names in proptest::collection::vec((space(), 0i64..40, name()), 0..60),
            cleared in proptest::collection::vec((space(), 0i64..40), 0..5),
            keys in proptest::collection::vec((space(), name()), 1..20),
        ) {
            let mut index = NameIndex::default();
            let mut filed = Vec::new();
            for (s, id, key) in &names {
                index.set(*s, *id, Some(key));
                filed.push((*s, *id, key.clone()));
            }
            for (s, id) in &cleared {
                index.set(*s, *id, None);
                filed.push((*s, *id, String::new()));
            }
            for (s, key) in &keys {
                prop_assert_eq!(index.look_alikes(*s, key, |_| false), every(&filed, *s, key));
            }
        }
    }

    #[test]
    fn a_name_is_found_inside_beside_and_around_another() {
        let mut index = NameIndex::default();
        index.set(Space::Client, 1, Some("杭州云帆网络"));
        index.set(Space::Client, 2, Some("云帆"));
        index.set(Space::Client, 3, Some("杭州云帆网路"));
        index.set(Space::Channel, 4, Some("杭州云帆网络"));
        assert_eq!(index.look_alikes(Space::Client, "杭州云帆网络", |_| false), [2, 3]);
        assert_eq!(index.look_alikes(Space::Client, "云帆网", |_| false), [1, 2, 3]);
        assert_eq!(index.look_alikes(Space::Client, "杭州云帆网络", |id| id == 3), [2]);
        index.set(Space::Client, 2, Some("宁波"));
        assert_eq!(index.look_alikes(Space::Client, "杭州云帆网络", |_| false), [3]);
        assert!(index.look_alikes(Space::Client, "杭", |_| false).is_empty());
    }
}
