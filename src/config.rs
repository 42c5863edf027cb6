//! Settings: a TOML file (or the built-in local-mode defaults) overridden by
//! `LEADBOARD_<SECTION>__<KEY>` environment variables, checked as a whole so that
//! `check-config` can list every problem at once. Secrets never reach `Debug` output.

use crate::domain::contacts::{Overrides, PersonOverride};
use crate::domain::contest::{self, ContestDef};
use crate::domain::directory::{DeptEntry, PersonEntry, Snapshot};
use crate::domain::kind::RecordKind;
use crate::domain::money::{Fen, Percent};
use crate::domain::org::{DeptKind, Level};
use crate::wecom::message::Chat;
use chrono::NaiveDate;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod salvage;

/// Prefix of environment overrides; `LEADBOARD_CONFIG` names the file instead.
pub const ENV_PREFIX: &str = "LEADBOARD_";

/// Everything leadboard reads from configuration (SPEC §9).
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
    pub contests: Vec<ContestSettings>,
    pub channels: ChannelsSettings,
    pub reminders: ReminderSettings,
    pub rewards: RewardSettings,
    pub targets: TargetSettings,
    pub outbox: OutboxSettings,
    /// Set when no configuration file was given (SPEC §9 local mode).
    pub local_mode: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub listen: String,
    /// Larger callback bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Callbacks whose timestamp is further than this from now are refused.
    pub timestamp_window_secs: u64,
    /// `text` (human) or `json` (one JSON object per line).
    pub log_format: LogFormat,
    /// Shutdown waits at most this long for in-flight work.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            timestamp_window_secs: 300,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 20,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    pub url: String,
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "sqlite://data/leadboard.db".into(), busy_timeout_ms: 5000 }
    }
}

#[derive(Debug, Deserialize)]
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

/// The activity period (活动周期); reports outside it are refused.
#[derive(Debug, Deserialize)]
pub struct ProgrammeSettings {
    #[serde(default)]
    pub name: Option<String>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub referral_start: Option<NaiveDate>,
    pub referral_end: Option<NaiveDate>,
}

/// The directory: a static list (`departments`, `users`), or WeCom's contacts with
/// what WeCom does not know added by `department_overrides` and `user_overrides`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DirectorySettings {
    pub source: DirectorySource,
    pub departments: Vec<DepartmentSettings>,
    pub users: Vec<UserSettings>,
    /// The level of people whose entry (static) or override (WeCom) names none.
    pub default_level: Level,
    /// `source = "wecom"`: department kinds, keyed by WeCom department id.
    pub department_overrides: Vec<DepartmentOverride>,
    /// `source = "wecom"`: levels, confirmers and main departments, keyed by userid.
    pub user_overrides: Vec<UserOverride>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DirectorySource {
    #[default]
    Static,
    Wecom,
}

