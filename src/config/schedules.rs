//! `[schedules]`: cron expressions with a seconds field, evaluated in Asia/Shanghai.

use super::Settings;
use serde::Deserialize;
use std::str::FromStr;

/// Cron expressions with a seconds field, evaluated in Asia/Shanghai, one per job.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ScheduleSettings {
    /// `false` turns the built-in scheduler off (jobs still run with `leadboard jobs
    /// run`, e.g. from an external cron).
    pub enabled: bool,
    pub daily_leaderboard: String,
    pub onjob_check: String,
    pub reminders: String,
    pub contest_cutoff: String,
    pub directory_sync: String,
    /// Deletes callback keys older than `server.inbox_retention_days`.
    pub inbox_prune: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            daily_leaderboard: "0 5 18 * * *".into(),
            onjob_check: "0 35 9 * * *".into(),
            reminders: "0 7 * * * *".into(),
            contest_cutoff: "0 * * * * *".into(),
            directory_sync: "0 0 2 * * *".into(),
            inbox_prune: "0 40 3 * * *".into(),
        }
    }
}

impl ScheduleSettings {
    /// `(job name, cron expression)` for every job.
    pub fn entries(&self) -> [(&'static str, &str); 6] {
        [
            ("daily_leaderboard", &self.daily_leaderboard),
            ("onjob_check", &self.onjob_check),
            ("reminders", &self.reminders),
            ("contest_cutoff", &self.contest_cutoff),
            ("directory_sync", &self.directory_sync),
            ("inbox_prune", &self.inbox_prune),
        ]
    }
}

impl Settings {
    pub(super) fn validate_schedules(&self, problems: &mut Vec<String>) {
        for (name, expr) in self.schedules.entries() {
            if let Err(e) = cron::Schedule::from_str(expr) {
                let why = e.to_string();
                let why = why.lines().last().unwrap_or_default();
                problems.push(format!("schedules.{name} 不是有效的 cron 表达式（含秒字段）“{expr}”：{why}"));
            }
        }
    }
}
