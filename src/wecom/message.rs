//! Outbound message bodies — app messages to members (`message/send`: text, markdown,
//! template cards), app group chats (`appchat/send`) and group robots (webhooks) —
//! built as outbox entries.

use crate::store::outbox::{Api, DigestEntry, NewMessage};
use serde_json::{Value, json};

/// App text and markdown messages are limited to 2048 bytes (UTF-8).
pub const APP_TEXT_LIMIT: usize = 2048;
/// Group robot markdown may carry up to 4096 bytes.
pub const WEBHOOK_MARKDOWN_LIMIT: usize = 4096;
/// WeCom drops a `message/send` identical to one it got within this many seconds
/// (its default; at most 4 h), when asked to with `enable_duplicate_check`.
pub const DUPLICATE_CHECK_INTERVAL_SECS: u64 = 1800;

/// Asks WeCom to drop this `message/send` if it is a repeat of one sent within
/// [`DUPLICATE_CHECK_INTERVAL_SECS`] (WeCom's `enable_duplicate_check`, and
/// `duplicate_check_interval` in seconds, at most 4 h): the outbox sends a message
/// again when its delivery was not recorded, and WeCom then shows it once.
/// (`appchat/send` and robot webhooks document no such check.)
pub fn check_duplicates(payload: &mut Value) {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("enable_duplicate_check".into(), json!(1));
        fields.insert("duplicate_check_interval".into(), json!(DUPLICATE_CHECK_INTERVAL_SECS));
    }
}

fn app_message(agent_id: i64, users: &[&str], msgtype: &str, body: Value, reference: Option<String>) -> NewMessage {
    let mut payload = json!({
        "touser": users.join("|"),
        "msgtype": msgtype,
        "agentid": agent_id,
    });
    payload[msgtype] = body;
    NewMessage { api: Api::MessageSend, target: None, payload, reference, digest: None }
}

/// Text to members; long text becomes several messages split on line boundaries.
pub fn text(agent_id: i64, users: &[&str], content: &str) -> Vec<NewMessage> {
    split_utf8(content, APP_TEXT_LIMIT)
        .into_iter()
        .map(|part| app_message(agent_id, users, "text", json!({ "content": part }), None))
        .collect()
}

/// Texts to `users` in place of the cards `entries` describe (SPEC section 15): every
/// record's line and how to decide them in chat; one message, or several in a row when
/// the lines do not fit in one (nothing about any record is left out).
pub fn digest(agent_id: i64, users: &[&str], entries: &[DigestEntry]) -> Vec<NewMessage> {
    let mut hints: Vec<&str> = Vec::new();
    for e in entries {
        if !hints.contains(&e.hint.as_str()) {
            hints.push(&e.hint);
        }
    }
    let hints = hints.join("\n");
    let head = |part: usize, parts: usize| {
        let of = if parts > 1 { format!("（{part}/{parts}）") } else { String::new() };
        format!("【待处理汇总{of}】消息较多，{} 条待处理的记录合并在此：", entries.len())
    };
    // Every part is whole by itself: its header, its records, how to decide them.
    let room = APP_TEXT_LIMIT.saturating_sub(head(99, 99).len() + hints.len() + 2).max(APP_TEXT_LIMIT / 4);
    let lines: Vec<&str> = entries.iter().map(|e| e.line.as_str()).collect();
    let bodies = split_utf8(&lines.join("\n"), room);
    let parts = bodies.len();
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let content = fit_bytes(&format!("{}\n{body}\n{hints}", head(i + 1, parts)), APP_TEXT_LIMIT);
            app_message(agent_id, users, "text", json!({ "content": content }), None)
        })
        .collect()
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn fit_bytes(text: &str, max: usize) -> String {
    text[..text.floor_char_boundary(max)].to_owned()
}

/// A template card; `reference` lets later steps find the send response (its
/// `response_code`). Its fields are cut to what WeCom shows ([`fit_card`]).
pub fn template_card(agent_id: i64, users: &[&str], mut card: Value, reference: String) -> NewMessage {
    fit_card(&mut card);
    app_message(agent_id, users, "template_card", card, Some(reference))
}

