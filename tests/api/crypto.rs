//! The callback crypto against every shared test vector, plus properties: round trips
//! for any text and no panic on any input.

use leadboard::wecom::crypto::{Rejection, WecomCrypto};
use leadboard::wecom::xml::{self, InboundKind};
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../fixtures/wecom-test-vectors.json")).expect("vectors parse")
}

fn crypto_for(vectors: &Value, config: &str) -> WecomCrypto {
    let c = &vectors["configs"][config];
    WecomCrypto::new(
        c["token"].as_str().unwrap_or(""),
        c["encoding_aes_key"].as_str().expect("key"),
        c["receive_id"].as_str().expect("receive id"),
    )
    .expect("valid key")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{} has no {key}", v["id"]))
}

fn random(v: &Value) -> [u8; 16] {
    hex::decode(s(v, "random_hex")).expect("hex").try_into().expect("16 bytes")
}

fn positive_vectors(all: &Value) -> Vec<Value> {
    ["published", "generated"].iter().flat_map(|k| all[k].as_array().cloned().unwrap_or_default()).collect()
}

#[test]
fn every_positive_vector_decrypts_to_its_plaintext() {
    let all = vectors();
    let mut checked = 0;
    for v in positive_vectors(&all) {
        let crypto = crypto_for(&all, s(&v, "config"));
        let data = v["encrypt"].as_str().or(v["echostr"].as_str()).expect("ciphertext");
        let plain = match s(&v, "kind") {
            "decrypt_only" => crypto.decrypt(data),
            _ => crypto.open(s(&v, "msg_signature"), s(&v, "timestamp"), s(&v, "nonce"), data),
        };
        assert_eq!(plain.as_deref(), Ok(s(&v, "expected_plaintext")), "vector {}", v["id"]);
        checked += 1;
    }
    assert_eq!(checked, 21);
}

#[test]
fn encryption_reproduces_every_vector_with_a_fixed_prefix() {
    let all = vectors();
    let replies = all["replies"].as_array().cloned().unwrap_or_default();
    for v in positive_vectors(&all).into_iter().chain(replies) {
        let crypto = crypto_for(&all, s(&v, "config"));
        let plain = v["expected_plaintext"].as_str().or(v["reply_plaintext"].as_str()).expect("plaintext");
        let expected = v["encrypt"].as_str().or(v["echostr"].as_str()).expect("ciphertext");
        assert_eq!(crypto.encrypt_with_random(plain, random(&v)), expected, "vector {}", v["id"]);
        if let Some(signature) = v["msg_signature"].as_str() {
            assert_eq!(crypto.signature(s(&v, "timestamp"), s(&v, "nonce"), expected), signature, "vector {}", v["id"]);
        }
    }
}

#[test]
fn reply_envelopes_match_byte_for_byte() {
    let all = vectors();
    for v in all["replies"].as_array().expect("replies") {
        let crypto = crypto_for(&all, s(v, "config"));
        let encrypt = crypto.encrypt_with_random(s(v, "reply_plaintext"), random(v));
        assert_eq!(crypto.envelope(&encrypt, s(v, "timestamp"), s(v, "nonce")), s(v, "envelope_xml_compact"));
    }
}

