//! PK contests: their definition, ranking teams and dividing the pool, to the fen.

use crate::clock::TZ;
use crate::domain::kind::RecordKind;
use crate::domain::money::Fen;
use chrono::{NaiveDate, NaiveTime, TimeZone};
use serde::Deserialize;

/// How the winning team shares the pool.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SplitRule {
    /// In proportion to each member's stake.
    #[default]
    Stake,
    Equal,
}

/// Where a contest stands: open until its cut-off, then frozen (standings kept, the
/// audit group reviewing) until the audit group finalises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContestState {
    Open,
    Frozen,
    Final,
}

impl ContestState {
    pub const ALL: [ContestState; 3] = [ContestState::Open, ContestState::Frozen, ContestState::Final];

    pub fn code(self) -> &'static str {
        match self {
            ContestState::Open => "open",
            ContestState::Frozen => "frozen",
            ContestState::Final => "final",
        }
    }

    pub fn parse(code: &str) -> Option<ContestState> {
        ContestState::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A contest as configured, with its times resolved in Asia/Shanghai (once, when the
/// configuration loads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContestDef {
    pub id: String,
    pub name: String,
    pub kinds: Vec<RecordKind>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub cutoff_time: NaiveTime,
    /// Midnight starting `start`, Unix ms.
    pub start_ms: i64,
    /// `cutoff_time` on `end`, Unix ms: records from then on never count.
    pub cutoff_ms: i64,
    pub sponsorship: Fen,
    pub split: SplitRule,
    pub chats: Vec<String>,
    pub teams: Vec<TeamDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDef {
    pub name: String,
    pub members: Vec<String>,
    pub department: Option<i64>,
}

/// `HH:MM` or `HH:MM:SS`.
pub fn parse_cutoff(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S").or_else(|_| NaiveTime::parse_from_str(text, "%H:%M")).ok()
}

/// Unix milliseconds of a local (Asia/Shanghai) date and time.
pub fn local_ms(date: NaiveDate, time: NaiveTime) -> i64 {
    TZ.from_local_datetime(&date.and_time(time)).single().map_or(0, |t| t.timestamp_millis())
}

/// The cut-off time of day when a contest names none.
pub const DEFAULT_CUTOFF: NaiveTime = match NaiveTime::from_hms_opt(17, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

impl ContestDef {
    /// The kinds as stored: `lead_c,lead_b`.
    pub fn kinds_code(&self) -> String {
        self.kinds.iter().map(|k| k.code()).collect::<Vec<_>>().join(",")
    }

    pub fn team(&self, name: &str) -> Option<&TeamDef> {
        self.teams.iter().find(|t| t.name == name)
    }
}

/// A member's standing in a contest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberScore {
    pub userid: String,
    pub name: String,
    pub points: i64,
    pub stake: Fen,
    /// The stake is recorded as paid (缴费).
    #[serde(default)]
    pub paid: bool,
    /// Still in this team: false for the points of someone who moved to another team or
    /// left the contest (their points stay with the team; they are not paid from it).
    #[serde(default = "still_in_team")]
    pub current: bool,
}

fn still_in_team() -> bool {
    true
}

/// A team's standing; `rank` is shared by tied teams (1, 1, 3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TeamStanding {
    pub name: String,
    pub rank: u32,
    pub points: i64,
    pub members: Vec<MemberScore>,
}

impl TeamStanding {
    pub fn stakes(&self) -> Fen {
        self.members.iter().map(|m| m.stake).sum()
    }

    /// The stakes not yet recorded as paid.
    pub fn owed(&self) -> Fen {
        self.members.iter().filter(|m| m.current && !m.paid).map(|m| m.stake).sum()
    }
}

/// The stakes of every team not yet recorded as paid.
pub fn owed(standings: &[TeamStanding]) -> Fen {
    standings.iter().map(TeamStanding::owed).sum()
}

/// Ranks teams by points (ties share a rank), keeping configuration order among equals.
/// `teams` is `(name, members)` in configuration order.
pub fn rank(teams: Vec<(String, Vec<MemberScore>)>) -> Vec<TeamStanding> {
    let mut standings: Vec<TeamStanding> = teams
        .into_iter()
        .map(|(name, mut members)| {
            members.sort_by(|a, b| b.points.cmp(&a.points).then_with(|| a.userid.cmp(&b.userid)));
            TeamStanding { points: members.iter().map(|m| m.points).sum(), name, rank: 0, members }
        })
        .collect();
    // A stable sort keeps configuration order among teams with equal points.
    standings.sort_by_key(|t| std::cmp::Reverse(t.points));
    let mut previous: Option<(i64, u32)> = None;
    for (i, team) in standings.iter_mut().enumerate() {
        team.rank = match previous {
            Some((points, rank)) if points == team.points => rank,
            _ => i as u32 + 1,
        };
        previous = Some((team.points, team.rank));
    }
    standings
}

/// One person's share of the pool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payout {
    pub userid: String,
    pub team: String,
    pub rank: u32,
    pub amount: Fen,
}

