//! The settlement's roll-ups — per person, per department, per business unit — add up to
//! the grand total (合计) in both files, over random organisations and records (with
//! adjustments to a closed month among the lines). A property test of the pure
//! computation and the files it writes: no service, no database.

use calamine::{Reader, Xlsx};
use leadboard::domain::adjustments::adjustments;
use leadboard::domain::kind::RecordKind;
use leadboard::domain::money::Fen;
use leadboard::domain::month::Month;
use leadboard::domain::org::DeptKind;
use leadboard::domain::record::Mode;
use leadboard::domain::rewards::{self, Payee, PkFacts, PlacementSource, RecordFacts, RewardRules, Targets};
use leadboard::service::settlement::{Report, business_units};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Every amount of the matrix set, so that most lines pay something.
fn rules() -> RewardRules {
    serde_json::from_value(serde_json::json!({
        "cs": { "lead_b": "200", "lead_a_percent": "1.5" },
        "non_cs": { "lead_c": "50", "lead_b": "300", "lead_a_percent": "2" },
        "tr": { "school_direct": "500", "school_transfer": "300", "agency_direct": "800", "agency_transfer": "500",
                "person_direct": "400", "person_transfer": "250", "placement_new_channel": "100",
                "placement_old_channel": "60", "placement_self": "80" },
        "non_tr": { "school_direct": "600", "school_originator": "200", "agency_direct": "1000",
                    "agency_originator": "300", "person_direct": "450", "person_originator": "150" },
        "referral": { "benefit": "九折", "reporter": "10" },
    }))
    .unwrap()
}

/// A record: `(kind, transfer, reporter, closer, deal in yuan, channel, counts now)`.
type RawRecord = (u8, bool, u8, Option<u8>, u32, u8, bool);

/// Indices into what exists are taken modulo its length, so any numbers make a case.
#[derive(Debug, Clone)]
struct Case {
    /// Business units under the company: their kinds.
    units: Vec<u8>,
    /// Sub-departments: `(parent, name)`; names repeat on purpose.
    departments: Vec<(u8, u8)>,
    /// People: `(department, confirmer or manager)`.
    people: Vec<(u8, bool)>,
    records: Vec<RawRecord>,
    /// PK payouts: `(person, rank, yuan)`.
    pk: Vec<(u8, u8, u16)>,
    targets: (i64, i64),
    /// Points achieved: `(person, points)`.
    achieved: Vec<(u8, i64)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0u8..3, 1..4),
        prop::collection::vec((any::<u8>(), 0u8..3), 0..5),
        prop::collection::vec((any::<u8>(), any::<bool>()), 1..8),
        prop::collection::vec(
            (0u8..8, any::<bool>(), any::<u8>(), prop::option::of(any::<u8>()), 1u32..200_000, 0u8..3, any::<bool>()),
            0..14,
        ),
        prop::collection::vec((any::<u8>(), 1u8..4, 1u16..2_000), 0..3),
        (0i64..40, 0i64..40),
        prop::collection::vec((any::<u8>(), 0i64..60), 0..8),
    )
        .prop_map(|(units, departments, people, records, pk, targets, achieved)| Case {
            units,
            departments,
            people,
            records,
            pk,
            targets,
            achieved,
        })
}

const KINDS: [DeptKind; 3] = [DeptKind::Cs, DeptKind::Tr, DeptKind::Other];
const NAMES: [&str; 3] = ["一组", "二组", "综合部"];

