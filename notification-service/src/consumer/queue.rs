//! The SQS operations the consumer uses, in one place.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use shared::event::ATTR_DEAD_LETTER_REASON;

/// The payment-events queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
    dlq_url: String,
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl Queue {
    /// Wraps the two queues.
    pub fn new(client: aws_sdk_sqs::Client, url: String, dlq_url: String) -> Self {
        Self {
            client,
            url,
            dlq_url,
        }
    }

    /// The main queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The dead-letter queue's URL.
    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    /// Long-polls for up to ten messages.
    ///
    /// # Errors
    /// SQS errors.
    pub async fn receive(
        &self,
        wait: Duration,
        visibility: Duration,
    ) -> anyhow::Result<Vec<Message>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(secs(wait).min(20))
            .visibility_timeout(secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .context("ReceiveMessage failed")?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Deletes the messages with these receipt handles; returns how many SQS refused
    /// (a stale handle after a visibility timeout: the copy will come back as a dedup hit).
    ///
    /// # Errors
    /// When the call itself failed.
    pub async fn delete_batch(&self, receipt_handles: &[String]) -> anyhow::Result<usize> {
        let mut refused = 0;
        for chunk in receipt_handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("DeleteMessageBatch failed")?;
            for failed in out.failed() {
                tracing::warn!(
                    sqs.error = failed.code(),
                    "a message could not be deleted; a redelivery will be a dedup hit"
                );
            }
            refused += out.failed().len();
        }
        Ok(refused)
    }

    /// Makes the message invisible for `timeout` from now (0: visible again at once).
    ///
    /// # Errors
    /// SQS errors (a stale receipt handle among them).
    pub async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs(timeout).min(43_200))
            .send()
            .await
            .context("ChangeMessageVisibility failed")?;
        Ok(())
    }

    /// Copies `message` to the dead-letter queue with a reason attribute. The caller then
    /// deletes the original.
    ///
    /// # Errors
    /// SQS errors; the original must then stay on the queue.
    pub async fn dead_letter(&self, message: &Message, reason: &str) -> anyhow::Result<()> {
        let mut attributes = message.message_attributes().cloned().unwrap_or_default();
        attributes.insert(
            ATTR_DEAD_LETTER_REASON.to_owned(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(reason)
                .build()?,
        );
        self.client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(message.body().unwrap_or_default())
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .context("SendMessage to the dead-letter queue failed")?;
        Ok(())
    }

    /// True when the queue answers (readiness).
    pub async fn is_reachable(&self) -> bool {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .is_ok()
    }
}

/// Finds the dead-letter queue from `queue_url`'s redrive policy.
///
/// # Errors
/// When the queue has no redrive policy or the DLQ cannot be found.
pub async fn dlq_from_redrive_policy(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> anyhow::Result<String> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .context("Failed to read the queue's redrive policy")?;
    let policy = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .context("The queue has no redrive policy; create it with one or set SQS_DLQ_URL")?;
    let policy: serde_json::Value =
        serde_json::from_str(policy).context("Unreadable redrive policy")?;
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .context("Redrive policy without deadLetterTargetArn")?;
    let name = arn.rsplit(':').next().unwrap_or(arn);
    shared::aws::resolve_queue_url(client, None, name).await
}
