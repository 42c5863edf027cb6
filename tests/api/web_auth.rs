//! Signing in to the console with WeCom: the OAuth `state` is single use, a code is
//! exchanged once through `auth/getuserinfo`, only active people in the directory get a
//! session, a departed person's session ends, sessions expire, and forms without the
//! session's CSRF token change nothing.

use crate::helpers::TestApp;
use crate::web_console::{Console, Login, code_for, come_back, cookie_set, session_cookie, start};
use chrono::Duration;
use leadboard::store::sql;

#[tokio::test]
async fn a_desktop_browser_is_sent_to_wecom_qr_login_and_the_wecom_app_to_oauth() {
    let app = TestApp::spawn().await;
    let (qr, _) = start(&app, "/ui/mine").await;
    assert_eq!(qr.host_str(), Some("login.work.weixin.qq.com"));
    assert_eq!(qr.path(), "/wwlogin/sso/login");
    let q: std::collections::HashMap<_, _> = qr.query_pairs().into_owned().collect();
    assert_eq!(q["login_type"], "CorpApp");
    assert_eq!(q["appid"], crate::helpers::PROJECT.corp_id);
    assert_eq!(q["agentid"], crate::helpers::AGENT_ID.to_string());
    assert_eq!(q["redirect_uri"], app.url("/ui/auth/callback"));

    let r = crate::web_console::client()
        .get(app.url("/ui/login"))
        .header("user-agent", "Mozilla/5.0 (iPhone) wxwork/4.1.0 MicroMessenger/7.0.1")
        .send()
        .await
        .unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!((to.host_str(), to.path()), (Some("open.weixin.qq.com"), "/connect/oauth2/authorize"));
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "snsapi_base");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["agentid"], crate::helpers::AGENT_ID.to_string());
    assert!(!q["state"].is_empty());
    assert_eq!(to.fragment(), Some("wechat_redirect"));
}

#[tokio::test]
async fn signing_in_opens_a_session_with_a_safe_cookie() {
    let app = TestApp::spawn().await;
    let r = crate::web_console::client().get(app.url("/ui/login?next=/ui/todo")).send().await.unwrap();
    let login = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert!(
        login.iter().any(|c| c.starts_with("leadboard_login=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")
            && c.contains("Path=/ui/auth")
            && c.contains("Max-Age=600")),
        "the sign-in's cookie: {login:?}"
    );
    let (_, state) = start(&app, "/ui/todo").await;
    let code = code_for(&app, "cs_lead").await;
    let back = come_back(&app, &code, &state).await;
    assert_eq!(back.status, 303);
    assert_eq!(back.location(), "/ui/todo", "back to where sign-in began");
    let all: Vec<&str> = back.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let set = all.iter().find(|c| c.starts_with("leadboard_session=")).expect("a session cookie");
    assert!(all.iter().any(|c| c.starts_with("leadboard_login=;") && c.contains("Max-Age=0")), "used up: {all:?}");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(set.contains("Path=/ui"), "{set}");
    assert!(set.contains("Max-Age=43200"), "12 hours: {set}");
    assert!(!set.contains("Secure"), "plain http in tests: {set}");
    assert_eq!(app.count("SELECT COUNT(*) FROM web_sessions WHERE userid = 'cs_lead'").await, 1);
    let console = Console::sign_in(&app, "cs_lead").await;
    assert!(console.get("/ui/todo").await.body.contains("陈经理"));
}

#[tokio::test]
async fn a_forged_cookie_is_not_a_session() {
    let app = TestApp::spawn().await;
    let mut console = Console::sign_in(&app, "zhangwei").await;
    let id: String = sql::query_scalar("SELECT id FROM web_sessions").fetch_one(app.state.db.reader()).await.unwrap();
    // The session id without the signature, and the signed value with another id.
    console.cookie = format!("leadboard_session={id}");
    let page = console.get("/ui/mine").await;
    assert_eq!(page.status, 303);
    assert!(page.location().starts_with("/ui/login"), "{}", page.location());
}

#[tokio::test]
async fn a_wrong_or_missing_state_is_refused_and_the_code_never_exchanged() {
    let app = TestApp::spawn().await;
    let code = code_for(&app, "zhangwei").await;
    let (_, login) = start(&app, "/ui/mine").await;
    // A forged or missing state with the browser's cookie; the right state from another
    // browser (no cookie, or another sign-in's).
    let (_, other) = start(&app, "/ui/mine").await;
    for (state, cookie) in [
        ("forged-state", login.cookie.as_str()),
        ("", login.cookie.as_str()),
        (login.state.as_str(), ""),
        (login.state.as_str(), other.cookie.as_str()),
        (login.state.as_str(), "leadboard_login=forged"),
    ] {
        let back = come_back(&app, &code, &Login { state: state.into(), cookie: cookie.into() }).await;
        assert_eq!(back.status, 401, "{}", back.body);
        assert!(back.body.contains("登录链接无效或已过期"), "{}", back.body);
        assert!(session_cookie(&back).is_none());
    }
    assert!(app.api_calls("auth/getuserinfo").await.is_empty(), "no exchange without a good state");
    assert_eq!(app.count("SELECT COUNT(*) FROM web_sessions").await, 0);
}

