//! Applying a reloaded configuration to the store: what startup does with the
//! configuration (the static directory, old channels, contests and their teams), in
//! one transaction with the event that records the reload, after the checks that need
//! the store. A contest past its cut-off keeps how it is scored and paid: the audit
//! group reviews (or has finalised) the ranking those rules gave. The rule set in
//! force (rewards, targets, points) is noted with the time it took effect, which
//! settlement names on each line.

use crate::config::Settings;
use crate::domain::contest::{ContestDef, ContestState};
use crate::service::directory::apply_configuration;
use crate::service::settlement::note_rule_set;
use crate::store::Conn;
use crate::store::Db;
use crate::store::contests;
use crate::store::events::{self, NewEvent};

/// Why a reload applied nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// What the running service's data does not allow, one problem each.
    #[error("{}", .0.join("\n"))]
    Refused(Vec<String>),
    #[error("数据库错误：{0}")]
    Db(#[from] sqlx::Error),
}

/// What applying a reloaded configuration did to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// One line per person a static directory added, moved or deactivated.
    pub people: Vec<String>,
    /// The rule set (rewards, targets, points) in force from now on, dated now if new.
    pub rule_set: String,
}

/// Applies `new` (replacing `running`) to the store, and records the reload with its
/// `changes` in the event log.
pub async fn apply(
    db: &Db,
    running: &Settings,
    new: &Settings,
    changes: &[String],
    now_ms: i64,
) -> Result<Applied, ApplyError> {
    let mut tx = db.begin().await?;
    let problems = closed_contests_changed(&mut tx, running, new, now_ms).await?;
    if !problems.is_empty() {
        return Err(ApplyError::Refused(problems));
    }
    let people = apply_configuration(&mut tx, new, now_ms).await?;
    let rule_set = note_rule_set(&mut tx, new, now_ms).await?;
    let event = NewEvent::new("config", "configuration", "settings", "reloaded")
        .data(serde_json::json!({ "changes": changes, "people": people, "rule_set": rule_set }));
    events::append(&mut tx, now_ms, event).await?;
    tx.commit().await?;
    Ok(Applied { people, rule_set })
}

/// Contests past their cut-off (frozen or final) whose scoring or payout the new
/// configuration changes, or that it drops before they are final.
async fn closed_contests_changed(
    conn: &mut Conn,
    running: &Settings,
    new: &Settings,
    now_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut problems = Vec::new();
    for before in &running.contests {
        let state = contests::get(conn, &before.id).await?.map(|row| row.state);
        let closed = match state {
            Some(ContestState::Final) => "已终审",
            Some(ContestState::Frozen) => "已截止、等待终审",
            _ if before.cutoff_ms <= now_ms => "已截止",
            _ => continue,
        };
        let name = format!("比赛「{}」（{}）{closed}", before.name, before.id);
        match new.contest(&before.id) {
            None if state != Some(ContestState::Final) => {
                problems.push(format!("{name}，不能从配置中删除（终审之后才可删除）"));
            }
            Some(after) => {
                let fields = scoring_changes(before, after);
                if !fields.is_empty() {
                    problems
                        .push(format!("{name}，计分和奖池规则不能再修改：{} 已更改（请改回原值）", fields.join("、")));
                }
            }
            None => {}
        }
    }
    Ok(problems)
}

/// The keys of a contest that decide its ranking and its pool, where they differ.
fn scoring_changes(before: &ContestDef, after: &ContestDef) -> Vec<&'static str> {
    [
        ("kinds", before.kinds != after.kinds),
        ("start", before.start != after.start),
        ("end", before.end != after.end),
        ("cutoff", before.cutoff_time != after.cutoff_time),
        ("sponsorship", before.sponsorship != after.sponsorship),
        ("split", before.split != after.split),
        ("teams", before.teams != after.teams),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}
