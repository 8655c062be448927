//! `GET /healthz` (the process is alive) and `GET /readyz` (it can do its work: the
//! database and the queue answer).

use std::time::Duration;

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde_json::{json, Value};

use crate::startup::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database =
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool))
            .await
            .is_ok_and(|r| r.is_ok());
    let queue = tokio::time::timeout(
        PROBE_TIMEOUT,
        state
            .sqs
            .get_queue_attributes()
            .queue_url(&state.queue_url)
            .send(),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let status = if database && queue {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"database": database, "queue": queue})))
}
