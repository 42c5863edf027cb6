//! Local mode, as a newcomer meets it: the real binary in an empty directory, no
//! configuration, and `leadboard send` talking to it.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_leadboard");

/// The service's stderr, in its directory.
const LOG: &str = "serve.log";

/// A `leadboard serve` process in local mode, stopped with SIGTERM when dropped.
pub struct LocalService {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl LocalService {
    pub fn start() -> LocalService {
        let dir = tempfile::tempdir().unwrap();
        let child = serve(dir.path());
        LocalService { child, dir }
    }

    /// Stops the service (SIGTERM) and starts it again on the same data.
    /// What the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG)).unwrap_or_default()
    }

    /// Runs `leadboard ARGS` in the service's directory.
    pub fn run(&self, args: &[&str]) -> Output {
        leadboard(self.dir.path(), args)
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "leadboard did not stop within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `leadboard serve` in `dir` and waits until it has written its address.
fn serve(dir: &Path) -> Child {
    let state = dir.join("data/local-state.json");
    let _ = std::fs::remove_file(&state);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(LOG)).unwrap();
    let child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir)
        .env_remove("LEADBOARD_CONFIG")
        .env_remove("RUST_LOG")
        // The server's own time zone must not matter: everything is Asia/Shanghai.
        .env("TZ", "UTC")
        .env("LEADBOARD_SERVER__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("leadboard starts");
    wait_for(|| state.exists(), "local mode to write its address");
    child
}

pub fn leadboard(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).env_remove("LEADBOARD_CONFIG").output().expect("leadboard runs")
}

pub fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The answer to a plain GET of `url` (`http://host:port/path`), status line first.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// link");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("the service listens");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

pub fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn serve_starts_without_configuration_and_send_prints_the_answer() {
    let mut service = LocalService::start();
    let secrets = service.dir.path().join("data/local-secrets.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).expect("secrets written").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the generated secrets are readable by their owner only");
    }
    assert!(secrets.exists());
    assert!(service.dir.path().join("data/leadboard.db").exists());

    let answer = stdout(&service.run(&["send", "--as", "zhangwei", "帮助"]));
    assert!(answer.contains("C类 公司=… 联系人=…"), "{answer}");
    let answer = stdout(&service.run(&["send", "--as", "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王经理"]));
    assert!(answer.contains("已登记 #1 C类客户"), "{answer}");
    assert!(answer.contains("卡片：待确认 #1 C类客户"), "the card to the confirmer is shown: {answer}");
    let confirmed = stdout(&service.run(&["send", "--as", "chenjl", "确认 #1"]));
    assert!(confirmed.contains("已确认 #1") && confirmed.contains("已由陈经理确认"), "{confirmed}");
    let link = service.log().lines().find_map(|l| l.strip_prefix("「客户开发PK」电视看板：").map(str::to_owned));
    let link = link.unwrap_or_else(|| panic!("the board's link is printed at start: {}", service.log()));
    assert!(http_get(&link).starts_with("HTTP/1.1 200"), "{link} opens the board");
    let board = stdout(&service.run(&["jobs", "run", "daily_leaderboard"]));
    assert!(board.contains("客户开发PK · 每日战报") && board.contains("雄鹰队"), "{board}");

    assert!(service.terminate().success(), "SIGTERM ends the service with status 0");
}

#[test]
fn check_config_accepts_local_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&leadboard(dir.path(), &["check-config"]));
    assert!(out.contains("本地模式"), "{out}");
}