#[tokio::test]
async fn asking_to_sign_in_writes_nothing() {
    let app = TestApp::spawn().await;
    // SQLite's PRAGMA data_version moves when another connection commits to the
    // database; on PostgreSQL the check is a digest of every row of every table.
    let mut watcher = crate::binary::connect(&app.database(), false).await;
    let version = async |c: &mut crate::binary::TestConn| -> String {
        if let crate::binary::TestConn::Sqlite(c) = c {
            let version: i64 = sql::query_scalar("PRAGMA data_version").fetch_one(c).await.unwrap();
            return version.to_string();
        }
        let tables: Vec<String> =
            sql::query_scalar("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
                .fetch_all(&mut *c)
                .await
                .unwrap();
        let mut digest = String::new();
        for table in tables {
            let rows = format!("SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t");
            let rows: String = sql::query_scalar(sqlx::AssertSqlSafe(rows)).fetch_one(&mut *c).await.unwrap();
            digest.push_str(&rows);
        }
        digest
    };
    let before = version(&mut watcher).await;
    for _ in 0..50 {
        start(&app, "/ui/mine").await;
    }
    assert_eq!(version(&mut watcher).await, before, "nothing committed");
    // The check sees commits: a sign-in that completes opens a session.
    Console::sign_in(&app, "zhangwei").await;
    assert_ne!(version(&mut watcher).await, before);
}

#[tokio::test]
async fn a_state_expires_after_ten_minutes() {
    let app = TestApp::spawn().await;
    let (_, state) = start(&app, "/ui/mine").await;
    app.advance(Duration::minutes(11));
    let back = come_back(&app, &code_for(&app, "zhangwei").await, &state).await;
    assert_eq!(back.status, 401);
    assert!(session_cookie(&back).is_none());
}

#[tokio::test]
async fn a_sign_in_cannot_be_replayed_nor_its_code_reused() {
    let app = TestApp::spawn().await;
    let (_, state) = start(&app, "/ui/mine").await;
    let code = code_for(&app, "zhangwei").await;
    assert_eq!(come_back(&app, &code, &state).await.status, 303);
    // The same redirect again: its state is used up.
    let again = come_back(&app, &code, &state).await;
    assert_eq!(again.status, 401);
    assert!(session_cookie(&again).is_none());
    // The code with a fresh state: WeCom refuses a used code (40029).
    let (_, fresh) = start(&app, "/ui/mine").await;
    let reused = come_back(&app, &code, &fresh).await;
    assert_eq!(reused.status, 401, "{}", reused.body);
    assert!(reused.body.contains("授权码无效或已使用"), "{}", reused.body);
    assert!(session_cookie(&reused).is_none());
    assert_eq!(app.count("SELECT COUNT(*) FROM web_sessions").await, 1);
}

#[tokio::test]
async fn someone_not_in_the_directory_or_departed_is_refused() {
    let app = TestApp::spawn().await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE people SET active = 0 WHERE userid = 'zhengqiang'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    for (userid, says) in [("stranger", "没有在全员营销通讯录中找到您"), ("zhengqiang", "账号已停用")]
    {
        let (_, state) = start(&app, "/ui/mine").await;
        let back = come_back(&app, &code_for(&app, userid).await, &state).await;
        assert_eq!(back.status, 401, "{userid}");
        assert!(back.body.contains(says), "{userid}: {}", back.body);
        assert!(session_cookie(&back).is_none(), "{userid}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM web_sessions").await, 0);
}

#[tokio::test]
async fn a_person_who_leaves_loses_their_session_at_the_next_request() {
    let app = TestApp::spawn().await;
    let console = Console::sign_in(&app, "zhangwei").await;
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE people SET active = 0 WHERE userid = 'zhangwei'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let page = console.get("/ui/mine").await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("账号已停用"), "{}", page.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM web_sessions WHERE revoked_at IS NULL").await, 0, "revoked");
    // Back in the directory, the old cookie still opens nothing.
    let mut tx = app.state.db.begin().await.unwrap();
    sql::query("UPDATE people SET active = 1 WHERE userid = 'zhangwei'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(console.get("/ui/mine").await.status, 303);
}

#[tokio::test]
async fn a_session_ends_after_session_hours() {
    let app = TestApp::builder().config("[web]\nsession_hours = 2\n").spawn().await;
    let console = Console::sign_in(&app, "zhangwei").await;
    app.advance(Duration::minutes(119));
    assert_eq!(console.get("/ui/mine").await.status, 200);
    app.advance(Duration::minutes(2));
    let page = console.get("/ui/mine").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/ui/login?next=%2Fui%2Fmine");
}

#[tokio::test]
async fn signing_out_revokes_the_session() {
    let app = TestApp::spawn().await;
    let console = Console::sign_in(&app, "zhangwei").await;
    let out = console.post("/ui/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(console.get("/ui/mine").await.status, 303, "the cookie opens nothing any more");
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    app.say("zhangwei", "C类 公司=云帆科技 联系人=王").await;
    let console = Console::sign_in(&app, "zhangwei").await;
    let events = app.count("SELECT COUNT(*) FROM events WHERE entity = 'record'").await;
    for form in [vec![], vec![("csrf", "not-the-token")], vec![("csrf", "")]] {
        let page = console.post_bare("/ui/mine/1/withdraw", &form).await;
        assert_eq!(page.status, 403, "{form:?}: {}", page.body);
    }
    // Another session's token is not this one's.
    let other = Console::sign_in(&app, "zhangwei").await;
    assert_eq!(console.post_bare("/ui/mine/1/withdraw", &[("csrf", &other.csrf)]).await.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM records WHERE state = 'reported'").await, 1, "still pending");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE entity = 'record'").await, events, "nothing logged");
    // With the token, as the page sends it.
    let done = console.post_bare("/ui/mine/1/withdraw", &[("csrf", &console.csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("已撤回 #1"), "{}", done.body);
}

#[tokio::test]
async fn someone_outside_the_company_gets_no_session() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};
    let app = TestApp::spawn().await;
    // WeCom answers an openid, no userid, for a non-member.
    Mock::given(method("GET"))
        .and(path("/cgi-bin/auth/getuserinfo"))
        .and(query_param("code", "OUTSIDER"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"errcode": 0, "errmsg": "ok", "openid": "oX1"})),
        )
        .mount(&app.mock)
        .await;
    let (_, state) = start(&app, "/ui/mine").await;
    let back = come_back(&app, "OUTSIDER", &state).await;
    assert_eq!(back.status, 401);
    assert!(back.body.contains("只有本企业成员可以登录"), "{}", back.body);
    assert!(session_cookie(&back).is_none());
}

