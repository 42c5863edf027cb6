//! The directory: applied from the configuration at start (a static directory, the
//! configured old channels and contest teams), and synced — by the `directory_sync` job
//! and `leadboard sync-directory`. With `directory.source = "wecom"` the contacts are
//! read from WeCom first (no transaction held meanwhile); then the snapshot is applied,
//! and contest department teams take in new people, in one transaction. Any failure
//! applies nothing: the previous directory stays, and the error says what to fix in
//! the WeCom admin console.

use crate::clock::Clock;
use crate::config::{DirectorySource, Settings};
use crate::domain::contacts::{Overrides, Unmatched};
use crate::domain::directory::{Changes, PersonEntry};
use crate::domain::names::core_name;
use crate::domain::org::Level;
use crate::service::access::Operation;
use crate::service::contest::sync_all;
use crate::service::{Ctx, Identity, Outcome, identify, refuse};
use crate::store::Conn;
use crate::store::directory::ConsoleSetting;
use crate::store::events::{self, NewEvent};
use crate::store::{Db, directory, records};
use crate::wecom::client::WecomClient;
use crate::wecom::contacts::{self, FetchError, Wanted};
use tracing::instrument;

/// Brings the stored directory in line with the configuration (static source), re-keys
/// stored names if the normaliser changed, and registers the configured old channels
/// and contest teams. A WeCom-sourced directory is synced by its job.
#[instrument(level = "debug", skip_all)]
pub async fn load(db: &Db, settings: &Settings, now_ms: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    apply_configuration(&mut tx, settings, now_ms).await?;
    tx.commit().await
}

/// [`load`] in the caller's transaction (a reload's): returns one line per person the
/// configuration changed (static source only).
pub async fn apply_configuration(
    conn: &mut Conn,
    settings: &Settings,
    now_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut lines = Vec::new();
    if settings.directory.source == DirectorySource::Static {
        let changes = directory::apply(conn, &settings.directory_snapshot(), "config", now_ms).await?;
        if !changes.is_empty() {
            tracing::info!(
                added = changes.added.len(),
                moved = changes.moved.len(),
                updated = changes.updated.len(),
                departed = changes.departed.len(),
                returned = changes.returned.len(),
                "directory updated from configuration"
            );
            lines = describe(conn, &changes).await?;
        }
    }
    // Names stored under an earlier normaliser get today's core names first.
    let rekeyed = records::rekey(conn, core_name).await?;
    if rekeyed > 0 {
        tracing::info!(rekeyed, "stored names re-keyed with the current normaliser");
    }
    let channels: Vec<(String, String)> =
        settings.channels.existing.iter().map(|n| (n.trim().to_owned(), core_name(n))).collect();
    records::ensure_existing_channels(conn, &channels, now_ms).await?;
    sync_all(conn, settings, now_ms).await?;
    Ok(lines)
}

/// What a sync changed, for people.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub source: DirectorySource,
    pub changes: Changes,
    /// Departments and people in the applied directory.
    pub departments: usize,
    pub people: usize,
    /// One line per changed person, with names.
    pub lines: Vec<String>,
    /// Overrides that matched nothing WeCom listed.
    pub unmatched: Unmatched,
}

/// Why a sync applied nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("通讯录同步失败，未做任何更改（原通讯录保持不变）：{}", advice(.0))]
    Api(FetchError),
    #[error(
        "通讯录同步失败，未做任何更改（原通讯录保持不变）：企业微信返回的通讯录中没有任何成员。\
         请在企业微信管理后台 → 应用管理 → 本应用 → 可见范围 中加入参加活动的部门。"
    )]
    Empty,
    #[error("通讯录同步失败，未做任何更改（原通讯录保持不变）：数据库错误：{0}")]
    Db(#[from] sqlx::Error),
}

