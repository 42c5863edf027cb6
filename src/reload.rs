//! Reloading the configuration while the service runs (`leadboard reload`, SIGHUP).
//!
//! The file is read and checked exactly as at start (`check-config`): a file with
//! problems is refused with every problem named, and nothing changes. A good one is
//! compared with the settings in force; what changed is applied to the store as
//! startup applies it (directory, old channels, contests and their teams — one
//! transaction, with an event recording the reload), and only then put in force, as a
//! whole: callbacks and job runs already under way finish with the settings they
//! started with, the next ones use the new ones, none is refused. The scheduler picks
//! up changed cron expressions. With a directory from WeCom, a changed `[directory]`
//! is synced at once. Settings read once at start ([`crate::config::RESTART_ONLY`]) keep their
//! running values and are reported as needing a restart.

use crate::config::{ConfigChange, ConfigErrors, DirectorySource, Settings};
use crate::jobs::{self, Job, JobError};
use crate::service::reload::{ApplyError, apply};
use crate::state::AppState;
use crate::store::jobs::LeaseOwner;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Reads the configuration again, from where the service read it at start.
pub type Loader = Arc<dyn Fn() -> Result<Settings, ConfigErrors> + Send + Sync>;

/// Reloads the running service's configuration; clones share one reload at a time.
#[derive(Clone)]
pub struct Reloader {
    state: AppState,
    load: Loader,
    /// Where the configuration comes from, for people (the file's path).
    source: Arc<str>,
    /// The settings the service started with: restart-only keys are compared with them.
    started: Arc<Settings>,
    one_at_a_time: Arc<Mutex<()>>,
}

/// What a reload did.
#[derive(Debug)]
pub struct Reloaded {
    pub source: String,
    /// Applied and in force.
    pub applied: Vec<ConfigChange>,
    /// In the file, but not in force until the service restarts.
    pub needs_restart: Vec<ConfigChange>,
    /// People a static directory added, moved or deactivated.
    pub people: Vec<String>,
    /// The rule set in force, when a reload changed the rewards, targets or points.
    pub rule_set: Option<String>,
    /// With a directory from WeCom whose settings changed: the sync's summary, or why it failed.
    pub directory_sync: Option<Result<String, String>>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}\n未重新加载：服务继续使用原来的配置。")]
    Invalid(ConfigErrors),
    #[error("配置不能这样修改：\n{}\n未重新加载：服务继续使用原来的配置。", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<String>),
    #[error("重新加载失败，未做任何更改：{0}")]
    Failed(String),
}

impl Reloader {
    /// A reloader for the service sharing `state`, reading its configuration with `load`.
    pub fn new(state: AppState, load: Loader, source: impl Into<String>) -> Reloader {
        let started = state.settings();
        Reloader { state, load, source: Arc::from(source.into()), started, one_at_a_time: Arc::new(Mutex::new(())) }
    }

    /// Reads, checks and applies the configuration; logs what happened.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let result = self.run().await;
        match &result {
            Ok(done) => {
                for change in &done.applied {
                    tracing::info!(key = %change.key, change = %change.text, "configuration changed");
                }
                for change in &done.needs_restart {
                    tracing::warn!(key = %change.key, change = %change.text, "configuration change needs a restart");
                }
                tracing::info!(
                    source = %done.source,
                    applied = done.applied.len(),
                    needs_restart = done.needs_restart.len(),
                    "configuration reloaded"
                );
            }
            Err(e) => tracing::error!(source = %self.source, error = %e, "configuration reload refused"),
        }
        result
    }

    async fn run(&self) -> Result<Reloaded, ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let load = self.load.clone();
        let loaded = tokio::task::spawn_blocking(move || load()).await;
        let mut new = loaded.map_err(|e| ReloadError::Failed(e.to_string()))?.map_err(ReloadError::Invalid)?;
        let running = self.state.settings();
        let applied: Vec<ConfigChange> = new.changes_since(&running).into_iter().filter(|c| !c.needs_restart).collect();
        let needs_restart = new.changes_since(&self.started).into_iter().filter(|c| c.needs_restart).collect();
        new.keep_restart_only(&running);
        let mut done = Reloaded {
            source: self.source.to_string(),
            applied,
            needs_restart,
            people: Vec::new(),
            rule_set: None,
            directory_sync: None,
        };
        if done.applied.is_empty() {
            return Ok(done);
        }
        let texts: Vec<String> = done.applied.iter().map(|c| c.text.clone()).collect();
        let now = self.state.clock.now_ms();
        let applied = apply(&self.state.db, &running, &new, &texts, now).await.map_err(|e| match e {
            ApplyError::Refused(problems) => ReloadError::Refused(problems),
            ApplyError::Db(e) => ReloadError::Failed(format!("数据库错误：{e}")),
        })?;
        done.people = applied.people;
        let rules = ["rewards", "targets", "points"];
        if done.applied.iter().any(|c| rules.iter().any(|r| c.key == *r || c.key.starts_with(&format!("{r}.")))) {
            done.rule_set = Some(applied.rule_set);
        }
        let directory_changed = done.applied.iter().any(|c| c.key.starts_with("directory"));
        self.state.config.replace(Arc::new(new));
        self.state.outbox_wake.notify_one();
        self.state.changes.wake();
        if directory_changed && self.state.settings().directory.source == DirectorySource::Wecom {
            done.directory_sync = Some(self.sync_directory().await);
        }
        Ok(done)
    }

    /// Syncs a WeCom directory with the new `[directory]` settings.
    async fn sync_directory(&self) -> Result<String, String> {
        match jobs::run_as(&self.state, Job::DirectorySync, LeaseOwner::Service).await {
            Ok(summary) => Ok(summary),
            Err(JobError::Busy(_)) => {
                Err("另一次通讯录同步正在进行；新的通讯录设置在下次同步时生效（也可运行 leadboard sync-directory）"
                    .into())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reloaded {
    /// The answer for people: what is now in force, and what waits for a restart.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if self.applied.is_empty() {
            out.push(format!("配置没有变化（{}），无需重新加载。", self.source));
        } else {
            out.push(format!("已重新加载配置（{}），{} 项更改已生效：", self.source, self.applied.len()));
            out.extend(self.applied.iter().map(|c| format!("  - {c}")));
        }
        if !self.people.is_empty() {
            out.push("通讯录：".into());
            out.extend(self.people.iter().map(|line| format!("  - {line}")));
        }
        if let Some(id) = &self.rule_set {
            out.push(format!(
                "奖励规则已更改：规则集 {id} 自此生效（已关账的月份不变；结算明细注明每行所用的规则集）。"
            ));
        }
        match &self.directory_sync {
            Some(Ok(summary)) => out.push(format!("通讯录设置已更改，{summary}")),
            Some(Err(why)) => out.push(format!("通讯录设置已更改，但同步失败：{why}")),
            None => {}
        }
        if !self.needs_restart.is_empty() {
            out.push("以下更改需要重启服务才能生效（服务仍使用启动时的值）：".into());
            out.extend(self.needs_restart.iter().map(|c| format!("  - {c}")));
        }
        out.join("\n")
    }
}