/// The report of a case: the month's own lines, plus adjustments to a closed month whose
/// records were the case's and of which only those that `count now` still count.
fn report_of(case: &Case) -> Report {
    // The company (1), its units (10…), their sub-departments (100…), with kinds.
    let mut departments: Vec<(i64, String, Option<i64>)> = vec![(1, "集团".into(), None)];
    let mut kinds: BTreeMap<i64, DeptKind> = BTreeMap::from([(1, DeptKind::Other)]);
    for (i, kind) in case.units.iter().enumerate() {
        let id = 10 + i as i64;
        departments.push((id, format!("事业部{i}"), Some(1)));
        kinds.insert(id, KINDS[*kind as usize]);
    }
    for (i, (parent, name)) in case.departments.iter().enumerate() {
        let parent = departments[1 + *parent as usize % (departments.len() - 1)].0;
        let id = 100 + i as i64;
        departments.push((id, NAMES[*name as usize].into(), Some(parent)));
        kinds.insert(id, kinds[&parent]);
    }
    let units = business_units(&departments);
    let people: Vec<Payee> = case
        .people
        .iter()
        .enumerate()
        .map(|(i, (dept, lead))| {
            let (id, name, _) = &departments[*dept as usize % departments.len()];
            Payee {
                userid: format!("u{i}"),
                name: format!("员工{i}"),
                employee_no: (i % 2 == 0).then(|| format!("E{i}")),
                unit: units[id].clone(),
                department_id: *id,
                department: name.clone(),
                class: kinds[id],
                lead: *lead,
            }
        })
        .collect();
    let person = |i: u8| people[i as usize % people.len()].clone();
    let records: Vec<(RecordFacts, bool)> = case
        .records
        .iter()
        .enumerate()
        .map(|(i, (kind, transfer, reporter, closer, deal, channel, counts))| {
            let kind = RecordKind::ALL[*kind as usize];
            let facts = RecordFacts {
                id: i as i64 + 1,
                kind,
                mode: if *transfer { Mode::Transfer } else { Mode::Direct },
                reporter: person(*reporter),
                closer: closer.map(person),
                amount: (kind == RecordKind::LeadA).then(|| Fen::from_yuan(i64::from(*deal))),
                placement: (kind == RecordKind::Placement).then(|| {
                    [PlacementSource::SelfRecruited, PlacementSource::OldChannel, PlacementSource::NewChannel]
                        [*channel as usize]
                }),
                reported_at: 1_688_140_800_000 + i as i64,
                decided: None,
                contract: None,
            };
            (facts, *counts)
        })
        .collect();
    let pk: Vec<PkFacts> = case
        .pk
        .iter()
        .enumerate()
        .map(|(i, (who, rank, yuan))| PkFacts {
            contest_id: format!("pk{i}"),
            contest: format!("PK{i}"),
            payee: person(*who),
            rank: u32::from(*rank),
            amount: Fen::from_yuan(i64::from(*yuan)),
            decided: None,
        })
        .collect();
    let mut achieved = BTreeMap::new();
    for (who, points) in &case.achieved {
        let p = person(*who);
        *achieved.entry((p.userid, p.class)).or_insert(0) += points;
    }
    let rules = rules();
    let targets = Targets { cs: case.targets.0, tr: case.targets.1, people: BTreeMap::new() };
    let all: Vec<RecordFacts> = records.iter().map(|(r, _)| r.clone()).collect();
    let now: Vec<RecordFacts> = records.iter().filter(|(_, counts)| *counts).map(|(r, _)| r.clone()).collect();
    let mut lines = rewards::lines(&rules, &targets, &all, &pk, &achieved);
    let paid = rewards::lines(&rules, &targets, &all, &[], &achieved);
    let due = rewards::lines(&rules, &targets, &now, &[], &achieved);
    lines.extend(adjustments("2023-06", "r0", &paid, &due, &BTreeMap::new()));
    let members: Vec<Payee> = people.iter().filter(|p| p.class != DeptKind::Other).cloned().collect();
    Report::of(Month::new(2023, 7).unwrap(), rewards::assemble(lines, &targets, &achieved, &members))
}

fn fen(text: &str) -> i64 {
    let yuan: f64 = text.parse().unwrap_or_else(|_| panic!("an amount: {text:?}"));
    (yuan * 100.0).round() as i64
}

type Row = BTreeMap<String, String>;

fn csv_rows(bytes: &[u8]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    reader.records().map(|r| header.iter().cloned().zip(r.unwrap().iter().map(str::to_owned)).collect()).collect()
}