#[derive(Debug, Deserialize, Clone)]
pub struct DepartmentSettings {
    pub id: i64,
    pub name: String,
    pub parent: Option<i64>,
    /// cs | tr | other; inherited from the parent department when absent.
    pub kind: Option<DeptKind>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct UserSettings {
    pub userid: String,
    pub name: String,
    pub department: i64,
    /// `directory.default_level` when absent.
    pub level: Option<Level>,
    #[serde(default)]
    pub confirmer: bool,
}

/// A synced department's kind (sub-departments without their own inherit it).
#[derive(Debug, Deserialize, Clone)]
pub struct DepartmentOverride {
    pub id: i64,
    pub kind: DeptKind,
}

/// What WeCom does not know about a synced person.
#[derive(Debug, Deserialize, Clone)]
pub struct UserOverride {
    pub userid: String,
    /// `directory.default_level` when absent.
    pub level: Option<Level>,
    #[serde(default)]
    pub confirmer: bool,
    /// The main department of someone in several (default: the first WeCom lists).
    pub department: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RolesSettings {
    pub admins: Vec<String>,
    pub audit_group: Vec<String>,
}

/// Points per kind (SPEC §2) and how client stages add up.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PointsSettings {
    pub lead_c: i64,
    pub lead_b: i64,
    pub lead_a: i64,
    pub channel_school: i64,
    pub channel_agency: i64,
    pub channel_person: i64,
    pub placement: i64,
    pub referral: i64,
    pub lead_stages: LeadStages,
}

impl Default for PointsSettings {
    fn default() -> Self {
        Self {
            lead_c: 1,
            lead_b: 5,
            lead_a: 30,
            channel_school: 10,
            channel_agency: 10,
            channel_person: 5,
            placement: 2,
            referral: 0,
            lead_stages: LeadStages::Cumulative,
        }
    }
}

impl PointsSettings {
    pub fn for_kind(&self, kind: RecordKind) -> i64 {
        match kind {
            RecordKind::LeadC => self.lead_c,
            RecordKind::LeadB => self.lead_b,
            RecordKind::LeadA => self.lead_a,
            RecordKind::ChannelSchool => self.channel_school,
            RecordKind::ChannelAgency => self.channel_agency,
            RecordKind::ChannelPerson => self.channel_person,
            RecordKind::Placement => self.placement,
            RecordKind::Referral => self.referral,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LeadStages {
    /// Every stage C → B → A carries its own points.
    #[default]
    Cumulative,
    /// Only a client's highest confirmed stage counts.
    Highest,
}

/// PK stake per level, in yuan (SPEC §6). A level without a stake cannot join a contest.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct StakesSettings {
    pub staff: Option<Fen>,
    pub supervisor: Option<Fen>,
    pub manager: Option<Fen>,
    pub director: Option<Fen>,
    pub vp: Option<Fen>,
    pub gm: Option<Fen>,
}

impl Default for StakesSettings {
    fn default() -> Self {
        Self {
            staff: Some(Fen::from_yuan(100)),
            supervisor: Some(Fen::from_yuan(200)),
            manager: Some(Fen::from_yuan(300)),
            director: Some(Fen::from_yuan(500)),
            vp: None,
            gm: None,
        }
    }
}

impl StakesSettings {
    pub fn for_level(&self, level: Level) -> Option<Fen> {
        match level {
            Level::Staff => self.staff,
            Level::Supervisor => self.supervisor,
            Level::Manager => self.manager,
            Level::Director => self.director,
            Level::Vp => self.vp,
            Level::Gm => self.gm,
        }
    }
}

/// Cron expressions with a seconds field, evaluated in Asia/Shanghai (SPEC §7).
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ScheduleSettings {
    /// `false` turns the built-in scheduler off (jobs still run with `leadboard jobs
    /// run`, e.g. from an external cron).
    pub enabled: bool,
    pub daily_leaderboard: String,
    pub onjob_check: String,
    pub reminders: String,
    pub contest_cutoff: String,
    pub directory_sync: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            daily_leaderboard: "0 5 18 * * *".into(),
            onjob_check: "0 35 9 * * *".into(),
            reminders: "0 7 * * * *".into(),
            contest_cutoff: "0 * * * * *".into(),
            directory_sync: "0 0 2 * * *".into(),
        }
    }
}

impl ScheduleSettings {
    /// `(job name, cron expression)` for every job.
    pub fn entries(&self) -> [(&'static str, &str); 5] {
        [
            ("daily_leaderboard", &self.daily_leaderboard),
            ("onjob_check", &self.onjob_check),
            ("reminders", &self.reminders),
            ("contest_cutoff", &self.contest_cutoff),
            ("directory_sync", &self.directory_sync),
        ]
    }
}

#[derive(Debug, Deserialize)]
pub struct ContestSettings {
    pub id: String,
    pub name: String,
    pub kinds: Vec<RecordKind>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// `HH:MM[:SS]` on the end date; 17:00 when absent.
    pub cutoff: Option<String>,
    #[serde(default)]
    pub sponsorship: Fen,
    #[serde(default)]
    pub split: SplitRule,
    #[serde(default)]
    pub chats: Vec<String>,
    #[serde(default)]
    pub teams: Vec<TeamSettings>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SplitRule {
    #[default]
    Stake,
    Equal,
}

#[derive(Debug, Deserialize)]
pub struct TeamSettings {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    pub department: Option<i64>,
}

/// Recruiting channels that existed before the programme (老渠道): placements may
/// name them, and are paid at the old-channel rate.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ChannelsSettings {
    pub existing: Vec<String>,
}

/// Reward amounts (SPEC §8, the seed's 奖励机制), in yuan; A-class as a percentage of
/// the deal. Nothing is paid for what is not configured.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct RewardSettings {
    /// Customer Success members, paid for B- and A-class clients only in months they met
    /// their target; C-class pays them nothing.
    pub cs: CsClientRewards,
    /// Everyone else, for client kinds.
    pub non_cs: ClientRewards,
    /// Talent Recruitment members, paid for channels and placements only in months they
    /// met their target.
    pub tr: TrRewards,
    /// Everyone else, for channels.
    pub non_tr: NonTrRewards,
    pub referral: ReferralRewards,
}

/// What Customer Success members earn for clients. There is no C-class amount: the
/// programme pays them nothing for it (营销方案 六(一)2(1)), whatever is configured.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct CsClientRewards {
    /// Refused when present, with the reason (not an anonymous unknown key).
    #[serde(skip_serializing)]
    pub lead_c: NoCsLeadCReward,
    pub lead_b: Fen,
    pub lead_a_percent: Percent,
}

