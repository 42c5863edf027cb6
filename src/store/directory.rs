//! Departments and people as stored, and applying a directory snapshot.

use crate::domain::directory::{self, Changes, PersonEntry, Snapshot, Stored};
use crate::domain::org::{DeptKind, Level};
use crate::store::Conn;
use crate::store::events::{self, NewEvent};
use crate::store::sql;
use std::collections::HashMap;
use tracing::instrument;

/// A person with their department, as the service sees them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Person {
    pub userid: String,
    pub name: String,
    pub department_id: i64,
    pub department: String,
    pub kind: DeptKind,
    pub level: Level,
    pub confirmer: bool,
    pub active: bool,
}
crate::direct_row!(Person { userid, name, department_id, department, kind, level, confirmer, active });

const SELECT_PERSON: &str = "SELECT p.userid, p.name, p.department_id, d.name AS department, d.kind, p.level,
        p.confirmer <> 0 AS confirmer, p.active <> 0 AS active
     FROM people p JOIN departments d ON d.id = p.department_id";

/// A person by userid, active or not.
#[instrument(level = "debug", skip(conn))]
pub async fn find(conn: &mut Conn, userid: &str) -> Result<Option<Person>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PERSON} WHERE p.userid = ?")))
        .bind(userid)
        .fetch_optional(conn)
        .await
}

/// Active people whose userid or name is `text` (names may be shared).
#[instrument(level = "debug", skip(conn))]
pub async fn find_by_name(conn: &mut Conn, text: &str) -> Result<Vec<Person>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_PERSON} WHERE p.active = 1 AND (p.userid = ? OR p.name = ?) ORDER BY p.userid"
    )))
    .bind(text)
    .bind(text)
    .fetch_all(conn)
    .await
}

/// Active confirmers of departments of `kind`.
#[instrument(level = "debug", skip(conn))]
pub async fn confirmers(conn: &mut Conn, kind: DeptKind) -> Result<Vec<Person>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_PERSON} WHERE p.active = 1 AND p.confirmer = 1 AND d.kind = ? ORDER BY p.userid"
    )))
    .bind(kind)
    .fetch_all(conn)
    .await
}

/// Every stored department's name, active or not.
pub async fn department_names(conn: &mut Conn) -> Result<HashMap<i64, String>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sql::query_as("SELECT id, name FROM departments").fetch_all(conn).await?;
    Ok(rows.into_iter().collect())
}

/// Makes the stored directory match `snapshot` in the caller's transaction: departments
/// upserted (absent ones deactivated), people added, moved, updated, deactivated or
/// reactivated, every change to a person in the event log.
#[instrument(level = "debug", skip_all, fields(actor))]
pub async fn apply(conn: &mut Conn, snapshot: &Snapshot, actor: &str, now_ms: i64) -> Result<Changes, sqlx::Error> {
    let snapshot = &with_console_settings(conn, snapshot).await?;
    let kinds = snapshot.effective_kinds();
    sql::query("UPDATE departments SET active = 0").execute(&mut *conn).await?;
    for d in &snapshot.departments {
        sql::query(
            "INSERT INTO departments (id, name, parent_id, kind, active) VALUES (?, ?, ?, ?, 1)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
             kind = excluded.kind, active = 1",
        )
        .bind(d.id)
        .bind(&d.name)
        .bind(d.parent)
        .bind(kinds.get(&d.id).copied().unwrap_or(DeptKind::Other))
        .execute(&mut *conn)
        .await?;
    }
    let stored = stored_people(conn).await?;
    let changes = directory::diff(&stored, snapshot);
    for p in changes.added.iter().chain(&changes.returned).chain(&changes.updated) {
        upsert(conn, p).await?;
    }
    for (p, _) in &changes.moved {
        upsert(conn, p).await?;
    }
    for userid in &changes.departed {
        sql::query("UPDATE people SET active = 0 WHERE userid = ?").bind(userid).execute(&mut *conn).await?;
        // Their console sessions end with them.
        crate::store::web::revoke_sessions_of(conn, userid, now_ms).await?;
    }
    log_changes(conn, &changes, actor, now_ms).await?;
    Ok(changes)
}

/// A person as stored, as the directory's diff compares them.
#[derive(sqlx::FromRow)]
struct StoredRow {
    userid: String,
    name: String,
    department_id: i64,
    level: Level,
    confirmer: bool,
    active: bool,
    employee_no: Option<String>,
}
crate::direct_row!(StoredRow { userid, name, department_id, level, confirmer, active, employee_no });

async fn stored_people(conn: &mut Conn) -> Result<Vec<Stored>, sqlx::Error> {
    let rows: Vec<StoredRow> = sql::query_as(
        "SELECT userid, name, department_id, level, confirmer <> 0 AS confirmer, active <> 0 AS active, employee_no
             FROM people",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Stored {
            entry: PersonEntry {
                userid: r.userid,
                name: r.name,
                department: r.department_id,
                level: r.level,
                confirmer: r.confirmer,
                employee_no: r.employee_no,
            },
            active: r.active,
        })
        .collect())
}

