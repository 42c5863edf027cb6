//! The day-3 check: from the morning of the 3rd day after onboarding, a 在岗/离职 card
//! for each placement to Talent Recruitment's confirmers (the audit group when its
//! reporter is the only one). Each placement gets one; a
//! placement nobody can confirm yet gets its card on the first run after there is
//! someone.

use crate::service::cards::send_record_card;
use crate::service::decide::ONJOB_DAYS;
use crate::service::report::confirmers_for;
use crate::service::{Ctx, Outcome};
use crate::store::Conn;
use crate::store::cards::Purpose;
use crate::store::events::{self, NewEvent};
use crate::store::records;
use chrono::Days;
use tracing::instrument;

/// Sends the cards due; returns (sent, due but nobody to send to).
#[instrument(level = "debug", skip_all)]
pub async fn send_due(ctx: &Ctx<'_>, conn: &mut Conn) -> Outcome<(usize, usize)> {
    let today = ctx.today();
    let onboarded_by = today.checked_sub_days(Days::new(ONJOB_DAYS)).unwrap_or(today);
    let due = records::placements_due(conn, &onboarded_by.to_string()).await?;
    let mut sent = 0;
    for record in &due {
        let recipients = confirmers_for(conn, ctx.settings, record.kind, &record.reporter).await?;
        if !send_record_card(ctx.settings, ctx.now, conn, record, Purpose::OnJob, &recipients).await? {
            continue;
        }
        sent += 1;
        let to: Vec<&str> = recipients.iter().map(|p| p.userid.as_str()).collect();
        let event =
            NewEvent::record(ctx.actor_id(), record.id, "onjob_check_sent").data(serde_json::json!({ "to": to }));
        events::append(conn, ctx.now_ms(), event).await?;
    }
    Ok((sent, due.len() - sent))
}
