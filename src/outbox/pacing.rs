//! Pacing (SPEC section 15): how many messages each recipient got in the last minute
//! and hour, and which queued message may go next — in queue order per recipient,
//! within every recipient's budget, with a rush of cards merged into a digest.

use crate::config::OutboxSettings;
use crate::store::outbox::Queued;
use std::collections::{HashMap, HashSet, VecDeque};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// The budgets, per kind of lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub member_per_minute: u32,
    pub member_per_hour: u32,
    pub robot_per_minute: u32,
    pub appchat_per_minute: u32,
}

impl Limits {
    pub fn from_settings(settings: &OutboxSettings) -> Self {
        Limits {
            member_per_minute: settings.member_per_minute,
            member_per_hour: settings.member_per_hour,
            robot_per_minute: settings.robot_per_minute,
            appchat_per_minute: settings.appchat_per_minute,
        }
    }

    /// `(per minute, per hour)` for a lane; None for a lane nothing limits.
    fn of(&self, lane: &str) -> Option<(u32, Option<u32>)> {
        match lane.split_once(':').map(|(kind, _)| kind) {
            Some("u") => Some((self.member_per_minute, Some(self.member_per_hour))),
            Some("robot") => Some((self.robot_per_minute, None)),
            Some("chat") => Some((self.appchat_per_minute, None)),
            _ => None,
        }
    }
}

/// The lanes of a message (`u:zhangwei|u:lina`), without empty ones.
pub fn lanes(lanes: &str) -> impl Iterator<Item = &str> {
    lanes.split('|').filter(|l| !l.is_empty())
}

/// What each lane was sent in the last hour.
#[derive(Debug, Default)]
pub struct Pacer {
    sent: HashMap<String, VecDeque<i64>>,
}

/// How many more messages a message's lanes may get now, and when the next slot opens
/// if none may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub now: u32,
    pub free_at: i64,
}

impl Pacer {
    /// Counts a send to every lane of `lanes` at `at` (ms).
    pub fn record(&mut self, lanes_of: &str, at: i64) {
        for lane in lanes(lanes_of) {
            let times = self.sent.entry(lane.to_owned()).or_default();
            // Sends are recorded in time order but for a restart's reload; keep it sorted.
            let at_pos = times.iter().rposition(|&t| t <= at).map_or(0, |p| p + 1);
            times.insert(at_pos, at);
        }
    }

    /// Takes back a send counted at `at` that WeCom refused (it reached nobody).
    pub fn forget(&mut self, lanes_of: &str, at: i64) {
        for lane in lanes(lanes_of) {
            if let Some(times) = self.sent.get_mut(lane)
                && let Some(pos) = times.iter().rposition(|&t| t == at)
            {
                times.remove(pos);
            }
        }
    }

    /// The room every lane of `lanes_of` has at `now`.
    pub fn room(&mut self, lanes_of: &str, now: i64, limits: &Limits) -> Room {
        let mut room = Room { now: u32::MAX, free_at: now };
        for lane in lanes(lanes_of) {
            let Some((per_minute, per_hour)) = limits.of(lane) else { continue };
            let Some(times) = self.sent.get_mut(lane) else { continue };
            while times.front().is_some_and(|&t| t <= now - HOUR_MS) {
                times.pop_front();
            }
            let mut windows = vec![(per_minute, MINUTE_MS)];
            windows.extend(per_hour.map(|h| (h, HOUR_MS)));
            for (limit, window) in windows {
                let in_window = times.iter().rev().take_while(|&&t| t > now - window).count();
                let left = (limit as usize).saturating_sub(in_window) as u32;
                room.now = room.now.min(left);
                if left == 0 {
                    // The slot opens when the oldest send that fills the window leaves it.
                    let oldest = times[times.len() - in_window + (in_window - limit as usize)];
                    room.free_at = room.free_at.max(oldest + window);
                }
            }
        }
        room
    }
}

