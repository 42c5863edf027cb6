//! Interoperability with wechatpy, an independent WeCom crypto implementation: it
//! encrypts what the running service accepts, and decrypts what the service answers.

use crate::helpers::{PROJECT, TestApp, next_msg_id};
use leadboard::wecom::xml;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/wechatpy_peer.py");
const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/requirements.txt");

/// A Python with wechatpy: `WECHATPY_PYTHON` (`.ci/run` sets it), or a venv made (once)
/// under the target directory from `tests/interop/requirements.txt`. The variable is
/// not `LEADBOARD_*`: those are configuration overrides.
fn python() -> PathBuf {
    if let Ok(python) = std::env::var("WECHATPY_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wechatpy-venv");
    let python = venv.join("bin/python");
    let has_wechatpy =
        |p: &PathBuf| Command::new(p).args(["-c", "import wechatpy"]).output().is_ok_and(|o| o.status.success());
    if !has_wechatpy(&python) {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok && has_wechatpy(&python),
            "could not install wechatpy into {} (needs python3 with venv, e.g. Debian's python3-venv, and PyPI); \
             or set WECHATPY_PYTHON to a Python that has wechatpy 1.8.18",
            venv.display()
        );
    }
    python
}

fn run_python(args: &[&str], input: &str) -> String {
    let mut child = Command::new(python())
        .arg(SCRIPT)
        .args(args)
        .env("LB_TOKEN", PROJECT.token)
        .env("LB_AES_KEY", PROJECT.aes_key)
        .env("LB_CORP_ID", PROJECT.corp_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "wechatpy failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn wechatpy_encrypts_what_we_accept_and_decrypts_what_we_answer() {
    let app = TestApp::spawn().await;
    let now = app.now().to_string();
    let long = "长".repeat(600);
    let cases = [
        ("帮助", "C类 公司=…"),
        ("C类 公司=价格<100 & 数量>5 👍\n联系人=王", "已登记 #1 C类客户"),
        (long.as_str(), "不认识的命令"),
    ];
    for (content, expected) in cases {
        let plain = app.peer.text_xml("zhangwei", content, &next_msg_id(), app.now());
        let request: Value = serde_json::from_str(&run_python(&["encrypt", &now, "20231114"], &plain)).unwrap();
        let answer =
            app.post_raw(request["query"].as_str().unwrap(), request["body"].as_str().unwrap().to_owned()).await;
        assert_eq!(answer.status, 200, "service refused wechatpy's message");

        let reply = run_python(&["decrypt"], &answer.body);
        let text = xml::parse_text_reply(&reply).expect("a text reply");
        assert!(text.contains(expected), "{text}");
        assert!(reply.contains("<ToUserName><![CDATA[zhangwei]]></ToUserName>"), "{reply}");
    }
}
