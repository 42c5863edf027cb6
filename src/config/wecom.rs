//! `[wecom]`: the app's credentials and the API it talks to. Secrets may come from
//! files, and never reach `Debug` output.

use super::Settings;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct WecomSettings {
    pub corp_id: String,
    pub agent_id: i64,
    #[serde(deserialize_with = "lenient_secret")]
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
    #[serde(deserialize_with = "lenient_secret")]
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
    #[serde(deserialize_with = "lenient_secret")]
    pub encoding_aes_key: Option<SecretString>,
    pub encoding_aes_key_file: Option<PathBuf>,
    pub api_base: String,
    pub timeout_secs: u64,
}

impl Default for WecomSettings {
    fn default() -> Self {
        Self {
            corp_id: String::new(),
            agent_id: 0,
            secret: None,
            secret_file: None,
            token: None,
            token_file: None,
            encoding_aes_key: None,
            encoding_aes_key_file: None,
            api_base: "https://qyapi.weixin.qq.com".into(),
            timeout_secs: 10,
        }
    }
}

impl WecomSettings {
    /// The app secret; present once settings have loaded.
    pub fn secret(&self) -> &str {
        self.secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default()
    }

    pub fn token(&self) -> &str {
        self.token.as_ref().map(|s| s.expose_secret()).unwrap_or_default()
    }

    pub fn encoding_aes_key(&self) -> &str {
        self.encoding_aes_key.as_ref().map(|s| s.expose_secret()).unwrap_or_default()
    }
}

/// Environment values that look like numbers arrive as numbers; secrets are strings.
fn lenient_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Text(s) => SecretString::from(s),
        Raw::Int(i) => SecretString::from(i.to_string()),
    }))
}

impl Settings {
    pub(super) fn read_secret_files(&mut self, problems: &mut Vec<String>) {
        let w = &mut self.wecom;
        for (name, value, file) in [
            ("secret", &mut w.secret, &w.secret_file),
            ("token", &mut w.token, &w.token_file),
            ("encoding_aes_key", &mut w.encoding_aes_key, &w.encoding_aes_key_file),
        ] {
            match (value.is_some(), file) {
                (true, Some(_)) => problems.push(format!("wecom.{name} 与 wecom.{name}_file 只能设置一个")),
                (false, Some(path)) => match read_secret_file(path) {
                    Ok(text) => *value = Some(SecretString::from(text.trim().to_owned())),
                    Err(e) => problems.push(format!("wecom.{name}_file 无法读取（{}）：{e}", path.display())),
                },
                (false, None) => problems.push(format!("缺少 wecom.{name}（或 wecom.{name}_file）")),
                (true, None) => {}
            }
        }
    }

    pub(super) fn validate_wecom(&self, problems: &mut Vec<String>) {
        let w = &self.wecom;
        if w.corp_id.trim().is_empty() {
            problems.push("缺少 wecom.corp_id".into());
        }
        if w.agent_id <= 0 {
            problems.push("wecom.agent_id 必须是正整数（应用的 AgentId）".into());
        }
        if let Some(token) = &w.token {
            let token = token.expose_secret();
            if token.is_empty() || token.len() > 32 || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
                problems.push("wecom.token 必须是 1 到 32 位英文字母或数字".into());
            }
        }
        if let Some(key) = &w.encoding_aes_key
            && crate::wecom::crypto::decode_aes_key(key.expose_secret()).is_err()
        {
            problems.push("wecom.encoding_aes_key 必须是 43 位 Base64 字符（后台生成的 EncodingAESKey）".into());
        }
        match url::Url::parse(&w.api_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => problems.push(format!("wecom.api_base 不是有效的 http(s) 地址：{}", w.api_base)),
        }
        if w.timeout_secs == 0 {
            problems.push("wecom.timeout_secs 必须大于 0".into());
        }
    }
}

/// Secret files are short; a longer one is not a secret file.
const SECRET_FILE_MAX: u64 = 4096;

/// Reads a secret file: a regular file (not a device, pipe or directory, which could
/// block or never end) of at most [`SECRET_FILE_MAX`] bytes.
fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("不是普通文件".into());
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(SECRET_FILE_MAX + 1).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > SECRET_FILE_MAX {
        return Err(format!("超过 {SECRET_FILE_MAX} 字节，不是密钥文件"));
    }
    Ok(text)
}
