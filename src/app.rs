//! Starting and stopping the service: `Application` binds its listener first (so that
//! tests and local mode can use port 0 and learn the address), builds the shared
//! state, serves, and stops within the grace period.

use crate::clock::Clock;
use crate::config::Settings;
use crate::reload::{Loader, Reloader};
use crate::state::AppState;
use crate::wecom::simulator::Simulator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

/// A bound, ready-to-run service.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    simulator: Option<Simulator>,
    reloader: Option<Reloader>,
}

impl Application {
    /// Binds `server.listen`, opens the database and prepares every part. In local mode
    /// the WeCom API is the built-in simulator, served on the same listener.
    pub async fn build(mut settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("无法监听 {}：{e}", settings.server.listen))?;
        let addr = listener.local_addr()?;
        if settings.local_mode {
            settings.wecom.api_base = format!("http://{addr}{}", crate::wecom::simulator::PREFIX);
        }
        if settings.web.public_url.is_empty() {
            if !settings.local_mode {
                tracing::warn!(%addr, "web.public_url not set: the console's links and sign-in use the listening address");
            }
            settings.web.public_url = format!("http://{addr}");
        }
        let state = AppState::new(settings, clock).await?;
        // The service's rules are the ones in force (a new period if they changed while
        // it was stopped); one-shot commands only read them.
        let mut tx = state.db.begin().await?;
        crate::service::settlement::note_rule_set(&mut tx, &state.settings(), state.clock.now_ms()).await?;
        tx.commit().await?;
        let simulator = state.settings().local_mode.then(|| Simulator::new(state.db.clone()));
        Ok(Application { listener, state, simulator, reloader: None })
    }

    /// Lets the configuration be reloaded while the service runs, read again with
    /// `load` (from `source`, named in answers): through [`Application::reloader`]
    /// (SIGHUP) and the control socket beside the database (`leadboard reload`).
    pub fn reloadable(mut self, load: Loader, source: impl Into<String>) -> Application {
        self.reloader = Some(Reloader::new(self.state.clone(), load, source));
        self
    }

    /// The reloader, when the service is [reloadable](Application::reloadable).
    pub fn reloader(&self) -> Option<Reloader> {
        self.reloader.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// `(contest, link)` of every contest's read-only TV board (local mode prints them).
    pub async fn board_links(&self) -> anyhow::Result<Vec<(String, String)>> {
        let settings = self.state.settings();
        let mut conn = self.state.db.reader().acquire().await?;
        let mut links = Vec::new();
        for def in &settings.contests {
            if let Some(url) = crate::service::board::link_of(&mut conn, &settings, &def.id).await? {
                links.push((def.name.clone(), url));
            }
        }
        Ok(links)
    }

    /// Serves until `shutdown` is cancelled, then stops within `server.shutdown_grace_secs`:
    /// stops accepting, lets in-flight callbacks finish and commit, lets the outbox worker
    /// finish its current delivery, and closes the database. Whatever is still running
    /// when the grace period ends is abandoned, logged and returned as
    /// [`ShutdownTimedOut`]; nothing is half-committed, because an unanswered callback
    /// is retried by WeCom and an unconfirmed delivery stays pending.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application { listener, state, simulator, reloader } = self;
        let addr = listener.local_addr()?;
        let mut router = crate::http::router(state.clone());
        if let Some(simulator) = &simulator {
            router = router.nest(crate::wecom::simulator::PREFIX, simulator.router());
        }
        let watcher = tokio::spawn(crate::board::watch(state.clone(), shutdown.clone()));
        let worker = state.outbox_worker();
        let delivering = worker.shared.clone();
        let worker = tokio::spawn(worker.run(shutdown.clone()));
        // Read once: turning the scheduler on or off needs a restart.
        let scheduler = state
            .settings()
            .schedules
            .enabled
            .then(|| tokio::spawn(crate::jobs::scheduler::run(state.clone(), shutdown.clone())));
        let limits = crate::http::serve::Limits::from_settings(&state.settings().server);
        let server =
            tokio::spawn(crate::http::serve::serve(listener, router, limits, state.metrics.clone(), shutdown.clone()));
        let control = match reloader {
            Some(reloader) => control(&state, reloader, &shutdown).await,
            None => None,
        };
        tracing::info!(%addr, local_mode = state.settings().local_mode, "leadboard listening");
        shutdown.cancelled().await;
        // The boards' event streams end now, so that the server's stop need not wait.
        state.changes.close();
        let _ = watcher.await;
        let grace = Duration::from_secs(state.settings().server.shutdown_grace_secs);
        let stopped = Stopping { state, deadline: Instant::now() + grace, abandoned: Vec::new() }
            .stop(server, worker, scheduler, &delivering)
            .await;
        if let Some(control) = control {
            // Removes the socket file: a reload asked for now finds no service.
            control.abort();
            let _ = control.await;
        }
        stopped
    }
}

