//! What a reload changes: the configuration as read (the file merged with environment
//! overrides) compared key by key with the one in force, for people and for the log.
//! Lists of tables with an identity (`[[contests]]` by `id`, directory entries by `id`
//! or `userid`, teams by `name`) are compared entry by entry. Secret values (and chat
//! targets, which hold webhook keys) are never shown. Some settings are read once at
//! start (the listener, the database, the WeCom client and crypto, the outbox worker,
//! whether the scheduler runs): a reload keeps their running values and reports them
//! as needing a restart.

use super::Settings;
use figment::value::{Dict, Value};
use std::collections::BTreeSet;

/// The configuration as read, kept to compare with the next reload. Its `Debug` shows
/// nothing: it holds the secrets as written.
#[derive(Clone, Default)]
pub struct RawConfig(pub(super) Dict);

impl std::fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawConfig(..)")
    }
}

/// Keys read once at start: changing them takes a restart.
pub const RESTART_ONLY: [&str; 13] = [
    "server.listen",
    "server.log_format",
    "server.header_read_timeout_secs",
    "server.body_read_timeout_secs",
    "server.idle_timeout_secs",
    "server.max_connections",
    "server.h2c",
    "server.board_streams",
    "server.control_socket",
    "database",
    "wecom",
    "outbox",
    "schedules.enabled",
];

/// One changed key (or entry of a list), for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// The dotted key, with an entry's identity in brackets: `stakes.staff`,
    /// `contests[client-pk]`.
    pub key: String,
    /// `stakes.staff：100 → 150`, `新增比赛「春季PK」（spring-pk）`.
    pub text: String,
    /// Read once at start: the running service keeps its value until it restarts.
    pub needs_restart: bool,
}

impl std::fmt::Display for ConfigChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Settings {
    /// Every key whose value differs between `before` and these settings, in key order.
    pub fn changes_since(&self, before: &Settings) -> Vec<ConfigChange> {
        let mut out = Vec::new();
        diff_dicts("", &before.raw.0, &self.raw.0, &mut out);
        out.into_iter()
            .map(|(key, what)| {
                let needs_restart = RESTART_ONLY.iter().any(|k| key == *k || key.starts_with(&format!("{k}.")));
                let text = match what {
                    What::Entry(text) => text,
                    What::Value(desc) => format!("{key}：{desc}"),
                };
                ConfigChange { key, text, needs_restart }
            })
            .collect()
    }

    /// Takes the running values of the settings read once at start ([`RESTART_ONLY`]),
    /// so that what is in force agrees with what was built from them.
    pub fn keep_restart_only(&mut self, running: &Settings) {
        let (server, from) = (&mut self.server, &running.server);
        server.listen.clone_from(&from.listen);
        server.log_format = from.log_format;
        server.header_read_timeout_secs = from.header_read_timeout_secs;
        server.body_read_timeout_secs = from.body_read_timeout_secs;
        server.idle_timeout_secs = from.idle_timeout_secs;
        server.max_connections = from.max_connections;
        server.h2c = from.h2c;
        server.board_streams = from.board_streams;
        server.control_socket.clone_from(&from.control_socket);
        self.database = running.database.clone();
        self.wecom = running.wecom.clone();
        self.outbox = running.outbox.clone();
        self.schedules.enabled = running.schedules.enabled;
        self.local_mode = running.local_mode;
        // Filled in at start when not configured (the listening address).
        if self.web.public_url.is_empty() {
            self.web.public_url.clone_from(&running.web.public_url);
        }
    }
}

/// A change found: a value's description (`100 → 150`), or a whole line for an entry
/// of a list.
enum What {
    Value(String),
    Entry(String),
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn diff_dicts(path: &str, old: &Dict, new: &Dict, out: &mut Vec<(String, What)>) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        diff(&join(path, key), old.get(key), new.get(key), out);
    }
}

