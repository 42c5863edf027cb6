//! SQL statements per callback, counted from the statement logs of the real binary
//! (sqlx's `sqlx::query`, and `leadboard::sql` of the group-commit writer's own SQLite
//! connection, both at debug), per request id. On PostgreSQL each statement is a round
//! trip to the server; on SQLite each one was a round trip to sqlx's worker thread
//! until the writer ran its statements itself (BENCHMARKS.md). The bounds guard
//! against regressions; the counts are printed (`--nocapture`).

use crate::helpers::TestApp;
use crate::shutdown::{Service, WAIT};
use chrono::Days;
use serde_json::Value;
use std::collections::HashMap;

fn contest(today: chrono::NaiveDate) -> String {
    format!(
        r#"
[[contests]]
id = "client-pk"
name = "客户开发PK"
kinds = ["lead_c", "lead_b", "lead_a"]
start = "{start}"
end = "{end}"
chats = ["appchat:wrchat1"]
[[contests.teams]]
name = "雄鹰队"
members = ["zhangwei"]
[[contests.teams]]
name = "猎豹队"
members = ["sunli"]
"#,
        start = today.checked_sub_days(Days::new(3)).unwrap(),
        end = today.checked_add_days(Days::new(3)).unwrap(),
    )
}

/// A statement's log line: sqlx's, or the group-commit writer's own connection's on
/// SQLite (`store::direct`).
fn is_statement(line: &Value) -> bool {
    line["target"] == "sqlx::query" || line["target"] == "leadboard::sql"
}

/// Statements logged in each request's span, by request id, of the requests whose
/// last statement (the inbox row) has been logged.
fn statements_by_request(lines: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut done = Vec::new();
    for line in lines.iter().filter(|l| is_statement(l)) {
        let spans = line["spans"].as_array().cloned().unwrap_or_default();
        if let Some(id) = spans.iter().find_map(|s| s["request_id"].as_str()) {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
            if line.to_string().contains("INSERT INTO inbox") {
                done.push(id.to_owned());
            }
        }
    }
    counts.retain(|id, _| done.contains(id));
    counts
}

#[tokio::test]
async fn callbacks_take_few_sql_statements() {
    let today = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).date_naive();
    let config = TestApp::builder().config(&contest(today)).configure().await;
    let service = Service::start_logging(&config, &[], "info,sqlx=warn,sqlx::query=debug,leadboard::sql=debug").await;
    let peer = config.peer();
    // Warm up: the first report of a person and the first callback after start may read
    // what later ones find cached.
    service.say(&peer, "zhangwei", "C类 公司=预热科技有限公司 联系人=王经理").await;
    let mut counts = Vec::new();
    // Every statement counts, the callback's SAVEPOINT and RELEASE included. A report's
    // bound includes the debug build's read-back of the record and the look-alike
    // index's two inserts (migration 0106), which replaced a scan of every claimed name.
    for (what, text, bound) in
        [("C类 report", "C类 公司=杭州云帆科技有限公司 联系人=王经理", 16), ("我的", "我的", 8), ("排行", "排行", 8)]
    {
        let before = statements_by_request(&service.lines());
        let reply = service.say(&peer, "zhangwei", text).await;
        assert!(!reply.is_empty());
        let after = tokio::time::timeout(WAIT, async {
            loop {
                let after = statements_by_request(&service.lines());
                if after.len() > before.len() {
                    return after;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the callback's statements are logged");
        let new: Vec<usize> = after.iter().filter(|(id, _)| !before.contains_key(*id)).map(|(_, n)| *n).collect();
        assert_eq!(new.len(), 1, "one new request");
        eprintln!("{what}: {} SQL statements", new[0]);
        if std::env::var_os("STATEMENTS_LIST").is_some() {
            let id = after.keys().find(|id| !before.contains_key(*id)).unwrap();
            for line in service.lines().iter().filter(|l| is_statement(l) && l.to_string().contains(id.as_str())) {
                // sqlx logs a short statement whole as the summary.
                let statement = [&line["db.statement"], &line["statement"]]
                    .into_iter()
                    .find_map(|s| s.as_str().filter(|s| !s.is_empty()))
                    .or(line["summary"].as_str());
                let statement = statement.unwrap_or_default();
                eprintln!("  {}", statement.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        counts.push((what, new[0], bound));
    }
    // On PostgreSQL one more: the callback key's advisory lock (`store::inbox::find`).
    let postgres = crate::helpers::database_url(&config.database).starts_with("postgres");
    for (what, n, bound) in counts {
        let bound = if postgres { bound + 1 } else { bound };
        assert!(n <= bound, "{what} took {n} statements, more than {bound}");
    }
}
