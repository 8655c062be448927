use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{charge_body, error_code, spawn_app, spawn_app_with, OTHER_API_KEY};

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_replays_the_first_response() {
    let app = spawn_app().await;
    let first = app.post_charge(Some("order-7"), &charge_body(700)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");

    let again = app.post_charge(Some("order-7"), &charge_body(700)).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.json::<Value>().await.expect("json"), first);
    assert_eq!(app.count("charges").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_rejected() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_charge(Some("k"), &charge_body(100)).await.status(),
        StatusCode::CREATED
    );
    let reused = app.post_charge(Some("k"), &charge_body(200)).await;
    assert_eq!(
        error_code(reused).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused".into()
        )
    );
    assert_eq!(app.count("charges").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn keys_are_scoped_to_the_api_key() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_charge(Some("shared-key"), &charge_body(100))
            .await
            .status(),
        StatusCode::CREATED
    );
    let other = app
        .post_charge_as(OTHER_API_KEY, Some("shared-key"), &charge_body(100))
        .await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert!(other.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.count("charges").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_charge() {
    let app = spawn_app().await;
    let body = charge_body(100);
    let responses = join_all((0..20).map(|_| app.post_charge(Some("race"), &body))).await;
    let mut created = 0;
    let mut replayed = 0;
    let mut in_use = 0;
    for r in responses {
        match (r.status(), r.headers().contains_key("idempotent-replayed")) {
            (StatusCode::CREATED, false) => created += 1,
            (StatusCode::CREATED, true) => replayed += 1,
            (StatusCode::CONFLICT, _) => {
                assert!(r.headers().contains_key("retry-after"));
                assert_eq!(error_code(r).await.1, "idempotency_key_in_use");
                in_use += 1;
            }
            (status, _) => panic!("unexpected status {status}"),
        }
    }
    assert_eq!(created, 1, "replayed {replayed}, in use {in_use}");
    assert_eq!(created + replayed + in_use, 20);
    assert_eq!(app.count("charges").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn expired_keys_are_forgotten_and_reaped() {
    let app = spawn_app_with(&["--idempotency-key-retention=1s"]).await;
    assert_eq!(
        app.post_charge(Some("old"), &charge_body(100))
            .await
            .status(),
        StatusCode::CREATED
    );
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .expect("aged");
    // Past retention the key is new again: a different body is a new charge, not a 422.
    let fresh = app.post_charge(Some("old"), &charge_body(300)).await;
    assert_eq!(fresh.status(), StatusCode::CREATED);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.count("charges").await, 2);

    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .expect("aged");
    let (keys, _) = payment_service::reaper::reap_once(
        &app.pool,
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3600),
    )
    .await
    .expect("reaped");
    assert_eq!(keys, 1);
    assert_eq!(app.count("idempotency_keys").await, 0);
    app.stop().await;
}
