//! Local mode's stand-in for the WeCom API: answers every call as WeCom would on a good
//! day, logs it, and keeps the last [`KEPT`] calls so `leadboard send` and `leadboard
//! press` can show what the bot sent. `/simulator` is a page listing them, newest
//! first; `/simulator/_log` the same as JSON. It also stands in for WeCom's sign-in:
//! the OAuth2 authorize page and the QR login page both list the demo people, and
//! picking one redirects back with a single-use code that `auth/getuserinfo` answers.

use crate::store::{Db, outbox};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Where the simulator is mounted on the service's own listener.
pub const PREFIX: &str = "/simulator";

/// How many calls the simulator keeps in memory (older ones are dropped, oldest first).
pub const KEPT: usize = 1000;

#[derive(Clone)]
pub struct Simulator {
    calls: Arc<Mutex<Calls>>,
    /// Sign-in codes handed out and not yet exchanged, with whose they are.
    codes: Arc<Mutex<HashMap<String, String>>>,
    db: Db,
}

/// The last [`KEPT`] calls, and the id the next one gets (ids never repeat).
#[derive(Default)]
struct Calls {
    kept: VecDeque<Value>,
    last_id: u64,
}

impl Simulator {
    pub fn new(db: Db) -> Self {
        Self { calls: Arc::default(), codes: Arc::default(), db }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/auth/getuserinfo", get(getuserinfo))
            .route("/connect/oauth2/authorize", get(sign_in_page))
            .route("/wwlogin/sso/login", get(sign_in_page))
            .route("/_signin", get(sign_in))
            .route("/cgi-bin/{*api}", post(call))
            .route("/_log", get(log))
            .with_state(self.clone())
    }

    fn record(&self, api: &str, body: Value) -> u64 {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        tracing::info!(target: "simulator", id = calls.last_id + 1, api, body = %body, "outbound WeCom call");
        calls.push(api, body)
    }

    fn after(&self, after: u64, limit: usize) -> (Vec<Value>, u64) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).after(after, limit)
    }
}

impl Calls {
    /// Keeps a call, dropping the oldest beyond [`KEPT`]; returns its id.
    fn push(&mut self, api: &str, body: Value) -> u64 {
        self.last_id += 1;
        if self.kept.len() == KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(json!({ "id": self.last_id, "api": api, "body": body }));
        self.last_id
    }

    /// The calls kept with an id above `after` (at most `limit`, the oldest first), and
    /// the last id given.
    fn after(&self, after: u64, limit: usize) -> (Vec<Value>, u64) {
        let newer = self.kept.iter().filter(|c| c["id"].as_u64().is_some_and(|id| id > after));
        (newer.take(limit).cloned().collect(), self.last_id)
    }
}

async fn gettoken() -> Json<Value> {
    Json(json!({ "errcode": 0, "errmsg": "ok", "access_token": "SIMULATED-TOKEN", "expires_in": 7200 }))
}

async fn call(State(sim): State<Simulator>, Path(api): Path<String>, body: Bytes) -> Json<Value> {
    let recorded = serde_json::from_slice(&body).unwrap_or_else(|_| json!({ "bytes": body.len() }));
    let id = sim.record(&api, recorded);
    Json(match api.as_str() {
        "media/upload" => {
            json!({ "errcode": 0, "errmsg": "ok", "type": "file", "media_id": format!("SIM-MEDIA-{id}") })
        }
        _ => json!({
            "errcode": 0, "errmsg": "ok", "invaliduser": "",
            "msgid": format!("SIM-MSG-{id}"), "response_code": format!("SIM-RC-{id}"),
        }),
    })
}

#[derive(Deserialize)]
struct SignInQuery {
    redirect_uri: String,
    state: String,
    /// Set by the page's links: the person picked.
    userid: Option<String>,
}

/// The sign-in page of local mode, for both WeCom's OAuth2 and its QR login: the demo
/// people, each a link that signs in as them.
async fn sign_in_page(State(sim): State<Simulator>, Query(q): Query<SignInQuery>) -> Response {
    let people = match sim.db.reader().acquire().await {
        Ok(mut conn) => crate::store::directory::active(&mut conn).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut rows = String::new();
    for p in &people {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("redirect_uri", &q.redirect_uri)
            .append_pair("state", &q.state)
            .append_pair("userid", &p.userid)
            .finish();
        let link = format!("{PREFIX}/_signin?{query}");
        rows.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <span class=\"id\">{} · {}</span></li>\n",
            escape(&link),
            escape(&p.name),
            escape(&p.department),
            escape(&p.userid)
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>企业微信登录（模拟）</title><style>{STYLE}</style></head><body>\
         <h1>企业微信登录（模拟）</h1><p>本地模式：选择以谁的身份登录。</p><ol>{rows}</ol></body></html>"
    ))
    .into_response()
}

/// Signs in as the person picked: a fresh code, and back to the service.
async fn sign_in(State(sim): State<Simulator>, Query(q): Query<SignInQuery>) -> Response {
    let Some(userid) = q.userid.filter(|u| !u.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "缺少 userid").into_response();
    };
    let Ok(mut back) = url::Url::parse(&q.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri 无效").into_response();
    };
    let code = format!("SIM-CODE-{}", uuid::Uuid::new_v4().simple());
    sim.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(code.clone(), userid);
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", &q.state);
    Redirect::to(back.as_str()).into_response()
}

#[derive(Deserialize)]
struct CodeQuery {
    code: String,
}

