//! `待审`: what the audit group should look at in a contest — records still waiting for
//! a decision (escalated ones flagged) and records voided.

use crate::domain::contest::ContestDef;
use crate::service::access::Operation;
use crate::service::contest::{find, time_left};
use crate::service::{Ctx, Outcome, refuse};
use crate::store::contests as store;
use crate::store::records::{self, ReviewItem};
use sqlx::SqliteConnection;

/// One contest's review: where it stands, and its items.
pub struct Review<'a> {
    pub def: &'a ContestDef,
    pub time_left: String,
    pub items: Vec<ReviewItem>,
}

/// The named contest's review, or those of the contests under way.
pub async fn review<'a>(ctx: &Ctx<'a>, conn: &mut SqliteConnection, name: Option<&str>) -> Outcome<Vec<Review<'a>>> {
    ctx.authorize(Operation::Review)?;
    let defs = &ctx.settings.contests;
    let chosen = find(defs, name, ctx.now)?;
    if chosen.is_empty() {
        return refuse(not_started(defs));
    }
    let mut reviews = Vec::new();
    for def in chosen {
        let items = records::contest_review(conn, &def.id).await?;
        let time_left = time_left(def, store::get(conn, &def.id).await?.as_ref(), ctx.now);
        reviews.push(Review { def, time_left, items });
    }
    Ok(reviews)
}

/// The answer when no contest has started yet: when the first one starts.
fn not_started(defs: &[ContestDef]) -> String {
    match defs.iter().min_by_key(|d| d.start_ms) {
        Some(first) => format!("PK比赛还没有开始，暂无待审内容（最早的「{}」于 {} 开始）。", first.name, first.start),
        None => "目前没有PK比赛。".into(),
    }
}
