//! The directory synced from WeCom's contact API (a wiremock stand-in): the department
//! tree with kinds from overrides, exactly the changes of a later sync, departed people
//! refused but still counted, API errors that change nothing and name the fix, the
//! `sync-directory` command as operators run it, and request ids in JSON logs.

use crate::config::{VALID, check};
use crate::helpers::{TestApp, mount_defaults};
use crate::local_mode::BIN;
use crate::shutdown::{Service, WAIT, text_request};
use chrono::Days;
use leadboard::jobs::directory::sync;
use leadboard::jobs::{Job, run_once};
use leadboard::store::sql;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Kinds, levels and confirmers WeCom does not know; the rest comes from WeCom.
const WECOM_DIRECTORY: &str = r#"
[directory]
source = "wecom"
default_level = "staff"
[[directory.department_overrides]]
id = 2
kind = "cs"
[[directory.department_overrides]]
id = 3
kind = "tr"
[[directory.user_overrides]]
userid = "cs_lead"
level = "manager"
confirmer = true
[[directory.user_overrides]]
userid = "cs_lead2"
level = "supervisor"
confirmer = true
[[directory.user_overrides]]
userid = "tr_lead"
level = "director"
confirmer = true
[[directory.user_overrides]]
userid = "wanggm"
level = "gm"
[[directory.user_overrides]]
userid = "zhengqiang"
level = "supervisor"
employee_no = " TR0031 "

[roles]
admins = ["lina"]
audit_group = ["wanggm"]
"#;

