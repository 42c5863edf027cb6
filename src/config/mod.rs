//! Settings: a TOML file (or the built-in local-mode defaults) overridden by
//! `LEADBOARD_<SECTION>__<KEY>` environment variables, checked as a whole so that
//! `check-config` can list every problem at once. Secrets never reach `Debug` output.
//! What the programme's rules need (contests, reward rules, targets) is parsed into the
//! domain's own types here, once, at load.

mod changes;
mod contests;
mod directory;
mod load;
mod programme;
mod salvage;
mod schedules;
mod server;
mod web;
mod wecom;

pub use changes::{ConfigChange, RESTART_ONLY, RawConfig};
pub use contests::{ContestSettings, TeamSettings};
pub use directory::{
    DepartmentOverride, DepartmentSettings, DirectorySettings, DirectorySource, LevelRuleSettings, RolesSettings,
    UserOverride, UserSettings,
};
pub use programme::{
    AuditSettings, ChannelsSettings, PointsSettings, ProgrammeSettings, ReminderSettings, StakesSettings,
};
pub use schedules::ScheduleSettings;
pub use server::{DatabaseSettings, LogFormat, OutboxSettings, ServerSettings};
pub use web::WebSettings;
pub use wecom::WecomSettings;

use crate::domain::contest::ContestDef;
use crate::domain::rewards::{RewardRules, Targets};
use figment::Figment;
use figment::providers::{Format, Toml};
use load::{Problems, env_provider, names_key, section, unknown_key};
use std::path::Path;

/// Prefix of environment overrides; `LEADBOARD_CONFIG` names the file instead.
pub const ENV_PREFIX: &str = "LEADBOARD_";

/// Everything leadboard reads from configuration.
#[derive(Debug, Default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub wecom: WecomSettings,
    pub programme: Option<ProgrammeSettings>,
    pub directory: DirectorySettings,
    pub roles: RolesSettings,
    pub points: PointsSettings,
    pub stakes: StakesSettings,
    pub schedules: ScheduleSettings,
    /// The contests, resolved (times in Asia/Shanghai) when the settings loaded.
    pub contests: Vec<ContestDef>,
    pub channels: ChannelsSettings,
    pub reminders: ReminderSettings,
    pub audit: AuditSettings,
    pub rewards: RewardRules,
    pub targets: Targets,
    pub outbox: OutboxSettings,
    /// `[web]`: the console's public address and session lifetime.
    pub web: WebSettings,
    /// Set when no configuration file was given: local mode, with the demo directory
    /// and WeCom's API answered by the built-in simulator.
    pub local_mode: bool,
    /// The configuration as read, to tell what a reload changes.
    pub raw: RawConfig,
}

/// Everything wrong with a configuration, in one list.
#[derive(Debug, thiserror::Error)]
#[error("配置有 {} 个问题：\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

