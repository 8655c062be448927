//! Retention: deletes expired idempotency keys and old published outbox rows.

use std::time::Duration;

use shared::shutdown::CancellationToken;
use sqlx::PgPool;

use crate::{idempotency, outbox};

/// How often the reaper runs.
const INTERVAL: Duration = Duration::from_secs(60);
/// Rows deleted per statement, so one pass never holds long locks.
const CHUNK: i64 = 5_000;

/// One pass over both tables. Returns (keys, outbox rows) deleted.
///
/// # Errors
/// Database errors.
pub async fn reap_once(
    pool: &PgPool,
    key_retention: Duration,
    outbox_retention: Duration,
) -> Result<(u64, u64), sqlx::Error> {
    let mut keys = 0;
    loop {
        let n = idempotency::purge_expired(pool, key_retention, CHUNK).await?;
        keys += n;
        if n < CHUNK as u64 {
            break;
        }
    }
    let mut rows = 0;
    loop {
        let n = outbox::purge_published(pool, outbox_retention, CHUNK).await?;
        rows += n;
        if n < CHUNK as u64 {
            break;
        }
    }
    Ok((keys, rows))
}

/// Runs [`reap_once`] every minute until shutdown.
pub async fn run(
    pool: PgPool,
    key_retention: Duration,
    outbox_retention: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match reap_once(&pool, key_retention, outbox_retention).await {
            Ok((0, 0)) => {}
            Ok((keys, rows)) => tracing::info!(
                idempotency_keys = keys,
                outbox_rows = rows,
                "reaped expired rows"
            ),
            Err(e) => tracing::warn!(error = %e, "reaper pass failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
