//! Stripe-style idempotency for `POST /v1/charges`.
//!
//! Inside the request's transaction: take a transaction-scoped advisory lock on
//! (caller, key) without waiting (held elsewhere: `409 idempotency_key_in_use`), read the
//! stored record, and [`decide`]. The lock is released by the commit that makes the
//! record visible, so a retry never sees "unlocked but not yet stored".

use std::time::Duration;

use sqlx::{PgConnection, Row};

use crate::{auth::Caller, domain::IdempotencyKey};

/// A response stored under a key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// Fingerprint of the request that produced it.
    pub request_hash: Vec<u8>,
    /// Its HTTP status.
    pub status: u16,
    /// Its JSON body.
    pub body: serde_json::Value,
}

/// What to do with a request, given what its key already holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// New key: perform the charge.
    Proceed,
    /// Same key, same request: answer the stored response again.
    Replay(StoredResponse),
    /// Same key, different request: refuse.
    Mismatch,
}

/// Decides from the stored record (if any) and the new request's fingerprint.
pub fn decide(stored: Option<StoredResponse>, fingerprint: &[u8]) -> Decision {
    match stored {
        None => Decision::Proceed,
        Some(s) if s.request_hash == fingerprint => Decision::Replay(s),
        Some(_) => Decision::Mismatch,
    }
}

fn lock_name(caller: &Caller, key: &IdempotencyKey) -> String {
    format!("{}/{}", caller.id, key.as_str())
}

/// Tries to take the (caller, key) lock for the rest of the transaction.
///
/// # Errors
/// Database errors.
pub async fn try_lock(
    conn: &mut PgConnection,
    caller: &Caller,
    key: &IdempotencyKey,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(lock_name(caller, key))
        .fetch_one(conn)
        .await
}

/// Reads the live record of (caller, key); records older than `retention` count as gone.
///
/// # Errors
/// Database errors.
pub async fn find(
    conn: &mut PgConnection,
    caller: &Caller,
    key: &IdempotencyKey,
    retention: Duration,
) -> Result<Option<StoredResponse>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys
         WHERE api_key_id = $1 AND idempotency_key = $2
           AND created_at > now() - $3 * interval '1 millisecond'",
    )
    .bind(&caller.id)
    .bind(key.as_str())
    .bind(millis(retention))
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(StoredResponse {
            request_hash: r.try_get("request_hash")?,
            status: u16::try_from(r.try_get::<i16, _>("response_status")?).unwrap_or(500),
            body: r.try_get("response_body")?,
        })
    })
    .transpose()
}

/// Stores the response for (caller, key), replacing an expired record not yet reaped.
///
/// # Errors
/// Database errors.
pub async fn save(
    conn: &mut PgConnection,
    caller: &Caller,
    key: &IdempotencyKey,
    response: &StoredResponse,
    charge_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys
             (api_key_id, idempotency_key, request_hash, response_status, response_body, charge_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (api_key_id, idempotency_key) DO UPDATE SET
             request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
             response_body = EXCLUDED.response_body, charge_id = EXCLUDED.charge_id,
             created_at = now()",
    )
    .bind(&caller.id)
    .bind(key.as_str())
    .bind(&response.request_hash)
    .bind(i16::try_from(response.status).unwrap_or(500))
    .bind(&response.body)
    .bind(charge_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes records older than `retention`, at most `limit` per call.
///
/// # Errors
/// Database errors.
pub async fn purge_expired(
    pool: &sqlx::PgPool,
    retention: Duration,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE ctid IN (
             SELECT ctid FROM idempotency_keys
             WHERE created_at < now() - $1 * interval '1 millisecond' LIMIT $2)",
    )
    .bind(millis(retention))
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A duration as whole milliseconds for SQL interval arithmetic.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hash: &[u8]) -> StoredResponse {
        StoredResponse {
            request_hash: hash.to_vec(),
            status: 201,
            body: serde_json::json!({"id": "ch_1"}),
        }
    }

    #[test]
    fn a_new_key_proceeds() {
        assert_eq!(decide(None, b"h"), Decision::Proceed);
    }

    #[test]
    fn the_same_request_replays_the_stored_response() {
        assert_eq!(
            decide(Some(stored(b"h")), b"h"),
            Decision::Replay(stored(b"h"))
        );
    }

    #[test]
    fn a_different_request_under_the_same_key_is_a_mismatch() {
        assert_eq!(decide(Some(stored(b"h")), b"other"), Decision::Mismatch);
    }
}
