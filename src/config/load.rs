//! Reading settings with figment: every section on its own, unknown keys named, type
//! errors reported without hiding the other problems.

use super::{ENV_PREFIX, salvage};
use crate::wecom::message::Chat;
use figment::Figment;
use figment::providers::Env;

pub(super) fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX).ignore(&NOT_SETTINGS).split("__")
}

/// `LEADBOARD_*` variables that are not settings: the configuration file's name, and
/// the test suite's switches (`LEADBOARD_REQUIRE_BROWSER`, `LEADBOARD_REQUIRE_ROOT`,
/// `LEADBOARD_SCREENSHOTS`, and the PostgreSQL server of `LEADBOARD_TEST_POSTGRES`).
pub const NOT_SETTINGS: [&str; 6] =
    ["CONFIG", "REQUIRE_BROWSER", "REQUIRE_ROOT", "SCREENSHOTS", "TEST_POSTGRES", "TEST_POSTGRES_DIR"];

/// Where `section` records what it finds wrong.
pub(super) struct Problems<'a> {
    pub unknown: &'a mut Vec<String>,
    pub errors: &'a mut Vec<String>,
    /// Dotted keys left out because they could not be read.
    pub cut: &'a mut Vec<String>,
    /// Set when a section could not be read even without its unreadable parts.
    pub unusable: &'a mut bool,
}

/// One section: `None` when absent, with every key nobody reads reported by its full
/// dotted name. A section with errors is read without the parts that failed (see
/// `salvage`); the errors and the parts left out are recorded.
pub(super) fn section<T: serde::de::DeserializeOwned>(
    figment: &Figment,
    name: &str,
    problems: &mut Problems<'_>,
) -> Option<T> {
    let value = figment.find_value(name).ok()?;
    let _ = serde_ignored::deserialize(&value, |path| problems.unknown.push(unknown_key(&format!("{name}.{path}"))))
        .map(|_: T| ());
    let errors = match figment.extract_inner::<T>(name) {
        Ok(v) => return Some(v),
        Err(errors) => errors,
    };
    let salvaged = salvage::read::<T>(figment, value);
    if salvaged.errors.is_empty() {
        problems.errors.extend(errors.into_iter().map(|e| describe_error(name, e)));
    }
    problems.errors.extend(salvaged.errors.into_iter().map(|e| describe_error(name, e)));
    problems.cut.extend(salvaged.cut.iter().map(|path| format!("{name}.{}", path.join("."))));
    if salvaged.value.is_none() {
        *problems.unusable = true;
    }
    salvaged.value
}

/// Whether `problem` names `key` (and not merely a longer key starting with it).
pub(super) fn names_key(problem: &str, key: &str) -> bool {
    problem.match_indices(key).any(|(at, _)| {
        !problem[at + key.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    })
}

/// `配置项 section.key：what is wrong（来源：file or environment variable）`.
fn describe_error(section: &str, mut error: figment::Error) -> String {
    if error.path.last().is_some_and(|p| p == section) {
        error.path.pop();
    }
    error.path.insert(0, section.to_owned());
    if error.path.iter().any(|p| p == "chats") {
        // A chat entry may hold a webhook key, a credential.
        if let figment::error::Kind::InvalidType(figment::error::Actual::Str(text), _)
        | figment::error::Kind::InvalidValue(figment::error::Actual::Str(text), _) = &mut error.kind
        {
            *text = Chat::redacted(text);
        }
    }
    let source = error
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            _ => m.name.to_string(),
        })
        .unwrap_or_default();
    format!("配置项 `{}`：{}（来源：{source}）", error.path.join("."), error.kind)
}

/// Names an unknown key, and the environment variable that set it when there is one.
pub(super) fn unknown_key(key: &str) -> String {
    let from_env = std::env::vars().map(|(name, _)| name).find(|name| {
        name.strip_prefix(ENV_PREFIX).is_some_and(|rest| {
            let dotted = rest.to_ascii_lowercase().replace("__", ".");
            dotted == key || dotted.starts_with(&format!("{key}."))
        })
    });
    match from_env {
        Some(name) => format!("未知配置项 `{key}`（来自环境变量 {name}）"),
        None => format!("未知配置项 `{key}`"),
    }
}