#[test]
fn decrypted_messages_parse_into_their_fields() {
    let all = vectors();
    for v in positive_vectors(&all).iter().filter(|v| v["expected_fields"].is_object()) {
        let fields = &v["expected_fields"];
        let msg = xml::parse_message(s(v, "expected_plaintext")).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
        if let Some(from) = fields["FromUserName"].as_str() {
            assert_eq!(msg.from, from, "{}", v["id"]);
        }
        if let Some(time) = fields["CreateTime"].as_str() {
            assert_eq!(msg.create_time.to_string(), time, "{}", v["id"]);
        }
        match (&msg.kind, fields["MsgType"].as_str()) {
            (InboundKind::Text { content }, Some("text")) => assert_eq!(content, s(fields, "Content")),
            (InboundKind::TemplateCard(card), _) => {
                assert_eq!(card.event_key, s(fields, "EventKey"));
                assert_eq!(card.task_id, s(fields, "TaskId"));
                assert_eq!(card.card_type, s(fields, "CardType"));
                if let Some(code) = fields["ResponseCode"].as_str() {
                    assert_eq!(card.response_code, code);
                }
            }
            (InboundKind::EnterAgent, _) => assert_eq!(s(fields, "Event"), "enter_agent"),
            (InboundKind::Click { key }, _) => assert_eq!(key, s(fields, "EventKey")),
            (InboundKind::Other { event, .. }, _) => assert_eq!(event.as_deref(), fields["Event"].as_str()),
            (kind, t) => panic!("{}: parsed {kind:?} for MsgType {t:?}", v["id"]),
        }
        if let Some(id) = fields["MsgId"].as_str() {
            assert_eq!(msg.msg_id.as_deref(), Some(id));
        }
    }
}

#[test]
fn every_negative_vector_is_refused_for_its_reason() {
    let all = vectors();
    let negatives = all["negative"].as_array().expect("negatives");
    assert_eq!(negatives.len(), 30);
    for v in negatives {
        let reason = s(&v["expected"], "reason");
        let got = match s(v, "kind") {
            "config" => match WecomCrypto::new("t", s(v, "encoding_aes_key"), "c") {
                Err(_) => "invalid_aes_key",
                Ok(_) => "accepted",
            },
            "post_body" => match xml::parse_envelope(s(v, "post_body")) {
                Err(_) => "xml_parse_error",
                Ok(_) => "accepted",
            },
            _ => {
                let crypto = crypto_for(&all, s(v, "config"));
                let data = v["encrypt"].as_str().or(v["echostr"].as_str()).expect("ciphertext");
                match crypto.open(s(v, "msg_signature"), s(v, "timestamp"), s(v, "nonce"), data) {
                    Err(r) => r.reason(),
                    Ok(_) => "accepted",
                }
            }
        };
        assert_eq!(got, reason, "vector {}", v["id"]);
    }
}

fn test_crypto() -> WecomCrypto {
    WecomCrypto::new("Xq7TkP2mLw9Rb4Vn", "mUShwlYMZEgbhW1TOtdP7+PTD6Z54A2lcwp03gY7AGI", "ww3f9a1c27b5d84e60")
        .expect("valid key")
}

proptest! {
    #[test]
    fn encrypt_then_decrypt_gives_back_any_text(text in any::<String>()) {
        let crypto = test_crypto();
        let sealed = crypto.encrypt(&text);
        let signature = crypto.signature("1700000000", "42", &sealed);
        prop_assert_eq!(crypto.open(&signature, "1700000000", "42", &sealed), Ok(text));
    }

    #[test]
    fn arbitrary_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        use base64::Engine;
        let crypto = test_crypto();
        let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // Random ciphertext decrypts to garbage: whatever happens, it is a value, not a panic.
        let result = crypto.decrypt(&data);
        prop_assert!(result.is_err() || bytes.len() % 32 == 0);
        let signature = crypto.signature("1", "2", &data);
        prop_assert!(crypto.open(&signature, "1", "2", &data).is_err() || bytes.len() % 32 == 0);
    }

    #[test]
    fn arbitrary_strings_never_panic_the_parsers(text in any::<String>()) {
        let crypto = test_crypto();
        let _ = crypto.decrypt(&text);
        let _ = xml::parse_envelope(&text);
        let _ = xml::parse_message(&text);
    }

    #[test]
    fn a_signature_off_by_anything_is_refused(flip in 0usize..40) {
        let crypto = test_crypto();
        let sealed = crypto.encrypt("<xml/>");
        let mut signature = crypto.signature("1", "2", &sealed).into_bytes();
        signature[flip] = if signature[flip] == b'0' { b'1' } else { b'0' };
        let signature = String::from_utf8(signature).expect("ascii");
        prop_assert_eq!(crypto.open(&signature, "1", "2", &sealed), Err(Rejection::SignatureMismatch));
    }
}
