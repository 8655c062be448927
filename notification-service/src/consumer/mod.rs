//! The SQS loop: pollers long-poll, messages are processed concurrently up to a bound,
//! and each batch's outcomes are applied (batch delete, visibility changes, DLQ).
//!
//! Copies of one event inside a batch (SQS may deliver a message twice, even in one
//! receive) are processed one after the other, so the second sees the first's `sent`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use shared::{
    event::{self, Envelope, PoisonReason, ATTR_TRACEPARENT},
    shutdown::CancellationToken,
};
use tokio::sync::Semaphore;
use tracing::Instrument;

mod process;
mod queue;

pub use process::{retry_delay, Outcome, Processor};
pub use queue::{dlq_from_redrive_policy, Queue};

/// How the pollers behave.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// Concurrent long-polling loops.
    pub pollers: usize,
    /// Messages processed at once across pollers.
    pub max_in_flight: usize,
    /// Long-poll wait.
    pub wait: Duration,
    /// Visibility timeout asked for on receive.
    pub visibility: Duration,
    /// First retry delay after a transient failure.
    pub retry_base_delay: Duration,
}

/// Runs the pollers until `shutdown`; in-flight messages finish, unstarted ones are made
/// visible again.
pub async fn run(processor: Arc<Processor>, settings: PollSettings, shutdown: CancellationToken) {
    let limiter = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
    let mut pollers = tokio::task::JoinSet::new();
    for _ in 0..settings.pollers.max(1) {
        pollers.spawn(poll_loop(
            processor.clone(),
            limiter.clone(),
            settings,
            shutdown.clone(),
        ));
    }
    while pollers.join_next().await.is_some() {}
}

async fn poll_loop(
    processor: Arc<Processor>,
    limiter: Arc<Semaphore>,
    settings: PollSettings,
    shutdown: CancellationToken,
) {
    let mut failures: u32 = 0;
    while !shutdown.is_cancelled() {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = processor.queue.receive(settings.wait, settings.visibility) => r,
        };
        match received {
            Ok(messages) => {
                failures = 0;
                if !messages.is_empty() {
                    handle_batch(&processor, &limiter, messages, settings, &shutdown).await;
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = format!("{e:#}"), "receive failed; backing off");
                let pause = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Processes one received batch and applies every outcome.
pub async fn handle_batch(
    processor: &Processor,
    limiter: &Semaphore,
    messages: Vec<Message>,
    settings: PollSettings,
    shutdown: &CancellationToken,
) {
    let groups = group_by_key(messages);
    let processed = futures::future::join_all(groups.into_iter().map(|group| async move {
        let mut outcomes = Vec::with_capacity(group.len());
        for (message, decoded) in group {
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => None,
                p = limiter.acquire() => p.ok(),
            };
            let outcome = match (permit, &decoded) {
                (None, _) => Outcome::Release,
                (Some(_permit), Err(reason)) => {
                    tracing::warn!(sqs.message_id = message.message_id().unwrap_or_default(), reason = %reason, "poison message");
                    Outcome::DeadLetter(reason.code().to_owned())
                }
                (Some(_permit), Ok(event)) => {
                    let span = tracing::info_span!(
                        "message",
                        sqs.message_id = message.message_id().unwrap_or_default(),
                        event.idempotency_key = %event.idempotency_key,
                        trace.parent = message
                            .message_attributes()
                            .and_then(|a| a.get(ATTR_TRACEPARENT))
                            .and_then(|v| v.string_value())
                            .unwrap_or_default(),
                    );
                    processor.process(&message, event).instrument(span).await
                }
            };
            outcomes.push((message, outcome));
        }
        outcomes
    }))
    .await;

    let mut deletes = Vec::new();
    for (message, outcome) in processed.into_iter().flatten() {
        let Some(handle) = message.receipt_handle().map(str::to_owned) else {
            continue;
        };
        let visibility = match outcome {
            Outcome::Delete => {
                deletes.push(handle);
                continue;
            }
            Outcome::DeadLetter(reason) => {
                match processor.queue.dead_letter(&message, &reason).await {
                    Ok(()) => {
                        metrics::counter!("notification_dead_lettered_total", "reason" => reason)
                            .increment(1);
                        deletes.push(handle);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "dead-lettering failed; the message stays"
                        );
                        retry_delay(settings.retry_base_delay, receive_count(&message))
                    }
                }
            }
            Outcome::Retry => retry_delay(settings.retry_base_delay, receive_count(&message)),
            Outcome::Busy(until_lease_end) => until_lease_end,
            Outcome::Release => Duration::ZERO,
        };
        if let Err(e) = processor.queue.change_visibility(&handle, visibility).await {
            // The message becomes visible when its current timeout ends instead.
            tracing::warn!(error = format!("{e:#}"), "could not change visibility");
        }
    }
    if !deletes.is_empty() {
        if let Err(e) = processor.queue.delete_batch(&deletes).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "batch delete failed; redeliveries will be dedup hits"
            );
        }
    }
}

type Decoded = (Message, Result<Envelope, PoisonReason>);

/// Decodes each body and groups copies of one event (same idempotency key) together,
/// keeping receive order; poison messages stand alone.
fn group_by_key(messages: Vec<Message>) -> Vec<Vec<Decoded>> {
    let mut groups: Vec<Vec<Decoded>> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for message in messages {
        let decoded = event::decode(message.body().unwrap_or_default());
        match &decoded {
            Ok(e) => match by_key.get(&e.idempotency_key) {
                Some(&i) => groups[i].push((message, decoded)),
                None => {
                    by_key.insert(e.idempotency_key.clone(), groups.len());
                    groups.push(vec![(message, decoded)]);
                }
            },
            Err(_) => groups.push(vec![(message, decoded)]),
        }
    }
    groups
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::event::PaymentSucceeded;

    fn message(body: &str) -> Message {
        Message::builder().body(body).receipt_handle("h").build()
    }

    fn body(charge: &str) -> String {
        let e = Envelope::payment_succeeded(
            uuid::Uuid::new_v4(),
            time::OffsetDateTime::UNIX_EPOCH,
            PaymentSucceeded {
                charge_id: charge.into(),
                amount: 1,
                currency: "usd".into(),
                customer_email: "a@b.co".into(),
                description: None,
            },
        );
        serde_json::to_string(&e).expect("serializes")
    }

    #[test]
    fn copies_of_one_event_share_a_group_and_poison_stands_alone() {
        let groups = group_by_key(vec![
            message(&body("ch_1")),
            message("garbage"),
            message(&body("ch_2")),
            message(&body("ch_1")),
        ]);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1, 1]);
        assert!(groups[1][0].1.is_err());
    }
}