/// `text`, cut to `max` characters with an ellipsis (never inside a character).
pub fn cut_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The longest text (characters) WeCom shows in each field of a template card, and the
/// most rows and buttons; longer text is cut with an ellipsis, extra rows dropped.
const CARD_FIELDS: &[(&str, usize)] = &[
    ("/source/desc", 13),
    ("/main_title/title", 26),
    ("/main_title/desc", 30),
    ("/sub_title_text", 112),
    ("/quote_area/title", 26),
    ("/quote_area/quote_text", 160),
    ("/emphasis_content/title", 10),
    ("/emphasis_content/desc", 15),
];
const CARD_ROWS: usize = 6;
const CARD_ROW_KEY: usize = 5;
const CARD_ROW_VALUE: usize = 26;
const CARD_BUTTONS: usize = 6;
const CARD_BUTTON_TEXT: usize = 10;

/// Cuts a template card's texts to WeCom's field limits (see [`CARD_FIELDS`]).
pub fn fit_card(card: &mut Value) {
    let fit = |value: Option<&mut Value>, max: usize| {
        if let Some(v) = value
            && let Some(text) = v.as_str()
        {
            *v = Value::String(cut_chars(text, max));
        }
    };
    for (pointer, max) in CARD_FIELDS {
        fit(card.pointer_mut(pointer), *max);
    }
    if let Some(rows) = card.get_mut("horizontal_content_list").and_then(Value::as_array_mut) {
        rows.truncate(CARD_ROWS);
        for row in rows {
            fit(row.get_mut("keyname"), CARD_ROW_KEY);
            fit(row.get_mut("value"), CARD_ROW_VALUE);
        }
    }
    if let Some(buttons) = card.get_mut("button_list").and_then(Value::as_array_mut) {
        buttons.truncate(CARD_BUTTONS);
        for button in buttons {
            fit(button.get_mut("text"), CARD_BUTTON_TEXT);
            fit(button.get_mut("replace_name"), CARD_BUTTON_TEXT);
        }
    }
}

/// A group chat: an app-created chat (`appchat:CHATID`) or a robot webhook
/// (`webhook:KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chat {
    AppChat(String),
    Webhook(String),
}

impl Chat {
    /// Parses `appchat:ID` or `webhook:KEY`.
    pub fn parse(text: &str) -> Option<Chat> {
        match text.split_once(':') {
            Some(("appchat", id)) if !id.is_empty() => Some(Chat::AppChat(id.to_owned())),
            Some(("webhook", key)) if !key.is_empty() => Some(Chat::Webhook(key.to_owned())),
            _ => None,
        }
    }

    /// `text` safe to show in errors and logs: a webhook key is a credential, so of a
    /// chat entry only its prefix and four more characters are shown
    /// (`webhook:693a…`); shorter entries are shown whole.
    pub fn redacted(text: &str) -> String {
        const SHOWN: usize = 4;
        let (prefix, rest) = match text.split_once(':') {
            Some((prefix, rest)) if prefix.chars().count() <= 12 => (format!("{prefix}:"), rest),
            _ => (String::new(), text),
        };
        let mut chars = rest.chars();
        let shown: String = chars.by_ref().take(SHOWN).collect();
        let more = if chars.next().is_some() { "…" } else { "" };
        format!("{prefix}{shown}{more}")
    }

    fn limit(&self) -> usize {
        match self {
            Chat::AppChat(_) => APP_TEXT_LIMIT,
            Chat::Webhook(_) => WEBHOOK_MARKDOWN_LIMIT,
        }
    }

    /// Markdown to the chat, split to fit its limit.
    pub fn markdown(&self, content: &str) -> Vec<NewMessage> {
        split_utf8(content, self.limit())
            .into_iter()
            .map(|part| {
                let body = json!({ "msgtype": "markdown", "markdown": { "content": part } });
                match self {
                    Chat::AppChat(id) => {
                        let mut payload = body;
                        payload["chatid"] = json!(id);
                        NewMessage { api: Api::AppchatSend, target: None, payload, reference: None, digest: None }
                    }
                    Chat::Webhook(key) => NewMessage {
                        api: Api::WebhookSend,
                        target: Some(key.clone()),
                        payload: body,
                        reference: None,
                        digest: None,
                    },
                }
            })
            .collect()
    }
}

