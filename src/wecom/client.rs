//! The WeCom server API client (`gettoken`, then calls with `access_token`, answers
//! carrying `errcode`/`errmsg`): one cached access token shared by
//! every task, fetched single-flight and refreshed once when WeCom says it is invalid.
//! A refused gettoken (wrong secret, untrusted IP, rate limit) is remembered for a
//! cool-down during which nobody asks again: repeated wrong secrets can get the
//! server's IP blocked by WeCom.
//!
//! With a database ([`WecomClient::with_shared_tokens`], as the service and its
//! commands run) the token and the cool-down are shared by every process on it
//! (`store::tokens`): a process's cache is read from the database, one process at a
//! time refreshes (the others wait and take its token), and a token WeCom rejects is
//! marked stale there for all. So replicas fetch one token per expiry, not one each.

use crate::clock::{Clock, SystemClock};
use crate::store::Db;
use crate::store::tokens::{self, Refresh};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How a failed call should be treated by its caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Worth retrying later: network trouble, HTTP 5xx, busy (-1), rate limits, and
    /// token trouble (which an operator can fix without losing messages). `code` is
    /// WeCom's errcode when WeCom answered with one; `not_before` (Unix ms) is set when
    /// an earlier attempt is known to be pointless, during a gettoken cool-down.
    #[error("temporary failure: {}", with_code(*.code, .message))]
    Retryable { code: Option<i64>, message: String, not_before: Option<i64> },
    /// Retrying the same request will not help.
    #[error("WeCom error {code}: {message}")]
    Permanent { code: i64, message: String },
}

/// `WeCom error CODE: message`, or the message alone when WeCom did not answer.
fn with_code(code: Option<i64>, message: &str) -> String {
    match code {
        Some(code) => format!("WeCom error {code}: {message}"),
        None => message.to_owned(),
    }
}

impl ApiError {
    /// A retryable failure without a WeCom errcode (network, HTTP, unreadable answer).
    pub fn retryable(message: impl Into<String>) -> Self {
        ApiError::Retryable { code: None, message: message.into(), not_before: None }
    }

    /// A retryable failure with WeCom's errcode.
    fn retryable_code(code: i64, message: impl Into<String>) -> Self {
        ApiError::Retryable { code: Some(code), message: message.into(), not_before: None }
    }

    /// Whether the message surely reached nobody: WeCom answered with an error code, or
    /// it was never sent.
    pub fn was_refused(&self) -> bool {
        matches!(self, ApiError::Permanent { .. } | ApiError::Retryable { code: Some(_), .. })
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ApiError::Retryable { .. })
    }

    /// What went wrong, without the classification (WeCom's errmsg when it answered).
    pub fn message(&self) -> &str {
        match self {
            ApiError::Retryable { message, .. } | ApiError::Permanent { message, .. } => message,
        }
    }

    /// WeCom's errcode, when WeCom answered with one (also for retryable failures such
    /// as 60020, and for a refused gettoken).
    pub fn code(&self) -> Option<i64> {
        match self {
            ApiError::Retryable { code, .. } => *code,
            ApiError::Permanent { code, .. } => Some(*code).filter(|c| *c != 0),
        }
    }

    /// When retrying can first succeed (Unix ms), if known: the end of a gettoken
    /// cool-down.
    pub fn not_before(&self) -> Option<i64> {
        match self {
            ApiError::Retryable { not_before, .. } => *not_before,
            ApiError::Permanent { .. } => None,
        }
    }
}

/// How long a refused gettoken is remembered: asking again at most once a minute
/// keeps a wrong secret from getting the server's IP blocked.
pub const REFUSAL_COOLDOWN: Duration = Duration::from_secs(60);

#[derive(Default)]
struct TokenState {
    cached: Option<CachedToken>,
    refused: Option<Refusal>,
}

struct CachedToken {
    value: String,
    /// Unix ms, by the client's clock.
    refresh_at: i64,
}

/// WeCom refused gettoken; no new attempt before `until` (Unix ms).
struct Refusal {
    until: i64,
    code: i64,
    message: String,
}

