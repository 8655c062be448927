//! `PUBLISH_MODE=inline`, the naive variant `make bench` measures the outbox against.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use shared::event::decode;

use crate::helpers::{charge_body, spawn_app_with};

#[tokio::test]
async fn in_inline_mode_the_event_is_published_before_the_charge_is_answered() {
    // The relay still runs, but only its periodic sweep: no commit wakes it in this mode.
    let app = spawn_app_with(&["--publish-mode=inline"]).await;
    let response = app.post_charge(Some("inline-1"), &charge_body(1250)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let charge: Value = response.json().await.expect("json");

    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(
        unpublished, 0,
        "the request marked its outbox row published"
    );
    let messages = testkit::sqs::collect(&app.sqs, &app.queue.url, 1, Duration::from_secs(10))
        .await
        .expect("the message is on the queue");
    // A sweep landing between the commit and the request's own update may publish a
    // second copy (the consumer deduplicates): every copy is this charge's event.
    for message in &messages {
        let event = decode(message.body().unwrap_or_default()).expect("valid event");
        assert_eq!(event.data.charge_id, charge["id"].as_str().expect("id"));
        let attrs = message.message_attributes().expect("attributes");
        assert_eq!(
            attrs["event_type"].string_value(),
            Some("payment.succeeded")
        );
    }
    app.stop().await;
}