/// Serves the control socket beside the database until shutdown (unix only).
async fn control(state: &AppState, reloader: Reloader, shutdown: &CancellationToken) -> Option<JoinHandle<()>> {
    #[cfg(unix)]
    {
        let path = state.settings().control_socket();
        let listening = crate::control::listen(&path).await?;
        tracing::info!(path = %path.display(), "control socket ready (leadboard reload)");
        Some(tokio::spawn(listening.serve(reloader, shutdown.clone())))
    }
    #[cfg(not(unix))]
    {
        let _ = (state, reloader, shutdown);
        None
    }
}

/// Work that was still running when the shutdown grace period ended, and was abandoned.
#[derive(Debug, thiserror::Error)]
#[error("{grace_secs} 秒内未能完全停止，已放弃：{}", .abandoned.join("；"))]
pub struct ShutdownTimedOut {
    /// `server.shutdown_grace_secs`.
    pub grace_secs: u64,
    /// What was abandoned, for people.
    pub abandoned: Vec<String>,
}

/// The stop sequence after shutdown was requested; every part shares one deadline.
struct Stopping {
    state: AppState,
    deadline: Instant,
    abandoned: Vec<String>,
}

impl Stopping {
    async fn stop(
        mut self,
        server: JoinHandle<std::io::Result<()>>,
        worker: JoinHandle<()>,
        scheduler: Option<JoinHandle<()>>,
        delivering: &crate::outbox::Shared,
    ) -> anyhow::Result<()> {
        let served = self.stop_server(server).await;
        self.stop_worker(worker, delivering).await;
        if let Some(scheduler) = scheduler {
            self.stop_scheduler(scheduler).await;
        }
        self.close_database().await;
        if !self.abandoned.is_empty() {
            let grace_secs = self.state.settings().server.shutdown_grace_secs;
            return Err(ShutdownTimedOut { grace_secs, abandoned: self.abandoned }.into());
        }
        tracing::info!("leadboard stopped");
        served
    }

    /// Closes the database within the deadline, unless work was abandoned: that work
    /// may still hold connections, and SQLite recovers an unclosed database on open.
    async fn close_database(&mut self) {
        if !self.abandoned.is_empty() {
            tracing::warn!("database left open after abandoned work; it is recovered on the next start");
        } else if timeout_at(self.deadline, self.state.db.close()).await.is_err() {
            tracing::warn!("shutdown grace period over: database closing abandoned");
            self.abandoned.push("关闭数据库（SQLite 会在下次启动时恢复）".into());
        }
    }

    /// Waits for in-flight requests; past the deadline, abandons them.
    async fn stop_server(&mut self, server: JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
        match join_by(self.deadline, server).await {
            Ok(joined) => Ok(joined??),
            Err(late) => {
                let callbacks = self.state.metrics.callbacks_in_flight.get();
                late.abort();
                tracing::warn!(
                    callbacks,
                    "shutdown grace period over: in-flight requests abandoned (WeCom retries them)"
                );
                self.abandoned.push(match callbacks {
                    0 => "未完成的 HTTP 请求".into(),
                    n => format!("{n} 个处理中的回调（企业微信会重试，重复的回调只处理一次）"),
                });
                Ok(())
            }
        }
    }

    /// Waits for the outbox worker to finish its delivery; past the deadline, abandons it.
    async fn stop_worker(&mut self, worker: JoinHandle<()>, delivering: &crate::outbox::Shared) {
        match join_by(self.deadline, worker).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "outbox worker failed"),
            Err(late) => {
                let ids = delivering.delivering();
                late.abort();
                if ids.is_empty() {
                    self.abandoned.push("外发消息任务".into());
                }
                for id in ids {
                    tracing::warn!(id, "shutdown grace period over: delivery abandoned; the message stays pending");
                    self.abandoned.push(format!("正在发送的外发消息 #{id}（保留为待发送，重启后重发）"));
                }
            }
        }
    }
    /// Waits for a job that is running to finish; past the deadline, abandons it (its
    /// transaction rolls back; the next scheduled run does the work).
    async fn stop_scheduler(&mut self, scheduler: JoinHandle<()>) {
        if let Err(late) = join_by(self.deadline, scheduler).await {
            late.abort();
            tracing::warn!("shutdown grace period over: a running job was abandoned");
            self.abandoned.push("运行中的定时任务（事务已回滚，下次运行时补做）".into());
        }
    }
}

/// Waits for `task` until `deadline`; hands it back, still running, after that.
async fn join_by<T>(deadline: Instant, mut task: JoinHandle<T>) -> Result<Result<T, JoinError>, JoinHandle<T>> {
    timeout_at(deadline, &mut task).await.map_err(|_| task)
}
