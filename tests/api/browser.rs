//! Browser tests' harness: a real headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`; `fantoccini`). Each browser gets its own
//! chromedriver on a free loopback port, started here and stopped on drop. Without
//! chromedriver the tests skip, saying so — unless `LEADBOARD_REQUIRE_BROWSER` is set
//! (as `.ci/run` sets it), when its absence fails them.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A phone in portrait (the console opens inside the WeCom app).
pub const PHONE: (u32, u32) = (390, 844);
/// A desktop browser window.
pub const DESKTOP: (u32, u32) = (1280, 860);

/// A running headless Chromium and the chromedriver it is driven through.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

/// Stops chromedriver and the Chromium it started: chromedriver runs in a process
/// group of its own, and the whole group is killed, so that a test that fails before
/// [`Browser::close`] leaves no browser behind (killing chromedriver alone would
/// leave its Chromium running, adopted by init).
impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.wait();
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// chromedriver, or why the test does not run: `None` means skip.
fn chromedriver() -> Option<PathBuf> {
    let found = find_on_path("chromedriver");
    if found.is_none() {
        let required = std::env::var_os("LEADBOARD_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty());
        assert!(
            !required,
            "LEADBOARD_REQUIRE_BROWSER is set but chromedriver is not on PATH (Debian: apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: browser test: chromedriver not found (Debian: apt-get install chromium chromium-driver)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Browser {
    /// A headless Chromium with a `width`×`height` window, downloading into
    /// `downloads` when given; `None` when the test should skip (no chromedriver).
    pub async fn start(size: (u32, u32), downloads: Option<&Path>) -> Option<Browser> {
        let driver_path = chromedriver()?;
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !http.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut options = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=zh-CN",
                format!("--window-size={},{}", size.0, size.1),
            ],
            "prefs": { "intl.accept_languages": "zh-CN" },
        });
        if let Some(chromium) = find_on_path("chromium") {
            options["binary"] = json!(chromium);
        }
        if let Some(dir) = downloads {
            options["prefs"]["download.default_directory"] = json!(dir);
            options["prefs"]["download.prompt_for_download"] = json!(false);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector).capabilities(caps).connect(&url).await.expect("WebDriver session");
        // The window's size includes what is not page: grow it so that the page has
        // exactly the size asked for.
        let chrome = client.execute("return [outerWidth - innerWidth, outerHeight - innerHeight]", vec![]).await;
        let chrome = chrome.expect("window chrome");
        let extra = |i: usize| chrome[i].as_u64().unwrap_or(0) as u32;
        client.set_window_size(size.0 + extra(0), size.1 + extra(1)).await.expect("window size");
        Some(Browser { client, driver })
    }

    /// The element `css`, waiting for it up to five seconds.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Whether `css` is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The page's text.
    pub async fn text(&self) -> String {
        self.client.find(Locator::Css("body")).await.expect("body").text().await.expect("text")
    }

    /// Signs in through local mode's simulator: the console's login sends the browser
    /// to the simulator's WeCom sign-in page, where the person named `name` is picked.
    pub async fn sign_in(&self, base: &str, next: &str, name: &str) {
        self.client.goto(&format!("{base}/ui/login?next={next}")).await.expect("login page");
        let link = self
            .client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::LinkText(name))
            .await
            .unwrap_or_else(|e| panic!("simulator sign-in lists {name}: {e}"));
        link.click().await.expect("pick the person");
        let wanted = url::Url::parse(&format!("{base}{next}")).expect("url");
        self.client.wait().at_most(Duration::from_secs(5)).for_url(&wanted).await.expect("back on the console");
    }

    /// Saves a screenshot of the page as `{name}.png`: in `docs/screenshots/` (the
    /// README's, committed) when `LEADBOARD_SCREENSHOTS` is set, else in
    /// `target/screenshots/`, so that a test run leaves the work tree as it was.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = std::env::var_os("LEADBOARD_SCREENSHOTS").is_some_and(|v| !v.is_empty());
        let dir = if docs { root.join("docs/screenshots") } else { root.join("target/screenshots") };
        std::fs::create_dir_all(&dir).expect("screenshots directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Ends the WebDriver session; dropping the browser then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// The simulator's log of calls, as `/simulator/_log` answers it.
pub async fn simulator_calls(base: &str) -> Vec<Value> {
    let log: Value = reqwest::get(format!("{base}/simulator/_log")).await.expect("log").json().await.expect("json");
    log["calls"].as_array().cloned().unwrap_or_default()
}
