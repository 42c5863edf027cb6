//! `[web]`: the web console's public address (WeCom's sign-in redirect and the links in
//! chat messages are built from it) and how long a sign-in lasts.

use super::Settings;
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct WebSettings {
    /// The address people and WeCom's OAuth redirect use, e.g.
    /// `https://lead.example.com` (no trailing slash needed). Empty: the listening
    /// address, filled in at start (right for local mode only).
    pub public_url: String,
    /// A console session ends this many hours after sign-in.
    pub session_hours: u64,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self { public_url: String::new(), session_hours: 12 }
    }
}

impl WebSettings {
    /// `public_url` without a trailing slash.
    pub fn base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// Whether the console is served over TLS (its cookie is then `Secure`).
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// An absolute link to `path` (which starts with `/`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }
}

impl Settings {
    pub(super) fn validate_web(&self, problems: &mut Vec<String>) {
        let w = &self.web;
        if !w.public_url.is_empty() {
            match url::Url::parse(&w.public_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.fragment().is_none() => {}
                _ => problems.push(format!(
                    "web.public_url 应为 http(s):// 开头、不带查询参数的地址，例如 https://lead.example.com：{}",
                    w.public_url
                )),
            }
        }
        if !(1..=24 * 30).contains(&w.session_hours) {
            problems.push(format!("web.session_hours 必须在 1 到 720 之间：{}", w.session_hours));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_built_on_the_public_address() {
        let w = WebSettings { public_url: "https://lead.example.com/".into(), session_hours: 12 };
        assert_eq!(w.link("/ui/todo"), "https://lead.example.com/ui/todo");
        assert!(w.https());
        assert!(!WebSettings { public_url: "http://127.0.0.1:8080".into(), ..w }.https());
    }
}