fn diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<(String, What)>) {
    if old == new {
        return;
    }
    let empty = Dict::new();
    match (old, new) {
        (Some(Value::Dict(_, a)), Some(Value::Dict(_, b))) => diff_dicts(path, a, b, out),
        (None, Some(Value::Dict(_, b))) => diff_dicts(path, &empty, b, out),
        (Some(Value::Dict(_, a)), None) => diff_dicts(path, a, &empty, out),
        (Some(Value::Array(_, a)), Some(Value::Array(_, b))) if identity(a).is_some() && identity(b) == identity(a) => {
            diff_entries(path, identity(a).unwrap_or_default(), a, b, out)
        }
        (None, Some(Value::Array(_, b))) if identity(b).is_some() => {
            diff_entries(path, identity(b).unwrap_or_default(), &[], b, out)
        }
        (Some(Value::Array(_, a)), None) if identity(a).is_some() => {
            diff_entries(path, identity(a).unwrap_or_default(), a, &[], out)
        }
        _ => out.push((path.to_owned(), What::Value(describe(path, old, new)))),
    }
}

/// The key that identifies the entries of a list of tables, when every entry has it.
fn identity(items: &[Value]) -> Option<&'static str> {
    let first = items.first()?;
    ["id", "userid", "name"].into_iter().find(|key| {
        first.as_dict().is_some_and(|d| d.contains_key(*key))
            && items.iter().all(|item| item.as_dict().and_then(|d| d.get(*key)).is_some_and(|v| scalar(v).is_some()))
    })
}

fn id_of(item: &Value, key: &str) -> String {
    item.as_dict().and_then(|d| d.get(key)).and_then(scalar).unwrap_or_default()
}

/// Entries added, removed and changed, one line each, in the order of the new list
/// (then the removed ones).
fn diff_entries(path: &str, key: &str, old: &[Value], new: &[Value], out: &mut Vec<(String, What)>) {
    let find = |items: &[Value], id: &str| items.iter().find(|i| id_of(i, key) == id).cloned();
    for item in new {
        let id = id_of(item, key);
        let at = format!("{path}[{id}]");
        match find(old, &id) {
            None => out.push((at, What::Entry(format!("{}：新增", label(path, &id, item))))),
            Some(before) if before != *item => {
                let mut inner = Vec::new();
                diff(&at, Some(&before), Some(item), &mut inner);
                let parts: Vec<String> = inner
                    .into_iter()
                    .map(|(k, what)| {
                        let inside = format!("{at}.");
                        match what {
                            What::Value(desc) => format!("{} {desc}", k.strip_prefix(&inside).unwrap_or(&k)),
                            What::Entry(text) => text.strip_prefix(&inside).map(str::to_owned).unwrap_or(text),
                        }
                    })
                    .collect();
                out.push((at, What::Entry(format!("{}：{}", label(path, &id, item), parts.join("；")))));
            }
            Some(_) => {}
        }
    }
    for item in old.iter().filter(|i| find(new, &id_of(i, key)).is_none()) {
        let id = id_of(item, key);
        out.push((format!("{path}[{id}]"), What::Entry(format!("{}：已删除", label(path, &id, item)))));
    }
}

/// `比赛「客户开发PK」（client-pk）` for contests, `directory.users[zhangwei]` otherwise.
fn label(path: &str, id: &str, item: &Value) -> String {
    let name = item.as_dict().and_then(|d| d.get("name")).and_then(scalar);
    match (path, name) {
        ("contests", Some(name)) => format!("比赛「{name}」（{id}）"),
        _ => format!("{path}[{id}]"),
    }
}

