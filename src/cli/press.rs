//! `leadboard press --as USERID TARGET BUTTON` (local mode): presses a button of a card
//! the bot sent to USERID — the card of record `#N`, or a contest's 终审 card — by
//! posting the encrypted `template_card_event` callback WeCom would send, and prints
//! what the bot answers. The card is found in what the simulator recorded.

use crate::cli::send::Service;
use crate::config::Settings;
use anyhow::bail;
use serde_json::Value;

/// Presses `button` on the latest card sent to `userid` about `target`.
pub async fn run(
    settings: &Settings,
    userid: &str,
    target: &str,
    button: &str,
    url: Option<String>,
) -> anyhow::Result<()> {
    if !settings.local_mode {
        bail!("`leadboard press` 只用于本地模式（卡片由内置模拟器记录）；正式环境请在企业微信里按按钮。");
    }
    let target = key_target(settings, target);
    let service = Service::connect(settings, url).await?;
    let cards: Vec<Value> = service.recorded().await?.into_iter().filter(|c| sent_to(c, userid)).collect();
    let Some((task, key)) = cards.iter().rev().find_map(|c| button_of(c, &target, button)) else {
        bail!("{}", not_found(&cards, userid, &target, button));
    };
    let now = chrono::Utc::now().timestamp();
    let response_code = format!("SIM-PRESS-{:016x}", rand::random::<u64>());
    let xml = service.peer.card_event_xml(userid, &task, &key, &response_code, now);
    if let Some(reply) = service.post(service.peer.callback(&xml, now)).await? {
        crate::cli::line(reply);
    }
    crate::cli::line(format!("已按下「{button}」（{userid}）"));
    service.print_sent().await
}

/// What a button's key names: a record number (`#12`, `12`) or a contest id (its id or
/// name typed).
fn key_target(settings: &Settings, target: &str) -> String {
    let target = target.trim().trim_start_matches(['#', '＃']);
    settings
        .contests
        .iter()
        .find(|d| d.name == target || d.id.eq_ignore_ascii_case(target))
        .map_or_else(|| target.to_owned(), |d| d.id.clone())
}

/// A template card sent to `userid`.
fn sent_to(call: &Value, userid: &str) -> bool {
    let body = &call["body"];
    call["api"] == "message/send"
        && body["msgtype"] == "template_card"
        && body["touser"].as_str().is_some_and(|to| to.split('|').any(|u| u == userid))
}

/// `(task id, key)` of the card's button with this text about this target.
fn button_of(call: &Value, target: &str, text: &str) -> Option<(String, String)> {
    let card = &call["body"]["template_card"];
    let key = card["button_list"].as_array()?.iter().find_map(|b| {
        let key = b["key"].as_str()?;
        (b["text"] == text && key.split_once(':')?.1 == target).then(|| key.to_owned())
    })?;
    Some((card["task_id"].as_str()?.to_owned(), key))
}

/// Why nothing was pressed, with the buttons that can be.
fn not_found(cards: &[Value], userid: &str, target: &str, button: &str) -> String {
    let shown: Vec<String> = cards
        .iter()
        .rev()
        .take(5)
        .filter_map(|c| {
            let buttons = c["body"]["template_card"]["button_list"].as_array()?;
            let target = buttons.first()?["key"].as_str()?.split_once(':')?.1.to_owned();
            let texts: Vec<&str> = buttons.iter().filter_map(|b| b["text"].as_str()).collect();
            let target = if target.bytes().all(|b| b.is_ascii_digit()) { format!("#{target}") } else { target };
            Some(format!("{target}［{}］", texts.join("／")))
        })
        .collect();
    let mut text = format!("没有找到发给 {userid} 的卡片「{target}」上的按钮「{button}」。");
    if shown.is_empty() {
        text.push_str(&format!("模拟器记录中没有发给 {userid} 的卡片。"));
    } else {
        text.push_str(&format!("发给 {userid} 的卡片：{}。", shown.join("、")));
    }
    text
}
