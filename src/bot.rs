//! Processing of one decrypted callback, exactly once: the dedup check, the effects and
//! the stored answer share one write transaction, so a retry (even a concurrent one)
//! finds the first answer and changes nothing, and nothing is answered before its
//! effects are committed.

use crate::app::AppState;
use crate::commands;
use crate::store::Tx;
use crate::store::inbox::{self, StoredReply};
use crate::store::outbox;
use crate::wecom::message::{self, APP_TEXT_LIMIT};
use crate::wecom::xml::{Inbound, InboundKind};

/// The answer to a callback: what goes in the HTTP response.
pub type Reply = StoredReply;

/// Whether the answer was produced now or replayed for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    First,
    Duplicate,
}

/// Processes a callback (or replays its answer if it was seen before).
pub async fn process(state: &AppState, inbound: &Inbound) -> Result<(Reply, Delivery), sqlx::Error> {
    let key = inbound.dedup_key();
    let mut tx = state.db.begin().await?;
    if let Some(reply) = inbox::find(&mut tx, &key).await? {
        state.metrics.duplicates.inc();
        tracing::info!(key, from = %inbound.from, "duplicate callback answered from the inbox");
        return Ok((reply, Delivery::Duplicate));
    }
    let reply = dispatch(state, &mut tx, inbound).await?;
    let reply = passive_or_outbox(state, &mut tx, inbound, reply).await?;
    let now = state.clock.now_ms();
    inbox::insert(&mut tx, &key, &inbound.from, kind_name(&inbound.kind), now, &reply).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    Ok((reply, Delivery::First))
}

async fn dispatch(state: &AppState, tx: &mut Tx, inbound: &Inbound) -> Result<Reply, sqlx::Error> {
    Ok(match &inbound.kind {
        InboundKind::Text { content } => {
            let now = state.clock.now();
            Reply::Text(commands::handle_text(&state.settings, now, tx, &inbound.from, content).await?)
        }
        InboundKind::TemplateCard(event) => {
            commands::cards::on_event(&state.settings, state.clock.now(), tx, &inbound.from, event).await?;
            Reply::Empty
        }
        other => {
            tracing::info!(from = %inbound.from, kind = kind_name(other), "callback ignored");
            Reply::Empty
        }
    })
}

/// Text too long for a passive reply (2048 bytes) is sent through the API instead, in
/// parts; the HTTP answer is then empty.
async fn passive_or_outbox(
    state: &AppState,
    tx: &mut Tx,
    inbound: &Inbound,
    reply: Reply,
) -> Result<Reply, sqlx::Error> {
    match reply {
        Reply::Text(text) if text.len() > APP_TEXT_LIMIT => {
            let now = state.clock.now_ms();
            for msg in message::text(state.settings.wecom.agent_id, &[&inbound.from], &text) {
                outbox::enqueue(tx, now, &msg).await?;
            }
            Ok(Reply::Empty)
        }
        other => Ok(other),
    }
}

fn kind_name(kind: &InboundKind) -> &'static str {
    match kind {
        InboundKind::Text { .. } => "text",
        InboundKind::EnterAgent => "enter_agent",
        InboundKind::Click { .. } => "click",
        InboundKind::TemplateCard(_) => "template_card_event",
        InboundKind::Other { .. } => "other",
    }
}