fn sheet(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>, name: &str) -> Vec<Row> {
    let range = book.worksheet_range(name).unwrap();
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    rows.map(|r| header.iter().cloned().zip(r.iter().map(|c| c.to_string())).collect()).collect()
}

/// `key → sum of amounts` over rows.
fn sums<'a>(rows: impl IntoIterator<Item = &'a Row>, key: impl Fn(&Row) -> Vec<String>) -> BTreeMap<Vec<String>, i64> {
    let mut out = BTreeMap::new();
    for row in rows {
        *out.entry(key(row)).or_insert(0) += fen(&row["金额(元)"]);
    }
    out
}

/// A department roll-up's name without the id that tells apart two of one name.
fn plain(department: &str) -> String {
    department.split("（部门ID").next().unwrap().to_owned()
}

fn check_csv(report: &Report) {
    let rows = csv_rows(&report.csv().unwrap());
    let of = |kind: &'static str| rows.iter().filter(move |r| r["行类型"] == kind);
    let total = report.settlement.total().0;
    let grand: Vec<&Row> = of("合计").collect();
    assert_eq!(grand.len(), 1);
    assert_eq!(fen(&grand[0]["金额(元)"]), total, "合计 is the lines' sum");
    for kind in ["明细", "个人合计", "部门合计", "事业部合计"] {
        assert_eq!(of(kind).map(|r| fen(&r["金额(元)"])).sum::<i64>(), total, "{kind} rows add up to 合计");
    }
    // Each person is their lines; each department its people; each unit its departments.
    let person = |r: &Row| vec![r["账号"].clone(), r["事业部"].clone(), r["部门"].clone()];
    let lines = sums(of("明细"), person);
    for (key, amount) in sums(of("个人合计"), person) {
        assert_eq!(lines.get(&key).copied().unwrap_or(0), amount, "{key:?}");
    }
    let dept = |r: &Row| vec![r["事业部"].clone(), plain(&r["部门"])];
    assert_eq!(sums(of("个人合计"), dept), sums(of("部门合计"), dept));
    let unit = |r: &Row| vec![r["事业部"].clone()];
    assert_eq!(sums(of("部门合计"), unit), sums(of("事业部合计"), unit));
}

fn check_xlsx(report: &Report) {
    let mut book = Xlsx::new(std::io::Cursor::new(report.xlsx().unwrap())).unwrap();
    let total = report.settlement.total().0;
    let split = |mut rows: Vec<Row>| {
        let last = rows.pop().unwrap();
        assert_eq!(fen(&last["金额(元)"]), total, "the total row: {last:?}");
        rows
    };
    let people = split(sheet(&mut book, "个人合计"));
    let units = split(sheet(&mut book, "部门合计"));
    let lines = split(sheet(&mut book, "明细"));
    assert_eq!(people.iter().map(|r| fen(&r["金额(元)"])).sum::<i64>(), total);
    assert_eq!(lines.iter().map(|r| fen(&r["金额(元)"])).sum::<i64>(), total);
    // 部门合计: a unit's row (no department), its departments beneath.
    let mut unit_total = 0;
    let mut beneath = 0;
    let mut departments = 0;
    for row in &units {
        if row["部门"].is_empty() {
            assert_eq!(unit_total, beneath, "the unit before {row:?}");
            unit_total = fen(&row["金额(元)"]);
            beneath = 0;
        } else {
            beneath += fen(&row["金额(元)"]);
            departments += fen(&row["金额(元)"]);
        }
    }
    assert_eq!(unit_total, beneath);
    assert_eq!(departments, total, "departments add up to 合计");
    let person = |r: &Row| vec![r["账号"].clone(), r["事业部"].clone(), r["部门"].clone()];
    let by_line = sums(&lines, person);
    for (key, amount) in sums(&people, person) {
        assert_eq!(by_line.get(&key).copied().unwrap_or(0), amount, "{key:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn roll_ups_add_up_to_the_grand_total_in_both_files(case in case()) {
        let report = report_of(&case);
        check_csv(&report);
        check_xlsx(&report);
    }
}
