//! The callback endpoint over HTTP: URL verification, answers, exactly-once processing
//! of retries, and refusal of every kind of bad request.

use crate::helpers::{OFFICIAL, TestApp, metric, next_msg_id};
use leadboard::clock::ManualClock;
use serde_json::Value;
use std::sync::Arc;

fn vector(id: &str) -> Value {
    let all: Value = serde_json::from_str(include_str!("../fixtures/wecom-test-vectors.json")).expect("vectors");
    ["published", "generated", "negative"]
        .iter()
        .flat_map(|k| all[k].as_array().cloned().unwrap_or_default())
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"))
}

/// An app configured like the official samples, its clock at the vector's timestamp,
/// so that vectors can be replayed over HTTP byte for byte.
async fn official_app_at(timestamp: &str) -> TestApp {
    let at = chrono::DateTime::from_timestamp(timestamp.parse().expect("ts"), 0).expect("time");
    TestApp::builder().credentials(OFFICIAL).clock(Arc::new(ManualClock::new(at))).spawn().await
}

#[tokio::test]
async fn url_verification_answers_the_decrypted_echostr() {
    let v = vector("official_verify_url");
    let app = official_app_at(v["timestamp"].as_str().unwrap()).await;
    let response =
        reqwest::get(app.url(&format!("/wecom/callback?{}", v["query_string"].as_str().unwrap()))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), v["expected_response_body"].as_str().unwrap());
}