/// The company as WeCom's contact API shows it.
#[derive(Clone)]
struct Org {
    /// (id, parent id, name); the root's parent is 0.
    departments: Vec<(i64, i64, &'static str)>,
    /// (userid, name, departments in WeCom's order)
    members: Vec<(&'static str, &'static str, Vec<i64>)>,
    /// (userid, 职务), as `user/list` shows them.
    positions: Vec<(&'static str, &'static str)>,
    /// (userid, a department they lead).
    leaders: Vec<(&'static str, i64)>,
    /// (tag id, name, people, departments), as `tag/list` and `tag/get` show them.
    tags: Vec<(i64, &'static str, Vec<&'static str>, Vec<i64>)>,
}

impl Org {
    fn company() -> Org {
        Org {
            departments: vec![
                (1, 0, "集团"),
                (2, 1, "客户成功事业部"),
                (21, 2, "客户成功一组"),
                (22, 2, "客户成功二组"),
                (3, 1, "招商引才事业部"),
                (31, 3, "招商一组"),
                (4, 1, "行政部"),
            ],
            members: vec![
                ("wanggm", "王总", vec![1]),
                ("cs_lead", "陈经理", vec![2]),
                ("cs_lead2", "刘主管", vec![2]),
                ("zhangwei", "张伟", vec![21]),
                ("sunli", "孙丽", vec![22]),
                ("tr_lead", "吴总监", vec![3]),
                ("zhengqiang", "郑强", vec![31]),
                ("lina", "李娜", vec![4]),
                // In two departments: the first WeCom lists is the main one.
                ("duoduo", "多多", vec![22, 4]),
            ],
            positions: Vec::new(),
            leaders: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// The company with positions, department leaders and tags filled in WeCom.
    fn with_details() -> Org {
        Org {
            positions: vec![("cs_lead", "经理"), ("cs_lead2", "主管"), ("tr_lead", "总监"), ("zhengqiang", " 主管 ")],
            leaders: vec![("cs_lead", 2), ("cs_lead2", 2), ("tr_lead", 3), ("zhengqiang", 31), ("duoduo", 4)],
            tags: vec![
                (1, "高管", vec!["wanggm"], vec![]),
                (2, "行政", vec![], vec![4]),
                (3, "无关", vec!["sunli"], vec![]),
            ],
            ..Org::company()
        }
    }

    fn with(mut self, userid: &'static str, name: &'static str, departments: &[i64]) -> Org {
        self.members.push((userid, name, departments.to_vec()));
        self
    }

    fn without(mut self, userid: &str) -> Org {
        self.members.retain(|m| m.0 != userid);
        self
    }

    fn moving(mut self, userid: &str, departments: &[i64]) -> Org {
        self.members.iter_mut().filter(|m| m.0 == userid).for_each(|m| m.2 = departments.to_vec());
        self
    }

    /// Makes the mock API answer with this organisation (and nothing else it answered before).
    async fn publish(&self, mock: &MockServer) {
        self.publish_slowly(mock, Duration::ZERO).await;
    }

    /// [`Org::publish`], with the department tree answered only after `delay`: a sync
    /// of it takes that long.
    async fn publish_slowly(&self, mock: &MockServer, delay: Duration) {
        mock.reset().await;
        mount_defaults(mock).await;
        let simple: Vec<Value> =
            self.departments.iter().map(|(id, parent, _)| json!({"id": id, "parentid": parent, "order": 1})).collect();
        Mock::given(method("GET"))
            .and(path("/cgi-bin/department/simplelist"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"errcode": 0, "errmsg": "ok", "department_id": simple}))
                    .set_delay(delay),
            )
            .mount(mock)
            .await;
        let named: Vec<Value> = self
            .departments
            .iter()
            .map(|(id, parent, name)| json!({"id": id, "name": name, "parentid": parent, "order": 1}))
            .collect();
        answer(mock, "department/list", json!({"errcode": 0, "errmsg": "ok", "department": named})).await;
        self.publish_details(mock).await;
        let members = self.members.clone();
        Mock::given(method("GET"))
            .and(path("/cgi-bin/user/simplelist"))
            .respond_with(move |request: &Request| {
                let dept = department_id(request).unwrap_or_default();
                let users: Vec<Value> = members
                    .iter()
                    .filter(|m| m.2.contains(&dept))
                    .map(|(userid, name, depts)| json!({"userid": userid, "name": name, "department": depts}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"errcode": 0, "errmsg": "ok", "userlist": users}))
            })
            .mount(mock)
            .await;
    }
}

impl Org {
    /// `user/list` (members with 职务 and `is_leader_in_dept`), `tag/list` and `tag/get`.
    async fn publish_details(&self, mock: &MockServer) {
        let org = self.clone();
        Mock::given(method("GET"))
            .and(path("/cgi-bin/user/list"))
            .respond_with(move |request: &Request| {
                let dept = department_id(request).unwrap_or_default();
                let users: Vec<Value> = org
                    .members
                    .iter()
                    .filter(|m| m.2.contains(&dept))
                    .map(|(userid, name, depts)| {
                        let position = org.positions.iter().find(|p| p.0 == *userid).map_or("", |p| p.1);
                        let leads: Vec<i64> =
                            depts.iter().map(|d| i64::from(org.leaders.contains(&(*userid, *d)))).collect();
                        json!({"userid": userid, "name": name, "department": depts, "position": position,
                               "is_leader_in_dept": leads, "status": 1})
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"errcode": 0, "errmsg": "ok", "userlist": users}))
            })
            .mount(mock)
            .await;
        let list: Vec<Value> = self.tags.iter().map(|(id, name, _, _)| json!({"tagid": id, "tagname": name})).collect();
        answer(mock, "tag/list", json!({"errcode": 0, "errmsg": "ok", "taglist": list})).await;
        for (id, name, users, parties) in &self.tags {
            let users: Vec<Value> = users.iter().map(|u| json!({"userid": u, "name": u})).collect();
            Mock::given(method("GET"))
                .and(path("/cgi-bin/tag/get"))
                .and(query_param("tagid", id.to_string()))
                .respond_with(ResponseTemplate::new(200).set_body_json(
                    json!({"errcode": 0, "errmsg": "ok", "tagname": name, "userlist": users, "partylist": parties}),
                ))
                .mount(mock)
                .await;
        }
    }
}