/// Brings the stored directory in line with its source, and contest department teams
/// with the directory.
#[instrument(level = "debug", skip_all)]
pub async fn sync(
    db: &Db,
    client: &WecomClient,
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<SyncReport, SyncError> {
    let contacts = match settings.directory.source {
        DirectorySource::Static => None,
        DirectorySource::Wecom => Some(fetch(client, &settings.directory_overrides()).await?),
    };
    let mut tx = db.begin().await?;
    let (snapshot, actor, unmatched) = match &contacts {
        None => (settings.directory_snapshot(), "config", Unmatched::default()),
        Some(contacts) => {
            let overrides = settings.directory_overrides();
            let known = directory::department_names(&mut tx).await?;
            (contacts.snapshot(&overrides, &known), "wecom", contacts.unmatched(&overrides))
        }
    };
    let now_ms = clock.now_ms();
    let changes = directory::apply(&mut tx, &snapshot, actor, now_ms).await?;
    sync_all(&mut tx, settings, now_ms).await?;
    let lines = describe(&mut tx, &changes).await?;
    tx.commit().await?;
    let report = SyncReport {
        source: settings.directory.source,
        changes,
        departments: snapshot.departments.len(),
        people: snapshot.people.len(),
        lines,
        unmatched,
    };
    log(&report);
    Ok(report)
}

/// The contacts from WeCom, with what the overrides' rules look at; an empty list is
/// refused (it would deactivate everyone).
async fn fetch(client: &WecomClient, overrides: &Overrides) -> Result<crate::domain::contacts::Contacts, SyncError> {
    let wanted = Wanted { details: overrides.wants_details(), tags: overrides.tags() };
    let contacts = contacts::fetch(client, &wanted).await.map_err(|e| {
        let error = SyncError::Api(e.clone());
        tracing::error!(api = e.api, code = e.error.code(), error = %error, "directory sync failed; nothing applied");
        error
    })?;
    if contacts.members.is_empty() {
        tracing::error!(
            departments = contacts.departments.len(),
            "directory sync: WeCom listed no members; nothing applied"
        );
        return Err(SyncError::Empty);
    }
    Ok(contacts)
}

fn log(report: &SyncReport) {
    let c = &report.changes;
    tracing::info!(
        source = ?report.source,
        departments = report.departments,
        people = report.people,
        added = c.added.len(),
        moved = c.moved.len(),
        updated = c.updated.len(),
        departed = c.departed.len(),
        returned = c.returned.len(),
        "directory synced"
    );
    if !report.unmatched.is_empty() {
        tracing::warn!(
            departments = ?report.unmatched.departments,
            userids = ?report.unmatched.userids,
            tags = ?report.unmatched.tags,
            rules = ?report.unmatched.rules,
            "directory overrides match nothing WeCom listed"
        );
    }
}

/// One line per changed person: who, and where from and to.
async fn describe(conn: &mut Conn, c: &Changes) -> Result<Vec<String>, sqlx::Error> {
    let depts = directory::department_names(conn).await?;
    let dept = |id: i64| depts.get(&id).cloned().unwrap_or_else(|| format!("部门 {id}"));
    let who = |p: &PersonEntry| format!("{}（{}）", p.name, p.userid);
    let mut lines = Vec::new();
    lines.extend(c.added.iter().map(|p| format!("新增：{} · {}{}", who(p), dept(p.department), roles(p))));
    lines
        .extend(c.moved.iter().map(|(p, from)| format!("调动：{} · {} → {}", who(p), dept(*from), dept(p.department))));
    lines.extend(c.updated.iter().map(|p| format!("更新：{} · {}{}", who(p), dept(p.department), roles(p))));
    for userid in &c.departed {
        let name = directory::find(conn, userid).await?.map(|p| p.name).unwrap_or_default();
        lines.push(format!("离开：{name}（{userid}），已停用，已有业绩保留"));
    }
    lines.extend(c.returned.iter().map(|p| format!("回归：{} · {}，已恢复", who(p), dept(p.department))));
    Ok(lines)
}

/// ` · 经理 · 确认人`: the level and role a person holds in the programme.
fn roles(p: &PersonEntry) -> String {
    let confirmer = if p.confirmer { " · 确认人" } else { "" };
    format!(" · {}{confirmer}", p.level.label())
}

/// What to fix, by WeCom's errcode.
fn advice(e: &FetchError) -> String {
    let api = e.api;
    let detail = e.error.message();
    match e.error.code() {
        Some(60011) => format!(
            "应用无权读取这些部门或成员（{api} 返回 60011：{detail}）。请在企业微信管理后台 → 应用管理 → 本应用 → \
             可见范围 中加入要同步的部门（全公司参加时选根部门），再运行 leadboard sync-directory。"
        ),
        Some(48002) => format!(
            "企业微信不允许本应用调用 {api}（48002 接口无权限：{detail}）。请确认 wecom.secret 是本自建应用的 Secret\
             （不是“通讯录同步”或“客户联系”的 Secret），并在管理后台 → 应用管理 → 本应用 中确认应用已启用、\
             可见范围包含要同步的部门。"
        ),
        Some(60020) => format!(
            "企业微信拒绝了本服务器的 IP（{api} 返回 60020：{detail}）。请在企业微信管理后台 → 应用管理 → 本应用 → \
             开发者接口 → 企业可信IP 中添加服务器的出口 IP（企业微信错误信息中 “from ip:” 后面的地址），\
             约 1 分钟后生效，再运行 leadboard sync-directory。"
        ),
        Some(code @ (40001 | 40013 | 40091)) => format!(
            "企业ID 或应用 Secret 不正确（{api} 返回 {code}：{detail}）。请在管理后台 → 我的企业 → 企业信息 核对 \
             wecom.corp_id，在 应用管理 → 本应用 查看 Secret 并更新 wecom.secret。"
        ),
        Some(code) => format!(
            "{api} 返回错误码 {code}（{detail}）。请对照企业微信全局错误码说明检查本应用在管理后台的设置后重试。"
        ),
        None => format!("无法读取企业微信通讯录（{api}：{detail}）。请检查服务器能否访问 wecom.api_base 后重试。"),
    }
}

impl SyncReport {
    /// One line: what changed, by kind of change.
    pub fn summary(&self) -> String {
        let c = &self.changes;
        let counts: Vec<String> = [
            ("新增", c.added.len()),
            ("调动", c.moved.len()),
            ("更新", c.updated.len()),
            ("离开", c.departed.len()),
            ("回归", c.returned.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} {n} 人"))
        .collect();
        let what = if counts.is_empty() { "没有变化".to_owned() } else { counts.join("、") };
        match self.source {
            DirectorySource::Static => format!("通讯录来自配置文件，已按配置应用：{what}"),
            DirectorySource::Wecom => format!("已从企业微信同步：{what}"),
        }
    }

    /// The whole report: the summary, then one line per changed person and any
    /// overrides that matched nothing.
    pub fn render(&self) -> String {
        let source = match self.source {
            DirectorySource::Static => "（directory.source = \"static\"，不读取企业微信）",
            DirectorySource::Wecom => "",
        };
        let mut out = vec![format!("{}{source}。共 {} 个部门、{} 人。", self.summary(), self.departments, self.people)];
        out.extend(self.lines.iter().cloned());
        let u = &self.unmatched;
        if !u.departments.is_empty() || !u.userids.is_empty() || !u.tags.is_empty() {
            let mut names: Vec<String> = u.departments.iter().map(|d| format!("部门 {d}")).collect();
            names.extend(u.userids.iter().cloned());
            names.extend(u.tags.iter().map(|t| format!("标签“{t}”")));
            out.push(format!(
                "注意：以下覆盖项在企业微信中没有找到，未生效：{}（检查拼写，或是否在应用的可见范围内）",
                names.join("、")
            ));
        }
        if !u.rules.is_empty() {
            out.push(format!(
                "注意：以下级别规则没有匹配任何人：{}（职务须与企业微信中的完全一致）",
                u.rules.join("、")
            ));
        }
        out.join("\n")
    }
}

/// 管理 → 职级与确认人: an admin sets a person's level and confirmer flag for WeCom's
/// gaps (`None`: as the directory says). Kept across syncs and reloads until cleared;
/// applied to the person at once, in the event log.
pub async fn set_person(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    userid: &str,
    level: Option<Level>,
    confirmer: Option<bool>,
) -> Outcome {
    let admin = ctx.authorize(Operation::Manage)?.clone();
    let Identity::Active(person) = identify(conn, userid).await? else {
        return refuse(format!("没有找到在职人员 {userid}。"));
    };
    let setting = ConsoleSetting { userid: person.userid.clone(), level, confirmer };
    directory::set_console_setting(conn, &setting, &admin.userid, ctx.now_ms()).await?;
    let shown = |l: Option<Level>, c: Option<bool>| {
        let level = l.map_or("按通讯录", Level::label);
        let confirmer = c.map_or("按通讯录", |c| if c { "是" } else { "否" });
        format!("职级：{level}，确认人：{confirmer}")
    };
    let event = NewEvent::new(&admin.userid, "person", &person.userid, "console_settings")
        .from(format!("{}/{}", person.level.as_str(), person.confirmer))
        .to(format!("{}/{}", level.map_or("-", Level::as_str), confirmer.map_or("-".to_owned(), |c| c.to_string())));
    events::append(conn, ctx.now_ms(), event).await?;
    let cleared = level.is_none() && confirmer.is_none();
    let cleared = match ctx.settings.directory.source {
        // The configured values, back now.
        DirectorySource::Static if cleared => {
            directory::apply(conn, &ctx.settings.directory_snapshot(), "config", ctx.now_ms()).await?;
            "（已恢复为配置文件中的值）"
        }
        DirectorySource::Wecom if cleared => "（下次同步通讯录时恢复为企业微信的值）",
        _ => "",
    };
    Ok(format!("已设置{}：{}{cleared}。", person.name, shown(level, confirmer)))
}
