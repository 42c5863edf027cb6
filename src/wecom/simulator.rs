//! Local mode's stand-in for the WeCom API: answers every call as WeCom would on a good
//! day, logs it, and keeps it so `leadboard send` can show what the bot sent.

use crate::store::{Db, outbox};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Where the simulator is mounted on the service's own listener.
pub const PREFIX: &str = "/simulator";

#[derive(Clone)]
pub struct Simulator {
    calls: Arc<Mutex<Vec<Value>>>,
    db: Db,
}

impl Simulator {
    pub fn new(db: Db) -> Self {
        Self { calls: Arc::default(), db }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/{*api}", post(call))
            .route("/_log", get(log))
            .with_state(self.clone())
    }

    fn record(&self, api: &str, body: Value) -> usize {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let id = calls.len() + 1;
        tracing::info!(target: "simulator", id, api, body = %body, "outbound WeCom call");
        calls.push(json!({ "id": id, "api": api, "body": body }));
        id
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
struct LogQuery {
    after: Option<usize>,
}

/// Calls recorded after `after`, and how many messages still wait in the outbox.
async fn log(State(sim): State<Simulator>, Query(q): Query<LogQuery>) -> Json<Value> {
    let calls: Vec<Value> = {
        let calls = sim.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter().skip(q.after.unwrap_or(0)).cloned().collect()
    };
    let pending = outbox::depth(&sim.db).await.map(|(p, _)| p).unwrap_or(0);
    Json(json!({ "calls": calls, "outbox_pending": pending }))
}