#[tokio::test]
async fn url_verification_with_a_mangled_echostr_is_refused() {
    let v = vector("verify_url_plus_became_space");
    let app = official_app_at(v["timestamp"].as_str().unwrap()).await;
    let query = format!(
        "msg_signature={}&timestamp={}&nonce={}&echostr={}",
        v["msg_signature"].as_str().unwrap(),
        v["timestamp"].as_str().unwrap(),
        v["nonce"].as_str().unwrap(),
        percent_encode(v["echostr"].as_str().unwrap())
    );
    let response = reqwest::get(app.url(&format!("/wecom/callback?{query}"))).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.text().await.unwrap(), "");
}

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn a_recorded_wecom_message_is_accepted_and_answered() {
    let v = vector("text_chinese_command");
    let app = official_app_at(v["timestamp"].as_str().unwrap()).await;
    let answer = app.post_raw(v["query_string"].as_str().unwrap(), v["post_body"].as_str().unwrap().to_owned()).await;
    assert_eq!(answer.status, 200);
    let reply = app.open(&answer).expect("passive reply");
    assert!(reply.contains("已登记 #1 C类客户"), "{reply}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
}

#[tokio::test]
async fn a_text_message_gets_a_signed_encrypted_passive_reply() {
    let app = TestApp::spawn().await;
    let reply = app.say("zhangwei", "你好").await.expect("a passive reply");
    assert!(reply.contains("帮助"), "{reply}");
}

#[tokio::test]
async fn the_same_message_four_times_has_one_effect_and_one_answer() {
    let app = TestApp::spawn().await;
    let request = app.text_request("zhangwei", "你好");
    let first = app.post(&request).await;
    let (second, third) = tokio::join!(app.post(&request), app.post(&request));
    let fourth = app.post(&request).await;

    let answers: Vec<_> = [&first, &second, &third, &fourth].iter().map(|a| app.open(a)).collect();
    assert!(answers.iter().all(|a| a == &answers[0] && a.is_some()), "{answers:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "leadboard_duplicates_total"), 3.0);
    assert_eq!(metric(&metrics, r#"leadboard_callback_requests_total{outcome="ok"}"#), 1.0);
}

#[tokio::test]
async fn concurrent_copies_of_a_message_are_processed_once() {
    let app = TestApp::spawn().await;
    let request = app.text_request("zhangwei", "并发");
    let answers = futures::future::join_all((0..8).map(|_| app.post(&request))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
    assert_eq!(metric(&app.metrics().await, "leadboard_duplicates_total"), 7.0);
}

/// Each bad request is refused with a bare 4xx, stores nothing, and is counted.
#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let good = app.text_request("zhangwei", "你好");
    let now = app.now();

    let wrong_signature = good.query.replacen("msg_signature=", "msg_signature=0", 1);
    let other_corp = {
        let mut peer = app.peer.clone();
        peer.crypto = leadboard::wecom::crypto::WecomCrypto::new(
            "Xq7TkP2mLw9Rb4Vn",
            "mUShwlYMZEgbhW1TOtdP7+PTD6Z54A2lcwp03gY7AGI",
            "wwffffffffffffffff",
        )
        .unwrap();
        peer.callback(&peer.text_xml("zhangwei", "x", &next_msg_id(), now), now)
    };
    let tampered = {
        let encrypt = app.peer.crypto.encrypt("<xml>tampered</xml>");
        let mut bytes = base64_decode(&encrypt);
        let last = bytes.len() - 17; // flips the padding byte of the last plaintext block
        bytes[last] ^= 0x55;
        let data = base64_encode(&bytes);
        let sig = app.peer.crypto.signature(&now.to_string(), "1", &data);
        (
            format!("msg_signature={sig}&timestamp={now}&nonce=1"),
            format!("<xml><Encrypt><![CDATA[{data}]]></Encrypt></xml>"),
        )
    };
    let stale = {
        let then = now - 3600;
        app.peer.callback(&app.peer.text_xml("zhangwei", "x", &next_msg_id(), then), then)
    };
    let malformed_inner = {
        let data = app.peer.crypto.encrypt("<xml><FromUserName>broken");
        let sig = app.peer.crypto.signature(&now.to_string(), "1", &data);
        (format!("msg_signature={sig}&timestamp={now}&nonce=1"), format!("<xml><Encrypt>{data}</Encrypt></xml>"))
    };

    let cases: Vec<(&str, String, String, u16)> = vec![
        ("wrong signature", wrong_signature, good.body.clone(), 400),
        ("wrong corp id", other_corp.query, other_corp.body, 400),
        ("tampered ciphertext", tampered.0, tampered.1, 400),
        ("stale timestamp", stale.query, stale.body, 403),
        ("malformed outer XML", good.query.clone(), "<xml><Encrypt>".into(), 400),
        ("malformed inner XML", malformed_inner.0, malformed_inner.1, 400),
        ("oversized body", good.query.clone(), "x".repeat(70 * 1024), 413),
        ("missing parameters", "timestamp=1".into(), good.body.clone(), 400),
        ("not UTF-8", good.query.clone(), String::from_utf8_lossy(&[0xff, 0xfe]).into_owned(), 400),
    ];
    for (what, query, body, status) in cases {
        let answer = app.post_raw(&query, body).await;
        assert_eq!(answer.status, status, "{what}");
        assert_eq!(answer.body, "", "{what}: the body says nothing");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert!(app.healthy().await);

    let metrics = app.metrics().await;
    for (series, n) in [
        (r#"leadboard_decrypt_failures_total{reason="signature_mismatch"}"#, 1.0),
        (r#"leadboard_decrypt_failures_total{reason="receive_id_mismatch"}"#, 1.0),
        (r#"leadboard_decrypt_failures_total{reason="invalid_padding"}"#, 1.0),
        (r#"leadboard_callback_requests_total{outcome="stale"}"#, 1.0),
        (r#"leadboard_callback_requests_total{outcome="too_large"}"#, 1.0),
        (r#"leadboard_callback_requests_total{outcome="bad_xml"}"#, 3.0),
    ] {
        assert_eq!(metric(&metrics, series), n, "{series}");
    }
    // And the service still works.
    assert!(app.say("zhangwei", "你好").await.is_some());
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn events_are_acknowledged_with_an_empty_answer() {
    let app = TestApp::spawn().await;
    let now = app.now();
    let xml = app.peer.card_event_xml("zhangwei", "task-1", "unknown:key", "RC", now);
    let answer = app.post(&app.peer.callback(&xml, now)).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    let enter = format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>zhangwei</FromUserName><CreateTime>{now}</CreateTime>\
         <MsgType>event</MsgType><Event>enter_agent</Event><EventKey></EventKey><AgentID>1</AgentID></xml>",
        app.peer.corp_id
    );
    let answer = app.post(&app.peer.callback(&enter, now)).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 2);
}

/// Timestamps as far from now as an i64 goes are refused as stale, never wrapped into
/// the window (`now + i64::MIN` used to pass, and panic in a debug build).
#[tokio::test]
async fn timestamps_at_the_ends_of_the_range_are_stale() {
    let app = TestApp::spawn().await;
    let now = app.now();
    for ts in [now.wrapping_add(i64::MIN), i64::MIN, i64::MAX, now.wrapping_sub(i64::MIN)] {
        let request = app.peer.callback(&app.peer.text_xml("zhangwei", "你好", &next_msg_id(), now), ts);
        let answer = app.post(&request).await;
        assert_eq!(answer.status, 403, "timestamp {ts}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0);
    assert_eq!(metric(&app.metrics().await, r#"leadboard_callback_requests_total{outcome="stale"}"#), 4.0);
    assert!(app.say("zhangwei", "你好").await.is_some());
}
