//! Where the relay publishes to: SQS in production, anything implementing [`Publisher`]
//! in tests.

use std::future::Future;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use shared::event::{ATTR_EVENT_TYPE, ATTR_TRACEPARENT, PAYMENT_SUCCEEDED};

use super::PendingMessage;

/// One entry of a batch that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishFailure {
    /// The outbox row id.
    pub id: i64,
    /// Why, as the queue said it.
    pub reason: String,
}

/// Publishes a batch of at most ten messages.
pub trait Publisher: Send + Sync + 'static {
    /// Returns the entries that failed inside an accepted batch.
    ///
    /// # Errors
    /// When the whole call failed: no entry may be assumed published.
    fn publish(
        &self,
        batch: &[PendingMessage],
    ) -> impl Future<Output = anyhow::Result<Vec<PublishFailure>>> + Send;
}

/// Publishes with `SendMessageBatch`.
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsPublisher {
    /// A publisher to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

/// A `String` message attribute.
///
/// # Errors
/// Never in practice: both required fields are set.
pub fn string_attribute(value: &str) -> anyhow::Result<MessageAttributeValue> {
    Ok(MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()?)
}

impl Publisher for SqsPublisher {
    async fn publish(&self, batch: &[PendingMessage]) -> anyhow::Result<Vec<PublishFailure>> {
        let mut entries = Vec::with_capacity(batch.len());
        for message in batch {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(message.id.to_string())
                .message_body(&message.payload)
                .message_attributes(ATTR_EVENT_TYPE, string_attribute(PAYMENT_SUCCEEDED)?);
            if let Some(tp) = &message.traceparent {
                entry = entry.message_attributes(ATTR_TRACEPARENT, string_attribute(tp)?);
            }
            entries.push(entry.build()?);
        }
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        // An entry absent from both lists is not known to be published: count it failed.
        let succeeded: Vec<&str> = output.successful().iter().map(|s| s.id()).collect();
        Ok(batch
            .iter()
            .filter(|m| !succeeded.contains(&m.id.to_string().as_str()))
            .map(|m| {
                let id = m.id.to_string();
                let reason = output
                    .failed()
                    .iter()
                    .find(|f| f.id() == id)
                    .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or_default()))
                    .unwrap_or_else(|| "missing from the batch response".to_owned());
                PublishFailure { id: m.id, reason }
            })
            .collect())
    }
}
