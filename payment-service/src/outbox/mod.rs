//! The transactional outbox: the charge's transaction writes a row here, and the relay
//! publishes unpublished rows to SQS after the commit.

use std::time::Duration;

use shared::event::Envelope;
use sqlx::{PgConnection, PgPool};

use crate::idempotency::millis;

mod publisher;
mod relay;

pub use publisher::{string_attribute, PublishFailure, Publisher, SqsPublisher};
pub use relay::{relay_once, Relay};

/// Most messages SQS accepts in one `SendMessageBatch`.
pub const MAX_BATCH: i64 = 10;

/// An outbox row waiting to be published.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingMessage {
    /// Row id, also the batch entry id.
    pub id: i64,
    /// The JSON envelope, published as the message body unchanged.
    pub payload: String,
    /// Trace context for the message attributes.
    pub traceparent: Option<String>,
}

/// Adds the event to the outbox inside the caller's transaction.
///
/// # Errors
/// Database errors.
pub async fn enqueue(
    conn: &mut PgConnection,
    event: &Envelope,
    traceparent: &str,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO outbox (event_id, charge_id, payload, traceparent) VALUES ($1, $2, $3, $4)",
    )
    .bind(event.event_id)
    .bind(&event.data.charge_id)
    .bind(payload)
    .bind(traceparent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks up to `limit` due, unpublished rows for this transaction, skipping rows another
/// relay (in this process or a replica) holds.
pub(crate) async fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<PendingMessage>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, payload, traceparent FROM outbox
         WHERE published_at IS NULL AND next_attempt_at <= now()
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn mark_published(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET published_at = now(), last_error = NULL WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Pushes the next attempt out exponentially: 100 ms, 200 ms, ... capped at 30 s.
pub(crate) async fn schedule_retry(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
             next_attempt_at = now() + least(interval '100 milliseconds' * power(2, least(attempts, 12)),
                                              interval '30 seconds')
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes published rows older than `retention`, at most `limit` per call.
///
/// # Errors
/// Database errors.
pub async fn purge_published(
    pool: &PgPool,
    retention: Duration,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox
             WHERE published_at < now() - $1 * interval '1 millisecond' LIMIT $2)",
    )
    .bind(millis(retention))
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