/// WeCom settings in the environment without a configuration file would be ignored by
/// local mode (nothing would reach WeCom): `check-config` and `serve` refuse them, say
/// why in Chinese, and write nothing. Other overrides still apply to local mode.
#[test]
fn wecom_environment_settings_without_a_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["check-config", "serve"] {
        let output = Command::new(BIN)
            .arg(command)
            .current_dir(dir.path())
            .env_remove("LEADBOARD_CONFIG")
            .env("LEADBOARD_WECOM__CORP_ID", "ww0123456789abcdef")
            .env("LEADBOARD_WECOM__SECRET", "TOP-SECRET-VALUE")
            .env("LEADBOARD_SERVER__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .output()
            .expect("leadboard runs");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(2), "{command}: {text}");
        for expected in ["LEADBOARD_WECOM__CORP_ID", "LEADBOARD_WECOM__SECRET", "没有指定配置文件", "--config"]
        {
            assert!(text.contains(expected), "{command}: missing {expected} in {text}");
        }
        assert!(!text.contains("本地模式已启动") && !text.contains("TOP-SECRET-VALUE"), "{command}: {text}");
    }
    assert!(!dir.path().join("data").exists(), "nothing written");

    let output = Command::new(BIN)
        .arg("check-config")
        .current_dir(dir.path())
        .env_remove("LEADBOARD_CONFIG")
        .env("LEADBOARD_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .expect("leadboard runs");
    assert!(stdout(&output).contains("配置正确（本地模式）"));
}

#[test]
fn send_to_a_stopped_service_says_in_chinese_how_to_start_it() {
    let mut service = LocalService::start();
    let dir = service.dir.path().to_owned();
    let url = std::fs::read_to_string(dir.join("data/local-state.json")).unwrap();
    assert!(service.terminate().success());

    // The address the stopped service left behind, and one nobody ever listened on.
    for args in [
        &["send", "--as", "zhangwei", "帮助"][..],
        &["send", "--url", "http://127.0.0.1:9", "--as", "zhangwei", "帮助"],
    ] {
        let output = leadboard(&dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("服务没有在 http://127.0.0.1:") && stderr.contains("运行"), "{url}: {stderr}");
        assert!(stderr.contains("leadboard serve"), "says how to start it: {stderr}");
        assert!(!stderr.contains("error sending request") && !stderr.contains("Connection refused"), "{stderr}");
    }
}

#[test]
fn log_lines_are_stamped_in_asia_shanghai() {
    let service = LocalService::start();
    wait_for(|| service.log().contains("leadboard listening"), "the service to log that it listens");
    let log = service.log();
    let stamped: Vec<&str> = log.lines().filter(|l| l.starts_with("20")).collect();
    assert!(!stamped.is_empty(), "{log}");
    for line in stamped {
        let stamp = line.split_whitespace().next().unwrap();
        assert!(stamp.ends_with("+08:00"), "{line}");
    }
}

#[test]
fn settle_writes_into_data_exports_by_default() {
    let service = LocalService::start();
    stdout(&service.run(&["send", "--as", "fengyu", "C类 公司=杭州云帆科技有限公司 联系人=王经理"]));
    stdout(&service.run(&["send", "--as", "chenjl", "确认 #1"]));
    let month = chrono::Utc::now().with_timezone(&leadboard::clock::TZ).format("%Y-%m").to_string();

    let out = stdout(&service.run(&["settle", "--month", &month]));

    let csv = format!("data/exports/settlement-{month}.csv");
    assert!(out.contains(&format!("已写入 {csv}")), "{out}");
    assert!(
        service.dir.path().join(&csv).is_file()
            && service.dir.path().join(format!("data/exports/settlement-{month}.xlsx")).is_file()
    );
    assert!(!service.dir.path().join(format!("settlement-{month}.csv")).exists(), "nothing in the working directory");
}