/// `rewards.cs.lead_c`: any value is a configuration error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoCsLeadCReward;

impl<'de> Deserialize<'de> for NoCsLeadCReward {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "C类客户对客户成功事业部员工无任何奖励（营销方案 六(一)2(1)），不能设置；请删除 rewards.cs.lead_c",
        ))
    }
}

/// What everyone outside Customer Success earns for clients.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct ClientRewards {
    pub lead_c: Fen,
    pub lead_b: Fen,
    pub lead_a_percent: Percent,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct TrRewards {
    /// 直接促成: the TR member closed it themselves.
    pub school_direct: Fen,
    /// 转接促成: the TR member closed a channel someone else found (paid to the closer).
    pub school_transfer: Fen,
    pub agency_direct: Fen,
    pub agency_transfer: Fen,
    pub person_direct: Fen,
    pub person_transfer: Fen,
    /// Per placement through a new channel, beyond the channel's base indicator.
    pub placement_new_channel: Fen,
    /// Per placement through an old channel (`[channels] existing`).
    pub placement_old_channel: Fen,
    /// Per self-recruited placement (自招).
    pub placement_self: Fen,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct NonTrRewards {
    pub school_direct: Fen,
    /// 首次成功确认关键人并转接: paid to the originator of a transfer.
    pub school_originator: Fen,
    pub agency_direct: Fen,
    pub agency_originator: Fen,
    pub person_direct: Fen,
    pub person_originator: Fen,
}

/// The referral campaign (裂变机制): what the old client is granted.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct ReferralRewards {
    /// The discount or waiver, as account managers should apply it.
    pub benefit: String,
    /// Paid to the employee who reported the referral (0 by default).
    pub reporter: Fen,
}

/// Monthly targets (月度任务指标) in points of the department's own kinds.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct TargetSettings {
    pub cs: i64,
    pub tr: i64,
    /// Per-person overrides, by userid.
    pub people: std::collections::BTreeMap<String, i64>,
}

/// When undecided handoffs are chased (SPEC §3).
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ReminderSettings {
    /// Confirmers are reminded after this many hours.
    pub first_after_hours: u64,
    /// The audit group is told after this many hours.
    pub escalate_after_hours: u64,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        Self { first_after_hours: 24, escalate_after_hours: 72 }
    }
}

