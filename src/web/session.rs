//! Signing in with WeCom and the console's sessions. `/ui/login` hands out a `state`,
//! bound to the browser by a signed cookie (ten minutes; nothing is stored, so that
//! nobody can make the service write by asking to sign in), and sends it to WeCom: OAuth2
//! (`snsapi_base`) inside the WeCom app, QR login elsewhere (in local mode, the
//! simulator's page). WeCom sends it back to `/ui/auth/callback` with a code, which
//! `auth/getuserinfo` turns into a userid; someone active in the directory gets a
//! session, stored in the database and named by a signed, HttpOnly, SameSite=Lax cookie
//! (Secure behind https). Every request checks the session and that its person is
//! still active; a departed person's sessions end. Every form carries the session's
//! CSRF token (htmx sends it as a header).

use super::{Nav, WebError};
use crate::config::Settings;
use crate::service::{Ctx, Identity, identify, sessions};
use crate::state::AppState;
use crate::store::directory::Person;
use crate::store::web::{self as store, Session};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Redirect;
use axum::{Form, RequestExt};
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "leadboard_session";

/// The cookie that binds a sign-in's `state` to the browser that asked for it.
const LOGIN_COOKIE: &str = "leadboard_login";

/// How long a `state` handed out for a sign-in can be used.
const STATE_MINUTES: i64 = 10;

/// The header htmx sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path under `/ui/` is a place to come back to (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains('\\')
                && !n.contains("/..")
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

/// `/ui/login`: a fresh `state`, kept in a signed cookie with where to come back to
/// and until when, and off to WeCom's sign-in.
pub async fn login(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> (SignedCookieJar, Redirect) {
    let settings = state.settings();
    let s = token();
    let expires = state.clock.now_ms() + STATE_MINUTES * 60_000;
    // `safe_next` has no white space: the three fields split on it.
    let value = format!("{s} {expires} {}", safe_next(q.next.as_deref()));
    let cookie = Cookie::build((LOGIN_COOKIE, value))
        .path("/ui/auth")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.web.https())
        .max_age(time::Duration::minutes(STATE_MINUTES))
        .build();
    let in_wecom = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.to_ascii_lowercase().contains("wxwork"));
    (jar.add(cookie), Redirect::to(&sign_in_url(&settings, &s, in_wecom)))
}

/// The place to come back to, when the browser's sign-in cookie holds `given` as its
/// state and has not expired.
fn started(jar: &SignedCookieJar, given: &str, now_ms: i64) -> Option<String> {
    let cookie = jar.get(LOGIN_COOKIE)?;
    let mut fields = cookie.value().splitn(3, ' ');
    let (s, expires, next) = (fields.next()?, fields.next()?.parse::<i64>().ok()?, fields.next()?);
    let same = !given.is_empty() && bool::from(s.as_bytes().ct_eq(given.as_bytes()));
    (same && expires > now_ms).then(|| next.to_owned())
}

/// WeCom's OAuth2 authorize URL (inside the WeCom app) or its QR login page (other
/// browsers); in local mode, the simulator's, which stands in for both.
pub fn sign_in_url(settings: &Settings, state: &str, in_wecom: bool) -> String {
    let redirect = settings.web.link("/ui/auth/callback");
    let agent = settings.wecom.agent_id.to_string();
    let local = |path: &str| format!("{}{}{path}", settings.web.base(), crate::wecom::simulator::PREFIX);
    let mut url = if in_wecom {
        let base = if settings.local_mode {
            local("/connect/oauth2/authorize")
        } else {
            "https://open.weixin.qq.com/connect/oauth2/authorize".into()
        };
        let mut u = url::Url::parse(&base).expect("a valid base");
        u.query_pairs_mut()
            .append_pair("appid", &settings.wecom.corp_id)
            .append_pair("redirect_uri", &redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "snsapi_base")
            .append_pair("state", state)
            .append_pair("agentid", &agent);
        u
    } else {
        let base = if settings.local_mode {
            local("/wwlogin/sso/login")
        } else {
            "https://login.work.weixin.qq.com/wwlogin/sso/login".into()
        };
        let mut u = url::Url::parse(&base).expect("a valid base");
        u.query_pairs_mut()
            .append_pair("login_type", "CorpApp")
            .append_pair("appid", &settings.wecom.corp_id)
            .append_pair("agentid", &agent)
            .append_pair("redirect_uri", &redirect)
            .append_pair("state", state);
        u
    };
    if in_wecom {
        url.set_fragment(Some("wechat_redirect"));
    }
    url.into()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

fn refused(message: &str) -> WebError {
    WebError::Refused(StatusCode::UNAUTHORIZED, message.to_owned())
}

/// `/ui/auth/callback?code=&state=`: the `state` is used up, the code exchanged, and a
/// session opened for someone active in the directory.
pub async fn callback(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<CallbackQuery>,
) -> Result<(SignedCookieJar, Redirect), WebError> {
    let settings = state.settings();
    let now = state.clock.now_ms();
    let (Some(code), Some(given)) = (q.code.filter(|c| !c.is_empty()), q.state) else {
        return Err(refused("登录未完成（没有收到企业微信的授权码）。请重新登录。"));
    };
    let Some(next) = started(&jar, &given, now) else {
        tracing::warn!("sign-in with an unknown or expired state, or from another browser, refused");
        return Err(refused("登录链接无效或已过期，请重新登录。"));
    };
    let userid = match state.client.user_from_code(&code).await {
        Ok(Some(userid)) => userid,
        Ok(None) => return Err(refused("企业微信未返回成员账号：只有本企业成员可以登录。")),
        Err(e) => {
            tracing::warn!(error = %e, "auth/getuserinfo refused the sign-in code");
            return Err(refused("企业微信未确认这次登录（授权码无效或已使用），请重新登录。"));
        }
    };
    let mut tx = state.db.begin().await?;
    let person = match identify(&mut tx, &userid).await? {
        Identity::Active(person) => person,
        Identity::Departed => {
            tracing::warn!(userid, "sign-in by a deactivated person refused");
            return Err(refused("您的账号已停用，无法登录全员营销控制台。"));
        }
        Identity::Unknown => {
            tracing::warn!(userid, "sign-in by a userid not in the directory refused");
            return Err(refused("没有在全员营销通讯录中找到您，暂时无法登录。请联系管理员开通。"));
        }
    };
    let hours = i64::try_from(settings.web.session_hours).unwrap_or(12);
    let session =
        Session { id: token(), userid: person.userid.clone(), csrf: token(), expires_at: now + hours * 3_600_000 };
    sessions::open(&mut tx, now, &person, &session).await?;
    tx.commit().await?;
    tracing::info!(userid = %person.userid, "console sign-in");
    let jar =
        jar.remove(Cookie::build(LOGIN_COOKIE).path("/ui/auth")).add(session_cookie(&settings, session.id, hours));
    Ok((jar, Redirect::to(&next)))
}

fn session_cookie(settings: &Settings, id: String, hours: i64) -> Cookie<'static> {
    Cookie::build((COOKIE, id))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.web.https())
        .max_age(time::Duration::hours(hours))
        .build()
}