async fn answer(mock: &MockServer, api: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(format!("/cgi-bin/{api}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(mock)
        .await;
}

/// WeCom refuses `api` (for one department of user/simplelist, when given) with `code`.
async fn refuse(mock: &MockServer, api: &str, department: Option<i64>, code: i64, errmsg: &str) {
    let mut refusal = Mock::given(method("GET")).and(path(format!("/cgi-bin/{api}")));
    if let Some(dept) = department {
        refusal = refusal.and(query_param("department_id", dept.to_string()));
    }
    refusal
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errcode": code, "errmsg": errmsg})))
        .with_priority(1)
        .mount(mock)
        .await;
}

fn department_id(request: &Request) -> Option<i64> {
    request.url.query_pairs().find(|(k, _)| k == "department_id").and_then(|(_, v)| v.parse().ok())
}

/// The WeCom-sourced configuration, with a contest whose teams are whole departments.
fn wecom_config() -> String {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    format!(
        r#"{WECOM_DIRECTORY}
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
[[contests.teams]]
name = "客户成功队"
department = 2
[[contests.teams]]
name = "招商队"
department = 3
"#,
        start = today.checked_sub_days(Days::new(10)).unwrap(),
        end = today.checked_add_days(Days::new(10)).unwrap(),
    )
}

/// A service whose directory comes from WeCom, synced once from `Org::company()`.
async fn synced_app() -> TestApp {
    let app = TestApp::builder().config(&wecom_config()).spawn().await;
    Org::company().publish(&app.mock).await;
    run_once(&app.state, Job::DirectorySync).await.expect("first sync");
    app
}

async fn say(app: &TestApp, from: &str, text: &str) -> String {
    app.say(from, text).await.expect("a passive reply")
}

async fn rows<T: sql::Row + 'static>(app: &TestApp, sql: &'static str) -> Vec<T> {
    sql::query_as(sql).fetch_all(app.state.db.reader()).await.unwrap()
}

/// (userid, department, level, confirmer, active) of everyone stored.
async fn people(app: &TestApp) -> Vec<(String, i64, String, bool, bool)> {
    rows(app, "SELECT userid, department_id, level, confirmer <> 0, active <> 0 FROM people ORDER BY userid").await
}

/// (actor, userid, action, old value) of directory events after event `after`.
async fn person_events(app: &TestApp, after: i64) -> Vec<(String, String, String, Option<String>)> {
    sql::query_as(
        "SELECT actor, entity_id, action, old_value FROM events WHERE entity = 'person' AND id > ? ORDER BY id",
    )
    .bind(after)
    .fetch_all(app.state.db.reader())
    .await
    .unwrap()
}

async fn last_event(app: &TestApp) -> i64 {
    app.count("SELECT COALESCE(MAX(id), 0) FROM events").await
}

async fn team_members(app: &TestApp, team: &str) -> Vec<String> {
    sql::query_scalar("SELECT userid FROM contest_members WHERE contest_id = 'client-pk' AND team = ? ORDER BY userid")
        .bind(team)
        .fetch_all(app.state.db.reader())
        .await
        .unwrap()
}

/// The departments each user/simplelist call asked for, sorted.
async fn member_lists_asked(mock: &MockServer) -> Vec<i64> {
    let requests = mock.received_requests().await.unwrap_or_default();
    let mut asked: Vec<i64> =
        requests.iter().filter(|r| r.url.path() == "/cgi-bin/user/simplelist").filter_map(department_id).collect();
    asked.sort_unstable();
    asked
}

#[tokio::test]
async fn a_department_tree_is_synced_with_kinds_inherited_from_overrides() {
    let app = TestApp::builder().config(&wecom_config()).spawn().await;
    Org::company().publish(&app.mock).await;

    let summary = run_once(&app.state, Job::DirectorySync).await.unwrap();

    assert_eq!(summary, "已从企业微信同步：新增 9 人");
    let departments: Vec<(i64, String, String)> =
        rows(&app, "SELECT id, name, kind FROM departments ORDER BY id").await;
    let expected = [
        (1, "集团", "other"),
        (2, "客户成功事业部", "cs"),
        (3, "招商引才事业部", "tr"),
        (4, "行政部", "other"),
        (21, "客户成功一组", "cs"),
        (22, "客户成功二组", "cs"),
        (31, "招商一组", "tr"),
    ];
    assert_eq!(departments, expected.map(|(id, name, kind)| (id, name.to_owned(), kind.to_owned())));
    let person =
        |userid: &str, dept, level: &str, confirmer| (userid.to_owned(), dept, level.to_owned(), confirmer, true);
    assert_eq!(
        people(&app).await,
        [
            person("cs_lead", 2, "manager", true),
            person("cs_lead2", 2, "supervisor", true),
            person("duoduo", 22, "staff", false),
            person("lina", 4, "staff", false),
            person("sunli", 22, "staff", false),
            person("tr_lead", 3, "director", true),
            person("wanggm", 1, "gm", false),
            person("zhangwei", 21, "staff", false),
            person("zhengqiang", 31, "supervisor", false),
        ]
    );
    let numbers: Vec<(String, String)> =
        rows(&app, "SELECT userid, employee_no FROM people WHERE employee_no IS NOT NULL").await;
    assert_eq!(numbers, [("zhengqiang".to_owned(), "TR0031".to_owned())], "工号 from the overrides");
    assert_eq!(member_lists_asked(&app.mock).await, [1, 2, 3, 4, 21, 22, 31], "every department asked once");
    assert_eq!(team_members(&app, "客户成功队").await, ["cs_lead", "cs_lead2", "duoduo", "sunli", "zhangwei"]);

    // The synced directory is the one commands use: a CS report goes to CS's confirmers.
    assert!(say(&app, "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王经理").await.contains("已登记"));
    assert_eq!(app.cards_to("cs_lead").await.len(), 1);
    assert!(app.cards_to("tr_lead").await.is_empty());
}

#[tokio::test]
async fn the_first_start_syncs_the_directory_without_being_asked() {
    let configured = TestApp::builder().config(&wecom_config()).scheduler("").configure().await;
    Org::company().publish(&configured.mock).await;
    let app = configured.spawn().await;
    crate::helpers::eventually("the first sync", || async { app.count("SELECT COUNT(*) FROM people").await == 9 })
        .await;
    assert!(say(&app, "zhangwei", "我的").await.contains("已计入：0 分"));
}

#[tokio::test]
async fn a_failed_scheduled_sync_is_not_counted_as_done_and_runs_again_at_the_next_start() {
    let configured = TestApp::builder().config(&wecom_config()).scheduler("").configure().await;
    refuse(&configured.mock, "department/simplelist", None, 60020, "not allow to access from your ip").await;
    let app = configured.spawn().await;
    crate::helpers::eventually("the failed first sync", || async {
        app.count("SELECT COUNT(*) FROM jobs WHERE name = 'directory_sync' AND last_outcome LIKE '失败%'").await == 1
    })
    .await;
    let done = app.count("SELECT COUNT(*) FROM jobs WHERE name = 'directory_sync' AND last_fire_at IS NOT NULL").await;
    assert_eq!(done, 0, "a failed run is not recorded as the fire time done");
    let stopped = app.stop().await;

    Org::company().publish(&stopped.mock).await;
    let app = TestApp::builder().restart_of(stopped).config(&wecom_config()).scheduler("").spawn().await;
    crate::helpers::eventually("the sync at the next start", || async {
        app.count("SELECT COUNT(*) FROM people").await == 9
    })
    .await;
}

#[tokio::test]
async fn a_second_sync_applies_exactly_who_moved_joined_and_departed() {
    let app = synced_app().await;
    let before = last_event(&app).await;
    Org::company().moving("sunli", &[31]).with("xinren", "辛仁", &[21]).without("zhengqiang").publish(&app.mock).await;

    let report = sync(&app.state).await.unwrap();

    assert_eq!(report.summary(), "已从企业微信同步：新增 1 人、调动 1 人、离开 1 人");
    assert_eq!(
        report.lines,
        [
            "新增：辛仁（xinren） · 客户成功一组 · 员工",
            "调动：孙丽（sunli） · 客户成功二组 → 招商一组",
            "离开：郑强（zhengqiang），已停用，已有业绩保留",
        ]
    );
    let event = |userid: &str, action: &str, old: Option<&str>| {
        ("wecom".to_owned(), userid.to_owned(), action.to_owned(), old.map(str::to_owned))
    };
    assert_eq!(
        person_events(&app, before).await,
        [event("xinren", "added", None), event("sunli", "moved", Some("22")), event("zhengqiang", "departed", None)]
    );
    let stored = people(&app).await;
    assert!(stored.contains(&("sunli".into(), 31, "staff".into(), false, true)));
    assert!(stored.contains(&("zhengqiang".into(), 31, "supervisor".into(), false, false)), "deactivated, not deleted");
    assert_eq!(report.unmatched.userids, ["zhengqiang"], "an override for someone WeCom no longer lists");
    assert!(team_members(&app, "客户成功队").await.contains(&"xinren".to_owned()), "department teams take in joiners");

    // Nothing changed since: nothing is logged.
    let before = last_event(&app).await;
    assert_eq!(sync(&app.state).await.unwrap().summary(), "已从企业微信同步：没有变化");
    assert!(person_events(&app, before).await.is_empty());
}

#[tokio::test]
async fn a_departed_person_can_no_longer_report_or_confirm_but_their_confirmed_record_still_counts() {
    let app = synced_app().await;
    say(&app, "zhangwei", "C类 公司=云帆科技 联系人=王").await;
    say(&app, "cs_lead", "确认 #1").await;
    say(&app, "sunli", "C类 公司=星河科技 联系人=李").await;
    say(&app, "cs_lead", "确认 #2").await;
    say(&app, "zhangwei", "C类 公司=海川科技 联系人=赵").await;
    let card = app.cards_to("cs_lead2").await.pop().expect("a card for #3");
    let sunli_before = say(&app, "sunli", "我的").await;

    Org::company().without("zhangwei").without("cs_lead2").publish(&app.mock).await;
    sync(&app.state).await.unwrap();

    assert!(say(&app, "zhangwei", "C类 公司=新客户 联系人=钱").await.contains("已停用"));
    assert!(say(&app, "cs_lead2", "确认 #3").await.contains("已停用"));
    app.press("cs_lead2", &card, "确认").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM records").await, 3, "no report was taken");
    let states: Vec<(i64, String)> = rows(&app, "SELECT id, state FROM records ORDER BY id").await;
    assert_eq!(states[2], (3, "reported".to_owned()), "a departed confirmer decides nothing");

    assert_eq!(states[0], (1, "confirmed".to_owned()));
    let standings = say(&app, "lina", "排行").await;
    assert!(standings.contains("客户成功队 2 分") && standings.contains("张伟1"), "{standings}");
    assert_eq!(say(&app, "sunli", "我的").await, sunli_before);
}

#[tokio::test]
async fn each_api_error_leaves_the_previous_directory_and_names_the_fix() {
    let app = synced_app().await;
    let directory = people(&app).await;
    let cases = [
        (
            "department/simplelist",
            None,
            60020,
            "not allow to access from your ip, hint: [1700000000], from ip: 203.0.113.7",
            ["企业可信IP", "203.0.113.7"],
        ),
        ("department/list", None, 48002, "api forbidden", ["48002 接口无权限", "wecom.secret"]),
        (
            "user/simplelist",
            Some(31),
            60011,
            "no privilege to access/modify contact/party/agent",
            ["60011", "可见范围"],
        ),
    ];
    for (api, department, code, errmsg, fixes) in cases {
        Org::company().with("xinren", "辛仁", &[21]).without("zhengqiang").publish(&app.mock).await;
        refuse(&app.mock, api, department, code, errmsg).await;
        let before = last_event(&app).await;

        let error = run_once(&app.state, Job::DirectorySync).await.unwrap_err().to_string();

        assert!(error.contains("未做任何更改"), "{error}");
        for fix in fixes {
            assert!(error.contains(fix), "{code}: no “{fix}” in {error}");
        }
        assert_eq!(people(&app).await, directory, "{code} changed the directory");
        assert_eq!(last_event(&app).await, before, "{code} logged a change");
        let outcome: Vec<(String,)> = rows(&app, "SELECT last_outcome FROM jobs WHERE name = 'directory_sync'").await;
        assert!(outcome[0].0.starts_with("失败：") && outcome[0].0.contains(fixes[0]), "{:?}", outcome);
    }
}

#[tokio::test]
async fn an_empty_member_list_is_refused_instead_of_deactivating_everyone() {
    let app = synced_app().await;
    let directory = people(&app).await;
    Org { members: vec![], ..Org::company() }.publish(&app.mock).await;

    let error = run_once(&app.state, Job::DirectorySync).await.unwrap_err().to_string();

    assert!(error.contains("没有任何成员") && error.contains("可见范围"), "{error}");
    assert_eq!(people(&app).await, directory);
}

/// `leadboard sync-directory --config FILE`: (success, stdout, stderr).
async fn sync_directory(config: &Path) -> (bool, String, String) {
    sync_directory_with(config, &[]).await
}

/// `leadboard sync-directory --config FILE ARGS…`: (success, stdout, stderr).
async fn sync_directory_with(config: &Path, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(BIN)
        .args(["sync-directory", "--config"])
        .arg(config)
        .args(args)
        .env_remove("LEADBOARD_CONFIG")
        .output()
        .await
        .expect("leadboard runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn sync_directory_prints_what_changed_while_the_service_runs() {
    let app = TestApp::builder().config(&wecom_config()).spawn().await;
    Org::company().publish(&app.mock).await;
    let (ok, out, err) = sync_directory(&app.config_path).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("已从企业微信同步：新增 9 人。共 7 个部门、9 人。"), "{out}");
    assert!(out.contains("新增：多多（duoduo） · 客户成功二组 · 员工"), "{out}");
    assert!(out.contains("新增：陈经理（cs_lead） · 客户成功事业部 · 经理 · 确认人"), "{out}");

    Org::company().moving("sunli", &[31]).with("xinren", "辛仁", &[21]).without("zhengqiang").publish(&app.mock).await;
    let (ok, out, err) = sync_directory(&app.config_path).await;
    assert!(ok, "{err}");
    let expected = "已从企业微信同步：新增 1 人、调动 1 人、离开 1 人。共 7 个部门、9 人。\n\
                    新增：辛仁（xinren） · 客户成功一组 · 员工\n\
                    调动：孙丽（sunli） · 客户成功二组 → 招商一组\n\
                    离开：郑强（zhengqiang），已停用，已有业绩保留\n\
                    注意：以下覆盖项在企业微信中没有找到，未生效：zhengqiang（检查拼写，或是否在应用的可见范围内）\n";
    assert_eq!(out, expected);
    // The running service sees the change at once: the new person is answered.
    assert!(say(&app, "xinren", "我的").await.contains("辛仁"));

    refuse(&app.mock, "department/simplelist", None, 60020, "not allow to access from your ip").await;
    let (ok, out, err) = sync_directory(&app.config_path).await;
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("错误：通讯录同步失败，未做任何更改") && err.contains("企业可信IP"), "{err}");
}