async fn upsert(conn: &mut Conn, p: &PersonEntry) -> Result<(), sqlx::Error> {
    sql::query(
        "INSERT INTO people (userid, name, department_id, level, confirmer, active, employee_no)
         VALUES (?, ?, ?, ?, ?, 1, ?)
         ON CONFLICT (userid) DO UPDATE SET name = excluded.name, department_id = excluded.department_id,
         level = excluded.level, confirmer = excluded.confirmer, active = 1, employee_no = excluded.employee_no",
    )
    .bind(&p.userid)
    .bind(&p.name)
    .bind(p.department)
    .bind(p.level)
    .bind(p.confirmer)
    .bind(&p.employee_no)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn log_changes(conn: &mut Conn, changes: &Changes, actor: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    let describe = |p: &PersonEntry| {
        let mut person = serde_json::json!({
            "name": p.name, "department": p.department, "level": p.level.as_str(), "confirmer": p.confirmer,
        });
        if let Some(no) = &p.employee_no {
            person["employee_no"] = serde_json::json!(no);
        }
        person.to_string()
    };
    let mut entries: Vec<(&str, String, Option<String>, Option<String>)> = Vec::new();
    entries.extend(changes.added.iter().map(|p| ("added", p.userid.clone(), None, Some(describe(p)))));
    entries.extend(changes.returned.iter().map(|p| ("returned", p.userid.clone(), None, Some(describe(p)))));
    entries.extend(changes.updated.iter().map(|p| ("updated", p.userid.clone(), None, Some(describe(p)))));
    entries.extend(
        changes.moved.iter().map(|(p, from)| ("moved", p.userid.clone(), Some(from.to_string()), Some(describe(p)))),
    );
    entries.extend(changes.departed.iter().map(|u| ("departed", u.clone(), None, None)));
    for (action, userid, old_value, new_value) in entries {
        let event = NewEvent { old_value, new_value, ..NewEvent::new(actor, "person", userid, action) };
        events::append(conn, now_ms, event).await?;
    }
    Ok(())
}

/// Everyone active, by department then name (the local simulator's sign-in page).
#[instrument(level = "debug", skip(conn))]
pub async fn active(conn: &mut Conn) -> Result<Vec<Person>, sqlx::Error> {
    sql::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PERSON} WHERE p.active = 1 ORDER BY d.id, p.userid")))
        .fetch_all(conn)
        .await
}

/// A level and confirmer flag an admin set on the console; `None`: as the directory says.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsoleSetting {
    pub userid: String,
    pub level: Option<Level>,
    pub confirmer: Option<bool>,
}
crate::direct_row!(ConsoleSetting { userid, level, confirmer });

/// Every console setting.
pub async fn console_settings(conn: &mut Conn) -> Result<Vec<ConsoleSetting>, sqlx::Error> {
    sql::query_as("SELECT userid, level, confirmer <> 0 AS confirmer FROM console_person_settings")
        .fetch_all(conn)
        .await
}

/// Sets (or, with both `None`, clears) a person's console setting, and applies it to
/// the stored person now.
pub async fn set_console_setting(
    conn: &mut Conn,
    setting: &ConsoleSetting,
    by: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if setting.level.is_none() && setting.confirmer.is_none() {
        sql::query("DELETE FROM console_person_settings WHERE userid = ?").bind(&setting.userid).execute(conn).await?;
        return Ok(());
    }
    sql::query(
        "INSERT INTO console_person_settings (userid, level, confirmer, set_by, set_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (userid) DO UPDATE SET level = excluded.level, confirmer = excluded.confirmer,
         set_by = excluded.set_by, set_at = excluded.set_at",
    )
    .bind(&setting.userid)
    .bind(setting.level)
    .bind(setting.confirmer)
    .bind(by)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    sql::query("UPDATE people SET level = COALESCE(?, level), confirmer = COALESCE(?, confirmer) WHERE userid = ?")
        .bind(setting.level)
        .bind(setting.confirmer)
        .bind(&setting.userid)
        .execute(conn)
        .await?;
    Ok(())
}

/// `snapshot` with the console's settings in place of what its source says.
async fn with_console_settings(conn: &mut Conn, snapshot: &Snapshot) -> Result<Snapshot, sqlx::Error> {
    let settings = console_settings(conn).await?;
    let mut snapshot = snapshot.clone();
    for s in settings {
        if let Some(p) = snapshot.people.iter_mut().find(|p| p.userid == s.userid) {
            p.level = s.level.unwrap_or(p.level);
            p.confirmer = s.confirmer.unwrap_or(p.confirmer);
        }
    }
    Ok(snapshot)
}