impl Refusal {
    fn error(&self) -> ApiError {
        ApiError::Retryable {
            code: Some(self.code),
            message: format!("gettoken refused: {} (not asked again until the cool-down ends)", self.message),
            not_before: Some(self.until),
        }
    }
}

/// A client for one self-built app.
pub struct WecomClient {
    http: reqwest::Client,
    base: String,
    corp_id: String,
    secret: String,
    token: Mutex<TokenState>,
    clock: Arc<dyn Clock>,
    on_token_fetch: Box<dyn Fn() + Send + Sync>,
    /// The database sharing the token, and the credential's key in it.
    shared: Option<(Db, String)>,
}

impl std::fmt::Debug for WecomClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomClient").field("base", &self.base).finish_non_exhaustive()
    }
}

const TOKEN_EXPIRED: [i64; 2] = [40014, 42001];
/// Busy, rate limits, and 60020 (server IP not yet in the trusted list): an operator
/// fixes that in the admin console, and the messages waiting then go out.
const RETRYABLE: [i64; 4] = [-1, 45009, 45033, 60020];

impl WecomClient {
    /// `base` is the API origin, e.g. `https://qyapi.weixin.qq.com` (tests use a mock).
    pub fn new(base: &str, corp_id: &str, secret: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("leadboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend available");
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            corp_id: corp_id.to_owned(),
            secret: secret.to_owned(),
            token: Mutex::new(TokenState::default()),
            clock: Arc::new(SystemClock),
            on_token_fetch: Box::new(|| {}),
            shared: None,
        }
    }

    /// Shares the access token with every process on `db` (see the module).
    pub fn with_shared_tokens(mut self, db: Db) -> Self {
        self.shared = Some((db, tokens::key(&self.corp_id, &self.secret)));
        self
    }

    /// Calls `hook` each time a token is fetched successfully (metrics).
    pub fn with_token_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_token_fetch = Box::new(hook);
        self
    }

    /// Times token refreshes and the refusal cool-down by `clock` (the service's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// POSTs JSON to `/cgi-bin/{api}` with the access token.
    #[tracing::instrument(level = "debug", skip(self, body))]
    pub async fn post(&self, api: &str, body: &Value) -> Result<Value, ApiError> {
        self.with_token(|token| {
            let request =
                self.http.post(format!("{}/cgi-bin/{api}", self.base)).query(&[("access_token", token)]).json(body);
            async move { classify(request.send().await).await }
        })
        .await
    }

    /// GETs `/cgi-bin/{api}` with the access token and query parameters.
    #[tracing::instrument(level = "debug", skip(self, query))]
    pub async fn get(&self, api: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.with_token(|token| {
            let request =
                self.http.get(format!("{}/cgi-bin/{api}", self.base)).query(query).query(&[("access_token", token)]);
            async move { classify(request.send().await).await }
        })
        .await
    }

    /// `auth/getuserinfo`: who signed in with an OAuth or QR-login `code` — their
    /// `userid` when they are a member of the company, `None` when WeCom answers only an
    /// `openid` (someone outside it). A used or unknown code is WeCom's 40029.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn user_from_code(&self, code: &str) -> Result<Option<String>, ApiError> {
        let answer = self.get("auth/getuserinfo", &[("code", code.to_owned())]).await?;
        let userid = answer["userid"].as_str().or(answer["UserId"].as_str()).filter(|u| !u.is_empty());
        Ok(userid.map(str::to_owned))
    }

    /// Posts to a group robot webhook; the key is the credential, no token involved.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn webhook(&self, key: &str, body: &Value) -> Result<Value, ApiError> {
        let response = self
            .http
            .post(format!("{}/cgi-bin/webhook/send", self.base))
            .query(&[("key", key)])
            .json(body)
            .send()
            .await;
        classify(response).await.unwrap_or_else(|_| {
            Err(ApiError::Permanent { code: 0, message: "unexpected token error from webhook".into() })
        })
    }

    /// Uploads a temporary file (`media/upload`), returning its media id.
    #[tracing::instrument(level = "debug", skip(self, bytes), fields(size = bytes.len()))]
    pub async fn upload_media(&self, kind: &str, file_name: &str, bytes: Vec<u8>) -> Result<String, ApiError> {
        let value = self
            .with_token(|token| {
                let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(file_name.to_owned());
                let form = reqwest::multipart::Form::new().part("media", part);
                let request = self
                    .http
                    .post(format!("{}/cgi-bin/media/upload", self.base))
                    .query(&[("access_token", token), ("type", kind)])
                    .multipart(form);
                async move { classify(request.send().await).await }
            })
            .await?;
        value["media_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::retryable("media/upload answered without media_id"))
    }

    /// Makes one call with the access token; when WeCom says the token is invalid or
    /// expired (40014 / 42001), drops it, fetches a new one and repeats the call once.
    /// Every call that needs a token goes through here.
    async fn with_token<F, Fut>(&self, call: F) -> Result<Value, ApiError>
    where
        F: Fn(&str) -> Fut,
        Fut: Future<Output = Result<Result<Value, ApiError>, Expired>>,
    {
        let token = self.token().await?;
        match call(&token).await {
            Ok(result) => result,
            Err(Expired) => {
                self.invalidate(&token).await;
                let token = self.token().await?;
                call(&token).await.unwrap_or_else(|_| Err(ApiError::retryable("access token rejected twice")))
            }
        }
    }

    /// The cached token, fetching one if there is none or it is due for refresh. The
    /// lock is held while fetching, so concurrent callers wait for one fetch; after a
    /// refusal, callers are answered from memory until the cool-down ends. With a shared
    /// database, a token missing here is looked for there first, and a fetch waits for
    /// any other process's refresh and takes its token.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn token(&self) -> Result<String, ApiError> {
        let mut state = self.token.lock().await;
        let now = self.clock.now_ms();
        if let Some(token) = state.cached.as_ref().filter(|t| now < t.refresh_at) {
            return Ok(token.value.clone());
        }
        if let Some(refusal) = state.refused.as_ref().filter(|r| now < r.until) {
            return Err(refusal.error());
        }
        let Some((db, key)) = &self.shared else {
            return self.fetch(&mut state).await.map(|(token, _)| token);
        };
        let unavailable = |e: sqlx::Error| ApiError::retryable(format!("shared access token unavailable: {e}"));
        // Another process's token or cool-down, without a lock in the common case.
        if let Some(token) = self.adopt(&mut state, tokens::get(db, key).await.map_err(unavailable)?)? {
            return Ok(token);
        }
        let refresh = Refresh::begin(db, key).await.map_err(unavailable)?;
        if let Some(token) = self.adopt(&mut state, refresh.found.clone())? {
            return Ok(token);
        }
        match self.fetch(&mut state).await {
            Ok((token, refresh_at)) => {
                refresh.store_token(&token, refresh_at, self.clock.now_ms()).await.map_err(unavailable)?;
                Ok(token)
            }
            Err(e) => {
                if let Some(refusal) = state.refused.as_ref().filter(|r| r.until > self.clock.now_ms()) {
                    refresh.store_refusal(refusal.until, refusal.code, &refusal.message).await.map_err(unavailable)?;
                }
                Err(e)
            }
        }
    }

    /// Takes up the shared row `found`: its token while it is fresh, or its cool-down
    /// (as an error) while it lasts; `Ok(None)` when neither, and a fetch is due.
    fn adopt(&self, state: &mut TokenState, found: Option<tokens::Shared>) -> Result<Option<String>, ApiError> {
        let Some(found) = found else { return Ok(None) };
        let now = self.clock.now_ms();
        if let Some(value) = found.value.filter(|_| now < found.refresh_at) {
            state.cached = Some(CachedToken { value: value.clone(), refresh_at: found.refresh_at });
            return Ok(Some(value));
        }
        if now < found.refused_until {
            let refusal = Refusal {
                until: found.refused_until,
                code: found.refused_code.unwrap_or(0),
                message: found.refused_message.unwrap_or_default(),
            };
            let error = refusal.error();
            state.refused = Some(refusal);
            return Err(error);
        }
        Ok(None)
    }

    /// Asks WeCom for a token (gettoken), caching it with its refresh time (Unix ms);
    /// a refusal starts the cool-down.
    async fn fetch(&self, state: &mut TokenState) -> Result<(String, i64), ApiError> {
        let response = self
            .http
            .get(format!("{}/cgi-bin/gettoken", self.base))
            .query(&[("corpid", self.corp_id.as_str()), ("corpsecret", self.secret.as_str())])
            .send()
            .await;
        let value = match classify(response).await {
            Ok(Ok(value)) => value,
            Ok(Err(ApiError::Permanent { code, message }))
            | Ok(Err(ApiError::Retryable { code: Some(code @ (45009 | 45033 | 60020)), message, .. })) => {
                return Err(self.refused(state, code, message));
            }
            Ok(Err(e)) => return Err(e),
            Err(Expired) => return Err(self.refused(state, 0, "gettoken answered with a token error".into())),
        };
        let token = value["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::retryable("gettoken answered without access_token"))?
            .to_owned();
        (self.on_token_fetch)();
        let expires_in = value["expires_in"].as_i64().filter(|s| *s > 0).unwrap_or(7200);
        // Refresh at 90 % of the lifetime, before WeCom expires it.
        let refresh_at = self.clock.now_ms().saturating_add(expires_in.saturating_mul(900));
        state.refused = None;
        state.cached = Some(CachedToken { value: token.clone(), refresh_at });
        Ok((token, refresh_at))
    }

    /// Remembers a refused gettoken and logs it, once per cool-down. Messages wait for
    /// an operator to fix the cause rather than being dropped.
    fn refused(&self, state: &mut TokenState, code: i64, message: String) -> ApiError {
        let cooldown_secs = REFUSAL_COOLDOWN.as_secs();
        tracing::error!(
            code,
            %message,
            cooldown_secs,
            "gettoken refused: check wecom.corp_id, wecom.secret and the trusted IP list; not asked again during the cool-down"
        );
        let until = self.clock.now_ms().saturating_add(REFUSAL_COOLDOWN.as_millis() as i64);
        let refusal = Refusal { until, code, message };
        let error = refusal.error();
        state.refused = Some(refusal);
        error
    }

    /// Drops the cached token if it is still the one that failed (another task, or
    /// process, may already have replaced it), here and in the shared database.
    async fn invalidate(&self, stale: &str) {
        let mut state = self.token.lock().await;
        if state.cached.as_ref().is_some_and(|t| t.value == stale) {
            state.cached = None;
        }
        if let Some((db, key)) = &self.shared
            && let Err(e) = tokens::invalidate(db, key, stale).await
        {
            tracing::warn!(error = %e, "the rejected access token could not be marked stale in the database");
        }
    }
}

