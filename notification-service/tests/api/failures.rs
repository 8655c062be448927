use std::{collections::HashMap, time::Duration};

use crate::helpers::{emails_for, event_to, spawn_consumer};

async fn dlq_reasons(
    sqs: &aws_sdk_sqs::Client,
    dlq: &str,
    n: usize,
) -> Vec<(String, Option<String>)> {
    let messages = testkit::sqs::collect(sqs, dlq, n, Duration::from_secs(30))
        .await
        .expect("dead letters");
    messages
        .iter()
        .map(|m| {
            let reason = m
                .message_attributes()
                .and_then(|a| a.get("dead_letter_reason"))
                .and_then(|v| v.string_value())
                .map(str::to_owned);
            (m.body().unwrap_or_default().to_owned(), reason)
        })
        .collect()
}

#[tokio::test]
async fn poison_messages_go_to_the_dlq_with_a_reason_and_nothing_is_sent() {
    let consumer = spawn_consumer(5, &[]).await;
    let v2 = r#"{"event_type":"payment.succeeded","version":2,"data":{}}"#;
    let other = r#"{"event_type":"payment.refunded","version":1}"#;
    for body in ["not json at all", v2, other] {
        consumer.send_raw(body).await;
    }
    let reasons: HashMap<String, Option<String>> =
        dlq_reasons(&consumer.sqs, &consumer.queue.dlq_url, 3)
            .await
            .into_iter()
            .collect();
    assert_eq!(
        reasons["not json at all"].as_deref(),
        Some("malformed_body")
    );
    assert_eq!(reasons[v2].as_deref(), Some("unsupported_version"));
    assert_eq!(reasons[other].as_deref(), Some("unknown_event_type"));
    consumer.wait_drained().await;
    consumer.stop().await;
}

#[tokio::test]
async fn a_permanent_smtp_rejection_is_dead_lettered_and_recorded_failed() {
    let consumer = spawn_consumer(5, &[]).await;
    let event = event_to(&format!("{}@example.com", testkit::unique("reject5xx")));
    consumer.send_copies(&event, 1).await;
    let dead = dlq_reasons(&consumer.sqs, &consumer.queue.dlq_url, 1).await;
    assert_eq!(dead[0].1.as_deref(), Some("smtp_rejected"));
    consumer.wait_drained().await;
    assert_eq!(
        consumer.delivery(&event.idempotency_key).await.map(|d| d.0),
        Some("failed".into())
    );
    // A later copy of the same event is not retried.
    consumer.send_copies(&event, 1).await;
    consumer.wait_drained().await;
    assert_eq!(emails_for(&event.idempotency_key), 0);
    consumer.stop().await;
}

#[tokio::test]
async fn a_temporary_smtp_failure_is_retried_then_redriven_to_the_dlq() {
    let consumer = spawn_consumer(3, &[]).await;
    let event = event_to(&format!("{}@example.com", testkit::unique("tempfail4xx")));
    consumer.send_copies(&event, 1).await;
    // SQS's redrive policy moves it after three receives: no reason attribute of ours.
    let dead = dlq_reasons(&consumer.sqs, &consumer.queue.dlq_url, 1).await;
    assert_eq!(dead[0].1, None);
    let (state, attempts) = consumer
        .delivery(&event.idempotency_key)
        .await
        .expect("row");
    assert_eq!(state, "sending");
    assert_eq!(attempts, 3, "one claim per receive");
    assert_eq!(emails_for(&event.idempotency_key), 0);
    consumer.stop().await;
}

#[tokio::test]
async fn the_dlq_is_found_from_the_redrive_policy() {
    let sqs = testkit::sqs::client().await;
    let pair = testkit::sqs::create_pair(&sqs, "redrive", 5)
        .await
        .expect("queues");
    let found = notification_service::consumer::dlq_from_redrive_policy(&sqs, &pair.url)
        .await
        .expect("found");
    assert_eq!(found, pair.dlq_url);
}
