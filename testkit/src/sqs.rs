//! Queues per test on the LocalStack at `AWS_ENDPOINT_URL`.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

/// The SQS client for the test stack.
pub async fn client() -> aws_sdk_sqs::Client {
    shared::aws::sqs_client(Some(&crate::stack_var("AWS_ENDPOINT_URL"))).await
}

/// A queue and its dead-letter queue, created for one test.
#[derive(Debug, Clone)]
pub struct QueuePair {
    /// The main queue.
    pub url: String,
    /// Its DLQ.
    pub dlq_url: String,
}

/// Creates `<prefix>_<random>` and its DLQ with a redrive policy after `max_receive_count`.
///
/// # Errors
/// SQS errors.
pub async fn create_pair(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
    max_receive_count: u32,
) -> anyhow::Result<QueuePair> {
    let name = crate::unique(prefix);
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()});
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    Ok(QueuePair { url, dlq_url })
}

/// Messages on a queue: (visible, in flight).
///
/// # Errors
/// SQS errors.
pub async fn depth(client: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<(u64, u64)> {
    let attrs = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let get = |k: &QueueAttributeName| attrs.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((
        get(&QueueAttributeName::ApproximateNumberOfMessages),
        get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// Waits until the queue holds nothing, visible or in flight.
///
/// # Errors
/// When it does not drain within `deadline`.
pub async fn wait_drained(
    client: &aws_sdk_sqs::Client,
    url: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    crate::wait::until(
        &format!("queue {url} to drain"),
        deadline,
        Duration::from_millis(200),
        || async { matches!(depth(client, url).await, Ok((0, 0))).then_some(()) },
    )
    .await
}

/// Receives (and deletes) every message currently visible on the queue.
///
/// # Errors
/// SQS errors.
pub async fn drain(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
    let mut all = Vec::new();
    loop {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(all);
        }
        for m in &messages {
            if let Some(handle) = m.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        all.extend(messages);
    }
}

/// Receives (and deletes) messages until `n` arrived or `deadline` passed.
///
/// # Errors
/// SQS errors, or fewer than `n` messages by the deadline.
pub async fn collect(
    client: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
    deadline: Duration,
) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
    let end = tokio::time::Instant::now() + deadline;
    let mut all = Vec::new();
    while all.len() < n {
        anyhow::ensure!(
            tokio::time::Instant::now() < end,
            "only {} of {n} messages on {url} after {deadline:?}",
            all.len()
        );
        all.extend(drain(client, url).await?);
    }
    Ok(all)
}

/// Sends `bodies` in batches of ten, in order (copies of one body can share a batch, as
/// SQS itself may deliver them).
///
/// # Errors
/// SQS errors, or an entry the queue refused.
pub async fn send_bodies(
    client: &aws_sdk_sqs::Client,
    url: &str,
    bodies: &[String],
) -> anyhow::Result<()> {
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(body)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await?;
        anyhow::ensure!(
            out.failed().is_empty(),
            "SQS refused {} entries",
            out.failed().len()
        );
    }
    Ok(())
}
