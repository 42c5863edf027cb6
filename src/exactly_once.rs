//! Processing of one decrypted callback, exactly once: the dedup check, the effects and
//! the stored answer share one write transaction, so a retry (even a concurrent one)
//! finds the first answer and changes nothing, and nothing is answered before its
//! effects are committed.

use crate::commands;
use crate::config::Settings;
use crate::service::queue_text;
use crate::state::AppState;
use crate::store::Tx;
use crate::store::inbox::{self, StoredReply};
use crate::wecom::message::APP_TEXT_LIMIT;
use crate::wecom::xml::{Inbound, InboundKind};
use tracing::instrument;

/// The answer to a callback: what goes in the HTTP response.
pub type Reply = StoredReply;

/// Whether a callback was processed now or had been seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Processed now.
    First,
    /// A retry: answered from the inbox, nothing changed.
    Again,
}

/// Processes a callback (or replays its answer if it was seen before) under `settings`,
/// the snapshot the callback took when it arrived.
#[instrument(level = "debug", skip_all, fields(from = %inbound.from))]
pub async fn process(state: &AppState, settings: &Settings, inbound: &Inbound) -> Result<(Reply, Seen), sqlx::Error> {
    let key = inbound.dedup_key();
    let mut tx = state.db.begin().await?;
    if let Some(reply) = inbox::find(&mut tx, &key).await? {
        state.metrics.duplicates.inc();
        tracing::info!(key, from = %inbound.from, "duplicate callback answered from the inbox");
        return Ok((reply, Seen::Again));
    }
    let reply = dispatch(state, settings, &mut tx, inbound).await?;
    let reply = passive_or_outbox(state, settings, &mut tx, inbound, reply).await?;
    let now = state.clock.now_ms();
    inbox::insert(&mut tx, &key, &inbound.from, kind_name(&inbound.kind), now, &reply).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    state.changes.wake();
    Ok((reply, Seen::First))
}

async fn dispatch(state: &AppState, settings: &Settings, tx: &mut Tx, inbound: &Inbound) -> Result<Reply, sqlx::Error> {
    let now = state.clock.now();
    Ok(match &inbound.kind {
        InboundKind::Text { content } => {
            Reply::Text(commands::handle_text(settings, now, tx, &inbound.from, content).await?)
        }
        InboundKind::TemplateCard(event) => {
            commands::press::handle(settings, now, tx, &inbound.from, event).await?;
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
    settings: &Settings,
    tx: &mut Tx,
    inbound: &Inbound,
    reply: Reply,
) -> Result<Reply, sqlx::Error> {
    match reply {
        Reply::Text(text) if text.len() > APP_TEXT_LIMIT => {
            queue_text(tx, settings, state.clock.now_ms(), &[&inbound.from], &text).await?;
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
