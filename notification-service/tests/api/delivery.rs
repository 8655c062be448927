use std::time::Duration;

use notification_service::email::message_id;
use reqwest::StatusCode;

use crate::helpers::{emails_for, event, spawn_consumer, wait_for_emails};

#[tokio::test]
async fn an_event_becomes_exactly_one_email_with_its_message_id_and_key() {
    let consumer = spawn_consumer(5, &[]).await;
    let event = event();
    consumer.send_copies(&event, 1).await;
    let mails = wait_for_emails(&event.idempotency_key, 1).await;
    consumer.wait_drained().await;
    let mail = &mails[0];
    assert_eq!(
        mail.message_id.as_deref(),
        Some(message_id(&event.idempotency_key, "example.com").as_str())
    );
    assert_eq!(mail.to.as_deref(), Some(event.data.customer_email.as_str()));
    assert_eq!(mail.subject.as_deref(), Some("Payment received: 12.50 USD"));
    consumer.assert_sent_once(&event.idempotency_key, 1).await;
    consumer.stop().await;
}

#[tokio::test]
async fn duplicate_deliveries_even_in_one_batch_send_one_email() {
    let consumer = spawn_consumer(5, &[]).await;
    let event = event();
    consumer.send_copies(&event, 4).await;
    wait_for_emails(&event.idempotency_key, 1).await;
    consumer.send_copies(&event, 2).await;
    consumer.wait_drained().await;
    consumer.assert_sent_once(&event.idempotency_key, 1).await;
    consumer.stop().await;
}

#[tokio::test]
async fn many_events_each_become_one_email() {
    let consumer = spawn_consumer(5, &[]).await;
    let events: Vec<_> = (0..30).map(|_| event()).collect();
    for e in &events {
        consumer.send_copies(e, 2).await;
    }
    consumer.wait_drained().await;
    for e in &events {
        assert_eq!(emails_for(&e.idempotency_key), 1, "{}", e.idempotency_key);
    }
    consumer.stop().await;
}

#[tokio::test]
async fn at_most_once_mode_also_sends_one_email() {
    let consumer = spawn_consumer(5, &["--delivery-guarantee=at-most-once"]).await;
    let event = event();
    consumer.send_copies(&event, 3).await;
    wait_for_emails(&event.idempotency_key, 1).await;
    consumer.wait_drained().await;
    consumer.assert_sent_once(&event.idempotency_key, 1).await;
    consumer.stop().await;
}

#[tokio::test]
async fn probes_and_metrics_answer() {
    let consumer = spawn_consumer(5, &[]).await;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/readyz", consumer.health))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), StatusCode::OK);
    let event = event();
    consumer.send_copies(&event, 2).await;
    consumer.wait_drained().await;
    let metrics = http
        .get(format!("{}/metrics", consumer.health))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("notification_emails_sent_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("notification_dedup_hits_total"),
        "{metrics}"
    );
    let live = tokio::time::timeout(
        Duration::from_secs(2),
        http.get(format!("{}/healthz", consumer.health)).send(),
    )
    .await
    .expect("answers")
    .expect("sent");
    assert_eq!(live.status(), StatusCode::OK);
    consumer.stop().await;
}
