//! Measurement 4's history: rows already in `idempotency_keys` (payments) and
//! `deliveries` (notifications), generated server-side with `generate_series` in chunks of
//! a million, then vacuumed and analysed so autovacuum does not start mid-measurement.
//!
//! Seeded keys are spread over the key space (md5 of the row number), like clients' random
//! keys, so the bench's new keys land on random index pages among them; their
//! `created_at` lies in the last 20 hours, inside the 24 h retention, so the reaper leaves
//! them alone during the bench.

use std::time::{Duration, Instant};

use sqlx::PgPool;

const CHUNK: u64 = 1_000_000;

/// Inserts `rows` idempotency records for `api_key_id`, numbered from `first`.
async fn idempotency_keys(
    pool: &PgPool,
    api_key_id: &str,
    first: u64,
    rows: u64,
) -> anyhow::Result<()> {
    let (_, body) = crate::pgbench::sample_payload();
    let mut start = first;
    while start < first + rows {
        let end = (start + CHUNK).min(first + rows) - 1;
        sqlx::query(
            "INSERT INTO idempotency_keys
                 (api_key_id, idempotency_key, request_hash, response_status, response_body, charge_id, created_at)
             SELECT $1, 'seed-' || md5(i::text), sha256(i::text::bytea), 201, $2::jsonb, NULL,
                    now() - (i % 72000) * interval '1 second'
             FROM generate_series($3::bigint, $4::bigint) AS i",
        )
        .bind(api_key_id)
        .bind(&body)
        .bind(i64::try_from(start)?)
        .bind(i64::try_from(end)?)
        .execute(pool)
        .await?;
        start = end + 1;
    }
    sqlx::raw_sql("VACUUM (ANALYZE) idempotency_keys")
        .execute(pool)
        .await?;
    Ok(())
}

/// Inserts `rows` sent deliveries, numbered from `first`.
async fn deliveries(pool: &PgPool, first: u64, rows: u64) -> anyhow::Result<()> {
    let mut start = first;
    while start < first + rows {
        let end = (start + CHUNK).min(first + rows) - 1;
        sqlx::query(
            "INSERT INTO deliveries
                 (idempotency_key, state, attempts, message_id, event_id, charge_id, created_at, updated_at, sent_at)
             SELECT 'ch_' || md5(i::text) || ':confirmation_email:v1', 'sent', 1,
                    '<' || md5('m' || i) || '@example.com>', md5('e' || i)::uuid, 'ch_' || md5(i::text),
                    now() - (i % 72000) * interval '1 second', now(), now()
             FROM generate_series($1::bigint, $2::bigint) AS i",
        )
        .bind(i64::try_from(start)?)
        .bind(i64::try_from(end)?)
        .execute(pool)
        .await?;
        start = end + 1;
    }
    sqlx::raw_sql("VACUUM (ANALYZE) deliveries")
        .execute(pool)
        .await?;
    Ok(())
}

/// Seeds both tables with `rows` rows each, concurrently (one connection per database).
/// Returns the wall time.
///
/// # Errors
/// Database errors.
pub async fn both(
    payments: &PgPool,
    notifications: &PgPool,
    api_key_id: &str,
    rows: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (a, b) = tokio::join!(
        idempotency_keys(payments, api_key_id, 1, rows),
        deliveries(notifications, 1, rows)
    );
    a?;
    b?;
    Ok(started.elapsed())
}
