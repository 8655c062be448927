//! `POST /v1/charges` and `GET /v1/charges/{id}`, beside their queries.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Serialize;
use shared::event::{
    Envelope, PaymentSucceeded, ATTR_EVENT_TYPE, ATTR_TRACEPARENT, PAYMENT_SUCCEEDED,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    auth::Caller,
    config::PublishMode,
    domain::{ChargeRequest, IdempotencyKey, NewCharge},
    error::ApiError,
    idempotency::{self, Decision, StoredResponse},
    outbox,
    startup::AppState,
};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/charges", post(create_charge))
        .route("/v1/charges/{id}", get(get_charge))
}

/// A charge as the API returns it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Charge {
    /// `ch_` followed by 32 hex digits.
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// Lower-case ISO 4217 code.
    pub currency: String,
    /// Receipt address.
    pub customer_email: String,
    /// Receipt text.
    pub description: Option<String>,
    /// Always `succeeded` today: the charge is recorded synchronously.
    pub status: String,
    /// Commit time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Charge {
    fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["object"] = "charge".into();
        value
    }
}

async fn create_charge(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .ok_or(ApiError::IdempotencyKeyMissing)?;
    let key = IdempotencyKey::parse(key.to_str().unwrap_or_default())?;
    let request: ChargeRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let charge = NewCharge::parse(request)?;
    let fingerprint = charge.fingerprint();

    let mut tx = state.pool.begin().await?;
    if !idempotency::try_lock(&mut tx, &caller, &key).await? {
        return Err(ApiError::IdempotencyKeyInUse);
    }
    let stored = idempotency::find(&mut tx, &caller, &key, state.idempotency_retention).await?;
    match idempotency::decide(stored, &fingerprint) {
        Decision::Replay(stored) => return Ok(replay(stored)),
        Decision::Mismatch => return Err(ApiError::IdempotencyKeyReused),
        Decision::Proceed => {}
    }

    let created = insert_charge(&mut tx, &caller, &charge).await?;
    let event = Envelope::payment_succeeded(
        Uuid::new_v4(),
        created.created_at,
        PaymentSucceeded {
            charge_id: created.id.clone(),
            amount: created.amount,
            currency: created.currency.clone(),
            customer_email: created.customer_email.clone(),
            description: created.description.clone(),
        },
    );
    let trace = traceparent(&headers);
    outbox::enqueue(&mut tx, &event, &trace).await?;
    let response = StoredResponse {
        request_hash: fingerprint,
        status: StatusCode::CREATED.as_u16(),
        body: created.to_json(),
    };
    idempotency::save(&mut tx, &caller, &key, &response, &created.id).await?;
    tx.commit().await?;
    shared::chaos::crash_point("after_commit_before_publish");
    match state.publish_mode {
        // Publishing never happens inside the transaction: wake the relay instead.
        PublishMode::Outbox => state.relay_signal.notify_one(),
        PublishMode::Inline => publish_inline(&state, &event, &trace).await,
    }
    tracing::info!(charge.id = %created.id, charge.amount = created.amount, "charge created");
    Ok((StatusCode::CREATED, Json(response.body)).into_response())
}

/// `PUBLISH_MODE=inline`, the naive design `make bench` compares the outbox with: publish
/// with `SendMessage` inside the request (after the commit), then mark the row published.
/// A failure is left to the relay's sweep, so even this mode loses no event; if the relay
/// claims the row first, the event is published twice and the consumer's dedup absorbs it.
async fn publish_inline(state: &AppState, event: &Envelope, traceparent: &str) {
    let published = async {
        state
            .sqs
            .send_message()
            .queue_url(&state.queue_url)
            .message_body(serde_json::to_string(event)?)
            .message_attributes(
                ATTR_EVENT_TYPE,
                outbox::string_attribute(PAYMENT_SUCCEEDED)?,
            )
            .message_attributes(ATTR_TRACEPARENT, outbox::string_attribute(traceparent)?)
            .send()
            .await?;
        sqlx::query(
            "UPDATE outbox SET published_at = now() WHERE event_id = $1 AND published_at IS NULL",
        )
        .bind(event.event_id)
        .execute(&state.pool)
        .await?;
        anyhow::Ok(())
    };
    if let Err(e) = published.await {
        tracing::warn!(
            error = format!("{e:#}"),
            "inline publish failed; the relay will publish"
        );
        state.relay_signal.notify_one();
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(stored.body)).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

async fn insert_charge(
    conn: &mut PgConnection,
    caller: &Caller,
    charge: &NewCharge,
) -> Result<Charge, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO charges (id, api_key_id, amount, currency, customer_email, description)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, amount, currency, customer_email, description, status, created_at",
    )
    .bind(format!("ch_{}", Uuid::new_v4().simple()))
    .bind(&caller.id)
    .bind(charge.amount.minor_units())
    .bind(charge.currency.as_str())
    .bind(charge.customer_email.as_str())
    .bind(charge.description.as_ref().map(|d| d.as_str()))
    .fetch_one(conn)
    .await
}

async fn get_charge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let charge: Option<Charge> = sqlx::query_as(
        "SELECT id, amount, currency, customer_email, description, status, created_at
         FROM charges WHERE id = $1 AND api_key_id = $2",
    )
    .bind(&id)
    .bind(&caller.id)
    .fetch_optional(&state.pool)
    .await?;
    charge
        .map(|c| Json(c.to_json()))
        .ok_or(ApiError::ChargeNotFound)
}

/// The W3C trace context the event carries: the caller's `traceparent` when it sent a
/// valid one, else a new trace rooted at this request's id.
fn traceparent(headers: &HeaderMap) -> String {
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok());
    if let Some(tp) = incoming.filter(|tp| is_traceparent(tp)) {
        return tp.to_owned();
    }
    let trace_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::new_v4);
    let span_id = &Uuid::new_v4().simple().to_string()[..16];
    format!("00-{}-{span_id}-01", trace_id.simple())
}

fn is_traceparent(tp: &str) -> bool {
    let parts: Vec<&str> = tp.split('-').collect();
    parts.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_incoming_traceparent_is_kept() {
        let mut headers = HeaderMap::new();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(tp));
        assert_eq!(traceparent(&headers), tp);
    }

    #[test]
    fn without_one_a_new_trace_is_started() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("garbage"));
        assert!(is_traceparent(&traceparent(&headers)));
    }
}