/// The moved, joined and departed people of `Org::company()` changed, as a report names them.
const CHANGED: [&str; 3] = [
    "新增：辛仁（xinren） · 客户成功一组 · 员工",
    "调动：孙丽（sunli） · 客户成功二组 → 招商一组",
    "离开：郑强（zhengqiang），已停用，已有业绩保留",
];

fn changed_company() -> Org {
    Org::company().moving("sunli", &[31]).with("xinren", "辛仁", &[21]).without("zhengqiang")
}

#[tokio::test]
async fn sync_directory_before_and_after_the_first_serve_both_succeed_and_the_second_names_the_changes() {
    let configured = TestApp::builder().config(&wecom_config()).scheduler("").configure().await;
    Org::company().publish(&configured.mock).await;
    let (ok, out, err) = sync_directory(&configured.config_path).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("已从企业微信同步：新增 9 人。"), "{out}");

    // WeCom now answers slowly: a sync at the service's first start would still be
    // running when the command comes, and would have taken the changes before it.
    changed_company().publish_slowly(&configured.mock, Duration::from_millis(800)).await;
    let mut service = Service::start(&configured, &[]).await;
    let (ok, out, err) = sync_directory(&configured.config_path).await;

    assert!(ok, "{err}");
    assert!(!err.contains("等待"), "the first start synced again: {err}");
    assert!(out.starts_with("已从企业微信同步：新增 1 人、调动 1 人、离开 1 人。"), "{out}");
    for line in CHANGED {
        assert!(out.contains(line), "no “{line}” in {out}");
    }
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());
}

