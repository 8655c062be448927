use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn liveness_and_readiness_answer_when_dependencies_are_up() {
    let app = spawn_app().await;
    let live = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(live.status(), StatusCode::OK);
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<Value>().await.expect("json"),
        json!({"database": true, "queue": true})
    );
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.pool.close().await;
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<Value>().await.expect("json")["database"],
        false
    );
    app.stop().await;
}
