//! Callback hot path: the per-message work of an inbound WeCom text message, i.e.
//! `parse_envelope` (POST body) + `WecomCrypto::open` (signature check, then AES
//! decrypt) + `parse_message` (plaintext XML), for a ~300-byte and a ~2 KB message.
//!
//! Run with `cargo bench --bench callback`. The bench also writes its two requests to
//! `target/bench-callback-inputs.json`, so `benches/run-wechatpy.sh` times wechatpy on
//! byte-identical inputs. Results and the comparison live in `BENCHMARKS.md`.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use leadboard::wecom::crypto::WecomCrypto;
use leadboard::wecom::peer::Peer;
use leadboard::wecom::xml::{Inbound, InboundKind, parse_envelope, parse_message};

/// The official WeCom test configuration.
const TOKEN: &str = "QDG6eK";
const ENCODING_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP_ID: &str = "wx5823bf96d3bd56c7";
const AGENT_ID: i64 = 1_000_002;

const FROM: &str = "zhangsan";
const MSG_ID: &str = "7391234567890123456";
const CREATE_TIME: i64 = 1_700_000_000;
/// Repeated (char by char) to fill the message to its target size.
const SENTENCE: &str = "本周华东区新增销售线索十二条，其中三条已进入报价阶段，请各位及时跟进客户需求。";

/// Target plaintext sizes in bytes: (label, size).
const SIZES: [(&str, usize); 2] = [("300B", 300), ("2KB", 2048)];

/// One signed, encrypted callback request plus what it should decode to.
struct Case {
    label: &'static str,
    content: String,
    plain_len: usize,
    signature: String,
    timestamp: String,
    nonce: String,
    body: String,
}

fn peer() -> Peer {
    let crypto = WecomCrypto::new(TOKEN, ENCODING_AES_KEY, CORP_ID).expect("valid test key");
    Peer { crypto, corp_id: CORP_ID.to_owned(), agent_id: AGENT_ID }
}

/// Chinese content just long enough for the plaintext XML to reach `target` bytes.
fn content_for(peer: &Peer, target: usize) -> String {
    let mut content = String::new();
    let mut chars = SENTENCE.chars().cycle();
    while peer.text_xml(FROM, &content, MSG_ID, CREATE_TIME).len() < target {
        content.push(chars.next().expect("cycle never ends"));
    }
    content
}

/// Splits `msg_signature=..&timestamp=..&nonce=..` into its three values.
fn query_params(query: &str) -> (String, String, String) {
    let value = |key: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("query has no {key}"))
            .to_owned()
    };
    (value("msg_signature"), value("timestamp"), value("nonce"))
}

fn make_case(peer: &Peer, label: &'static str, target: usize) -> Case {
    let content = content_for(peer, target);
    let plain = peer.text_xml(FROM, &content, MSG_ID, CREATE_TIME);
    let request = peer.callback(&plain, CREATE_TIME);
    let (signature, timestamp, nonce) = query_params(&request.query);
    Case { label, content, plain_len: plain.len(), signature, timestamp, nonce, body: request.body }
}

/// The measured work: everything the callback handler does per message before the inbox.
fn handle(crypto: &WecomCrypto, case: &Case) -> Inbound {
    let encrypt = parse_envelope(&case.body).expect("envelope parses");
    let mut buf = Vec::new();
    let plain = crypto
        .open_in(&case.signature, &case.timestamp, &case.nonce, &encrypt, &mut buf)
        .expect("signature verifies and ciphertext decrypts");
    parse_message(plain).expect("message parses")
}

/// `open` as the callback calls it: into a buffer of its own, the message borrowed from it.
fn open(crypto: &WecomCrypto, case: &Case, encrypt: &str) -> usize {
    let mut buf = Vec::new();
    let plain = crypto.open_in(&case.signature, &case.timestamp, &case.nonce, encrypt, &mut buf).expect("opens");
    plain.len()
}

/// Fails fast if the bench would be timing an error path.
fn check(crypto: &WecomCrypto, case: &Case) {
    let inbound = handle(crypto, case);
    assert_eq!(inbound.from, FROM);
    assert_eq!(inbound.kind, InboundKind::Text { content: case.content.clone() });
}

/// Writes the requests for `benches/wechatpy_callback.py` (best effort).
fn write_inputs(cases: &[Case]) {
    let json: Vec<_> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "label": c.label,
                "plain_len": c.plain_len,
                "content": c.content,
                "from": FROM,
                "signature": c.signature,
                "timestamp": c.timestamp,
                "nonce": c.nonce,
                "body": c.body,
            })
        })
        .collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let path = dir.join("bench-callback-inputs.json");
    let text = serde_json::to_string_pretty(&json).expect("inputs serialize");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("could not write {}: {e}", path.display());
    }
}

