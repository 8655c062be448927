//! HTTP routes: one module per resource, each with its own `router()`.

use std::time::Duration;

use axum::{extract::DefaultBodyLimit, http::StatusCode, Router};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::startup::AppState;

pub mod charges;
pub mod health;

/// Largest request body accepted; a charge is a few hundred bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The whole API with its middleware: request ids (set, traced, returned), a per-request
/// timeout and a body size limit.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("http", http.method = %req.method(), http.path = %req.uri().path(), request.id = %request_id)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout));
    Router::new()
        .merge(charges::router())
        .merge(health::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware)
        .with_state(state)
}
