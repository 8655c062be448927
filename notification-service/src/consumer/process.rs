//! What happens to one message: claim, send, mark, and the outcome for the queue.

use std::time::Duration;

use aws_sdk_sqs::types::Message;
use backon::{ExponentialBuilder, Retryable};
use lettre::message::Mailbox;
use shared::{chaos::crash_point, event::Envelope, redact::mask_email};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::queue::Queue;
use crate::{
    config::DeliveryGuarantee,
    dedup::{self, Claim},
    email::{self, Mailer, SendError},
};

/// What the queue should do with a message after processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (sent now, sent before, or dead-lettered before): delete it.
    Delete,
    /// A transient failure: make it visible again after a backoff.
    Retry,
    /// Another worker holds the key's lease: hide the message until the lease ends.
    Busy(Duration),
    /// Permanent failure or poison: copy to the DLQ with this reason, then delete.
    DeadLetter(String),
    /// Not started (shutting down): make it visible again at once.
    Release,
}

/// Everything needed to process messages.
pub struct Processor {
    /// The dedup database.
    pub pool: PgPool,
    /// The SMTP side.
    pub mailer: Mailer,
    /// Sender mailbox.
    pub from: Mailbox,
    /// Domain of the Message-IDs.
    pub domain: String,
    /// Which side of the irreducible window to take.
    pub guarantee: DeliveryGuarantee,
    /// Lease length on a claim.
    pub lease: Duration,
    /// Visibility to keep during a send (heartbeat target).
    pub visibility: Duration,
    /// The queues (for visibility heartbeats).
    pub queue: Queue,
    /// This process's lease owner id.
    pub owner: Uuid,
}

impl Processor {
    /// Processes one message whose body decoded to `event`.
    pub async fn process(&self, message: &Message, event: &Envelope) -> Outcome {
        let key = event.idempotency_key.as_str();
        let message_id = email::message_id(key, &self.domain);
        let claim = match dedup::claim(&self.pool, event, self.owner, self.lease, &message_id).await
        {
            Ok(claim) => claim,
            Err(e) => {
                tracing::warn!(error = %e, "claim failed (database); the message will be retried");
                metrics::counter!("notification_transient_failures_total", "stage" => "claim")
                    .increment(1);
                return Outcome::Retry;
            }
        };
        match claim {
            Claim::AlreadySent => {
                tracing::info!("dedup hit: already sent");
                metrics::counter!("notification_dedup_hits_total").increment(1);
                return Outcome::Delete;
            }
            Claim::Failed => {
                tracing::info!("duplicate of a dead-lettered event");
                metrics::counter!("notification_dedup_hits_total").increment(1);
                return Outcome::Delete;
            }
            Claim::InFlight { lease_expires_at } => {
                metrics::counter!("notification_lease_busy_total").increment(1);
                let left = lease_expires_at - OffsetDateTime::now_utc();
                let left = Duration::try_from(left).unwrap_or_default();
                return Outcome::Busy(left + Duration::from_secs(1));
            }
            Claim::Claimed { attempts } => {
                if attempts > 1 {
                    tracing::info!(
                        delivery.attempts = attempts,
                        "claimed a key after an expired lease or a retry"
                    );
                }
            }
        }
        crash_point("after_claim_before_send");

        let mail = match email::render(event, &self.from, &message_id) {
            Ok(mail) => mail,
            Err(e) => {
                return self
                    .fail_permanently(key, "invalid_recipient", &e.to_string())
                    .await
            }
        };
        let at_most_once = self.guarantee == DeliveryGuarantee::AtMostOnce;
        if at_most_once {
            if let Err(e) = self.record_sent(message, key).await {
                tracing::warn!(error = %e, "could not record sent before sending (at-most-once); retrying later");
                let _ = dedup::release(&self.pool, key, self.owner, true).await;
                return Outcome::Retry;
            }
            crash_point("after_sent_before_smtp");
        }

        match self
            .with_heartbeat(message, key, self.mailer.send(mail))
            .await
        {
            Ok(()) => {
                crash_point("after_smtp_before_sent");
                metrics::counter!("notification_emails_sent_total").increment(1);
                tracing::info!(email.to = %mask_email(&event.data.customer_email), email.message_id = %message_id, "email sent");
                if !at_most_once {
                    if let Err(e) = self.record_sent(message, key).await {
                        // Leave the message: the lease expires and a redelivery resends
                        // (same Message-ID). This is the irreducible window, made visible.
                        tracing::error!(error = %e, "email sent but not recorded; a duplicate may follow");
                        metrics::counter!("notification_sent_unrecorded_total").increment(1);
                        return Outcome::Retry;
                    }
                }
                crash_point("after_sent_before_delete");
                Outcome::Delete
            }
            Err(SendError::Transient(reason)) => {
                tracing::warn!(error = %reason, "transient SMTP failure; will retry");
                metrics::counter!("notification_transient_failures_total", "stage" => "smtp")
                    .increment(1);
                if let Err(e) = dedup::release(&self.pool, key, self.owner, at_most_once).await {
                    // The lease then simply runs out.
                    tracing::warn!(error = %e, "could not release the lease");
                }
                Outcome::Retry
            }
            Err(SendError::Permanent(reason)) => {
                self.fail_permanently(key, "smtp_rejected", &reason).await
            }
        }
    }

    /// Records `sent`. Right after a successful send this process is the only one that
    /// knows the truth, so it keeps trying through a database outage (about a minute)
    /// while the heartbeat keeps the message hidden; giving up early would turn the
    /// outage into a duplicate.
    async fn record_sent(&self, message: &Message, key: &str) -> Result<bool, sqlx::Error> {
        let attempt = (|| dedup::mark_sent(&self.pool, key)).retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(40),
        );
        self.with_heartbeat(message, key, attempt).await
    }

    async fn fail_permanently(&self, key: &str, code: &str, detail: &str) -> Outcome {
        tracing::warn!(reason = code, detail, "permanent failure; dead-lettering");
        if let Err(e) = dedup::mark_failed(&self.pool, key, code).await {
            tracing::warn!(error = %e, "could not record the failure");
        }
        Outcome::DeadLetter(code.to_owned())
    }

    /// Runs `work` (a send, or recording one) while extending both the lease and the
    /// message visibility, so work slower than either does not let a second worker start
    /// the same email.
    async fn with_heartbeat<T>(
        &self,
        message: &Message,
        key: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let every = self.lease.min(self.visibility) / 3;
        tokio::pin!(work);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = beat.tick() => {
                    match dedup::extend_lease(&self.pool, key, self.owner, self.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("lease lost during a send"),
                        Err(e) => tracing::warn!(error = %e, "lease heartbeat failed"),
                    }
                    if let Some(handle) = message.receipt_handle() {
                        if let Err(e) = self.queue.change_visibility(handle, self.visibility).await {
                            tracing::warn!(error = format!("{e:#}"), "visibility heartbeat failed");
                        }
                    }
                }
            }
        }
    }
}

/// The visibility delay before retry number `receive_count`: base, 2×base, 4×base...
/// capped at 15 minutes.
pub fn retry_delay(base: Duration, receive_count: u32) -> Duration {
    let factor = 2u32.saturating_pow(receive_count.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(Duration::from_secs(900))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_are_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(retry_delay(base, 1), Duration::from_secs(5));
        assert_eq!(retry_delay(base, 3), Duration::from_secs(20));
        assert_eq!(retry_delay(base, 40), Duration::from_secs(900));
        assert_eq!(retry_delay(base, 0), Duration::from_secs(5));
    }
}