#[tokio::test]
async fn a_sign_in_comes_back_only_to_a_console_page() {
    let app = TestApp::spawn().await;
    for next in ["https://evil.example/", "//evil.example/ui/", "/ui/../x"] {
        let (_, state) = start(&app, &url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()).await;
        let back = come_back(&app, &code_for(&app, "zhangwei").await, &state).await;
        assert_eq!(back.status, 303);
        let to = back.location();
        assert!(to.starts_with("/ui/") && !to.starts_with("//") && !to.contains(".."), "{next} → {to}");
    }
}

#[tokio::test]
async fn an_htmx_action_after_the_session_ended_loads_the_sign_in_page() {
    let app = TestApp::spawn().await;
    let console = Console::sign_in(&app, "zhangwei").await;
    app.advance(Duration::hours(13));
    let r = crate::web_console::client()
        .post(app.url("/ui/mine/1/withdraw"))
        .header("cookie", &console.cookie)
        .header("hx-request", "true")
        .header("hx-current-url", app.url("/ui/mine?month=2026-01"))
        .form(&[("csrf", console.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["hx-redirect"], "/ui/login?next=%2Fui%2Fmine%3Fmonth%3D2026-01");
}

#[tokio::test]
async fn local_modes_simulator_signs_in_through_oauth_once_per_code() {
    let app = TestApp::builder().local_mode().spawn().await;
    let http = crate::web_console::client();
    let r = http
        .get(app.url("/ui/login?next=/ui/todo"))
        .header("user-agent", "Mozilla/5.0 wxwork/4.1.0")
        .send()
        .await
        .unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/simulator/connect/oauth2/authorize");
    let page = http.get(to.as_str()).send().await.unwrap().text().await.unwrap();
    let at = page.find("userid=cs_lead").expect("the demo people are listed");
    let from = page[..at].rfind("href=\"").unwrap() + "href=\"".len();
    let link = page[from..].split('"').next().unwrap().replace("&amp;", "&");
    let back = http.get(app.url(&link)).send().await.unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/ui/auth/callback");
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    let cookie = cookie_set(r.headers(), "leadboard_login").expect("the sign-in's cookie");
    let signed = come_back(&app, &q["code"], &Login { state: q["state"].clone(), cookie }).await;
    assert_eq!((signed.status, signed.location()), (303, "/ui/todo"), "{}", signed.body);
    assert!(session_cookie(&signed).is_some());
    // The simulator's code is single use, as WeCom's.
    let (_, fresh) = start(&app, "/ui/mine").await;
    let reused = come_back(&app, &q["code"], &fresh).await;
    assert_eq!(reused.status, 401, "{}", reused.body);
}