/// Delivery of outbound messages.
#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct OutboxSettings {
    /// First retry delay; doubles on each failure up to `max_backoff_secs`.
    pub initial_backoff_ms: u64,
    pub max_backoff_secs: u64,
    /// A message still failing this long after it was queued is given up.
    pub give_up_after_secs: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self { initial_backoff_ms: 1000, max_backoff_secs: 300, give_up_after_secs: 48 * 3600 }
    }
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
}

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
            Source::Local { base, secrets } => (Figment::from(Toml::string(base)).merge(Toml::string(secrets)), true),
        };
        let figment = figment.merge(env_provider());
        // Any shape is a valid Value: an error here is the file itself (TOML syntax).
        if let Err(errors) = figment.extract::<figment::value::Value>() {
            return Err(ConfigErrors(errors.into_iter().map(|e| format!("无法读取配置：{e}")).collect()));
        }
        let mut problems = Vec::new();
        let (mut parse_errors, mut unreadable, mut unusable) = (Vec::new(), Vec::new(), false);
        let mut settings = Self::sections(
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
        settings.validate(&mut checks);
        problems.extend(checks.into_iter().filter(|p| !unreadable.iter().any(|key| names_key(p, key))));
        if problems.is_empty() { Ok(settings) } else { Err(ConfigErrors(problems)) }
    }

    /// Reads each section on its own, and each section around its unreadable parts, so
    /// that a mistake in one place does not hide the mistakes elsewhere.
    fn sections(figment: &Figment, problems: &mut Problems<'_>) -> Settings {
        if let Ok(figment::value::Value::Dict(_, top)) = figment.find_value("") {
            for key in top.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
                problems.unknown.push(unknown_key(key));
            }
        }
        Settings {
            server: section(figment, "server", problems).unwrap_or_default(),
            database: section(figment, "database", problems).unwrap_or_default(),
            wecom: section(figment, "wecom", problems).unwrap_or_default(),
            programme: section(figment, "programme", problems),
            directory: section(figment, "directory", problems).unwrap_or_default(),
            roles: section(figment, "roles", problems).unwrap_or_default(),
            points: section(figment, "points", problems).unwrap_or_default(),
            stakes: section(figment, "stakes", problems).unwrap_or_default(),
            schedules: section(figment, "schedules", problems).unwrap_or_default(),
            contests: section(figment, "contests", problems).unwrap_or_default(),
            channels: section(figment, "channels", problems).unwrap_or_default(),
            reminders: section(figment, "reminders", problems).unwrap_or_default(),
            rewards: section(figment, "rewards", problems).unwrap_or_default(),
            targets: section(figment, "targets", problems).unwrap_or_default(),
            outbox: section(figment, "outbox", problems).unwrap_or_default(),
            local_mode: false,
        }
    }

    fn read_secret_files(&mut self, problems: &mut Vec<String>) {
        let w = &mut self.wecom;
        for (name, value, file) in [
            ("secret", &mut w.secret, &w.secret_file),
            ("token", &mut w.token, &w.token_file),
            ("encoding_aes_key", &mut w.encoding_aes_key, &w.encoding_aes_key_file),
        ] {
            match (value.is_some(), file) {
                (true, Some(_)) => problems.push(format!("wecom.{name} 与 wecom.{name}_file 只能设置一个")),
                (false, Some(path)) => match std::fs::read_to_string(path) {
                    Ok(text) => *value = Some(SecretString::from(text.trim().to_owned())),
                    Err(e) => problems.push(format!("wecom.{name}_file 无法读取（{}）：{e}", path.display())),
                },
                (false, None) => problems.push(format!("缺少 wecom.{name}（或 wecom.{name}_file）")),
                (true, None) => {}
            }
        }
    }

    /// Checks everything that can be checked without I/O.
    fn validate(&self, problems: &mut Vec<String>) {
        self.validate_server(problems);
        self.validate_wecom(problems);
        self.validate_schedules(problems);
        self.validate_programme(problems);
        self.validate_reminders(problems);
        self.validate_contests(problems);
        self.validate_targets(problems);
        self.validate_directory(problems);
    }

    fn validate_server(&self, problems: &mut Vec<String>) {
        if SocketAddr::from_str(&self.server.listen).is_err() {
            problems.push(format!("server.listen 不是有效的地址:端口：{}", self.server.listen));
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("server.max_body_bytes 至少为 1024".into());
        }
        if self.server.timestamp_window_secs == 0 {
            problems.push("server.timestamp_window_secs 必须大于 0".into());
        }
        if !self.database.url.starts_with("sqlite:") {
            problems.push(format!("database.url 必须以 sqlite: 开头：{}", self.database.url));
        }
    }

    fn validate_wecom(&self, problems: &mut Vec<String>) {
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

    fn validate_schedules(&self, problems: &mut Vec<String>) {
        for (name, expr) in self.schedules.entries() {
            if let Err(e) = cron::Schedule::from_str(expr) {
                let why = e.to_string();
                let why = why.lines().last().unwrap_or_default();
                problems.push(format!("schedules.{name} 不是有效的 cron 表达式（含秒字段）“{expr}”：{why}"));
            }
        }
    }

    /// Resolved contests (those whose settings are valid).
    pub fn contest_defs(&self) -> Vec<ContestDef> {
        self.contests.iter().filter_map(ContestDef::from_settings).collect()
    }

    fn validate_contests(&self, problems: &mut Vec<String>) {
        let mut ids = HashSet::new();
        let snapshot = self.directory_snapshot();
        let static_dir = self.directory.source == DirectorySource::Static;
        for c in &self.contests {
            let at = format!("比赛 {}", c.id);
            if c.id.trim().is_empty() || !ids.insert(c.id.as_str()) {
                problems.push(format!("{at}：id 为空或重复"));
            }
            if c.name.trim().is_empty() {
                problems.push(format!("{at}：name 不能为空"));
            }
            if c.kinds.is_empty() {
                problems.push(format!("{at}：kinds 不能为空"));
            }
            if c.end < c.start {
                problems.push(format!("{at}：结束日期 {} 早于开始日期 {}", c.end, c.start));
            }
            if let Some(cutoff) = c.cutoff.as_deref().filter(|t| contest::parse_cutoff(t).is_none()) {
                problems.push(format!("{at}：cutoff “{cutoff}” 应为 HH:MM 或 HH:MM:SS"));
            }
            for chat in c.chats.iter().filter(|chat| Chat::parse(chat).is_none()).map(|chat| Chat::redacted(chat)) {
                problems.push(format!("{at}：chats 中的 “{chat}” 应为 appchat:群ID 或 webhook:机器人key"));
            }
            if c.teams.is_empty() {
                problems.push(format!("{at}：没有队伍"));
            }
            self.validate_teams(c, &at, static_dir.then_some(&snapshot), problems);
        }
    }

    fn validate_teams(&self, c: &ContestSettings, at: &str, directory: Option<&Snapshot>, problems: &mut Vec<String>) {
        let mut names = HashSet::new();
        let mut member_of: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for team in &c.teams {
            if team.name.trim().is_empty() || !names.insert(team.name.as_str()) {
                problems.push(format!("{at}：队伍名为空或重复（{}）", team.name));
            }
            if team.department.is_some() && !team.members.is_empty() {
                problems.push(format!("{at}：队伍 {} 只能用 members 或 department 之一", team.name));
            }
            let mut members = team.members.clone();
            if let (Some(dept), Some(dir)) = (team.department, directory) {
                if !dir.departments.iter().any(|d| d.id == dept) {
                    problems.push(format!("{at}：队伍 {} 的部门 {dept} 不存在", team.name));
                }
                let depts = dir.subtree(dept);
                members.extend(dir.people.iter().filter(|p| depts.contains(&p.department)).map(|p| p.userid.clone()));
            }
            for userid in members {
                if let Some(dir) = directory
                    && !dir.people.iter().any(|p| p.userid == userid)
                {
                    problems.push(format!("{at}：队伍 {} 的成员 {userid} 不在通讯录中", team.name));
                }
                if let Some(other) = member_of.insert(userid.clone(), &team.name) {
                    problems.push(format!("{at}：{userid} 同时在队伍 {other} 和 {} 中", team.name));
                }
            }
        }
    }

    fn validate_targets(&self, problems: &mut Vec<String>) {
        let t = &self.targets;
        if t.cs < 0 || t.tr < 0 || t.people.values().any(|v| *v < 0) {
            problems.push("targets：月度任务指标不能为负数".into());
        }
        if self.directory.source == DirectorySource::Static {
            let known: HashSet<&str> = self.directory.users.iter().map(|u| u.userid.as_str()).collect();
            for userid in t.people.keys().filter(|u| !known.contains(u.as_str())) {
                problems.push(format!("targets.people 中的 {userid} 不在通讯录中"));
            }
        }
    }

    fn validate_reminders(&self, problems: &mut Vec<String>) {
        let r = &self.reminders;
        if r.first_after_hours == 0 || r.escalate_after_hours <= r.first_after_hours {
            problems
                .push("reminders：first_after_hours 须大于 0，escalate_after_hours 须大于 first_after_hours".into());
        }
    }

    fn validate_programme(&self, problems: &mut Vec<String>) {
        let Some(p) = &self.programme else { return };
        for (what, start, end) in [
            ("programme.start/end", p.start, p.end),
            ("programme.referral_start/referral_end", p.referral_start, p.referral_end),
        ] {
            if let (Some(start), Some(end)) = (start, end)
                && end < start
            {
                problems.push(format!("{what}：结束日期 {end} 早于开始日期 {start}"));
            }
        }
    }

    fn validate_directory(&self, problems: &mut Vec<String>) {
        match self.directory.source {
            DirectorySource::Static => self.validate_static_directory(problems),
            DirectorySource::Wecom => self.validate_directory_overrides(problems),
        }
    }

    fn validate_static_directory(&self, problems: &mut Vec<String>) {
        let d = &self.directory;
        if !d.department_overrides.is_empty() || !d.user_overrides.is_empty() {
            problems.push(
                "directory.department_overrides 与 directory.user_overrides 只用于 source = \"wecom\"；\
                 静态通讯录请直接在 directory.departments / directory.users 中设置"
                    .into(),
            );
        }
        let mut dept_ids = HashSet::new();
        for dept in &d.departments {
            if !dept_ids.insert(dept.id) {
                problems.push(format!("directory.departments：部门 id {} 重复", dept.id));
            }
        }
        for dept in &d.departments {
            if let Some(parent) = dept.parent.filter(|p| !dept_ids.contains(p)) {
                problems.push(format!("部门 {}（{}）的上级部门 {parent} 不存在", dept.id, dept.name));
            }
        }
        let mut userids = HashSet::new();
        for user in &d.users {
            if !userids.insert(user.userid.as_str()) {
                problems.push(format!("directory.users：userid {} 重复", user.userid));
            }
            if !dept_ids.contains(&user.department) {
                problems.push(format!("用户 {} 的部门 {} 不存在", user.userid, user.department));
            }
        }
        for (role, ids) in [("roles.admins", &self.roles.admins), ("roles.audit_group", &self.roles.audit_group)] {
            for id in ids.iter().filter(|id| !userids.contains(id.as_str())) {
                problems.push(format!("{role} 中的 {id} 不在通讯录中"));
            }
        }
    }

    /// `source = "wecom"`: no static list, and overrides that can name something in WeCom.
    fn validate_directory_overrides(&self, problems: &mut Vec<String>) {
        let d = &self.directory;
        if !d.departments.is_empty() || !d.users.is_empty() {
            problems.push(
                "directory.source = \"wecom\" 时部门和成员来自企业微信，directory.departments 与 directory.users \
                 必须为空（部门类型、级别和确认人用 directory.department_overrides / directory.user_overrides 设置）"
                    .into(),
            );
        }
        let mut ids = HashSet::new();
        for o in &d.department_overrides {
            if o.id <= 0 {
                problems.push(format!(
                    "directory.department_overrides：部门 id {} 无效（企业微信的部门 id 是正整数）",
                    o.id
                ));
            } else if !ids.insert(o.id) {
                problems.push(format!("directory.department_overrides：部门 {} 重复", o.id));
            }
        }
        let mut userids = HashSet::new();
        for o in &d.user_overrides {
            if !well_formed_userid(&o.userid) {
                problems.push(format!(
                    "directory.user_overrides：“{}” 不是有效的企业微信 userid（1 到 64 个字母、数字或 _-@.，以字母或数字开头）",
                    o.userid
                ));
            } else if !userids.insert(o.userid.as_str()) {
                problems.push(format!("directory.user_overrides：userid {} 重复", o.userid));
            }
            if let Some(dept) = o.department.filter(|id| *id <= 0) {
                problems.push(format!("directory.user_overrides：{} 的部门 id {dept} 无效", o.userid));
            }
        }
    }

    /// The directory as configured (`source = "static"`).
    pub fn directory_snapshot(&self) -> Snapshot {
        let d = &self.directory;
        Snapshot {
            departments: d
                .departments
                .iter()
                .map(|x| DeptEntry { id: x.id, name: x.name.clone(), parent: x.parent, kind: x.kind })
                .collect(),
            people: d
                .users
                .iter()
                .map(|u| PersonEntry {
                    userid: u.userid.clone(),
                    name: u.name.clone(),
                    department: u.department,
                    level: u.level.unwrap_or(d.default_level),
                    confirmer: u.confirmer,
                })
                .collect(),
        }
    }

    /// What configuration adds to a directory synced from WeCom (`source = "wecom"`).
    pub fn directory_overrides(&self) -> Overrides {
        let d = &self.directory;
        Overrides {
            kinds: d.department_overrides.iter().map(|o| (o.id, o.kind)).collect(),
            people: d
                .user_overrides
                .iter()
                .map(|o| {
                    let person = PersonOverride { level: o.level, confirmer: o.confirmer, department: o.department };
                    (o.userid.clone(), person)
                })
                .collect(),
            default_level: d.default_level,
        }
    }

    /// The SQLite file path named by `database.url`.
    pub fn database_path(&self) -> PathBuf {
        let url = &self.database.url;
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        PathBuf::from(path.split('?').next().unwrap_or(path))
    }
}

