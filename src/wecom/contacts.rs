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
//!
//! Any failure ends the read: a partial directory would make people look departed.

use crate::domain::contacts::{Contacts, WecomDept, WecomMember};
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
}

/// Everything the app can see: departments (named), then each department's members.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn fetch(client: &WecomClient) -> Result<Contacts, FetchError> {
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
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    for dept in &departments {
        let listed: Members = call(client, "user/simplelist", &[("department_id", dept.id.to_string())]).await?;
        for m in listed.userlist.into_iter().filter(|m| !m.userid.is_empty()) {
            if seen.insert(m.userid.clone()) {
                // WeCom lists the member under this department; make sure it counts.
                let mut departments = m.department;
                if !departments.contains(&dept.id) {
                    departments.push(dept.id);
                }
                members.push(WecomMember { userid: m.userid, name: m.name, departments });
            }
        }
    }
    Ok(Contacts { departments, members })
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
