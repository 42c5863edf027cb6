//! The web console under `/ui/`: WeCom sign-in, then pages for each role — 我的, 待办,
//! 结算, 审核, 管理 — server-rendered (askama templates in `templates/`, checked at
//! compile time) with htmx for the actions. A front end like `commands/`: every page
//! and action is a `service` operation with its `Ctx`, through the one permission
//! table, so a page can do exactly what chat allows and nothing else.

pub mod admin;
pub mod assets;
pub mod audit;
pub mod mine;
pub mod session;
pub mod settle;
pub mod todo;

use crate::service::access;
use crate::service::{Outcome, ServiceError};
use crate::state::AppState;
use crate::store::Tx;
use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session::Viewer;

/// The console's routes (the caller adds the state).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(home))
        .route("/ui/login", get(session::login))
        .route("/ui/auth/callback", get(session::callback))
        .route("/ui/logout", post(session::logout))
        .route("/ui/signed-out", get(signed_out))
        .route("/ui/mine", get(mine::page))
        .route("/ui/mine/{id}/withdraw", post(mine::withdraw))
        .route("/ui/mine/{id}/edit", post(mine::edit))
        .route("/ui/mine/{id}/appeal", post(mine::appeal))
        .route("/ui/todo", get(todo::page))
        .route("/ui/todo/{id}/{action}", post(todo::decide))
        .route("/ui/settle", get(settle::page))
        .route("/ui/settle/{month}/download/{format}", get(settle::download))
        .route("/ui/settle/{month}/close", post(settle::close))
        .route("/ui/settle/stake", post(settle::mark_paid))
        .route("/ui/audit", get(audit::page))
        .route("/ui/audit/{id}/{action}", post(audit::act))
        .route("/ui/audit/finalise/{contest}", post(audit::finalise))
        .route("/ui/admin", get(admin::page))
        .route("/ui/admin/act", post(admin::act))
        .route("/ui/assets/{*file}", get(assets::serve))
        .layer(middleware::from_fn(security_headers))
}

/// The headers every console answer carries: no inline script or style, no framing,
/// no sniffing, no referrer outside the console.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOut;

async fn signed_out() -> Result<Response, WebError> {
    render(&SignedOut)
}

/// The first page: 待办 for a confirmer, 我的 for everyone else.
async fn home(viewer: Viewer) -> Redirect {
    if viewer.nav.todo { Redirect::to("/ui/todo") } else { Redirect::to("/ui/mine") }
}

/// What the navigation shows: the pages the viewer's roles open.
#[derive(Debug, Clone)]
pub struct Nav {
    pub name: String,
    pub csrf: String,
    /// The page shown, to mark its link.
    pub here: &'static str,
    pub todo: bool,
    pub audit: bool,
    pub admin: bool,
    pub settle: bool,
}

impl Nav {
    fn of(settings: &crate::config::Settings, person: &crate::store::directory::Person, csrf: &str) -> Nav {
        use crate::service::access::Operation;
        Nav {
            name: person.name.clone(),
            csrf: csrf.to_owned(),
            here: "",
            todo: access::allows(settings, person, Operation::Todo),
            audit: access::allows(settings, person, Operation::Review),
            admin: access::allows(settings, person, Operation::Manage),
            settle: access::allows(settings, person, Operation::Settle),
        }
    }

    /// The navigation with `here` marked.
    pub fn at(&self, here: &'static str) -> Nav {
        Nav { here, ..self.clone() }
    }
}

/// Why a console request failed, as the page it answers.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or the session ended): sign in, then come back to `next`; an
    /// htmx request is told to load the sign-in page as a whole (`HX-Redirect`).
    SignIn {
        next: String,
        htmx: bool,
    },
    /// Signed in, but the role does not open this page or action.
    Forbidden(String),
    /// A form without the session's CSRF token.
    Csrf,
    /// Something the person should read (a refused sign-in, a bad month).
    Refused(StatusCode, String),
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        WebError::Internal(e.into())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Internal(e.into())
    }
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> Self {
        WebError::Internal(e)
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Forbidden(_) => WebError::Forbidden(e.to_string()),
            ServiceError::Refused(message) => WebError::Refused(StatusCode::UNPROCESSABLE_ENTITY, message),
            ServiceError::Db(e) => e.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    sign_in: bool,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message, sign_in) = match self {
            WebError::SignIn { next, htmx } => {
                let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", &next).finish();
                let to = format!("/ui/login?{query}");
                if htmx && let Ok(value) = HeaderValue::from_str(&to) {
                    return (StatusCode::OK, [("hx-redirect", value)]).into_response();
                }
                return Redirect::to(&to).into_response();
            }
            WebError::Forbidden(message) => (StatusCode::FORBIDDEN, "没有权限", message, false),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "请求无效",
                "页面已过期或请求不是从本页面发出的，请刷新页面后重试。".to_owned(),
                false,
            ),
            WebError::Refused(status, message) => (status, "无法完成", message, status == StatusCode::UNAUTHORIZED),
            WebError::Internal(e) => {
                tracing::error!(error = %e, "console request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "出错了", "服务暂时出错，请稍后再试。".to_owned(), false)
            }
        };
        let page = MessagePage { title, message: &message, sign_in };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

/// A page's HTML, or the error page.
pub fn render(page: &impl Template) -> Result<Response, WebError> {
    Ok(Html(page.render()?).into_response())
}

/// Runs an operation as a chat command runs: in one write transaction, inside a
/// savepoint (a refusal leaves nothing behind), committed before the answer; the outbox
/// worker is woken for what it queued. `run_op!(&state, async |conn| body)`, as
/// [`atomically!`](crate::service::atomically).
macro_rules! run_op {
    ($state:expr, async |$c:ident| $body:expr) => {{
        let state: &$crate::state::AppState = $state;
        match state.db.begin().await {
            Err(e) => Err($crate::web::WebError::from(e)),
            Ok(mut tx) => {
                let outcome = $crate::service::atomically!(&mut *tx, async |$c| $body);
                $crate::web::finish_op(state, tx, outcome).await
            }
        }
    }};
}
pub(crate) use run_op;

/// Commits what a [`run_op!`] operation did, unless the database failed.
pub async fn finish_op<T>(state: &AppState, tx: Tx<'_>, outcome: Outcome<T>) -> Result<Outcome<T>, WebError> {
    if let Err(ServiceError::Db(e)) = outcome {
        return Err(e.into());
    }
    tx.commit().await?;
    state.outbox_wake.notify_one();
    state.changes.wake();
    Ok(outcome)
}

#[derive(Template)]
#[template(path = "result.html")]
struct ResultFragment<'a> {
    ok: bool,
    message: &'a str,
    back: &'a str,
    nav: Option<&'a Nav>,
}

/// What an action answers: the outcome's message, as a fragment for htmx (which swaps
/// it in place of the item acted on) or as a page with a link back.
pub fn answer(headers: &HeaderMap, nav: &Nav, back: &str, outcome: Outcome) -> Result<Response, WebError> {
    let (ok, message) = match outcome {
        Ok(message) => (true, message),
        Err(ServiceError::Forbidden(op)) => return Err(WebError::Forbidden(ServiceError::Forbidden(op).to_string())),
        Err(ServiceError::Refused(message)) => (false, message),
        Err(ServiceError::Db(e)) => return Err(e.into()),
    };
    let htmx = headers.contains_key("hx-request");
    let page = ResultFragment { ok, message: &message, back, nav: (!htmx).then_some(nav) };
    render(&page)
}
