//! Outbound message bodies — app messages to members (`message/send`: text, markdown,
//! template cards), app group chats (`appchat/send`) and group robots (webhooks) —
//! built as outbox entries.

use crate::store::outbox::{Api, NewMessage};
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
    NewMessage { api: Api::MessageSend, target: None, payload, reference }
}

/// Text to members; long text becomes several messages split on line boundaries.
pub fn text(agent_id: i64, users: &[&str], content: &str) -> Vec<NewMessage> {
    split_utf8(content, APP_TEXT_LIMIT)
        .into_iter()
        .map(|part| app_message(agent_id, users, "text", json!({ "content": part }), None))
        .collect()
}

/// A template card; `reference` lets later steps find the send response (its
/// `response_code`).
pub fn template_card(agent_id: i64, users: &[&str], card: Value, reference: String) -> NewMessage {
    app_message(agent_id, users, "template_card", card, Some(reference))
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
                        NewMessage { api: Api::AppchatSend, target: None, payload, reference: None }
                    }
                    Chat::Webhook(key) => {
                        NewMessage { api: Api::WebhookSend, target: Some(key.clone()), payload: body, reference: None }
                    }
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