/// Polls the database until the directory sync's lease is held.
async fn until_a_sync_runs(database: &Path) {
    let mut conn = crate::binary::read_only(database).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let running: i64 =
            sql::query_scalar("SELECT COUNT(*) FROM jobs WHERE name = 'directory_sync' AND running_since IS NOT NULL")
                .fetch_one(&mut conn)
                .await
                .unwrap_or(0);
        if running == 1 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: the service's first sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sync_directory_waits_for_a_running_sync_within_its_bound_and_then_runs_its_own() {
    let configured = TestApp::builder().config(&wecom_config()).scheduler("").configure().await;
    Org::company().publish_slowly(&configured.mock, Duration::from_millis(1500)).await;
    // Never synced: the first start syncs now (slowly).
    let mut service = Service::start(&configured, &[]).await;
    until_a_sync_runs(&configured.database).await;

    let (ok, out, err) = sync_directory_with(&configured.config_path, &["--wait", "0"]).await;
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("服务的定时任务正在同步通讯录，等待 0 秒后仍未完成，未同步"), "{err}");

    let (ok, out, err) = sync_directory(&configured.config_path).await;
    assert!(ok, "{err}");
    assert!(err.contains("服务的定时任务正在同步通讯录，等待其完成后再同步（最多等待 600 秒）"), "{err}");
    assert!(err.contains("之前的同步已完成，已重新同步"), "{err}");
    assert!(out.starts_with("已从企业微信同步：没有变化。共 7 个部门、9 人。"), "{out}");
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());
}