/// `100 → 150`, `新增：150`, `已删除`; secrets and chat targets without their values.
fn describe(path: &str, old: Option<&Value>, new: Option<&Value>) -> String {
    let secret = path.split(['.', '[']).any(|part| ["secret", "token", "encoding_aes_key", "chats"].contains(&part));
    let show = |v: &Value| if secret { None } else { shown(v) };
    match (old, new) {
        (None, Some(v)) => show(v).map_or_else(|| "新增".to_owned(), |v| format!("新增：{v}")),
        (Some(_), None) => "已删除（恢复默认值）".to_owned(),
        (Some(a), Some(b)) => match (show(a), show(b)) {
            (Some(a), Some(b)) => format!("{a} → {b}"),
            _ if secret => "已更改（值不显示）".to_owned(),
            _ => "已更改".to_owned(),
        },
        (None, None) => String::new(),
    }
}

/// A value short enough to show on one line, as written in TOML.
fn shown(value: &Value) -> Option<String> {
    const LONGEST: usize = 80;
    let text = match value {
        Value::Array(_, items) => {
            let items: Option<Vec<String>> = items.iter().map(shown).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Dict(..) => return None,
        Value::String(_, s) => format!("\"{s}\""),
        other => scalar(other)?,
    };
    (text.chars().count() <= LONGEST).then_some(text)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_u128().map(|u| u.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;
    use figment::providers::{Format, Toml};

    fn settings(toml: &str) -> Settings {
        let value: Value = Figment::from(Toml::string(toml)).extract().unwrap();
        Settings { raw: RawConfig(value.into_dict().unwrap()), ..Settings::default() }
    }

    fn texts(before: &str, after: &str) -> Vec<String> {
        settings(after).changes_since(&settings(before)).into_iter().map(|c| c.text).collect()
    }

    #[test]
    fn changed_values_are_shown_from_and_to() {
        let before = "[stakes]\nstaff = 100\n[roles]\nadmins = [\"lina\"]\n";
        let after = "[stakes]\nstaff = 150\nmanager = 300\n[roles]\nadmins = [\"lina\", \"李四\"]\n";
        assert_eq!(
            texts(before, after),
            ["roles.admins：[\"lina\"] → [\"lina\", \"李四\"]", "stakes.manager：新增：300", "stakes.staff：100 → 150"]
        );
        assert!(texts(before, before).is_empty());
    }

    #[test]
    fn contests_are_compared_by_id_and_named() {
        let contest = |id: &str, sponsorship: i64, team: &str| {
            format!(
                "[[contests]]\nid = \"{id}\"\nname = \"{id}赛\"\nsponsorship = {sponsorship}\nchats = [\"webhook:KEY{sponsorship}\"]\n\
                 [[contests.teams]]\nname = \"{team}\"\nmembers = [\"a\"]\n"
            )
        };
        let before = format!("{}{}", contest("a", 100, "甲队"), contest("gone", 1, "乙队"));
        let after = format!("{}{}", contest("a", 500, "丙队"), contest("new", 1, "丁队"));
        assert_eq!(
            texts(&before, &after),
            [
                "比赛「a赛」（a）：chats 已更改（值不显示）；sponsorship 100 → 500；teams[丙队]：新增；teams[甲队]：已删除",
                "比赛「new赛」（new）：新增",
                "比赛「gone赛」（gone）：已删除",
            ]
        );
    }

    #[test]
    fn secrets_are_never_shown_and_settings_read_at_start_need_a_restart() {
        let before = "[wecom]\nsecret = \"s3cret-1\"\n[server]\nlisten = \"127.0.0.1:1\"\nmax_body_bytes = 2048\n";
        let after = "[wecom]\nsecret = \"s3cret-2\"\n[server]\nlisten = \"127.0.0.1:2\"\nmax_body_bytes = 4096\n";
        let changes = settings(after).changes_since(&settings(before));
        let shown: Vec<(&str, bool)> = changes.iter().map(|c| (c.text.as_str(), c.needs_restart)).collect();
        assert_eq!(
            shown,
            [
                ("server.listen：\"127.0.0.1:1\" → \"127.0.0.1:2\"", true),
                ("server.max_body_bytes：2048 → 4096", false),
                ("wecom.secret：已更改（值不显示）", true),
            ]
        );
        assert_eq!(format!("{:?}", settings(after).raw), "RawConfig(..)");
    }
}