/// Where settings come from.
pub enum Source<'a> {
    /// A TOML file given by `--config` or `LEADBOARD_CONFIG`.
    File(&'a Path),
    /// Local mode: built-in TOML text (the demo organisation) plus generated secrets.
    Local { base: &'a str, secrets: &'a str },
    /// TOML text read as a configuration file would be (the configuration fuzz target).
    Text(&'a str),
}

/// The top-level sections, in the order of `Settings`.
const SECTIONS: [&str; 17] = [
    "server",
    "database",
    "wecom",
    "programme",
    "directory",
    "roles",
    "points",
    "stakes",
    "schedules",
    "contests",
    "channels",
    "reminders",
    "audit",
    "rewards",
    "targets",
    "outbox",
    "web",
];

impl Settings {
    /// Loads, overrides from the environment, reads secret files, and validates.
    pub fn load(source: Source<'_>) -> Result<Settings, ConfigErrors> {
        let (figment, local_mode) = match source {
            Source::File(path) => {
                if !path.is_file() {
                    return Err(ConfigErrors(vec![format!("配置文件不存在：{}", path.display())]));
                }
                (Figment::from(Toml::file_exact(path)), false)
            }
            Source::Text(text) => (Figment::from(Toml::string(text)), false),
            Source::Local { base, secrets } => {
                Self::refuse_wecom_environment_without_file()?;
                (Figment::from(Toml::string(base)).merge(Toml::string(secrets)), true)
            }
        };
        let figment = figment.merge(env_provider());
        // Any shape is a valid Value: an error here is the file itself (TOML syntax).
        let raw = match figment.extract::<figment::value::Value>() {
            Ok(value) => RawConfig(value.into_dict().unwrap_or_default()),
            Err(errors) => {
                return Err(ConfigErrors(errors.into_iter().map(|e| format!("无法读取配置：{e}")).collect()));
            }
        };
        let mut problems = Vec::new();
        let (mut parse_errors, mut unreadable, mut unusable) = (Vec::new(), Vec::new(), false);
        let (mut settings, contests) = Self::sections(
            &figment,
            &mut Problems {
                unknown: &mut problems,
                errors: &mut parse_errors,
                cut: &mut unreadable,
                unusable: &mut unusable,
            },
        );
        problems.append(&mut parse_errors);
        if unusable {
            // Validating defaults in place of a whole unreadable section would only add noise.
            return Err(ConfigErrors(problems));
        }
        settings.local_mode = local_mode;
        // What was left out for a type error is reported as that, not as missing or invalid.
        let mut checks = Vec::new();
        settings.read_secret_files(&mut checks);
        settings.validate(&contests, &mut checks);
        problems.extend(checks.into_iter().filter(|p| !unreadable.iter().any(|key| names_key(p, key))));
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        settings.contests = contests.iter().filter_map(ContestSettings::resolve).collect();
        settings.raw = raw;
        Ok(settings)
    }

    /// The control socket of the service a configuration file configures (with
    /// environment overrides), read without the rest (`database.url`,
    /// `server.control_socket`): enough to find the service, for an operator who cannot
    /// read the service's secrets.
    pub fn control_socket_in(path: &Path) -> Result<std::path::PathBuf, ConfigErrors> {
        if !path.is_file() {
            return Err(ConfigErrors(vec![format!("配置文件不存在：{}", path.display())]));
        }
        let figment = Figment::from(Toml::file_exact(path)).merge(env_provider());
        let database = match figment.find_value("database") {
            Ok(_) => figment.extract_inner::<DatabaseSettings>("database"),
            Err(_) => Ok(DatabaseSettings::default()),
        };
        let database = database.map_err(|e| ConfigErrors(vec![format!("无法读取 database.url：{e}")]))?;
        let control_socket = match figment.find_value("server.control_socket") {
            Ok(_) => Some(
                figment
                    .extract_inner::<std::path::PathBuf>("server.control_socket")
                    .map_err(|e| ConfigErrors(vec![format!("无法读取 server.control_socket：{e}")]))?,
            ),
            Err(_) => None,
        };
        let server = ServerSettings { control_socket, ..ServerSettings::default() };
        Ok(Settings { database, server, ..Settings::default() }.control_socket())
    }

    /// Without a configuration file leadboard runs in local mode, where WeCom is the
    /// built-in simulator: `LEADBOARD_WECOM__*` variables would be silently ignored, and
    /// nothing would reach WeCom. They are refused instead (other overrides, such as
    /// `LEADBOARD_SERVER__LISTEN`, apply to local mode as usual).
    pub fn refuse_wecom_environment_without_file() -> Result<(), ConfigErrors> {
        let prefix = format!("{ENV_PREFIX}WECOM__");
        let mut names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.to_ascii_uppercase().starts_with(&prefix))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        names.sort();
        Err(ConfigErrors(vec![format!(
            "设置了企业微信环境变量（{}），但没有指定配置文件：没有配置文件时 leadboard 以本地模式运行，\
             企业微信接口由内置模拟器应答，这些设置不会生效。请用 --config 或 LEADBOARD_CONFIG \
             指定配置文件；只想试用本地模式，请取消这些环境变量。",
            names.join("、")
        )]))
    }

    /// Reads each section on its own, and each section around its unreadable parts, so
    /// that a mistake in one place does not hide the mistakes elsewhere. The contests
    /// come back as configured, to be checked before they are resolved.
    fn sections(figment: &Figment, problems: &mut Problems<'_>) -> (Settings, Vec<ContestSettings>) {
        if let Ok(figment::value::Value::Dict(_, top)) = figment.find_value("") {
            for key in top.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
                problems.unknown.push(unknown_key(key));
            }
        }
        let settings = Settings {
            server: section(figment, "server", problems).unwrap_or_default(),
            database: section(figment, "database", problems).unwrap_or_default(),
            wecom: section(figment, "wecom", problems).unwrap_or_default(),
            programme: section(figment, "programme", problems),
            directory: section(figment, "directory", problems).unwrap_or_default(),
            roles: section(figment, "roles", problems).unwrap_or_default(),
            points: section(figment, "points", problems).unwrap_or_default(),
            stakes: section(figment, "stakes", problems).unwrap_or_default(),
            schedules: section(figment, "schedules", problems).unwrap_or_default(),
            contests: Vec::new(),
            channels: section(figment, "channels", problems).unwrap_or_default(),
            reminders: section(figment, "reminders", problems).unwrap_or_default(),
            audit: section(figment, "audit", problems).unwrap_or_default(),
            rewards: section(figment, "rewards", problems).unwrap_or_default(),
            targets: section(figment, "targets", problems).unwrap_or_default(),
            outbox: section(figment, "outbox", problems).unwrap_or_default(),
            web: section(figment, "web", problems).unwrap_or_default(),
            local_mode: false,
            raw: RawConfig::default(),
        };
        (settings, section(figment, "contests", problems).unwrap_or_default())
    }

    /// Checks everything that can be checked without I/O.
    fn validate(&self, contests: &[ContestSettings], problems: &mut Vec<String>) {
        self.validate_server(problems);
        self.validate_wecom(problems);
        self.validate_schedules(problems);
        self.validate_programme(problems);
        self.validate_reminders(problems);
        self.validate_audit(problems);
        self.validate_contests(contests, problems);
        self.validate_targets(problems);
        self.validate_directory(problems);
        self.validate_web(problems);
    }

    /// The contest with this id.
    pub fn contest(&self, id: &str) -> Option<&ContestDef> {
        self.contests.iter().find(|c| c.id == id)
    }
}
