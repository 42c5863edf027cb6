//! The fuzz targets' bodies, one function per target, each taking the raw input. The
//! binaries in `src/bin/` hand them to AFL++; run one outside AFL with the input on
//! stdin to replay a crash (`target/release/decrypt < crash-file`). A target fails
//! only by panicking: every input must be answered with a value or an error.

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use leadboard::commands::parse;
use leadboard::config::{Settings, Source};
use leadboard::wecom::crypto::{WecomCrypto, decode_aes_key};
use leadboard::wecom::xml;

/// The official WeCom sample configuration, as in tests/fixtures/wecom-test-vectors.json
/// (`configs.official`): seeds encrypted with it decrypt.
pub const TOKEN: &str = "QDG6eK";
pub const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const RECEIVE_ID: &str = "wx5823bf96d3bd56c7";

/// The callback's outer XML: the `Encrypt` element or an error.
pub fn envelope(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else { return };
    let _ = xml::parse_envelope(body);
}

/// Decryption (`WecomCrypto::open`). The first byte picks what the rest is:
/// - even: the `Encrypt` text itself, signed here so that decryption is reached;
/// - odd: a plaintext frame (random ‖ length ‖ message ‖ receive id ‖ padding), encrypted
///   here with the key, so that the frame checks see inputs AES would otherwise hide. A
///   frame whose length is a multiple of 32 is encrypted as it is (its padding is the
///   fuzzer's); any other is padded correctly first.
pub fn decrypt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let crypto = WecomCrypto::new(TOKEN, AES_KEY, RECEIVE_ID).expect("the sample key is valid");
    let encrypt = if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return };
        text.to_owned()
    } else {
        encrypt_frame(rest)
    };
    let (timestamp, nonce) = ("1409659813", "1372623149");
    let signature = crypto.signature(timestamp, nonce, &encrypt);
    match crypto.open(&signature, timestamp, nonce, &encrypt) {
        Ok(message) => {
            // What decrypts re-encrypts to something that decrypts to the same message.
            let again = crypto.encrypt(&message);
            assert_eq!(crypto.decrypt(&again).as_deref(), Ok(message.as_str()));
        }
        Err(rejection) => {
            let _ = rejection.reason();
        }
    }
    // A wrong signature is always refused before anything is decrypted.
    assert!(crypto.open("0", timestamp, nonce, &encrypt).is_err());
}

fn encrypt_frame(frame: &[u8]) -> String {
    let key = decode_aes_key(AES_KEY).expect("the sample key is valid");
    let mut buf = frame.to_vec();
    if buf.is_empty() || buf.len() % 32 != 0 {
        let pad = 32 - buf.len() % 32;
        buf.resize(buf.len() + pad, pad as u8);
    }
    let len = buf.len();
    let iv: [u8; 16] = key[..16].try_into().expect("key is 32 bytes");
    let cipher = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .expect("a whole number of blocks");
    STANDARD.encode(cipher)
}

/// The decrypted inner XML: a message or event, and its dedup key.
pub fn message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(inbound) = xml::parse_message(text) {
        let _ = inbound.dedup_key();
        let _ = xml::text_reply(&inbound.from, RECEIVE_ID, inbound.create_time, "收到");
    }
}

/// The chat command parser: a typed command or an error, both displayable. The first
/// two bytes move "today" (dates without a year are completed from it).
pub fn command(data: &[u8]) {
    let (offset, rest) = match data {
        [a, b, rest @ ..] => (i64::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date") + chrono::Days::new(offset as u64);
    match parse::parse(text, today) {
        Ok(parsed) => {
            let _ = parsed.to_json();
            let _ = parsed.spec.usage(today);
        }
        Err(error) => {
            let _ = error.explain(today);
        }
    }
}

/// The configuration loader on TOML text: settings or the list of problems.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Settings::load(Source::Text(text)) {
        Ok(settings) => {
            let _ = settings.database_path();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without a problem");
            let _ = errors.to_string();
        }
    }
}
