//! The control socket: how `leadboard reload` asks the running service to reload its
//! configuration and hears the answer.
//!
//! A Unix socket beside the database (`leadboard.db` → `leadboard.sock`), readable and
//! writable by the service's user only (0600): the file system is the authentication,
//! and nothing is reachable from the network — unlike an HTTP endpoint, which would
//! share the callback listener the reverse proxy exposes, or need a port and a secret
//! of its own. Beside the database because there is one service per database (the job
//! leases assume it), and every one-shot command already finds the database from the
//! configuration. A request is one line (`reload`); the answer is one JSON line
//! ([`Answer`]), then the service closes the connection. SIGHUP does the same reload,
//! answering in the log only.

use crate::reload::{ReloadError, Reloader};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The control socket of the service using the database at `database`.
pub fn socket_path(database: &Path) -> PathBuf {
    database.with_extension("sock")
}

/// The service's answer to a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    /// For people: what changed, or every problem.
    pub text: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The configuration was read and what changed is in force.
    Reloaded,
    /// The configuration has problems, or changes what may not change: nothing changed.
    Refused,
    /// Something else went wrong: nothing changed.
    Failed,
}

async fn answer(reloader: &Reloader, request: &str) -> Answer {
    if request.trim() != "reload" {
        return Answer { outcome: Outcome::Failed, text: format!("未知请求：{}", request.trim()) };
    }
    match reloader.reload().await {
        Ok(done) => Answer { outcome: Outcome::Reloaded, text: done.render() },
        Err(e @ (ReloadError::Invalid(_) | ReloadError::Refused(_))) => {
            Answer { outcome: Outcome::Refused, text: e.to_string() }
        }
        Err(e @ ReloadError::Failed(_)) => Answer { outcome: Outcome::Failed, text: e.to_string() },
    }
}

#[cfg(unix)]
pub use unix::{Listening, ask, listen};

#[cfg(unix)]
mod unix {
    use super::{Answer, answer};
    use crate::reload::Reloader;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};
    use tokio_util::sync::CancellationToken;

    /// How long a client has to send its request line.
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

    /// The bound socket; its file is removed when this is dropped.
    pub struct Listening {
        listener: UnixListener,
        path: PathBuf,
    }

    impl Drop for Listening {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Binds the control socket at `path`, replacing a file left by a service that
    /// is gone. `None` (logged) when another service answers there, or binding fails:
    /// the service then runs without it (SIGHUP still reloads).
    pub async fn listen(path: &Path) -> Option<Listening> {
        if UnixStream::connect(path).await.is_ok() {
            tracing::error!(path = %path.display(), "another leadboard service answers on the control socket; \
                `leadboard reload` reaches that one (SIGHUP reloads this one)");
            return None;
        }
        let _ = std::fs::remove_file(path);
        let bound = UnixListener::bind(path).and_then(|listener| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map(|()| listener)
        });
        match bound {
            Ok(listener) => Some(Listening { listener, path: path.to_owned() }),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "control socket not available; SIGHUP still reloads");
                None
            }
        }
    }

    impl Listening {
        /// Answers requests until shutdown.
        pub async fn serve(self, reloader: Reloader, shutdown: CancellationToken) {
            loop {
                let stream = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = self.listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket: accept failed");
                            continue;
                        }
                    },
                };
                let reloader = reloader.clone();
                tokio::spawn(async move {
                    if let Err(e) = respond(stream, &reloader).await {
                        tracing::warn!(error = %e, "control socket: request not answered");
                    }
                });
            }
        }
    }

    async fn respond(stream: UnixStream, reloader: &Reloader) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut request = String::new();
        let mut read = BufReader::new(read).take(1024);
        tokio::time::timeout(REQUEST_TIMEOUT, read.read_line(&mut request))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request line"))??;
        let answer = answer(reloader, &request).await;
        let mut line = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        write.shutdown().await
    }

    /// Sends `request` to the service at `path` and waits for its answer.
    pub async fn ask(path: &Path, request: &str) -> std::io::Result<Answer> {
        let stream = UnixStream::connect(path).await?;
        let (read, mut write) = stream.into_split();
        write.write_all(format!("{request}\n").as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await?;
        serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}