#[tokio::test]
async fn sync_directory_with_a_static_directory_applies_the_configuration_and_says_so() {
    let app = TestApp::spawn().await;
    let (ok, out, err) = sync_directory(&app.config_path).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("通讯录来自配置文件，已按配置应用：没有变化（directory.source = \"static\""), "{out}");
    assert!(app.mock.received_requests().await.unwrap_or_default().is_empty(), "WeCom was not asked");
}

/// Levels from WeCom positions and tags, department leaders as confirmers, and one
/// override where WeCom's leader is not to confirm.
const RULED_DIRECTORY: &str = r#"
[directory]
source = "wecom"
default_level = "staff"
leaders_confirm = true
[[directory.department_overrides]]
id = 2
kind = "cs"
[[directory.department_overrides]]
id = 3
kind = "tr"
[[directory.level_rules]]
tag = "高管"
level = "gm"
[[directory.level_rules]]
position = "经理"
level = "manager"
[[directory.level_rules]]
position = "总监"
level = "director"
[[directory.level_rules]]
position = "主管"
level = "supervisor"
[[directory.level_rules]]
tag = "行政"
level = "supervisor"
[[directory.level_rules]]
position = "副总裁"
level = "vp"
[[directory.level_rules]]
tag = "董事会"
level = "gm"
[[directory.user_overrides]]
userid = "cs_lead2"
confirmer = false