/// `POST /ui/logout`: the session ends here and in the database.
pub async fn logout(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Posted { viewer, .. }: Posted<CsrfOnly>,
) -> Result<(SignedCookieJar, Redirect), WebError> {
    let mut tx = state.db.begin().await?;
    sessions::sign_out(&mut tx, state.clock.now_ms(), &viewer.session).await?;
    tx.commit().await?;
    Ok((jar.remove(Cookie::build(COOKIE).path("/ui")), Redirect::to("/ui/signed-out")))
}

/// Someone signed in, still active, with their session; what a page needs to act as
/// them.
pub struct Viewer {
    pub person: Person,
    pub session: Session,
    pub settings: Arc<Settings>,
    pub now: DateTime<Utc>,
    pub nav: Nav,
}

impl Viewer {
    /// The operation context: this person, now, under the settings this request took.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::person(&self.settings, self.now, self.person.clone())
    }
}

impl<S> FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Viewer, WebError> {
        let state = AppState::from_ref(s);
        // An htmx request comes back to the page it was made from, not to the action.
        let htmx = parts.headers.contains_key("hx-request");
        let page = parts
            .headers
            .get("hx-current-url")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| format!("{}{}", u.path(), u.query().map(|q| format!("?{q}")).unwrap_or_default()));
        let next = match (htmx, page) {
            (true, Some(page)) => page,
            _ => parts.uri.path_and_query().map_or("/ui/", |p| p.as_str()).to_owned(),
        };
        let sign_in = || WebError::SignIn { next: safe_next(Some(&next)), htmx };
        let jar = SignedCookieJar::<Key>::from_headers(&parts.headers, state.cookie_key.clone());
        let Some(id) = jar.get(COOKIE).map(|c| c.value().to_owned()) else { return Err(sign_in()) };
        let now = state.clock.now();
        let mut conn = state.db.reader().acquire().await?;
        let Some(session) = store::live_session(&mut conn, &id, now.timestamp_millis()).await? else {
            return Err(sign_in());
        };
        let person = match identify(&mut conn, &session.userid).await? {
            Identity::Active(person) => person,
            _ => {
                drop(conn);
                let mut tx = state.db.begin().await?;
                let ended = sessions::end_departed(&mut tx, now.timestamp_millis(), &session.userid).await?;
                tx.commit().await?;
                tracing::warn!(userid = %session.userid, ended, "sessions of a departed person ended");
                return Err(refused("您的账号已停用，登录已失效。"));
            }
        };
        let settings = state.settings();
        let nav = Nav::of(&settings, &person, &session.csrf);
        Ok(Viewer { person, session, settings, now, nav })
    }
}

/// A form field every posted form has.
pub trait CsrfField {
    fn csrf(&self) -> Option<&str>;
}

/// A form with nothing but the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

impl CsrfField for CsrfOnly {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// A posted form from a signed-in viewer, whose CSRF token (the `x-csrf-token` header
/// or the form's `csrf` field) is the session's; anything else is refused with 403
/// before the form is looked at.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
    pub headers: HeaderMap,
}

impl<S, T> FromRequest<S> for Posted<T>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    T: DeserializeOwned + CsrfField + Send + 'static,
{
    type Rejection = WebError;

    async fn from_request(request: Request, s: &S) -> Result<Posted<T>, WebError> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, s).await?;
        let headers = parts.headers.clone();
        let request = Request::from_parts(parts, body);
        let Form(form) = request
            .extract::<Form<T>, _>()
            .await
            .map_err(|e| WebError::Refused(StatusCode::BAD_REQUEST, format!("表单无效：{e}")))?;
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).or(form.csrf());
        let expected = viewer.session.csrf.as_bytes();
        if !given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected))) {
            tracing::warn!(userid = %viewer.person.userid, "console form without the session's CSRF token refused");
            return Err(WebError::Csrf);
        }
        Ok(Posted { viewer, form, headers })
    }
}
