//! The dedup table with leases: at most one worker may be sending a given email, and a
//! sent email is never sent again.

use std::time::Duration;

use shared::event::Envelope;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// The result of trying to claim a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This worker holds the lease and must send; `attempts` counts claims so far.
    Claimed {
        /// 1 on the first claim, more after a takeover or a retry.
        attempts: i32,
    },
    /// The email was sent already: a dedup hit.
    AlreadySent,
    /// Another worker holds a live lease until this time.
    InFlight {
        /// When the other worker's lease ends.
        lease_expires_at: OffsetDateTime,
    },
    /// An earlier copy failed permanently and was dead-lettered.
    Failed,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims `event`'s key for `owner` for `lease`: inserts a `sending` row, or takes over a
/// `sending` row whose lease has expired. Otherwise reports who has it.
///
/// # Errors
/// Database errors.
pub async fn claim(
    pool: &PgPool,
    event: &Envelope,
    owner: Uuid,
    lease: Duration,
    message_id: &str,
) -> Result<Claim, sqlx::Error> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO deliveries (idempotency_key, state, lease_owner, lease_expires_at, message_id, event_id, charge_id)
         VALUES ($1, 'sending', $2, now() + $3 * interval '1 millisecond', $4, $5, $6)
         ON CONFLICT (idempotency_key) DO UPDATE SET
             lease_owner = EXCLUDED.lease_owner, lease_expires_at = EXCLUDED.lease_expires_at,
             attempts = deliveries.attempts + 1, updated_at = now()
         WHERE deliveries.state = 'sending' AND deliveries.lease_expires_at <= now()
         RETURNING attempts",
    )
    .bind(&event.idempotency_key)
    .bind(owner)
    .bind(millis(lease))
    .bind(message_id)
    .bind(event.event_id)
    .bind(&event.data.charge_id)
    .fetch_optional(pool)
    .await?;
    if let Some(attempts) = claimed {
        return Ok(Claim::Claimed { attempts });
    }
    let row =
        sqlx::query("SELECT state, lease_expires_at FROM deliveries WHERE idempotency_key = $1")
            .bind(&event.idempotency_key)
            .fetch_one(pool)
            .await?;
    let state: String = row.try_get("state")?;
    Ok(match state.as_str() {
        "sent" => Claim::AlreadySent,
        "failed" => Claim::Failed,
        _ => Claim::InFlight {
            lease_expires_at: row
                .try_get::<Option<OffsetDateTime>, _>("lease_expires_at")?
                .unwrap_or_else(OffsetDateTime::now_utc),
        },
    })
}

/// Extends `owner`'s lease (the heartbeat during a long send). False if it was lost.
///
/// # Errors
/// Database errors.
pub async fn extend_lease(
    pool: &PgPool,
    key: &str,
    owner: Uuid,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
         WHERE idempotency_key = $1 AND lease_owner = $2 AND state = 'sending'",
    )
    .bind(key)
    .bind(owner)
    .bind(millis(lease))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the email as sent. Returns false if it already was.
///
/// Deliberately not conditional on the lease owner: once the SMTP server accepted the
/// email, "sent" is the truth whoever holds the lease now. The owner stays recorded so
/// that at-most-once mode, which calls this before sending, can [`release`] it.
///
/// # Errors
/// Database errors.
pub async fn mark_sent(pool: &PgPool, key: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET state = 'sent', sent_at = now(), updated_at = now(), lease_expires_at = NULL
         WHERE idempotency_key = $1 AND state = 'sending'",
    )
    .bind(key)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives up `owner`'s claim after a definite, transient failure so the next delivery
/// can claim at once. With `undo_early_sent` (at-most-once mode, where `sent` was written
/// before sending) it also takes back that `sent`: the SMTP server refused the email, so
/// it was certainly not delivered.
///
/// # Errors
/// Database errors.
pub async fn release(
    pool: &PgPool,
    key: &str,
    owner: Uuid,
    undo_early_sent: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET state = 'sending', lease_expires_at = now(), sent_at = NULL, updated_at = now()
         WHERE idempotency_key = $1 AND lease_owner = $2 AND (state = 'sending' OR $3)",
    )
    .bind(key)
    .bind(owner)
    .bind(undo_early_sent)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a permanent failure; later copies of the event are not retried.
///
/// # Errors
/// Database errors.
pub async fn mark_failed(pool: &PgPool, key: &str, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET state = 'failed', failure_reason = $2, lease_owner = NULL,
             lease_expires_at = NULL, updated_at = now()
         WHERE idempotency_key = $1 AND state = 'sending'",
    )
    .bind(key)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}
