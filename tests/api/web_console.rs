//! A signed-in browser for the console's HTTP tests: signs in through the mock WeCom
//! API as WeCom's OAuth does (the login redirect's `state`, a code that the mock's
//! `auth/getuserinfo` answers), keeps the session cookie, and posts forms with or
//! without the CSRF token.

use crate::helpers::TestApp;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

static CODES: AtomicU64 = AtomicU64::new(1);

/// A client that follows no redirects, so that each step of the sign-in can be seen.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A response's status, headers and body.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    async fn of(r: reqwest::Response) -> Page {
        Page { status: r.status().as_u16(), headers: r.headers().clone(), body: r.text().await.expect("body") }
    }

    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Makes the mock's `auth/getuserinfo` answer `userid` for a fresh code, once (then
/// 40029, as WeCom answers a used code).
pub async fn code_for(app: &TestApp, userid: &str) -> String {
    let code = format!("CODE-{}", CODES.fetch_add(1, Ordering::SeqCst));
    Mock::given(method("GET"))
        .and(path("/cgi-bin/auth/getuserinfo"))
        .and(query_param("code", code.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errcode": 0, "errmsg": "ok", "userid": userid})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/auth/getuserinfo"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errcode": 40029, "errmsg": "invalid code"})))
        .with_priority(5)
        .mount(&app.mock)
        .await;
    code
}

/// A sign-in under way: its `state`, and the cookie that binds it to the browser.
pub struct Login {
    pub state: String,
    pub cookie: String,
}

/// The cookie named `name` a response set (`name=value`).
pub fn cookie_set(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// `/ui/login` (as a desktop browser): the sign-in URL it redirects to, and the sign-in.
pub async fn start(app: &TestApp, next: &str) -> (url::Url, Login) {
    let r = client().get(app.url(&format!("/ui/login?next={next}"))).send().await.expect("login answers");
    let page = Page::of(r).await;
    assert_eq!(page.status, 303, "login redirects: {}", page.body);
    let to = url::Url::parse(page.location()).expect("absolute sign-in URL");
    let state = to.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).expect("state");
    let cookie = cookie_set(&page.headers, "leadboard_login").expect("the sign-in's cookie");
    (to, Login { state, cookie })
}

/// WeCom sending the browser of `login` back to the console with `code`.
pub async fn come_back(app: &TestApp, code: &str, login: &Login) -> Page {
    let r = client()
        .get(app.url("/ui/auth/callback"))
        .query(&[("code", code), ("state", &login.state)])
        .header(COOKIE, &login.cookie)
        .send()
        .await
        .expect("callback answers");
    Page::of(r).await
}

/// The session cookie a response set (`name=value`).
pub fn session_cookie(page: &Page) -> Option<String> {
    cookie_set(&page.headers, "leadboard_session")
}

/// A signed-in console session.
pub struct Console<'a> {
    pub app: &'a TestApp,
    pub cookie: String,
    pub csrf: String,
    http: reqwest::Client,
}

impl<'a> Console<'a> {
    /// Signs `userid` in through the whole flow.
    pub async fn sign_in(app: &'a TestApp, userid: &str) -> Console<'a> {
        let (_, login) = start(app, "/ui/mine").await;
        let code = code_for(app, userid).await;
        let back = come_back(app, &code, &login).await;
        assert_eq!(back.status, 303, "signed in: {}", back.body);
        assert_eq!(back.location(), "/ui/mine");
        let cookie = session_cookie(&back).expect("session cookie set");
        let mut console = Console { app, cookie, csrf: String::new(), http: client() };
        let mine = console.get("/ui/mine").await;
        assert_eq!(mine.status, 200, "{}", mine.body);
        console.csrf = csrf_of(&mine.body).expect("page carries a CSRF token");
        console
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self.http.get(self.app.url(path)).header(COOKIE, &self.cookie).send().await.expect("answers");
        Page::of(r).await
    }

    /// Posts a form with the session's CSRF token, as htmx does (the header).
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(self.app.url(path))
            .header(COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("hx-request", "true")
            .form(form)
            .send()
            .await
            .expect("answers");
        Page::of(r).await
    }

    /// Posts a form with whatever token (or none) is in it.
    pub async fn post_bare(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r =
            self.http.post(self.app.url(path)).header(COOKIE, &self.cookie).form(form).send().await.expect("answers");
        Page::of(r).await
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_of(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[at..].split('"').next()?.to_owned())
}