/// `auth/getuserinfo`: the person a code was handed out for, once.
async fn getuserinfo(State(sim): State<Simulator>, Query(q): Query<CodeQuery>) -> Json<Value> {
    let userid = sim.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(&q.code);
    sim.record("auth/getuserinfo", json!({ "code": q.code }));
    Json(match userid {
        Some(userid) => json!({ "errcode": 0, "errmsg": "ok", "userid": userid }),
        None => json!({ "errcode": 40029, "errmsg": "invalid code" }),
    })
}

#[derive(Deserialize)]
struct LogQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// Calls recorded after the id `after`, the last id given, and how many messages still
/// wait in the outbox.
async fn log(State(sim): State<Simulator>, Query(q): Query<LogQuery>) -> Json<Value> {
    let (calls, last_id) = sim.after(q.after.unwrap_or(0), q.limit.unwrap_or(KEPT));
    let pending = outbox::depth(&sim.db).await.map(|(p, _)| p).unwrap_or(0);
    Json(json!({ "calls": calls, "last_id": last_id, "outbox_pending": pending }))
}

/// A page listing the calls kept, newest first.
async fn page(State(sim): State<Simulator>) -> Html<String> {
    let (calls, last_id) = sim.after(0, KEPT);
    let pending = outbox::depth(&sim.db).await.map(|(p, _)| p).unwrap_or(0);
    let mut rows = String::new();
    for call in calls.iter().rev() {
        let id = call["id"].as_u64().unwrap_or(0);
        let hint = press_hint(call).map(|h| format!("<div class=\"hint\">{}</div>", escape(&h))).unwrap_or_default();
        rows.push_str(&format!("<li><span class=\"id\">{id}</span> {}{hint}</li>\n", escape(&describe(call))));
    }
    if rows.is_empty() {
        rows.push_str("<li>还没有调用。试试：<code>leadboard send --as zhangwei 帮助</code></li>");
    }
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>企业微信接口模拟器</title><style>{STYLE}</style></head><body>\
         <h1>企业微信接口模拟器</h1>\
         <p>本地模式下机器人发出的消息（共 {last_id} 条，保留最近 {KEPT} 条，最新在前；待发送 {pending} 条）。\
         JSON：<a href=\"{PREFIX}/_log\">{PREFIX}/_log</a></p><ol>{rows}</ol></body></html>"
    ))
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em;max-width:60em}ol{list-style:none;padding:0}\
    li{border-bottom:1px solid #ddd;padding:.4em 0;white-space:pre-wrap}.id{color:#888}\
    .hint{color:#06c;font-family:monospace}";

/// The `leadboard press` command for each button of a card sent to one person.
fn press_hint(call: &Value) -> Option<String> {
    let body = &call["body"];
    let card = body.get("template_card")?;
    let to = body["touser"].as_str()?.split('|').next()?;
    let buttons = card["button_list"].as_array()?;
    let presses: Vec<String> = buttons
        .iter()
        .filter_map(|b| {
            let target = b["key"].as_str()?.split_once(':')?.1;
            let target =
                if target.bytes().all(|c| c.is_ascii_digit()) { format!("'#{target}'") } else { target.into() };
            Some(format!("leadboard press --as {to} {target} {}", b["text"].as_str()?))
        })
        .collect();
    (!presses.is_empty()).then(|| format!("按钮：{}", presses.join(" ／ ")))
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One line per recorded call, readable in a terminal: `[api → to] content`.
pub fn describe(call: &Value) -> String {
    let api = call["api"].as_str().unwrap_or_default();
    let body = &call["body"];
    let to = body["touser"].as_str().or(body["chatid"].as_str()).map(str::to_owned);
    let to = to.or_else(|| {
        body["userids"].as_array().map(|u| u.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"))
    });
    let to = to.unwrap_or_else(|| "群机器人".into());
    let msgtype = body["msgtype"].as_str().unwrap_or_default();
    let content = match (api, msgtype) {
        ("message/update_template_card", _) => {
            format!("卡片按钮更新为「{}」", body["button"]["replace_name"].as_str().unwrap_or(""))
        }
        (_, "template_card") => {
            let card = &body["template_card"];
            let buttons: Vec<String> = card["button_list"]
                .as_array()
                .map(|b| b.iter().map(|b| format!("[{}]", b["text"].as_str().unwrap_or(""))).collect())
                .unwrap_or_default();
            format!(
                "卡片：{} · {} {}",
                card["main_title"]["title"].as_str().unwrap_or(""),
                card["main_title"]["desc"].as_str().unwrap_or(""),
                buttons.join(" ")
            )
        }
        _ => body[msgtype]["content"].as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()),
    };
    format!("[{api} → {to}] {content}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_calls_are_kept() {
        let mut calls = Calls::default();
        for i in 0..KEPT + 5 {
            calls.push("message/send", json!({ "n": i }));
        }
        assert_eq!(calls.kept.len(), KEPT);
        let (all, last) = calls.after(0, usize::MAX);
        assert_eq!((all.len(), last), (KEPT, KEPT as u64 + 5));
        assert_eq!(all[0]["id"], 6, "the oldest five are gone");
        let (newer, _) = calls.after(KEPT as u64 + 3, usize::MAX);
        assert_eq!(
            newer.iter().map(|c| c["id"].as_u64().unwrap()).collect::<Vec<_>>(),
            [KEPT as u64 + 4, KEPT as u64 + 5]
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<b>\"A&B\"</b>'"), "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;&#39;");
    }
}
