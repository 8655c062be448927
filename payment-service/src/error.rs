//! The API's errors: each variant maps once to a status and a stable error code, in the
//! body `{"error": {"code": "...", "message": "...", "param": "..."}}`.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::domain::ValidationError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `unauthorized`: missing, malformed or unknown bearer API key.
    #[error("a valid bearer API key is required")]
    Unauthorized,
    /// 400 `idempotency_key_missing`: `POST /v1/charges` requires the header.
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyMissing,
    /// 400 `invalid_request_body`: not JSON, wrong types, unknown or missing fields.
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// 400 `idempotency_key_invalid` or 422 for a field: a value failed validation.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// 422 `idempotency_key_reused`: the key was used with a different request body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// 409 `idempotency_key_in_use`: a request with this key is still in flight.
    #[error("a request with this Idempotency-Key is in progress; retry shortly")]
    IdempotencyKeyInUse,
    /// 404 `charge_not_found`.
    #[error("no such charge")]
    ChargeNotFound,
    /// 503 `service_unavailable`: the database cannot be reached; nothing was charged.
    #[error("the service is temporarily unavailable; nothing was charged, retry with the same Idempotency-Key")]
    Unavailable(#[source] sqlx::Error),
    /// 500 `internal_error`: a bug or an unexpected failure, logged where it is answered.
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if shared::postgres::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Unexpected(anyhow::Error::new(e).context("Database query failed"))
        }
    }
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::IdempotencyKeyMissing | Self::InvalidBody(_) => StatusCode::BAD_REQUEST,
            Self::Validation(v) if v.code == "idempotency_key_invalid" => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyKeyInUse => StatusCode::CONFLICT,
            Self::ChargeNotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::IdempotencyKeyMissing => "idempotency_key_missing",
            Self::InvalidBody(_) => "invalid_request_body",
            Self::Validation(v) => v.code,
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::ChargeNotFound => "charge_not_found",
            Self::Unavailable(_) => "service_unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unexpected(e) => tracing::error!(error = ?e, "request failed"),
            Self::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
        let param = match &self {
            Self::Validation(v) => Some(v.param),
            _ => None,
        };
        let body =
            json!({"error": {"code": self.code(), "message": self.to_string(), "param": param}});
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::IdempotencyKeyInUse | Self::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
