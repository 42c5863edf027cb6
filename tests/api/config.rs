//! Configuration as operators meet it: `leadboard check-config` on files and
//! environment overrides, every problem listed at once, secrets never shown.

use crate::local_mode::leadboard;
use std::process::Command;

pub const VALID: &str = r#"
[wecom]
corp_id = "ww0123456789abcdef"
agent_id = 1000002
secret = "TOP-SECRET-VALUE"
token = "Tok3n"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[[directory.departments]]
id = 1
name = "集团"
"#;

/// `leadboard check-config` on this TOML: whether it passed, and everything it printed.
pub fn check(toml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadboard.toml");
    std::fs::write(&path, toml).unwrap();
    let output = Command::new(crate::local_mode::BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn a_valid_file_passes() {
    let (ok, text) = check(VALID, &[]);
    assert!(ok, "{text}");
}

#[test]
fn every_problem_is_listed_at_once_without_secrets() {
    let toml = format!(
        "{VALID}\n[server]\nlisten = \"nowhere\"\nlisten_port = 1\n[schedules]\nreminders = \"every hour\"\n[wecom_extra]\nx = 1\n"
    );
    let toml = toml.replace("token = \"Tok3n\"", "token = \"bad token!\"");
    let (ok, text) = check(&toml, &[]);
    assert!(!ok);
    for expected in ["server.listen_port", "wecom_extra", "server.listen", "schedules.reminders", "wecom.token"] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains("TOP-SECRET-VALUE") && !text.contains("bad token!"), "{text}");
}

#[test]
fn environment_overrides_apply_and_unknown_ones_are_named() {
    let (ok, text) = check(VALID, &[("LEADBOARD_WECOM__AGENT_ID", "0")]);
    assert!(!ok && text.contains("wecom.agent_id"), "{text}");
    let (ok, text) = check(VALID, &[("LEADBOARD_WECOM__SECRETT", "x")]);
    assert!(!ok && text.contains("LEADBOARD_WECOM__SECRETT"), "{text}");
    let (ok, text) =
        check(&VALID.replace("secret = \"TOP-SECRET-VALUE\"\n", ""), &[("LEADBOARD_WECOM__SECRET", "12345")]);
    assert!(ok, "a numeric secret from the environment is a string: {text}");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "FROM-FILE\n").unwrap();
    let toml =
        VALID.replace("secret = \"TOP-SECRET-VALUE\"", &format!("secret_file = {:?}", secret.display().to_string()));
    let (ok, text) = check(&toml, &[]);
    assert!(ok, "{text}");
    let toml = VALID.replace("secret = \"TOP-SECRET-VALUE\"", "secret_file = \"/nonexistent/secret\"");
    let (ok, text) = check(&toml, &[]);
    assert!(!ok && text.contains("wecom.secret_file"), "{text}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = leadboard(dir.path(), &["check-config", "--config", "nope.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("配置文件不存在"));
}