/// Splits text into parts of at most `max` bytes, preferring line boundaries and never
/// cutting a character in two. Nothing is dropped.
pub fn split_utf8(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if current.len() + line.len() > max && !current.is_empty() {
            parts.push(std::mem::take(&mut current).trim_end_matches('\n').to_owned());
        }
        if line.len() <= max {
            current.push_str(line);
            continue;
        }
        for ch in line.chars() {
            if current.len() + ch.len_utf8() > max {
                parts.push(std::mem::take(&mut current));
            }
            current.push(ch);
        }
    }
    let last = current.trim_end_matches('\n');
    if !last.is_empty() || parts.is_empty() {
        parts.push(last.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_utf8("你好\n世界", 2048), vec!["你好\n世界"]);
    }

    #[test]
    fn long_text_splits_on_lines_within_the_limit() {
        let line = "排行榜第一名".repeat(10); // 180 bytes
        let text = vec![line.as_str(); 30].join("\n");
        let parts = split_utf8(&text, 2048);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= 2048));
        assert_eq!(parts.join("\n"), text);
    }

    #[test]
    fn an_overlong_line_is_cut_between_characters() {
        let text = "字".repeat(1000); // 3000 bytes, no newline
        let parts = split_utf8(&text, 2048);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= 2048));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn card_fields_are_cut_to_wecoms_limits_between_characters() {
        let long = "很长的标题文字".repeat(10);
        let mut card = json!({
            "main_title": {"title": long, "desc": long},
            "sub_title_text": "😀".repeat(200),
            "horizontal_content_list": (0..8).map(|i| json!({"keyname": "报备人姓名全称", "value": format!("{i}{long}")})).collect::<Vec<_>>(),
            "button_list": [{"text": "确认这一条记录并计入积分", "key": "confirm:1"}],
            "task_id": "lb-1",
        });
        fit_card(&mut card);
        assert_eq!(card["main_title"]["title"].as_str().unwrap().chars().count(), 26);
        assert!(card["main_title"]["title"].as_str().unwrap().ends_with('…'));
        assert_eq!(card["main_title"]["desc"].as_str().unwrap().chars().count(), 30);
        assert_eq!(card["sub_title_text"].as_str().unwrap(), format!("{}…", "😀".repeat(111)));
        let rows = card["horizontal_content_list"].as_array().unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0]["keyname"], "报备人姓…");
        assert_eq!(rows[5]["value"].as_str().unwrap().chars().count(), 26);
        assert_eq!(card["button_list"][0]["text"].as_str().unwrap().chars().count(), 10);
        assert_eq!(card["button_list"][0]["key"], "confirm:1", "keys are not touched");
        let short = json!({"main_title": {"title": "待确认 #1"}});
        let mut same = short.clone();
        fit_card(&mut same);
        assert_eq!(same, short);
    }

    #[test]
    fn digests_list_every_record_and_split_within_the_text_limit() {
        let entries: Vec<DigestEntry> = (1..=120)
            .map(|i| DigestEntry {
                line: format!("#{i} C类客户 张伟：杭州云帆科技有限公司{i}"),
                hint: "回复「确认 编号」".into(),
            })
            .collect();
        let parts = digest(1, &["a", "b"], &entries);
        assert!(parts.len() > 1);
        let texts: Vec<&str> = parts.iter().map(|p| p.payload["text"]["content"].as_str().unwrap()).collect();
        assert!(texts.iter().all(|t| t.len() <= APP_TEXT_LIMIT));
        let n = texts.len();
        for (i, t) in texts.iter().enumerate() {
            assert!(t.starts_with(&format!("【待处理汇总（{}/{n}）】", i + 1)) && t.contains("120 条"), "{t}");
            assert_eq!(t.matches("回复「确认 编号」").count(), 1, "each part says how to decide, once: {t}");
        }
        let all = texts.join("\n");
        assert!((1..=120).all(|i| all.contains(&format!("#{i} C类"))), "every record is named");
        assert!(parts.iter().all(|p| p.payload["touser"] == "a|b" && p.lanes() == "u:a|u:b"));
    }

    #[test]
    fn redacted_chats_show_no_more_than_four_characters_of_a_key() {
        assert_eq!(Chat::redacted("webhok:693a91f6-7xxx-4bc4"), "webhok:693a…");
        assert_eq!(Chat::redacted("693a91f6-7xxx-4bc4"), "693a…");
        assert_eq!(Chat::redacted("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"), "https://qy…");
        assert_eq!(Chat::redacted("wechat:x"), "wechat:x");
        assert_eq!(Chat::redacted("群:钥匙一二三四五"), "群:钥匙一二…");
    }

    #[test]
    fn chats_parse_by_prefix() {
        assert_eq!(Chat::parse("appchat:wr1"), Some(Chat::AppChat("wr1".into())));
        assert_eq!(Chat::parse("webhook:K"), Some(Chat::Webhook("K".into())));
        assert_eq!(Chat::parse("group:x"), None);
        assert_eq!(Chat::parse("webhook:"), None);
    }
}