/// The token used was invalid or expired (40014 / 42001).
struct Expired;

/// Reads a WeCom answer: JSON with `errcode` (0 = ok), HTTP 200 even on errors.
async fn classify(response: Result<reqwest::Response, reqwest::Error>) -> Result<Result<Value, ApiError>, Expired> {
    let response = match response {
        Ok(r) => r,
        Err(e) => return Ok(Err(ApiError::retryable(format!("network: {}", without_url(e))))),
    };
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Ok(Err(ApiError::retryable(format!("HTTP {status}"))));
    }
    if !status.is_success() {
        return Ok(Err(ApiError::Permanent { code: i64::from(status.as_u16()), message: format!("HTTP {status}") }));
    }
    let value: Value = match response.json().await {
        Ok(v) => v,
        Err(e) => return Ok(Err(ApiError::retryable(format!("unreadable answer: {}", without_url(e))))),
    };
    let code = value["errcode"].as_i64().unwrap_or(0);
    let message = value["errmsg"].as_str().unwrap_or_default().to_owned();
    if code == 0 {
        Ok(Ok(value))
    } else if TOKEN_EXPIRED.contains(&code) {
        Err(Expired)
    } else if RETRYABLE.contains(&code) {
        Ok(Err(ApiError::retryable_code(code, message)))
    } else {
        Ok(Err(ApiError::Permanent { code, message }))
    }
}

/// reqwest errors print the URL, which carries the access token or webhook key.
fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string()
}