#[test]
fn the_example_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in
        [("secret", "s3cret"), ("token", "Tok3n"), ("encoding_aes_key", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")]
    {
        std::fs::write(dir.path().join(name), value).unwrap();
    }
    let example = include_str!("../../deploy/leadboard.example.toml");
    let toml = example.replace("/etc/leadboard/", &format!("{}/", dir.path().display()));
    let (ok, text) = check(&toml, &[]);
    assert!(ok, "{text}");
}

#[test]
fn contest_mistakes_are_reported_together() {
    let contests = r#"
[[directory.users]]
userid = "a"
name = "甲"
department = 1
[[contests]]
id = "pk"
name = "PK"
kinds = ["lead_c"]
start = "2023-07-31"
end = "2023-07-01"
cutoff = "25:00"
chats = ["wechat:x"]
[[contests.teams]]
name = "一队"
members = ["a", "ghost"]
[[contests.teams]]
name = "二队"
members = ["a"]
"#;
    let (ok, text) = check(&format!("{VALID}{contests}"), &[]);
    assert!(!ok);
    for expected in
        ["早于开始日期", "cutoff “25:00”", "wechat:x", "成员 ghost 不在通讯录中", "a 同时在队伍 一队 和 二队 中"]
    {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    let unknown_kind = format!(
        "{VALID}[[contests]]\nid = \"x\"\nname = \"x\"\nkinds = [\"lead_z\"]\nstart = \"2023-07-01\"\nend = \"2023-07-02\"\n"
    );
    let (ok, text) = check(&unknown_kind, &[]);
    assert!(!ok && text.contains("lead_z"), "{text}");
}

#[test]
fn a_toml_syntax_error_is_named_as_such() {
    let (ok, text) = check(&format!("this is not toml\n{VALID}"), &[]);
    assert!(!ok && text.contains("无法读取配置") && text.contains("line 1"), "{text}");
}

#[test]
fn a_c_class_reward_for_customer_success_cannot_be_configured() {
    for value in ["50", "0"] {
        let (ok, text) = check(&format!("{VALID}\n[rewards.cs]\nlead_c = {value}\nlead_b = 200\n"), &[]);
        assert!(!ok, "lead_c = {value}: {text}");
        assert!(text.contains("rewards.cs.lead_c") && text.contains("C类客户对客户成功事业部员工无任何奖励"), "{text}");
    }
    let (ok, text) = check(VALID, &[("LEADBOARD_REWARDS__CS__LEAD_C", "10")]);
    assert!(!ok && text.contains("rewards.cs.lead_c"), "{text}");
    let (ok, text) = check(&format!("{VALID}\n[rewards.non_cs]\nlead_c = 50\n"), &[]);
    assert!(ok, "others are paid for C as configured: {text}");
}

#[test]
fn a_type_error_does_not_hide_the_other_problems() {
    let toml =
        VALID.replace("corp_id = \"ww0123456789abcdef\"\n", "").replace("agent_id = 1000002", "agent_id = \"x\"");
    let contests = r#"
[server]
listen = "nowhere"
[[contests]]
id = "broken"
name = "坏"
kinds = ["lead_c"]
start = "2023-07-01"
end = "not a date"
[[contests]]
id = "typo"
name = "类型"
kinds = ["lead_c"]
start = "2023-07-01"
end = "2023-07-31"
cutoff = 17
[[contests.teams]]
name = "一队"
department = 1
[[contests]]
id = "late"
name = "晚"
kinds = ["lead_c"]
start = "2023-07-31"
end = "2023-07-01"
"#;
    let (ok, text) = check(&format!("{toml}{contests}"), &[]);
    assert!(!ok);
    for expected in [
        "`wecom.agent_id`",
        "缺少 wecom.corp_id",
        "server.listen 不是有效的地址",
        "`contests.0.end`",
        "`contests.1.cutoff`",
        "比赛 late：结束日期 2023-07-01 早于开始日期 2023-07-31",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains("wecom.agent_id 必须是正整数"), "a type error is not reported again as invalid:\n{text}");
    assert!(!text.contains("比赛 typo"), "the rest of a contest with a type error is fine:\n{text}");
}

#[test]
fn a_mistyped_chat_shows_no_webhook_key() {
    let contest = r#"
[[directory.users]]
userid = "a"
name = "甲"
department = 1
[[contests]]
id = "pk"
name = "PK"
kinds = ["lead_c"]
start = "2023-07-01"
end = "2023-07-31"
chats = ["webhok:693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"]
[[contests.teams]]
name = "一队"
members = ["a"]
"#;
    let (ok, text) = check(&format!("{VALID}{contest}"), &[]);
    assert!(!ok && text.contains("“webhok:693a…”"), "{text}");
    assert!(!text.contains("91f6"), "{text}");
    let as_text = contest
        .replace(r#"chats = ["webhok:693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"]"#, r#"chats = "webhook:693a91f6-7aaa""#);
    let (ok, text) = check(&format!("{VALID}{as_text}"), &[]);
    assert!(!ok && text.contains("contests.0.chats"), "{text}");
    assert!(!text.contains("91f6"), "{text}");
}

#[test]
fn connection_limits_and_inbox_retention_out_of_range_are_refused() {
    let toml = format!(
        "{VALID}\n[server]\nheader_read_timeout_secs = 0\nbody_read_timeout_secs = 0\nidle_timeout_secs = 99999\n\
         max_connections = 2\ninbox_retention_days = 0\n"
    );
    let (ok, text) = check(&toml, &[]);
    assert!(!ok);
    for expected in [
        "server.header_read_timeout_secs",
        "server.body_read_timeout_secs",
        "server.idle_timeout_secs",
        "server.max_connections",
        "server.inbox_retention_days",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}

/// A secret file that is a device, a directory or far too long is refused at once (a
/// device such as /dev/zero used to be read until memory ran out).
#[test]
fn secret_files_that_are_not_short_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long");
    std::fs::write(&long, "x".repeat(1 << 20)).unwrap();
    for (path, why) in [
        ("/dev/zero".to_owned(), "不是普通文件"),
        (dir.path().display().to_string(), "不是普通文件"),
        (long.display().to_string(), "超过 4096 字节"),
    ] {
        let toml = VALID.replace("secret = \"TOP-SECRET-VALUE\"", &format!("secret_file = {path:?}"));
        let file = dir.path().join("leadboard.toml");
        std::fs::write(&file, toml).unwrap();
        let mut child = Command::new(crate::local_mode::BIN)
            .args(["check-config", "--config"])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("check-config still reading {path} after 10 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && text.contains("wecom.secret_file") && text.contains(why), "{path}: {text}");
    }
}
