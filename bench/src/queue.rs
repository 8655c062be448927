//! The queue's own ceiling: LocalStack with `SendMessageBatch` (10 per call) in and
//! `ReceiveMessage` (up to 10) + `DeleteMessageBatch` out, concurrently, nothing else.
//! Producers and consumers mirror the services' own concurrency (relay workers, pollers),
//! plus headroom, and carry the same payload and attributes as the relay's messages.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use shared::event::{ATTR_EVENT_TYPE, ATTR_TRACEPARENT, PAYMENT_SUCCEEDED};

/// Messages per second through the queue in one run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct QueueRun {
    /// Accepted by `SendMessageBatch`, per second.
    pub sent_per_s: f64,
    /// Received and deleted, per second: what passes through.
    pub through_per_s: f64,
}

fn attribute(value: &str) -> anyhow::Result<MessageAttributeValue> {
    Ok(MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()?)
}

async fn produce(
    sqs: aws_sdk_sqs::Client,
    url: String,
    payload: String,
    sent: Arc<AtomicU64>,
    until: Instant,
) -> anyhow::Result<()> {
    while Instant::now() < until {
        let mut entries = Vec::with_capacity(10);
        for i in 0..10 {
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&payload)
                    .message_attributes(ATTR_EVENT_TYPE, attribute(PAYMENT_SUCCEEDED)?)
                    .message_attributes(
                        ATTR_TRACEPARENT,
                        attribute("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?,
                    )
                    .build()?,
            );
        }
        let out = sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await?;
        sent.fetch_add(out.successful().len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

async fn consume(
    sqs: aws_sdk_sqs::Client,
    url: String,
    through: Arc<AtomicU64>,
    until: Instant,
) -> anyhow::Result<()> {
    while Instant::now() < until {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await?;
        let entries = out
            .messages()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if entries.is_empty() {
            continue;
        }
        let done = sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await?;
        through.fetch_add(done.successful().len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Runs `producers` and `consumers` on a fresh queue for `warmup` then `duration`,
/// counting only the second window; deletes the queue afterwards.
///
/// # Errors
/// SQS errors.
pub async fn ceiling(
    sqs: &aws_sdk_sqs::Client,
    producers: usize,
    consumers: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<QueueRun> {
    let queue = testkit::sqs::create_pair(sqs, "bench-ceiling", 5).await?;
    let (payload, _) = crate::pgbench::sample_payload();
    let sent = Arc::new(AtomicU64::new(0));
    let through = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + warmup + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..producers.max(1) {
        tasks.spawn(produce(
            sqs.clone(),
            queue.url.clone(),
            payload.clone(),
            sent.clone(),
            until,
        ));
    }
    for _ in 0..consumers.max(1) {
        tasks.spawn(consume(
            sqs.clone(),
            queue.url.clone(),
            through.clone(),
            until,
        ));
    }
    tokio::time::sleep(warmup).await;
    let (s0, t0, w0) = (
        sent.load(Ordering::Relaxed),
        through.load(Ordering::Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(duration).await;
    let (s1, t1, window) = (
        sent.load(Ordering::Relaxed),
        through.load(Ordering::Relaxed),
        w0.elapsed().as_secs_f64(),
    );
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    for url in [&queue.url, &queue.dlq_url] {
        sqs.delete_queue().queue_url(url).send().await?;
    }
    Ok(QueueRun {
        sent_per_s: (s1 - s0) as f64 / window,
        through_per_s: (t1 - t0) as f64 / window,
    })
}
