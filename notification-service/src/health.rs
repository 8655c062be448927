//! `GET /healthz`, `GET /readyz` (database, queue and SMTP server answer) and
//! `GET /metrics` (Prometheus text format).

use std::{sync::OnceLock, time::Duration};

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{consumer::Queue, email::Mailer};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the probes check.
#[derive(Clone)]
pub struct Probes {
    /// The dedup database.
    pub pool: PgPool,
    /// The queues.
    pub queue: Queue,
    /// The SMTP server.
    pub mailer: Mailer,
}

/// The process-wide metrics recorder (installed once, even when tests start several
/// services in one process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; the handle still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The health router.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { metrics_handle().render() }))
        .with_state(probes)
}

async fn readyz(State(p): State<Probes>) -> (StatusCode, Json<Value>) {
    let (database, queue, smtp) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&p.pool)),
        tokio::time::timeout(PROBE_TIMEOUT, p.queue.is_reachable()),
        tokio::time::timeout(PROBE_TIMEOUT, p.mailer.is_reachable()),
    );
    let database = database.is_ok_and(|r| r.is_ok());
    let queue = queue.unwrap_or(false);
    let smtp = smtp.unwrap_or(false);
    let ok = database && queue && smtp;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "queue": queue, "smtp": smtp})),
    )
}