/// What the worker does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Deliver(i64),
    /// Merge these cards (same recipients, queue order) into one digest.
    Digest(Vec<i64>),
    /// Nothing may go now; the next may at this time (ms), if anything is queued (now,
    /// when it waits for a delivery under way).
    Idle(Option<i64>),
}

/// Picks the next message of `queue` (pending messages in queue order): the first whose
/// lanes are not busy (being delivered), not behind an earlier message to the same
/// recipient, due, and within budget. A card whose recipients have more cards waiting
/// than room is merged with them into a digest, at most once per `digest_until` period.
pub fn choose(
    queue: &[Queued],
    busy: &HashSet<String>,
    pacer: &mut Pacer,
    limits: &Limits,
    digest_until: &HashMap<String, i64>,
    now: i64,
) -> Choice {
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut next: Option<i64> = None;
    let later = |at: i64, next: &mut Option<i64>| *next = Some(next.map_or(at, |n| n.min(at)));
    for (i, q) in queue.iter().enumerate() {
        if lanes(&q.lanes).any(|l| busy.contains(l)) {
            // May go as soon as the delivery under way to the same recipient is done.
            later(now, &mut next);
            blocked.extend(lanes(&q.lanes));
            continue;
        }
        if lanes(&q.lanes).any(|l| blocked.contains(l)) {
            blocked.extend(lanes(&q.lanes));
            continue;
        }
        let wait_until = if q.next_attempt_at > now {
            Some(q.next_attempt_at)
        } else {
            let room = pacer.room(&q.lanes, now, limits);
            if room.now == 0 {
                Some(room.free_at)
            } else if q.digestible {
                match digest_until.get(&q.lanes) {
                    Some(&until) if until > now => Some(until),
                    _ => {
                        let group: Vec<i64> = queue[i..]
                            .iter()
                            .filter(|o| o.digestible && o.lanes == q.lanes && o.next_attempt_at <= now)
                            .map(|o| o.id)
                            .collect();
                        if group.len() > room.now as usize {
                            return Choice::Digest(group);
                        }
                        None
                    }
                }
            } else {
                None
            }
        };
        match wait_until {
            Some(at) => {
                later(at, &mut next);
                blocked.extend(lanes(&q.lanes));
            }
            None => return Choice::Deliver(q.id),
        }
    }
    Choice::Idle(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits =
        Limits { member_per_minute: 3, member_per_hour: 5, robot_per_minute: 2, appchat_per_minute: 2 };

    fn queued(id: i64, lanes: &str) -> Queued {
        Queued { id, lanes: lanes.into(), next_attempt_at: 0, digestible: false }
    }

    fn card(id: i64, lanes: &str) -> Queued {
        Queued { digestible: true, ..queued(id, lanes) }
    }

    fn pick(queue: &[Queued], pacer: &mut Pacer, now: i64) -> Choice {
        choose(queue, &HashSet::new(), pacer, &LIMITS, &HashMap::new(), now)
    }

    #[test]
    fn a_member_gets_at_most_the_minutes_budget_then_waits_for_the_oldest_to_leave() {
        let mut pacer = Pacer::default();
        for t in [1_000, 2_000, 3_000] {
            pacer.record("u:a", t);
        }
        let queue = [queued(1, "u:a"), queued(2, "u:b")];
        assert_eq!(pick(&queue, &mut pacer, 10_000), Choice::Deliver(2), "another recipient goes first");
        assert_eq!(pick(&queue[..1], &mut pacer, 10_000), Choice::Idle(Some(61_000)));
        assert_eq!(pick(&queue[..1], &mut pacer, 61_000), Choice::Deliver(1));
    }

    #[test]
    fn the_hours_budget_holds_beyond_the_minute() {
        let mut pacer = Pacer::default();
        for t in [0, 100_000, 200_000, 300_000, 400_000] {
            pacer.record("u:a", t);
        }
        let queue = [queued(1, "u:a")];
        assert_eq!(pick(&queue, &mut pacer, 500_000), Choice::Idle(Some(HOUR_MS)));
        assert_eq!(pick(&queue, &mut pacer, HOUR_MS), Choice::Deliver(1));
    }

    #[test]
    fn a_message_to_several_members_waits_for_the_fullest_and_counts_for_each() {
        let mut pacer = Pacer::default();
        for t in [1_000, 2_000, 3_000] {
            pacer.record("u:b", t);
        }
        let queue = [queued(1, "u:a|u:b")];
        assert_eq!(pick(&queue, &mut pacer, 5_000), Choice::Idle(Some(61_000)));
        pacer.record("u:a|u:c", 70_000);
        assert_eq!(pacer.room("u:a", 70_000, &LIMITS).now, 2);
        assert_eq!(pacer.room("u:c", 70_000, &LIMITS).now, 2);
        pacer.forget("u:a|u:c", 70_000);
        assert_eq!(pacer.room("u:a|u:c", 70_000, &LIMITS).now, 3);
    }

    #[test]
    fn one_recipients_messages_keep_their_order() {
        let mut pacer = Pacer::default();
        let mut retrying = queued(1, "u:a");
        retrying.next_attempt_at = 9_000;
        let queue = [retrying, queued(2, "u:a|u:b"), queued(3, "u:b"), queued(4, "u:c")];
        // 2 waits behind 1 (same member a); 3 waits behind 2 (member b); 4 is free.
        assert_eq!(pick(&queue, &mut pacer, 1_000), Choice::Deliver(4));
        assert_eq!(pick(&queue[..3], &mut pacer, 1_000), Choice::Idle(Some(9_000)));
        let busy = HashSet::from(["u:c".to_owned()]);
        assert_eq!(choose(&queue[3..], &busy, &mut pacer, &LIMITS, &HashMap::new(), 1_000), Choice::Idle(Some(1_000)));
        assert_eq!(choose(&[], &busy, &mut pacer, &LIMITS, &HashMap::new(), 1_000), Choice::Idle(None));
    }

    #[test]
    fn robots_and_chats_have_their_own_budgets() {
        let mut pacer = Pacer::default();
        pacer.record("robot:K", 0);
        pacer.record("robot:K", 1);
        pacer.record("chat:C", 0);
        assert_eq!(pacer.room("robot:K", 2, &LIMITS), Room { now: 0, free_at: 60_000 });
        assert_eq!(pacer.room("chat:C", 2, &LIMITS).now, 1);
        assert_eq!(pacer.room("", 2, &LIMITS).now, u32::MAX, "nothing limits a message without lanes");
    }

    #[test]
    fn cards_beyond_the_room_become_one_digest_and_single_cards_come_back_after_the_rush() {
        let mut pacer = Pacer::default();
        pacer.record("u:a|u:b", 0);
        // Room for 2 more; three cards to the same confirmers wait: one digest.
        let queue = [card(1, "u:a|u:b"), queued(2, "u:z"), card(3, "u:a|u:b"), card(4, "u:a|u:b"), card(5, "u:a")];
        assert_eq!(pick(&queue, &mut pacer, 1_000), Choice::Digest(vec![1, 3, 4]));
        // While the digest interval runs, further cards wait for it.
        let until = HashMap::from([("u:a|u:b".to_owned(), 61_000)]);
        let rush = [card(6, "u:a|u:b")];
        assert_eq!(choose(&rush, &HashSet::new(), &mut pacer, &LIMITS, &until, 2_000), Choice::Idle(Some(61_000)));
        // After it, a lone card goes as a card again.
        assert_eq!(choose(&rush, &HashSet::new(), &mut pacer, &LIMITS, &until, 61_000), Choice::Deliver(6));
        // Cards within the room go one by one.
        assert_eq!(pick(&queue[3..], &mut pacer, 1_000), Choice::Deliver(4));
    }
}