fn bench_callback(c: &mut Criterion) {
    let peer = peer();
    let cases: Vec<Case> = SIZES.iter().map(|(label, size)| make_case(&peer, label, *size)).collect();
    write_inputs(&cases);

    let mut group = c.benchmark_group("callback");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        check(&peer.crypto, case);
        eprintln!("callback/{}: plaintext {} B, POST body {} B", case.label, case.plain_len, case.body.len());
        let id = BenchmarkId::new("verify_decrypt_parse", case.label);
        group.bench_with_input(id, case, |b, case| {
            b.iter(|| handle(black_box(&peer.crypto), black_box(case)));
        });
    }
    group.finish();
}

/// The three stages on their own, to show where the per-message time goes.
fn bench_stages(c: &mut Criterion) {
    let peer = peer();
    let crypto = &peer.crypto;
    let mut group = c.benchmark_group("callback_stage");
    for (label, size) in SIZES {
        let case = make_case(&peer, label, size);
        let encrypt = parse_envelope(&case.body).expect("envelope parses");
        let plain = crypto.open(&case.signature, &case.timestamp, &case.nonce, &encrypt).expect("opens");
        group.bench_function(BenchmarkId::new("parse_envelope", label), |b| {
            b.iter(|| parse_envelope(black_box(&case.body)))
        });
        group.bench_function(BenchmarkId::new("open", label), |b| b.iter(|| open(crypto, &case, black_box(&encrypt))));
        group.bench_function(BenchmarkId::new("parse_message", label), |b| b.iter(|| parse_message(black_box(&plain))));
    }
    group.finish();
}

/// Median per-call seconds of `f` over 15 runs of at least 0.2 s each.
fn median_seconds(mut f: impl FnMut()) -> f64 {
    let mut loops = 64u64;
    loop {
        let started = Instant::now();
        for _ in 0..loops {
            f();
        }
        if started.elapsed().as_secs_f64() >= 0.2 {
            break;
        }
        loops *= 2;
    }
    let mut runs: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..loops {
                f();
            }
            started.elapsed().as_secs_f64() / loops as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// `openssl speed -evp ALG [-decrypt] -bytes N`: bytes per second, from its last line.
fn openssl_speed(alg: &str, bytes: usize, decrypt: bool) -> Option<f64> {
    let mut command = Command::new("openssl");
    command.args(["speed", "-evp", alg, "-seconds", "2", "-bytes", &bytes.to_string()]);
    if decrypt {
        command.arg("-decrypt");
    }
    let output = command.stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // The result line: the algorithm, then one figure such as `1234567.89k` (1000s of bytes/s).
    let line = text.lines().rev().find(|l| l.trim_start().starts_with(alg) || l.contains(&alg.to_uppercase()))?;
    let figure = line.split_whitespace().last()?.strip_suffix('k')?;
    figure.parse::<f64>().ok().map(|k| k * 1000.0)
}

/// A peer's median µs per message, by message label.
type Medians = Vec<(String, f64)>;

/// Runs a peer's script and returns its medians.
fn peer_medians(script: &str) -> Option<Medians> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(root.join(script)).current_dir(&root).stderr(Stdio::inherit()).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    eprint!("{text}");
    if !output.status.success() {
        return None;
    }
    let medians = text
        .lines()
        .filter_map(|l| {
            let label = l.split_once('/')?.1.split_once(':')?.0.to_owned();
            let median = l.split_once("median ")?.1.split_whitespace().next()?.parse().ok()?;
            Some((label, median))
        })
        .collect();
    Some(medians)
}