[roles]
admins = ["lina"]
audit_group = ["wanggm"]
"#;

/// The departments each `api` call asked for, sorted.
async fn asked(mock: &MockServer, api: &str) -> Vec<i64> {
    let requests = mock.received_requests().await.unwrap_or_default();
    let wanted = format!("/cgi-bin/{api}");
    let mut asked: Vec<i64> = requests.iter().filter(|r| r.url.path() == wanted).filter_map(department_id).collect();
    asked.sort_unstable();
    asked
}

#[tokio::test]
async fn levels_come_from_wecom_positions_and_tags_and_department_leaders_confirm() {
    let app = TestApp::builder().config(RULED_DIRECTORY).spawn().await;
    Org::with_details().publish(&app.mock).await;

    let report = sync(&app.state).await.unwrap();

    let person =
        |userid: &str, dept, level: &str, confirmer| (userid.to_owned(), dept, level.to_owned(), confirmer, true);
    assert_eq!(
        people(&app).await,
        [
            person("cs_lead", 2, "manager", true),
            person("cs_lead2", 2, "supervisor", false),
            // Leads 4, but their main department is 22; in 4, which is tagged 行政.
            person("duoduo", 22, "supervisor", false),
            person("lina", 4, "supervisor", false),
            person("sunli", 22, "staff", false),
            person("tr_lead", 3, "director", true),
            person("wanggm", 1, "gm", false),
            person("zhangwei", 21, "staff", false),
            person("zhengqiang", 31, "supervisor", true),
        ]
    );
    assert_eq!(asked(&app.mock, "user/list").await, [1, 2, 3, 4, 21, 22, 31], "details read for every department");
    assert!(asked(&app.mock, "user/simplelist").await.is_empty());
    let text = report.render();
    assert!(text.contains("新增：陈经理（cs_lead） · 客户成功事业部 · 经理 · 确认人"), "{text}");
    assert!(text.contains("未生效：标签“董事会”"), "{text}");
    assert!(text.contains("以下级别规则没有匹配任何人：职务“副总裁”"), "{text}");

    // The leader confirms; the one whose override says no does not.
    assert!(say(&app, "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王经理").await.contains("已登记"));
    assert_eq!(app.cards_to("cs_lead").await.len(), 1);
    assert!(app.cards_to("cs_lead2").await.is_empty());
}

#[tokio::test]
async fn a_reloaded_level_rule_is_synced_at_once() {
    let app = TestApp::builder().config(RULED_DIRECTORY).spawn().await;
    Org::with_details().publish(&app.mock).await;
    sync(&app.state).await.unwrap();
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    let changed = text.replace("position = \"经理\"\nlevel = \"manager\"", "position = \"经理\"\nlevel = \"director\"");
    assert_ne!(changed, text);
    std::fs::write(&app.config_path, changed).unwrap();

    let done = app.reloader.reload().await.expect("reloaded").render();

    assert!(done.contains("directory.level_rules：已更改"), "{done}");
    assert!(done.contains("通讯录设置已更改，已从企业微信同步：更新 1 人"), "{done}");
    assert!(people(&app).await.contains(&("cs_lead".into(), 2, "director".into(), true, true)));
}

#[test]
fn level_rules_and_leaders_are_checked() {
    let wecom = VALID.split("[[directory.").next().unwrap();
    let (ok, text) = check(&format!("{wecom}{RULED_DIRECTORY}"), &[]);
    assert!(ok, "{text}");

    let toml = format!(
        "{wecom}[directory]\nsource = \"wecom\"\n\
         [[directory.level_rules]]\nposition = \"经理\"\ntag = \"经理\"\nlevel = \"manager\"\n\
         [[directory.level_rules]]\nposition = \" \"\nlevel = \"manager\"\n\
         [[directory.level_rules]]\ntag = \"高管\"\nlevel = \"gm\"\n\
         [[directory.level_rules]]\ntag = \"高管\"\nlevel = \"vp\"\n\
         [[directory.level_rules]]\nposition = \"经理\"\nlevel = \"老板\"\n"
    );
    let (ok, text) = check(&toml, &[]);
    assert!(!ok);
    for expected in [
        "directory.level_rules 第 1 条：position 与 tag 只能写一个",
        "directory.level_rules 第 2 条：需要非空的 position",
        "directory.level_rules 第 4 条：标签“高管”重复",
        "level_rules",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }

    let static_with_rules = format!("{VALID}[directory]\nleaders_confirm = true\n");
    let (ok, text) = check(&static_with_rules, &[]);
    assert!(!ok && text.contains("directory.leaders_confirm 只用于 source = \"wecom\""), "{text}");
}

