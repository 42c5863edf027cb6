//! `leadboard send --as USERID TEXT`: posts a text message to the running service
//! exactly as WeCom would, and prints the bot's answer, passive or (in local mode)
//! sent through the simulated API. [`Service`] is what `leadboard press` shares.

use crate::config::Settings;
use crate::local;
use crate::wecom::crypto::WecomCrypto;
use crate::wecom::peer::{CallbackRequest, Peer};
use crate::wecom::simulator::{self, describe};
use crate::wecom::xml;
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long to wait for the service's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What to tell the person when the service cannot be reached (in Chinese: reqwest's
/// own message is English and names no remedy).
fn not_running(base: &str, local_mode: bool, error: &reqwest::Error) -> anyhow::Error {
    let start = if local_mode {
        "请在同一目录另开一个终端运行 `leadboard serve`（或 `cargo run -- serve`），再发送"
    } else {
        "请先启动服务（`leadboard serve --config …`），或用 --url 指定它的地址"
    };
    if error.is_connect() {
        anyhow!("服务没有在 {base} 运行（连接被拒绝）。{start}。")
    } else if error.is_timeout() {
        anyhow!("服务在 {base} 没有在 {} 秒内应答。请检查服务是否正常运行（查看它的日志）。", TIMEOUT.as_secs())
    } else if error.is_status() {
        let status = error.status().map(|s| s.as_u16()).unwrap_or(0);
        anyhow!("{base} 上的服务应答异常（HTTP {status}）：它可能不是本地模式的 leadboard。")
    } else {
        tracing::debug!(error = %error, "request to the service failed");
        anyhow!("无法与 {base} 上的服务通信。{start}。")
    }
}

/// The running service as WeCom's side of the conversation sees it.
pub struct Service {
    base: String,
    local_mode: bool,
    pub peer: Peer,
    http: reqwest::Client,
    /// The simulator's log (local mode), and the id of the last call seen in it.
    simulator: Option<(String, u64)>,
}

impl Service {
    /// The service at `url`, or the running local service, or `server.listen`; in local
    /// mode, what the simulator recorded so far is taken as seen.
    pub async fn connect(settings: &Settings, url: Option<String>) -> anyhow::Result<Service> {
        let base = match url {
            Some(url) => url,
            None if settings.local_mode => local::read_state(&local::data_dir())
                .map(|s| s.url)
                .ok_or_else(|| anyhow!("找不到本地服务：请先在同一目录运行 `leadboard serve`"))?,
            None => format!("http://{}", settings.server.listen),
        };
        let w = &settings.wecom;
        let peer = Peer {
            crypto: WecomCrypto::new(w.token(), w.encoding_aes_key(), &w.corp_id)?,
            corp_id: w.corp_id.clone(),
            agent_id: w.agent_id,
        };
        let mut service = Service {
            base: base.trim_end_matches('/').to_owned(),
            local_mode: settings.local_mode,
            peer,
            http: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            simulator: None,
        };
        if settings.local_mode {
            let log = format!("{}{}/_log", service.base, simulator::PREFIX);
            let (_, last) = service.simulator_log(&log, u64::MAX, 0).await?;
            service.simulator = Some((log, last));
        }
        Ok(service)
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        not_running(&self.base, self.local_mode, &error)
    }

    /// Posts a callback; returns the passive reply's text, if any.
    pub async fn post(&self, request: CallbackRequest) -> anyhow::Result<Option<String>> {
        let response = self
            .http
            .post(format!("{}/wecom/callback?{}", self.base, request.query))
            .body(request.body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            bail!("服务拒绝了消息：HTTP {status}（详见服务日志）");
        }
        Ok(self.peer.open_reply(&body)?.map(|plain| xml::parse_text_reply(&plain).unwrap_or(plain)))
    }

    /// Every call the simulator still keeps (local mode; none otherwise).
    pub async fn recorded(&self) -> anyhow::Result<Vec<Value>> {
        match &self.simulator {
            Some((log, _)) => Ok(self.simulator_log(log, 0, simulator::KEPT).await?.0),
            None => Ok(Vec::new()),
        }
    }

    /// Prints what the bot sent through the (simulated) API since [`Service::connect`],
    /// waiting briefly for the outbox to drain.
    pub async fn print_sent(&self) -> anyhow::Result<()> {
        let Some((log, mut seen)) = self.simulator.clone() else { return Ok(()) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (calls, pending) = self.simulator_calls(&log, seen).await.map_err(|e| self.unreachable(e))?;
            for call in calls {
                seen = seen.max(call["id"].as_u64().unwrap_or(seen));
                crate::cli::line(describe(&call));
            }
            if pending == 0 || Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `(calls after the id, the last id)`.
    async fn simulator_log(&self, log: &str, after: u64, limit: usize) -> anyhow::Result<(Vec<Value>, u64)> {
        let value = self.simulator_json(log, after, limit).await.map_err(|e| self.unreachable(e))?;
        Ok((value["calls"].as_array().cloned().unwrap_or_default(), value["last_id"].as_u64().unwrap_or(0)))
    }

    /// `(calls after the id, messages still waiting in the outbox)`.
    async fn simulator_calls(&self, log: &str, after: u64) -> reqwest::Result<(Vec<Value>, i64)> {
        let value = self.simulator_json(log, after, simulator::KEPT).await?;
        Ok((value["calls"].as_array().cloned().unwrap_or_default(), value["outbox_pending"].as_i64().unwrap_or(0)))
    }

    async fn simulator_json(&self, log: &str, after: u64, limit: usize) -> reqwest::Result<Value> {
        let query = [("after", after.to_string()), ("limit", limit.to_string())];
        self.http.get(log).query(&query).send().await?.error_for_status()?.json().await
    }
}

/// Sends `text` from `userid` and prints what the bot answers.
pub async fn run(settings: &Settings, userid: &str, text: &str, url: Option<String>) -> anyhow::Result<()> {
    let service = Service::connect(settings, url).await?;
    let now = chrono::Utc::now().timestamp();
    let msg_id = format!("{}{:06}", now, rand::random::<u32>() % 1_000_000);
    let request = service.peer.callback(&service.peer.text_xml(userid, text, &msg_id, now), now);
    if let Some(reply) = service.post(request).await? {
        crate::cli::line(reply);
    }
    service.print_sent().await
}