/// The teams that win the pool: those ranked first with more than 0 points and at
/// least one member. When the top score is 0 nobody wins (every team would tie, empty
/// teams included), and a team without members has nobody to pay, so it never wins.
pub fn winners(standings: &[TeamStanding]) -> Vec<&TeamStanding> {
    standings.iter().filter(|t| t.rank == 1 && t.points > 0 && t.members.iter().any(|m| m.current)).collect()
}

/// Divides `pool` among the [`winners`] (equally between tied teams), and inside each
/// team by stake or equally. Remainders go one fen at a time in a fixed order (largest
/// fraction, then team order, then userid), so whenever there is a winner the payouts
/// add up to the pool exactly, and the same standings always give the same payouts.
/// Without a winner nothing is paid.
pub fn payouts(pool: Fen, standings: &[TeamStanding], split: SplitRule) -> Vec<Payout> {
    let winners = winners(standings);
    if winners.is_empty() {
        return Vec::new();
    }
    let shares = apportion(pool.0, &vec![1; winners.len()]);
    let mut out = Vec::new();
    for (team, share) in winners.iter().zip(shares) {
        let mut members: Vec<&MemberScore> = team.members.iter().filter(|m| m.current).collect();
        members.sort_by(|a, b| a.userid.cmp(&b.userid));
        let stakes: Vec<i64> = members.iter().map(|m| m.stake.0).collect();
        let weights = match split {
            SplitRule::Stake if stakes.iter().any(|s| *s > 0) => stakes,
            _ => vec![1; members.len()],
        };
        for (member, amount) in members.iter().zip(apportion(share, &weights)) {
            out.push(Payout { userid: member.userid.clone(), team: team.name.clone(), rank: 1, amount: Fen(amount) });
        }
    }
    out
}

