//! `leadboard send --as USERID TEXT`: posts a text message to the running service
//! exactly as WeCom would, and prints the bot's answer, passive or (in local mode)
//! sent through the simulated API.

use crate::config::Settings;
use crate::local;
use crate::wecom::crypto::WecomCrypto;
use crate::wecom::peer::Peer;
use crate::wecom::xml;
use anyhow::{Context, anyhow, bail};
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
        anyhow!(
            "{base} 上的服务应答异常（{}）：它可能不是本地模式的 leadboard。",
            error.status().map(|s| s.as_u16()).unwrap_or(0)
        )
    } else {
        tracing::debug!(error = %error, "request to the service failed");
        anyhow!("无法与 {base} 上的服务通信。{start}。")
    }
}

/// Sends `text` from `userid` and prints what the bot answers.
pub async fn run(settings: &Settings, userid: &str, text: &str, url: Option<String>) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url,
        None if settings.local_mode => local::read_state(&local::data_dir())
            .map(|s| s.url)
            .ok_or_else(|| anyhow!("找不到本地服务：请先在同一目录运行 `leadboard serve`"))?,
        None => format!("http://{}", settings.server.listen),
    };
    let base = base.trim_end_matches('/');
    let w = &settings.wecom;
    let peer = Peer {
        crypto: WecomCrypto::new(w.token(), w.encoding_aes_key(), &w.corp_id)?,
        corp_id: w.corp_id.clone(),
        agent_id: w.agent_id,
    };
    let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let unreachable = |e: reqwest::Error| not_running(base, settings.local_mode, &e);
    let simulator = settings.local_mode.then(|| format!("{base}{}/_log", crate::wecom::simulator::PREFIX));
    let seen = match &simulator {
        Some(log) => simulator_log(&http, log, 0).await.map_err(unreachable)?.0.len(),
        None => 0,
    };

    let now = chrono::Utc::now().timestamp();
    let msg_id = format!("{}{:06}", now, rand::random::<u32>() % 1_000_000);
    let request = peer.callback(&peer.text_xml(userid, text, &msg_id, now), now);
    let response = http
        .post(format!("{base}/wecom/callback?{}", request.query))
        .body(request.body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(unreachable)?;
    if !status.is_success() {
        bail!("服务拒绝了消息：HTTP {status}（详见服务日志）");
    }
    if let Some(plain) = peer.open_reply(&body)? {
        crate::cli::line(xml::parse_text_reply(&plain).unwrap_or(plain));
    }
    if let Some(log) = simulator {
        print_sent_messages(&http, &log, seen).await?;
    }
    Ok(())
}

/// Prints what the bot sent through the (simulated) API, waiting briefly for the outbox
/// to drain.
async fn print_sent_messages(http: &reqwest::Client, log: &str, mut seen: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (calls, pending) = simulator_log(http, log, seen).await.context("无法读取模拟器记录")?;
        seen += calls.len();
        for call in calls {
            crate::cli::line(describe(&call));
        }
        if pending == 0 || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn simulator_log(http: &reqwest::Client, log: &str, after: usize) -> reqwest::Result<(Vec<Value>, i64)> {
    let value: Value = http.get(log).query(&[("after", after)]).send().await?.error_for_status()?.json().await?;
    let calls = value["calls"].as_array().cloned().unwrap_or_default();
    Ok((calls, value["outbox_pending"].as_i64().unwrap_or(0)))
}

/// One line per simulated API call, readable in a terminal.
fn describe(call: &Value) -> String {
    let api = call["api"].as_str().unwrap_or_default();
    let body = &call["body"];
    let to = body["touser"].as_str().or(body["chatid"].as_str()).map(str::to_owned);
    let to = to.or_else(|| {
        body["userids"].as_array().map(|u| u.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"))
    });
    let to = to.unwrap_or_else(|| "群机器人".into());
    let msgtype = body["msgtype"].as_str().unwrap_or_default();
    let content = match (api, msgtype) {
        ("message/update_template_card", _) => {
            format!("卡片按钮更新为「{}」", body["button"]["replace_name"].as_str().unwrap_or(""))
        }
        (_, "template_card") => {
            let card = &body["template_card"];
            let buttons: Vec<String> = card["button_list"]
                .as_array()
                .map(|b| b.iter().map(|b| format!("[{}]", b["text"].as_str().unwrap_or(""))).collect())
                .unwrap_or_default();
            format!(
                "卡片：{} · {} {}",
                card["main_title"]["title"].as_str().unwrap_or(""),
                card["main_title"]["desc"].as_str().unwrap_or(""),
                buttons.join(" ")
            )
        }
        _ => body[msgtype]["content"].as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()),
    };
    format!("[{api} → {to}] {content}")
}
