//! The inbox (the keys that make a callback's effect happen once): bounded keys that
//! still tell retries from new messages, and pruning after the retention period.

use crate::helpers::{TestApp, metric, next_msg_id};
use leadboard::jobs::{self, Job};
use leadboard::store::sql;

#[tokio::test]
async fn over_long_message_ids_are_stored_bounded_and_still_processed_once() {
    let app = TestApp::builder().server("max_body_bytes = 131072").spawn().await;
    let now = app.now();
    let long = "7".repeat(20_000);
    // Two ids that differ only past any prefix a store could cut to.
    let (first, second) = (format!("{long}1"), format!("{long}2"));
    let request = |id: &str| app.peer.callback(&app.peer.text_xml("zhangwei", "你好", id, now), now);
    for _ in 0..3 {
        assert_eq!(app.post(&request(&first)).await.status, 200);
    }
    assert_eq!(app.post(&request(&second)).await.status, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 2, "one row per message, retries found");
    assert_eq!(metric(&app.metrics().await, "leadboard_duplicates_total"), 2.0);
    assert!(app.count("SELECT CAST(MAX(LENGTH(dedup_key)) AS BIGINT) FROM inbox").await <= 128);

    // An over-long sender is stored cut short too.
    let from = "张".repeat(10_000);
    let long_sender = app.peer.callback(&app.peer.text_xml(&from, "你好", &next_msg_id(), now), now);
    assert_eq!(app.post(&long_sender).await.status, 200);
    assert!(app.count("SELECT CAST(MAX(octet_length(from_user)) AS BIGINT) FROM inbox").await <= 128);
}

#[tokio::test]
async fn the_prune_job_deletes_keys_older_than_the_retention_period() {
    let app = TestApp::builder().server("inbox_retention_days = 2").spawn().await;
    let old = app.text_request("zhangwei", "你好");
    assert_eq!(app.post(&old).await.status, 200);
    app.advance(chrono::Duration::days(1));
    app.say("zhangwei", "你好").await;
    app.advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    app.say("zhangwei", "你好").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 3);

    let outcome = jobs::run_once(&app.state, Job::InboxPrune).await.expect("prune runs");
    assert_eq!(outcome, "清理了 1 条超过 2 天的回调去重记录");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 2, "the rows of the last two days stay");
    // A retry of a kept message is still answered from the inbox.
    let kept = app.text_request("zhangwei", "你好");
    assert_eq!(app.post(&kept).await.status, 200);
    assert_eq!(app.post(&kept).await.status, 200);
    assert_eq!(metric(&app.metrics().await, "leadboard_duplicates_total"), 1.0);
    let outcome = jobs::run_once(&app.state, Job::InboxPrune).await.expect("prune runs");
    assert_eq!(outcome, "清理了 0 条超过 2 天的回调去重记录");
}

#[tokio::test]
async fn the_prune_job_deletes_in_batches_until_done() {
    let app = TestApp::spawn().await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO inbox (dedup_key, from_user, kind, received_at) SELECT 'msg:' || i, 'zhangwei', 'text', i FROM n",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.say("zhangwei", "你好").await;
    let outcome = jobs::run_once(&app.state, Job::InboxPrune).await.expect("prune runs");
    assert_eq!(outcome, "清理了 5000 条超过 3 天的回调去重记录");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
}
