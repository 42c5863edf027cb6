//! Reading the company's contacts through the app's own API access: the departments
//! (`department/simplelist`, named by `department/list`) and the members of each
//! (`user/simplelist`) within the app's visibility.
//!
//! What this relies on, with an ordinary self-built app secret:
//! - `department/simplelist` without `id` returns every department inside the app's
//!   visibility scope (可见范围), sub-departments included, with its parent: one call
//!   gives the whole visible tree, so there is nothing to recurse through by hand.
//! - `department/simplelist` has no names; one `department/list` call (also without
//!   `id`, also the whole visible tree) supplies them. That is the fewest calls that
//!   name every department (`department/get` would cost one per department).
//! - `user/simplelist?department_id=ID` returns only the department's direct members
//!   (the current documentation has no recursive flag), so every visible department
//!   is asked, one after another, and people listed in several are kept once.
//! - When levels come from positions (职务) or department leaders confirm,
//!   `user/list?department_id=ID` (the same members, with details: `position`, and
//!   `is_leader_in_dept` aligned with `department`) is asked instead. A self-built
//!   app's secret reads both within its visibility.
//! - Tags named by level rules: one `tag/list` (every tag, by name), then `tag/get`
//!   for each named tag that exists (its people, and the departments it names).
//!
//! Any failure ends the read: a partial directory would make people look departed.

use crate::domain::contacts::{Contacts, WecomDept, WecomMember, WecomTag};
use crate::wecom::client::{ApiError, WecomClient};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};

/// A failed call: which API, and how it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{api}: {error}")]
pub struct FetchError {
    pub api: &'static str,
    pub error: ApiError,
}

#[derive(Deserialize)]
struct SimpleDepartments {
    #[serde(default)]
    department_id: Vec<SimpleDepartment>,
}

#[derive(Deserialize)]
struct SimpleDepartment {
    id: i64,
    #[serde(default)]
    parentid: i64,
}

#[derive(Deserialize)]
struct NamedDepartments {
    #[serde(default)]
    department: Vec<NamedDepartment>,
}

#[derive(Deserialize)]
struct NamedDepartment {
    id: i64,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Members {
    #[serde(default)]
    userlist: Vec<Member>,
}

#[derive(Deserialize)]
struct Member {
    userid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    department: Vec<i64>,
    #[serde(default)]
    position: Option<String>,
    /// 1 where they lead the department at the same place in `department`.
    #[serde(default)]
    is_leader_in_dept: Vec<i64>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    taglist: Vec<TagName>,
}

#[derive(Deserialize)]
struct TagName {
    tagid: i64,
    #[serde(default)]
    tagname: String,
}

#[derive(Deserialize)]
struct TagMembers {
    #[serde(default)]
    userlist: Vec<TagUser>,
    #[serde(default)]
    partylist: Vec<i64>,
}

#[derive(Deserialize)]
struct TagUser {
    userid: String,
}

/// What to read besides departments and members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Positions and department leaders (`user/list` instead of `user/simplelist`).
    pub details: bool,
    /// Tags, by name.
    pub tags: Vec<String>,
}

/// Everything the app can see: departments (named), then each department's members,
/// then the tags wanted.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn fetch(client: &WecomClient, wanted: &Wanted) -> Result<Contacts, FetchError> {
    let tree: SimpleDepartments = call(client, "department/simplelist", &[]).await?;
    let named: NamedDepartments = call(client, "department/list", &[]).await?;
    let names: HashMap<i64, String> =
        named.department.into_iter().filter(|d| !d.name.trim().is_empty()).map(|d| (d.id, d.name)).collect();
    let departments: Vec<WecomDept> = tree
        .department_id
        .into_iter()
        .map(|d| WecomDept {
            id: d.id,
            parent: (d.parentid > 0).then_some(d.parentid),
            name: names.get(&d.id).cloned(),
        })
        .collect();
    let members = members(client, &departments, wanted.details).await?;
    let tags = if wanted.tags.is_empty() { Vec::new() } else { tags(client, &wanted.tags).await? };
    Ok(Contacts { departments, members, tags })
}

async fn members(
    client: &WecomClient,
    departments: &[WecomDept],
    details: bool,
) -> Result<Vec<WecomMember>, FetchError> {
    let api = if details { "user/list" } else { "user/simplelist" };
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    for dept in departments {
        let listed: Members = call(client, api, &[("department_id", dept.id.to_string())]).await?;
        for m in listed.userlist.into_iter().filter(|m| !m.userid.is_empty()) {
            if seen.insert(m.userid.clone()) {
                let leads =
                    m.department.iter().zip(&m.is_leader_in_dept).filter(|(_, l)| **l == 1).map(|(d, _)| *d).collect();
                // WeCom lists the member under this department; make sure it counts.
                let mut departments = m.department;
                if !departments.contains(&dept.id) {
                    departments.push(dept.id);
                }
                let position = m.position.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
                members.push(WecomMember { userid: m.userid, name: m.name, departments, position, leads });
            }
        }
    }
    Ok(members)
}

/// The tags named `wanted` that WeCom has, with whom they name.
async fn tags(client: &WecomClient, wanted: &[String]) -> Result<Vec<WecomTag>, FetchError> {
    let all: TagList = call(client, "tag/list", &[]).await?;
    let mut tags = Vec::new();
    for name in wanted {
        let Some(tag) = all.taglist.iter().find(|t| t.tagname.trim() == name) else { continue };
        let listed: TagMembers = call(client, "tag/get", &[("tagid", tag.tagid.to_string())]).await?;
        tags.push(WecomTag {
            name: name.clone(),
            userids: listed.userlist.into_iter().map(|u| u.userid).collect(),
            departments: listed.partylist,
        });
    }
    Ok(tags)
}

async fn call<T: DeserializeOwned>(
    client: &WecomClient,
    api: &'static str,
    query: &[(&str, String)],
) -> Result<T, FetchError> {
    let value = client.get(api, query).await.map_err(|error| FetchError { api, error })?;
    serde_json::from_value(value).map_err(|e| FetchError {
        api,
        error: ApiError::Permanent { code: 0, message: format!("unexpected answer: {e}") },
    })
}
