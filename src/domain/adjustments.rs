//! Adjustments (补发 / 扣回) to a closed month: what the month would pay now, under the
//! rule set it was closed with, minus what it has paid (its lines when it was closed
//! plus the adjustments later closed months already carried), per person and record
//! (or contest payout). Pure: the service gathers both sides.

use crate::domain::money::Fen;
use crate::domain::rewards::Line;
use std::collections::BTreeMap;

/// What a line pays for, per person.
type Key = (String, Option<i64>, Option<String>);

/// The adjustment lines for `closed` (a month, `2023-07`): one for every person and
/// record whose pay `now` differs from what was `paid`, in the order of their keys.
/// `states` names the current state of records that no longer count (`已作废`), for
/// the line's explanation. Each line carries `rule_set`, the closed month's.
pub fn adjustments(
    closed: &str,
    rule_set: &str,
    paid: &[Line],
    now: &[Line],
    states: &BTreeMap<i64, String>,
) -> Vec<Line> {
    #[derive(Default)]
    struct Side<'a> {
        paid: Fen,
        due: Fen,
        /// The line that describes the item best: now's, else the one it was paid by.
        now: Option<&'a Line>,
        then: Option<&'a Line>,
    }
    let mut items: BTreeMap<Key, Side> = BTreeMap::new();
    for line in paid {
        let side = items.entry(line.key()).or_default();
        side.paid = side.paid + line.amount;
        if line.adjusts.is_none() || side.then.is_none() {
            side.then = Some(line);
        }
    }
    for line in now {
        let side = items.entry(line.key()).or_default();
        side.due = side.due + line.amount;
        side.now.get_or_insert(line);
    }
    let mut out = Vec::new();
    for ((_, record, contest), side) in items {
        let difference = side.due - side.paid;
        let Some(like) = side.now.or(side.then).filter(|_| difference != Fen(0)) else {
            continue;
        };
        let kind = if like.adjusts.is_some() { "" } else { like.kind.as_str() };
        let what = match record {
            Some(id) => format!("#{id} {kind}"),
            None => kind.to_owned(),
        };
        let why = match (side.then.is_some(), side.now.is_some()) {
            (false, _) => "；结账时未计入".to_owned(),
            (_, false) => match record.and_then(|id| states.get(&id)) {
                Some(state) => format!("；现不计入（{state}）"),
                None => "；现不计入".to_owned(),
            },
            _ => String::new(),
        };
        let rule = if like.adjusts.is_some() { String::new() } else { format!("（{}）", like.rule) };
        out.push(Line {
            payee: like.payee.clone(),
            record,
            contest,
            kind: if difference.0 > 0 { "补发" } else { "扣回" }.to_owned(),
            mode: like.mode.clone(),
            rule: format!(
                "{closed} 已结账：{}{rule}，已发 {} 元，现应发 {} 元{why}",
                what.trim_end(),
                side.paid,
                side.due
            ),
            amount: difference,
            reported_at: like.reported_at,
            decided: like.decided.clone(),
            contract: like.contract.clone(),
            rule_set: rule_set.to_owned(),
            adjusts: Some(closed.to_owned()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::DeptKind;
    use crate::domain::rewards::Payee;

    fn line(userid: &str, record: i64, yuan: i64) -> Line {
        Line {
            payee: Payee {
                userid: userid.into(),
                name: userid.into(),
                employee_no: None,
                unit: "事业部".into(),
                department_id: 2,
                department: "部门".into(),
                class: DeptKind::Cs,
                lead: false,
            },
            record: Some(record),
            contest: None,
            kind: "B类客户".into(),
            mode: String::new(),
            rule: "客户成功部员工 B类客户".into(),
            amount: Fen::from_yuan(yuan),
            reported_at: Some(0),
            decided: None,
            contract: None,
            rule_set: "r1".into(),
            adjusts: None,
        }
    }

    #[test]
    fn a_record_that_no_longer_counts_is_taken_back_and_one_that_now_counts_is_paid() {
        let paid = [line("a", 1, 200), line("a", 2, 0), line("b", 3, 300)];
        let now = [line("a", 2, 200), line("b", 3, 300)];
        let states = BTreeMap::from([(1, "已作废".to_owned())]);
        let adj = adjustments("2023-07", "r1", &paid, &now, &states);
        let got: Vec<(Option<i64>, &str, i64)> = adj.iter().map(|l| (l.record, l.kind.as_str(), l.amount.0)).collect();
        assert_eq!(got, [(Some(1), "扣回", -20_000), (Some(2), "补发", 20_000)]);
        assert!(adj[0].rule.contains("2023-07 已结账：#1 B类客户") && adj[0].rule.contains("现不计入（已作废）"));
        assert!(adj.iter().all(|l| l.adjusts.as_deref() == Some("2023-07") && l.rule_set == "r1"));
    }

    #[test]
    fn what_a_later_closed_month_already_adjusted_is_not_adjusted_again() {
        let mut carried = line("a", 1, -200);
        carried.kind = "扣回".into();
        carried.adjusts = Some("2023-07".into());
        let paid = [line("a", 1, 200), carried];
        assert!(adjustments("2023-07", "r1", &paid, &[], &BTreeMap::new()).is_empty());
        // Restored after that: paid back in full, described by the record's own line.
        let adj = adjustments("2023-07", "r1", &paid, &[line("a", 1, 200)], &BTreeMap::new());
        assert_eq!(adj.len(), 1);
        assert_eq!((adj[0].kind.as_str(), adj[0].amount), ("补发", Fen::from_yuan(200)));
        assert!(adj[0].rule.contains("已发 0.00 元，现应发 200.00 元"), "{}", adj[0].rule);
    }
}