/// A WeCom userid: 1 to 64 bytes of letters, digits and `_-@.`, starting with a letter
/// or digit (WeCom's rule for 账号).
fn well_formed_userid(userid: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-@.".contains(c);
    (1..=64).contains(&userid.len())
        && userid.starts_with(|c: char| c.is_ascii_alphanumeric())
        && userid.chars().all(allowed)
}

fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX).ignore(&["CONFIG"]).split("__")
}

/// The top-level sections, in the order of `Settings`.
const SECTIONS: [&str; 15] = [
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
    "rewards",
    "targets",
    "outbox",
];

/// Where `section` records what it finds wrong.
struct Problems<'a> {
    unknown: &'a mut Vec<String>,
    errors: &'a mut Vec<String>,
    /// Dotted keys left out because they could not be read.
    cut: &'a mut Vec<String>,
    /// Set when a section could not be read even without its unreadable parts.
    unusable: &'a mut bool,
}

/// One section: `None` when absent, with every key nobody reads reported by its full
/// dotted name. A section with errors is read without the parts that failed (see
/// `salvage`); the errors and the parts left out are recorded.
fn section<T: serde::de::DeserializeOwned>(figment: &Figment, name: &str, problems: &mut Problems<'_>) -> Option<T> {
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
fn names_key(problem: &str, key: &str) -> bool {
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
fn unknown_key(key: &str) -> String {
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