/// The limits and the peers beside the project, in the same run: what RustCrypto uses
/// on this CPU, `open` against `openssl speed` for SHA-1 plus AES-256-CBC on the same
/// bytes, and the whole per-message work against wechatpy (cryptography backend) and
/// Tencent's @wecom/crypto with fast-xml-parser. `CALLBACK_PEERS=0` skips it.
fn limits_and_peers(_: &mut Criterion) {
    if std::env::var("CALLBACK_PEERS").is_ok_and(|v| v == "0") {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: bool| if f { "yes" } else { "no" };
        let shani = std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1");
        eprintln!(
            "\nCPU: sha1 0.10 takes its SHA-NI path (sha, sse2, ssse3, sse4.1 detected): {}; \
             aes 0.8 takes its AES-NI path (aes detected): {}",
            has(shani),
            has(std::arch::is_x86_feature_detected!("aes"))
        );
    }
    let peer = peer();
    let cases: Vec<Case> = SIZES.iter().map(|(label, size)| make_case(&peer, label, *size)).collect();
    write_inputs(&cases);
    let crypto = &peer.crypto;
    let mut ours = Vec::new();
    eprintln!("\n| message | `open` µs | openssl SHA-1 + AES-256-CBC µs (same bytes) | `open` / openssl |");
    eprintln!("| --- | --- | --- | --- |");
    for case in &cases {
        check(crypto, case);
        let encrypt = parse_envelope(&case.body).expect("envelope parses");
        let open = median_seconds(|| {
            black_box(open(crypto, case, black_box(&encrypt)));
        });
        let whole = median_seconds(|| {
            black_box(handle(black_box(crypto), black_box(case)));
        });
        ours.push((case.label, whole));
        // What open hashes (token, timestamp, nonce and the base64 text) and decrypts.
        let hashed = TOKEN.len() + case.timestamp.len() + case.nonce.len() + encrypt.len();
        let ciphertext = encrypt.len() / 4 * 3 - encrypt.bytes().rev().take_while(|&b| b == b'=').count();
        let limit = match (openssl_speed("sha1", hashed, false), openssl_speed("aes-256-cbc", ciphertext, true)) {
            (Some(sha), Some(aes)) => Some(hashed as f64 / sha + ciphertext as f64 / aes),
            _ => None,
        };
        match limit {
            Some(limit) => eprintln!(
                "| {} ({hashed} B hashed, {ciphertext} B decrypted) | {:.2} | {:.2} | {:.2}× |",
                case.label,
                open * 1e6,
                limit * 1e6,
                open / limit
            ),
            None => eprintln!("| {} | {:.2} | openssl not available | |", case.label, open * 1e6),
        }
    }
    let peers: Vec<(&str, Option<Medians>)> = ["benches/run-wechatpy.sh", "benches/run-node.sh"]
        .into_iter()
        .map(|script| (script, peer_medians(script)))
        .collect();
    eprintln!(
        "\n| message | leadboard µs | wechatpy (cryptography) µs | ratio | @wecom/crypto + fast-xml-parser µs | ratio |"
    );
    eprintln!("| --- | --- | --- | --- | --- | --- |");
    for (label, whole) in ours {
        let mut row = format!("| {label} | {:.2} |", whole * 1e6);
        for (script, medians) in &peers {
            match medians.as_ref().and_then(|m| m.iter().find(|(l, _)| l == label)) {
                Some((_, us)) => row += &format!(" {us:.2} | **{:.1}×** |", us / (whole * 1e6)),
                None => row += &format!(" ({script} failed) | |"),
            }
        }
        eprintln!("{row}");
    }
}

/// One stage, `n` times, in a function of its own for `valgrind --tool=callgrind
/// --toggle-collect='*counted*'` (instruction counts, steadier than time on a shared
/// machine).
#[inline(never)]
fn counted(n: u64, mut f: impl FnMut()) {
    for _ in 0..n {
        f();
    }
}

/// `CALLBACK_COUNT=STAGE:LABEL:N` runs one stage (`whole`, `parse_envelope`, `open`,
/// `parse_message`) on one message N times inside `counted` and exits, for callgrind.
fn count_mode() -> bool {
    let Ok(spec) = std::env::var("CALLBACK_COUNT") else { return false };
    let mut parts = spec.split(':');
    let (stage, label, n) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or("1"));
    let n: u64 = n.parse().expect("CALLBACK_COUNT=STAGE:LABEL:N");
    let peer = peer();
    let (label, size) = *SIZES.iter().find(|(l, _)| *l == label).expect("label is 300B or 2KB");
    let case = make_case(&peer, label, size);
    check(&peer.crypto, &case);
    let crypto = &peer.crypto;
    let encrypt = parse_envelope(&case.body).expect("envelope parses");
    let plain = crypto.open(&case.signature, &case.timestamp, &case.nonce, &encrypt).expect("opens");
    match stage {
        "whole" => counted(n, || drop(black_box(handle(black_box(crypto), black_box(&case))))),
        "parse_envelope" => counted(n, || drop(black_box(parse_envelope(black_box(&case.body))))),
        "open" => counted(n, || {
            black_box(open(crypto, &case, black_box(&encrypt)));
        }),
        "parse_message" => counted(n, || drop(black_box(parse_message(black_box(&plain))))),
        other => panic!("unknown stage {other}"),
    }
    true
}

criterion_group!(benches, bench_callback, bench_stages, limits_and_peers);

fn main() {
    if count_mode() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