/// The service's address, as local mode wrote it.
fn url_of(service: &LocalService) -> String {
    let state = std::fs::read_to_string(service.dir.path().join("data/local-state.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&state).unwrap()["url"].as_str().unwrap().to_owned()
}

#[test]
fn press_sends_the_card_event_wecom_would_and_prints_the_answers() {
    let service = LocalService::start();
    stdout(&service.run(&["send", "--as", "zhangwei", "C类 公司=杭州云帆科技有限公司 联系人=王经理"]));

    let pressed = stdout(&service.run(&["press", "--as", "chenjl", "#1", "确认"]));

    assert!(pressed.contains("已按下「确认」"), "{pressed}");
    assert!(pressed.contains("[message/update_template_card → chenjl] 卡片按钮更新为「已由陈经理确认」"), "{pressed}");
    assert!(
        pressed.contains("[message/send → zhangwei] 您报备的 #1 C类客户「杭州云帆科技有限公司」已由陈经理确认"),
        "{pressed}"
    );
    let mine = stdout(&service.run(&["send", "--as", "zhangwei", "我的"]));
    assert!(mine.contains("已确认"), "{mine}");

    // No such card: nothing is sent, and the cards that exist are named.
    let missing = service.run(&["press", "--as", "chenjl", "#7", "确认"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && stderr.contains("没有找到发给 chenjl 的卡片「7」"), "{stderr}");
    assert!(stderr.contains("#1［确认／驳回］"), "{stderr}");
}

#[tokio::test]
async fn the_simulator_page_lists_what_it_recorded() {
    let service = LocalService::start();
    let url = url_of(&service);
    let page = reqwest::get(format!("{url}/simulator")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("还没有调用"));
    stdout(&service.run(&["send", "--as", "zhangwei", "C类 公司=<杭州>云帆 联系人=王经理"]));

    let page = reqwest::get(format!("{url}/simulator")).await.unwrap();

    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("卡片：待确认 #1 C类客户 · &lt;杭州&gt;云帆"), "escaped: {html}");
    assert!(html.contains("leadboard press --as chenjl &#39;#1&#39; 确认"), "{html}");
    assert!(html.contains("/simulator/_log"), "{html}");
    let log: serde_json::Value = reqwest::get(format!("{url}/simulator/_log")).await.unwrap().json().await.unwrap();
    assert_eq!(log["last_id"], 1, "{log}");
}

#[test]
fn the_demo_sprint_can_be_cut_off_reviewed_and_finalised() {
    let service = LocalService::start();
    stdout(&service.run(&["send", "--as", "zhangwei", "C类 公司=星河传媒 联系人=李总"]));
    stdout(&service.run(&["press", "--as", "chenjl", "#1", "确认"]));
    stdout(&service.run(&["send", "--as", "sunli", "C类 公司=月亮湾 联系人=周总"]));
    let board = stdout(&service.run(&["send", "--as", "zhangwei", "排行 演示快赛"]));
    assert!(board.contains("距截止还有") && board.contains("第1名 蓝队 1 分（张伟1）"), "{board}");

    let closed = stdout(&service.run(&["demo", "cutoff"]));
    assert!(closed.contains("「演示快赛」的截止时间已改为") && closed.contains("leadboard reload"), "{closed}");
    let reloaded = stdout(&service.run(&["reload"]));
    assert!(reloaded.contains("已重新加载配置（本地模式）") && reloaded.contains("比赛「演示快赛」"), "{reloaded}");

    // The cut-off is the next whole second: once it passed, the cut-off job (this one,
    // or the service's scheduler) freezes the contest and sends wanggm the 终审 card,
    // whose button is refused while 孙丽's record is undecided.
    let mut refused = String::new();
    wait_for(
        || {
            stdout(&service.run(&["jobs", "run", "contest_cutoff"]));
            let press = service.run(&["press", "--as", "wanggm", "演示快赛", "终审"]);
            refused = String::from_utf8_lossy(&press.stdout).into_owned();
            press.status.success()
        },
        "the 终审 card to reach wanggm",
    );
    assert!(refused.contains("暂不能终审") && refused.contains("#2 C类客户「月亮湾」"), "{refused}");
    let review = stdout(&service.run(&["send", "--as", "wanggm", "待审 演示快赛"]));
    assert!(review.contains("等待业绩审核组终审") && review.contains("#2 C类客户「月亮湾」"), "{review}");
    let finalised = stdout(&service.run(&["send", "--as", "wanggm", "终审 比赛=演示快赛 待定=不计"]));
    assert!(finalised.contains("终审完成：第一名 蓝队"), "{finalised}");
    let board = stdout(&service.run(&["send", "--as", "zhangwei", "排行 演示快赛"]));
    assert!(board.contains("已终审") && board.contains("由第一名队伍按人数平均分配"), "{board}");
}
