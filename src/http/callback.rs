//! `GET /wecom/callback` (URL verification) and `POST /wecom/callback` (messages and
//! events). Every refusal is a bare 4xx; its reason goes to the log and the metrics.

use crate::config::Settings;
use crate::exactly_once::{self, Reply, Seen};
use crate::http::serve::BodyTimeout;
use crate::state::AppState;
use crate::wecom::crypto::Rejection;
use crate::wecom::xml;
use axum::body::{Body, to_bytes};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::time::Instant;

/// Why a callback was refused.
#[derive(Debug)]
enum Refusal {
    MissingParams,
    Stale(u64),
    TooLarge,
    /// The body ended before its declared length (or its connection broke).
    Truncated,
    /// The body did not arrive in full within `server.body_read_timeout_secs`.
    BodyTimeout,
    Xml(String),
    Crypto(Rejection),
    Internal(String),
}

impl Refusal {
    fn outcome(&self) -> &'static str {
        match self {
            Refusal::MissingParams => "bad_request",
            Refusal::Stale(_) => "stale",
            Refusal::TooLarge => "too_large",
            Refusal::Truncated => "truncated",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::Xml(_) => "bad_xml",
            Refusal::Crypto(Rejection::SignatureMismatch) => "bad_signature",
            Refusal::Crypto(_) => "decrypt_error",
            Refusal::Internal(_) => "error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingParams | Refusal::Truncated | Refusal::Xml(_) | Refusal::Crypto(_) => {
                StatusCode::BAD_REQUEST
            }
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::Stale(_) => StatusCode::FORBIDDEN,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            // WeCom retries on anything but 200; nothing was committed, so that is safe.
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Counts, logs and answers; the body never says why.
    fn respond(self, state: &AppState) -> Response {
        state.metrics.outcome(self.outcome());
        match &self {
            Refusal::Crypto(r) => {
                state.metrics.decrypt_failures.get_or_create(&crate::metrics::ReasonLabel { reason: r.reason() }).inc();
                tracing::warn!(reason = r.reason(), "callback refused");
            }
            Refusal::Internal(e) => tracing::error!(error = %e, "callback failed"),
            Refusal::Stale(skew) => tracing::warn!(skew_secs = skew, "callback refused: timestamp outside the window"),
            Refusal::Xml(e) => tracing::warn!(error = %e, "callback refused: malformed XML"),
            other => tracing::warn!(reason = other.outcome(), "callback refused"),
        }
        self.status().into_response()
    }
}

/// Query parameters, percent-decoded without turning `+` into a space: WeCom's base64
/// values contain `+`, and a form decoder would corrupt a literal one.
fn params(raw: Option<&str>) -> HashMap<String, String> {
    raw.unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
            Some((k.to_owned(), v.into_owned()))
        })
        .collect()
}

struct Signed {
    signature: String,
    timestamp: String,
    nonce: String,
}

fn signed(params: &mut HashMap<String, String>, state: &AppState, settings: &Settings) -> Result<Signed, Refusal> {
    let (Some(signature), Some(timestamp), Some(nonce)) =
        (params.remove("msg_signature"), params.remove("timestamp"), params.remove("nonce"))
    else {
        return Err(Refusal::MissingParams);
    };
    let ts: i64 = timestamp.parse().map_err(|_| Refusal::MissingParams)?;
    // Any i64 is a parseable timestamp: the distance saturates instead of wrapping.
    let skew = state.clock.now().timestamp().abs_diff(ts);
    if skew > settings.server.timestamp_window_secs {
        // Refused whether or not it is authentic: a replay is stale too.
        return Err(Refusal::Stale(skew));
    }
    Ok(Signed { signature, timestamp, nonce })
}

/// URL verification: answer the decrypted `echostr`, exactly, within a second.
pub async fn verify_url(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let mut params = params(query.as_deref());
    let result = signed(&mut params, &state, &state.settings()).and_then(|s| {
        let echostr = params.remove("echostr").ok_or(Refusal::MissingParams)?;
        state.crypto.open(&s.signature, &s.timestamp, &s.nonce, &echostr).map_err(Refusal::Crypto)
    });
    match result {
        Ok(plain) => {
            state.metrics.outcome("verified");
            tracing::info!("callback URL verified");
            plain.into_response()
        }
        Err(refusal) => refusal.respond(&state),
    }
}

/// A message or event: verify, decrypt, parse, process once, answer.
pub async fn receive(State(state): State<AppState>, RawQuery(query): RawQuery, body: Body) -> Response {
    let _in_flight = state.metrics.callback_in_flight();
    let started = Instant::now();
    let response = match handle(&state, query.as_deref(), body).await {
        Ok(response) => response,
        Err(refusal) => refusal.respond(&state),
    };
    state.metrics.handler_seconds.observe(started.elapsed().as_secs_f64());
    response
}

async fn handle(state: &AppState, query: Option<&str>, body: Body) -> Result<Response, Refusal> {
    // One configuration for the whole callback, even if a reload replaces it meanwhile.
    let settings = state.settings();
    let mut params = params(query);
    let signed = signed(&mut params, state, &settings)?;
    let body = to_bytes(body, settings.server.max_body_bytes).await.map_err(body_refusal)?;
    let body = std::str::from_utf8(&body).map_err(|_| Refusal::Xml("body is not UTF-8".into()))?;
    let encrypt = xml::parse_envelope(body).map_err(|e| Refusal::Xml(e.to_string()))?;
    let mut buf = Vec::new();
    let plain = state
        .crypto
        .open_in(&signed.signature, &signed.timestamp, &signed.nonce, &encrypt, &mut buf)
        .map_err(Refusal::Crypto)?;
    let inbound = xml::parse_message(plain).map_err(|e| Refusal::Xml(e.to_string()))?;
    let from = inbound.from.clone();
    let (reply, seen) =
        exactly_once::process(state, settings.clone(), inbound).await.map_err(|e| Refusal::Internal(e.to_string()))?;
    state.metrics.outcome(match seen {
        Seen::First => "ok",
        Seen::Again => "duplicate",
    });
    Ok(seal(state, &settings, &from, &reply))
}

/// Why a body could not be read: too large, too late, or cut short.
fn body_refusal(error: axum::Error) -> Refusal {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return Refusal::TooLarge;
        }
        if e.is::<BodyTimeout>() {
            return Refusal::BodyTimeout;
        }
        cause = e.source();
    }
    Refusal::Truncated
}

/// The passive reply envelope, or an empty 200.
fn seal(state: &AppState, settings: &Settings, to_user: &str, reply: &Reply) -> Response {
    let now = state.clock.now().timestamp();
    let corp_id = &settings.wecom.corp_id;
    let plain = match reply {
        Reply::Empty => return StatusCode::OK.into_response(),
        Reply::Text(text) => xml::text_reply(to_user, corp_id, now, text),
    };
    let nonce = rand::random::<u32>().to_string();
    let envelope = state.crypto.seal_reply(&plain, &now.to_string(), &nonce);
    ([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], envelope).into_response()
}