#[test]
fn check_config_wants_overrides_instead_of_a_static_list_with_the_wecom_source() {
    let wecom = VALID.split("[[directory.").next().unwrap();
    let (ok, text) = check(&format!("{wecom}{WECOM_DIRECTORY}"), &[]);
    assert!(ok, "admins and auditors are not checked against a list: {text}");

    let toml = format!(
        "{wecom}[directory]\nsource = \"wecom\"\n\
         [[directory.departments]]\nid = 1\nname = \"集团\"\n\
         [[directory.department_overrides]]\nid = 0\nkind = \"cs\"\n\
         [[directory.user_overrides]]\nuserid = \"张 伟\"\n"
    );
    let (ok, text) = check(&toml, &[]);
    assert!(!ok);
    for expected in ["directory.departments 与 directory.users", "部门 id 0 无效", "“张 伟” 不是有效的企业微信 userid"]
    {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }

    let overrides_with_a_static_list = format!("{VALID}[[directory.user_overrides]]\nuserid = \"lisi\"\n");
    let (ok, text) = check(&overrides_with_a_static_list, &[]);
    assert!(!ok && text.contains("只用于 source = \"wecom\""), "{text}");
}

/// The request ids of the spans a JSON log line was emitted in.
fn request_ids(line: &Value) -> Vec<String> {
    let spans = line["spans"].as_array().cloned().unwrap_or_default();
    spans.iter().filter_map(|s| s["request_id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn json_log_lines_of_a_callback_carry_the_request_id_of_its_response() {
    let config = TestApp::builder().configure().await;
    let mut service = Service::start(&config, &[]).await;
    let http = reqwest::Client::new();
    let post = |query: String, body: String| {
        let call = http.post(format!("http://{}/wecom/callback?{query}", service.addr)).body(body);
        async move {
            let response = call.send().await.expect("answered");
            response.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    let stranger = text_request(&config.peer(), "stranger", "我的");
    let stranger_id = post(stranger.query, stranger.body).await;
    let forged = text_request(&config.peer(), "zhangwei", "我的");
    let forged_id = post(forged.query.replacen("msg_signature=", "msg_signature=0", 1), forged.body).await;
    assert_ne!(stranger_id, forged_id);

    let refused = service.log("message from a userid not in the directory refused").await;
    assert_eq!(request_ids(&refused), std::slice::from_ref(&stranger_id));
    assert_eq!(refused["span"]["request_id"], stranger_id, "the current span is the request's");
    let forged_line = service.log("callback refused").await;
    assert_eq!(request_ids(&forged_line), [forged_id]);
    for line in service.lines().iter().filter(|l| l["target"].as_str().is_some_and(handles_callbacks)) {
        assert_eq!(request_ids(line).len(), 1, "a callback's line without its request id: {line}");
    }
    service.terminate().await;
    assert!(service.exit(WAIT).await.success());
}

/// Modules whose lines are logged while a callback is handled.
fn handles_callbacks(target: &str) -> bool {
    ["leadboard::http", "leadboard::bot", "leadboard::commands"].iter().any(|m| target.starts_with(m))
}

#[test]
fn the_example_configurations_wecom_directory_is_valid() {
    let example = include_str!("../../deploy/leadboard.example.toml");
    let block: String = example
        .lines()
        .skip_while(|l| *l != "# [directory]")
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# ").or_else(|| l.strip_prefix('#')))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(block.contains("source = \"wecom\""), "{block}");
    let (start, end) = (example.find("\n[directory]\n").unwrap() + 1, example.find("\n[roles]\n").unwrap() + 1);
    let toml = format!("{}{block}{}", &example[..start], &example[end..]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["secret", "token"] {
        std::fs::write(dir.path().join(name), "Tok3n").unwrap();
    }
    std::fs::write(dir.path().join("encoding_aes_key"), "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C").unwrap();
    let (ok, text) = check(&toml.replace("/etc/leadboard/", &format!("{}/", dir.path().display())), &[]);
    assert!(ok, "{text}\n{toml}");
}
