//! `待审`: what the audit group should look at over the whole programme — records
//! undecided past the reminder delay (in a contest past its cut-off, every undecided
//! one: it holds up the 终审), open appeals, records rejected or voided in the
//! current contest periods, and claims flagged as look-alikes — grouped by the contest
//! each counts in.

use crate::domain::contest::ContestDef;
use crate::domain::month::Month;
use crate::service::access::Operation;
use crate::service::contest::{find, time_left};
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::contests as store;
use crate::store::records::{self, Flag, ReviewItem};

/// One group of the review: a contest (with where it stands), or the records that
/// count in no contest.
pub struct Group<'a> {
    pub def: Option<&'a ContestDef>,
    pub time_left: String,
    pub items: Vec<ReviewItem>,
}

/// The review, and the flags of its flagged items.
pub struct Review<'a> {
    pub groups: Vec<Group<'a>>,
    pub flags: Vec<Flag>,
}

impl Review<'_> {
    pub fn items(&self) -> impl Iterator<Item = &ReviewItem> {
        self.groups.iter().flat_map(|g| &g.items)
    }
}

/// The review of the whole programme, or of the named contest only.
pub async fn review<'a>(ctx: &Ctx<'a>, conn: &mut Conn, name: Option<&str>) -> Outcome<Review<'a>> {
    ctx.authorize(Operation::Review)?;
    let defs = &ctx.settings.contests;
    let only = match name {
        Some(name) => Some(find(defs, Some(name), ctx.now)?.remove(0)),
        None => None,
    };
    let mut open: Vec<&ContestDef> = Vec::new();
    for def in defs {
        let row = store::get(conn, &def.id).await?;
        if row.is_some_and(|r| r.state != crate::domain::contest::ContestState::Final) && def.start_ms <= ctx.now_ms() {
            open.push(def);
        }
    }
    let waiting_since = ctx.now_ms() - hours_ms(ctx.settings.reminders.first_after_hours);
    let closed_since = open.iter().map(|d| d.start_ms).min().unwrap_or_else(|| Month::of(ctx.today()).range_ms().0);
    let items = records::programme_review(conn, waiting_since, closed_since).await?;
    if items.is_empty() && only.is_none() && !defs.is_empty() && defs.iter().all(|d| d.start_ms > ctx.now_ms()) {
        return refuse(not_started(defs));
    }
    let in_contest = |item: &ReviewItem, def: &ContestDef| {
        item.contests.as_deref().is_some_and(|ids| ids.split(',').any(|id| id == def.id))
    };
    let mut groups = Vec::new();
    let shown: Vec<&ContestDef> = match only {
        Some(def) => vec![def],
        None => open,
    };
    for def in &shown {
        let row = store::get(conn, &def.id).await?;
        let mut items: Vec<ReviewItem> = items.iter().filter(|i| in_contest(i, def)).cloned().collect();
        // Past the cut-off, whatever is undecided holds up the 终审, however young.
        if def.cutoff_ms <= ctx.now_ms() {
            for item in records::contest_undecided(conn, &def.id).await? {
                if !items.iter().any(|i| i.id == item.id) {
                    items.push(item);
                }
            }
            items.sort_by_key(|i| i.id);
        }
        groups.push(Group { def: Some(*def), time_left: time_left(def, row.as_ref(), ctx.now), items });
    }
    if only.is_none() {
        let rest: Vec<ReviewItem> = items.into_iter().filter(|i| !shown.iter().any(|d| in_contest(i, d))).collect();
        if !rest.is_empty() || groups.is_empty() {
            groups.push(Group { def: None, time_left: String::new(), items: rest });
        }
    }
    let mut flags = Vec::new();
    for item in groups.iter().flat_map(|g| &g.items).filter(|i| i.flagged) {
        flags.extend(records::flags_of(conn, item.id).await?);
    }
    Ok(Review { groups, flags })
}

fn hours_ms(hours: u64) -> i64 {
    i64::try_from(hours).unwrap_or(i64::MAX / 3_600_000).saturating_mul(3_600_000)
}

/// The answer when no contest has started yet and nothing waits: when the first starts.
fn not_started(defs: &[ContestDef]) -> String {
    match defs.iter().min_by_key(|d| d.start_ms) {
        Some(first) => format!("PK比赛还没有开始，暂无待审内容（最早的「{}」于 {} 开始）。", first.name, first.start),
        None => "暂无待审内容。".into(),
    }
}

/// The console's 审核 search: records matching `filter`, newest first (the audit group).
pub async fn search(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    filter: &records::AuditFilter,
    limit: i64,
) -> Outcome<Vec<ReviewItem>> {
    ctx.authorize(Operation::Review)?;
    Ok(records::audit_search(conn, filter, limit).await?)
}
