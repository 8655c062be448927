use clap::Parser;
use payment_service::{config::Settings, startup::Application};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shared::shutdown::CancellationToken;
use sqlx::PgPool;
use testkit::{db::TestDatabase, sqs::QueuePair};

pub const API_KEY: &str = "sk_test_one";
pub const OTHER_API_KEY: &str = "sk_test_two";

/// A running payment service on a random port with its own database and queue.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub db: TestDatabase,
    pub queue: QueuePair,
    pub sqs: aws_sdk_sqs::Client,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Settings for a test app; `extra` flags override the defaults.
pub fn settings(db: &TestDatabase, queue: &QueuePair, extra: &[&str]) -> Settings {
    let endpoint = testkit::stack_var("AWS_ENDPOINT_URL");
    let mut args = vec![
        "payment-service".to_owned(),
        format!("--database-url={}", db.url),
        "--listen-addr=127.0.0.1:0".to_owned(),
        format!("--sqs-queue-url={}", queue.url),
        format!("--aws-endpoint-url={endpoint}"),
        format!("--api-keys={API_KEY},{OTHER_API_KEY}"),
        "--relay-sweep-interval=200ms".to_owned(),
        "--log-format=pretty".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Settings::parse_from(args)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    let db = testkit::db::fresh("payments");
    let sqs = testkit::sqs::client().await;
    let queue = testkit::sqs::create_pair(&sqs, "payments", 5)
        .await
        .expect("queue created");
    let app = Application::build(settings(&db, &queue, extra))
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        pool,
        db,
        queue,
        sqs,
        http: reqwest::Client::new(),
        shutdown,
        server,
    }
}

pub fn charge_body(amount: i64) -> Value {
    json!({"amount": amount, "currency": "usd", "customer_email": "jane@example.com", "description": "Order 1001"})
}

impl TestApp {
    pub async fn post_charge(&self, key: Option<&str>, body: &Value) -> Response {
        self.post_charge_as(API_KEY, key, body).await
    }

    pub async fn post_charge_as(&self, api_key: &str, key: Option<&str>, body: &Value) -> Response {
        let mut request = self
            .http
            .post(format!("{}/v1/charges", self.address))
            .bearer_auth(api_key)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("request sent")
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// Stops the service (as SIGTERM would) and drops the database.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server
            .await
            .expect("server task")
            .expect("clean shutdown");
        self.db.drop_database().await.expect("database dropped");
    }
}

pub async fn error_code(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("json body");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}
