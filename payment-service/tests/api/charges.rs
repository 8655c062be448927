use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{charge_body, error_code, spawn_app, OTHER_API_KEY};

#[tokio::test]
async fn a_valid_charge_is_committed_with_its_outbox_row_and_key() {
    let app = spawn_app().await;
    let response = app.post_charge(Some("order-1"), &charge_body(1250)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert!(body["id"].as_str().expect("id").starts_with("ch_"));
    assert_eq!(body["amount"], 1250);
    assert_eq!(body["currency"], "usd");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["object"], "charge");
    assert_eq!(app.count("charges").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    assert_eq!(app.count("idempotency_keys").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_charge_reads_back_for_its_owner_only() {
    let app = spawn_app().await;
    let created: Value = app
        .post_charge(Some("k"), &charge_body(500))
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");
    let url = format!("{}/v1/charges/{id}", app.address);

    let read = app
        .http
        .get(&url)
        .bearer_auth(crate::helpers::API_KEY)
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.json::<Value>().await.expect("json"), created);

    let other = app
        .http
        .get(&url)
        .bearer_auth(OTHER_API_KEY)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        error_code(other).await,
        (StatusCode::NOT_FOUND, "charge_not_found".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_unknown_api_key_is_401() {
    let app = spawn_app().await;
    let no_auth = app
        .http
        .post(format!("{}/v1/charges", app.address))
        .header("Idempotency-Key", "k")
        .json(&charge_body(100))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        error_code(no_auth).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let wrong = app
        .post_charge_as("sk_wrong", Some("k"), &charge_body(100))
        .await;
    assert_eq!(
        error_code(wrong).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    assert_eq!(app.count("charges").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn invalid_requests_are_rejected_with_stable_codes_and_store_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(Option<&str>, Value, StatusCode, &str)> = vec![
        (
            None,
            charge_body(100),
            StatusCode::BAD_REQUEST,
            "idempotency_key_missing",
        ),
        (
            Some(""),
            charge_body(100),
            StatusCode::BAD_REQUEST,
            "idempotency_key_invalid",
        ),
        (
            Some("k1"),
            json!({"amount": 0, "currency": "usd", "customer_email": "a@b.co"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_invalid",
        ),
        (
            Some("k2"),
            json!({"amount": -1, "currency": "usd", "customer_email": "a@b.co"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_invalid",
        ),
        (
            Some("k3"),
            json!({"amount": 100, "currency": "zzz", "customer_email": "a@b.co"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_invalid",
        ),
        (
            Some("k4"),
            json!({"amount": 100, "currency": "usd", "customer_email": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer_email_invalid",
        ),
        (
            Some("k5"),
            json!({"amount": 100, "currency": "usd"}),
            StatusCode::BAD_REQUEST,
            "invalid_request_body",
        ),
        (
            Some("k6"),
            json!({"amount": "100", "currency": "usd", "customer_email": "a@b.co"}),
            StatusCode::BAD_REQUEST,
            "invalid_request_body",
        ),
        (
            Some("k7"),
            json!({"amount": 100, "currency": "usd", "customer_email": "a@b.co", "extra": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_request_body",
        ),
    ];
    for (key, body, status, code) in cases {
        let response = app.post_charge(key, &body).await;
        assert_eq!(
            error_code(response).await,
            (status, code.to_owned()),
            "{body}"
        );
    }
    let not_json = app
        .http
        .post(format!("{}/v1/charges", app.address))
        .bearer_auth(crate::helpers::API_KEY)
        .header("Idempotency-Key", "k8")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        error_code(not_json).await,
        (StatusCode::BAD_REQUEST, "invalid_request_body".into())
    );
    assert_eq!(app.count("charges").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);

    // A failed validation stored nothing: the same key now works with a valid body.
    let ok = app.post_charge(Some("k1"), &charge_body(100)).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_503_and_charges_nothing() {
    let app = spawn_app().await;
    // Every later acquire fails as if Postgres were gone.
    app.pool.close().await;
    let response = app.post_charge(Some("k"), &charge_body(100)).await;
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(
        error_code(response).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable".into()
        )
    );
    app.stop().await;
}