/// Splits `total` in proportion to `weights` (largest remainder method); the parts add
/// up to `total`. Ties in the remainder go to the earlier position.
fn apportion(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum == 0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let (total, sum) = (i128::from(total), i128::from(sum));
    let mut parts: Vec<i64> = weights.iter().map(|w| (total * i128::from(*w) / sum) as i64).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    let remainder = |i: usize| total * i128::from(weights[i]) % sum;
    order.sort_by(|a, b| remainder(*b).cmp(&remainder(*a)).then(a.cmp(b)));
    let left = total as i64 - parts.iter().sum::<i64>();
    for i in order.into_iter().take(left as usize) {
        parts[i] += 1;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(userid: &str, points: i64, stake_yuan: i64) -> MemberScore {
        MemberScore {
            userid: userid.into(),
            name: userid.into(),
            points,
            stake: Fen::from_yuan(stake_yuan),
            paid: false,
            current: true,
        }
    }

    fn team(name: &str, members: Vec<MemberScore>) -> (String, Vec<MemberScore>) {
        (name.into(), members)
    }

    fn total(p: &[Payout]) -> i64 {
        p.iter().map(|p| p.amount.0).sum()
    }

    fn amount(p: &[Payout], userid: &str) -> i64 {
        p.iter().find(|p| p.userid == userid).map_or(0, |p| p.amount.0)
    }

    #[test]
    fn ties_share_a_rank_and_the_next_rank_is_skipped() {
        let s = rank(vec![
            team("甲", vec![member("a", 5, 100)]),
            team("乙", vec![member("b", 9, 100)]),
            team("丙", vec![member("c", 5, 100)]),
            team("丁", vec![member("d", 1, 100)]),
        ]);
        let ranks: Vec<(&str, u32)> = s.iter().map(|t| (t.name.as_str(), t.rank)).collect();
        assert_eq!(ranks, vec![("乙", 1), ("甲", 2), ("丙", 2), ("丁", 4)]);
    }

    #[test]
    fn the_first_team_takes_the_pool_split_by_stake() {
        // Pool 2600 yuan: stakes 100 + 200 + 300 in the winning team.
        let s = rank(vec![
            team("雄鹰队", vec![member("a", 10, 100), member("b", 3, 200), member("c", 0, 300)]),
            team("猎豹队", vec![member("d", 14, 500)]),
        ]);
        assert_eq!(s[0].name, "猎豹队");
        let p = payouts(Fen::from_yuan(2600), &s, SplitRule::Stake);
        assert_eq!(p.len(), 1, "a team of one takes it all");
        assert_eq!(amount(&p, "d"), 260_000);

        let s = rank(vec![
            team("雄鹰队", vec![member("a", 10, 100), member("b", 3, 200), member("c", 0, 300)]),
            team("猎豹队", vec![member("d", 1, 500)]),
        ]);
        let p = payouts(Fen::from_yuan(2600), &s, SplitRule::Stake);
        // 260000 fen × 1/6, 2/6, 3/6 = 43333.33…, 86666.66…, 130000: remainders to the largest fractions.
        assert_eq!((amount(&p, "a"), amount(&p, "b"), amount(&p, "c")), (43_333, 86_667, 130_000));
        assert_eq!(total(&p), 260_000);
    }

    #[test]
    fn an_equal_split_gives_the_remainder_fen_in_userid_order() {
        let s = rank(vec![team("甲", vec![member("c", 1, 100), member("a", 1, 300), member("b", 1, 500)])]);
        let p = payouts(Fen(100_001), &s, SplitRule::Equal);
        assert_eq!((amount(&p, "a"), amount(&p, "b"), amount(&p, "c")), (33_334, 33_334, 33_333));
        assert_eq!(total(&p), 100_001);
    }

    #[test]
    fn a_two_way_tie_splits_the_pool_between_the_tied_teams() {
        let s = rank(vec![
            team("甲", vec![member("a", 7, 100), member("b", 0, 100)]),
            team("乙", vec![member("c", 7, 200)]),
            team("丙", vec![member("d", 2, 300)]),
        ]);
        let p = payouts(Fen(100_001), &s, SplitRule::Stake);
        // 50001 to 甲 (first in order gets the odd fen), 50000 to 乙.
        assert_eq!((amount(&p, "a"), amount(&p, "b"), amount(&p, "c"), amount(&p, "d")), (25_001, 25_000, 50_000, 0));
        assert_eq!(total(&p), 100_001);
    }

    #[test]
    fn a_three_way_tie_splits_in_three_to_the_fen() {
        let s = rank(vec![
            team("甲", vec![member("a", 3, 100)]),
            team("乙", vec![member("b", 3, 100)]),
            team("丙", vec![member("c", 3, 100), member("e", 0, 200)]),
            team("丁", vec![member("d", 1, 100)]),
        ]);
        let p = payouts(Fen(100_000), &s, SplitRule::Stake);
        assert_eq!(amount(&p, "a"), 33_334);
        assert_eq!(amount(&p, "b"), 33_333);
        // 丙's 33333 by stake 1:2 → 11111, 22222.
        assert_eq!((amount(&p, "c"), amount(&p, "e")), (11_111, 22_222));
        assert_eq!(total(&p), 100_000);
        assert_eq!(amount(&p, "d"), 0);
    }

    #[test]
    fn a_team_without_stakes_splits_equally_and_nothing_is_lost() {
        let s = rank(vec![team("甲", vec![member("a", 1, 0), member("b", 0, 0)])]);
        let p = payouts(Fen(3), &s, SplitRule::Stake);
        assert_eq!((amount(&p, "a"), amount(&p, "b")), (2, 1));
    }

    #[test]
    fn a_team_without_members_never_wins_and_the_pool_still_adds_up() {
        // All at 0 except one team: the empty team is not first. And with a team that
        // scored only 0, the empty team ties with it, but neither wins.
        let s = rank(vec![team("空队", vec![]), team("甲", vec![member("a", 2, 100), member("b", 0, 300)])]);
        let p = payouts(Fen(40_001), &s, SplitRule::Stake);
        assert_eq!((amount(&p, "a"), amount(&p, "b")), (10_000, 30_001));
        assert_eq!(total(&p), 40_001);

        let s = rank(vec![team("空队", vec![]), team("甲", vec![member("a", 0, 100)])]);
        assert_eq!(s.iter().map(|t| t.rank).collect::<Vec<_>>(), vec![1, 1], "both tie for first at 0");
        assert!(winners(&s).is_empty());
        assert!(payouts(Fen(40_000), &s, SplitRule::Equal).is_empty());
    }

    #[test]
    fn when_no_team_scored_nobody_wins_and_nothing_is_paid() {
        let s = rank(vec![
            team("甲", vec![member("a", 0, 100)]),
            team("乙", vec![member("b", 0, 200)]),
            team("丙", vec![]),
        ]);
        assert!(s.iter().all(|t| t.rank == 1));
        assert!(winners(&s).is_empty());
        for split in [SplitRule::Stake, SplitRule::Equal] {
            assert!(payouts(Fen(80_000), &s, split).is_empty(), "{split:?}");
        }
    }

    #[test]
    fn whenever_someone_wins_the_payouts_add_up_to_the_pool() {
        // A small deterministic generator: teams of 0 to 3 members, scores 0 to 2,
        // stakes of 0, 100 or 300 yuan, odd pools.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as i64
        };
        for case in 0..500 {
            let teams: Vec<(String, Vec<MemberScore>)> = (0..1 + next(4))
                .map(|t| {
                    let members = (0..next(4))
                        .map(|m| member(&format!("u{t}{m}"), next(3), [0, 100, 300][next(3) as usize]))
                        .collect();
                    team(&format!("队{t}"), members)
                })
                .collect();
            let s = rank(teams);
            let pool = Fen(next(1_000_003));
            for split in [SplitRule::Stake, SplitRule::Equal] {
                let p = payouts(pool, &s, split);
                if winners(&s).is_empty() {
                    assert!(p.is_empty(), "case {case}");
                } else {
                    assert_eq!(total(&p), pool.0, "case {case}: {s:?}");
                }
            }
        }
    }

    #[test]
    fn apportioning_always_adds_up() {
        for total_fen in [0, 1, 7, 99_999, 1_000_003] {
            for weights in [vec![1], vec![1, 1, 1], vec![100, 200, 300, 500], vec![3, 0, 7]] {
                assert_eq!(apportion(total_fen, &weights).iter().sum::<i64>(), total_fen, "{total_fen} {weights:?}");
            }
        }
    }
}
