//! The relay: moves committed outbox rows to the queue.
//!
//! Each worker wakes on the in-process commit signal or on the periodic sweep (rows left
//! by a crash, by another replica, or due for a retry), then drains: claim up to ten due
//! rows with `FOR UPDATE SKIP LOCKED`, publish them in one batch, mark the accepted ones
//! published and push the rest out with backoff, all in the claiming transaction. A crash
//! anywhere rolls the transaction back and the rows are published again later: the
//! consumer's dedup makes that harmless.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use shared::shutdown::CancellationToken;
use sqlx::PgPool;
use tokio::sync::Notify;

use super::{claim_due, mark_published, schedule_retry, Publisher, MAX_BATCH};

/// A relay worker's dependencies.
pub struct Relay<P> {
    /// The payments database.
    pub pool: PgPool,
    /// Where events go.
    pub publisher: Arc<P>,
    /// Notified after each commit that added an outbox row.
    pub signal: Arc<Notify>,
    /// How often to look for rows without a signal.
    pub sweep_interval: Duration,
}

impl<P: Publisher> Relay<P> {
    /// Runs until `shutdown` fires; the batch in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            // Drain while batches come back full.
            loop {
                match relay_once(&self.pool, self.publisher.as_ref(), MAX_BATCH).await {
                    Ok(n) => {
                        failures = 0;
                        if n < usize::try_from(MAX_BATCH).unwrap_or(10) {
                            break;
                        }
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = format!("{e:#}"), "outbox relay pass failed");
                        // Back off in-process too, so a dead database is not hammered.
                        let pause = Duration::from_millis(100 * 2u64.pow(failures.min(8)));
                        tokio::select! {
                            () = tokio::time::sleep(pause.min(Duration::from_secs(10))) => {}
                            () = shutdown.cancelled() => return,
                        }
                        break;
                    }
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
            tokio::select! {
                () = self.signal.notified() => {}
                () = tokio::time::sleep(self.sweep_interval) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// One pass: claims, publishes and records up to `limit` rows. Returns how many it claimed.
///
/// # Errors
/// Database errors; a failed publish is not an error (the rows are rescheduled).
pub async fn relay_once<P: Publisher>(
    pool: &PgPool,
    publisher: &P,
    limit: i64,
) -> anyhow::Result<usize> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to begin the relay transaction")?;
    let batch = claim_due(&mut tx, limit)
        .await
        .context("Failed to claim outbox rows")?;
    if batch.is_empty() {
        return Ok(0);
    }
    let failures = match publisher.publish(&batch).await {
        Ok(failures) => failures,
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::warn!(error = %reason, batch.size = batch.len(), "publish failed; will retry");
            batch
                .iter()
                .map(|m| super::PublishFailure {
                    id: m.id,
                    reason: reason.clone(),
                })
                .collect()
        }
    };
    shared::chaos::crash_point("after_publish_before_mark");
    let published: Vec<i64> = batch
        .iter()
        .map(|m| m.id)
        .filter(|id| !failures.iter().any(|f| f.id == *id))
        .collect();
    mark_published(&mut tx, &published)
        .await
        .context("Failed to mark rows published")?;
    for failure in &failures {
        schedule_retry(&mut tx, failure.id, &failure.reason)
            .await
            .context("Failed to reschedule an outbox row")?;
    }
    tx.commit()
        .await
        .context("Failed to commit the relay transaction")?;
    if !failures.is_empty() {
        tracing::warn!(
            published = published.len(),
            failed = failures.len(),
            "some outbox entries were not accepted; rescheduled"
        );
    }
    Ok(batch.len())
}
