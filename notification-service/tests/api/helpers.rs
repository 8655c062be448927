use std::time::Duration;

use clap::Parser;
use notification_service::{config::Settings, startup::Application};
use shared::{
    event::{Envelope, PaymentSucceeded},
    shutdown::CancellationToken,
};
use sqlx::PgPool;
use testkit::{db::TestDatabase, sqs::QueuePair};

/// A running notification service with its own database and queues.
pub struct TestConsumer {
    pub pool: PgPool,
    pub db: TestDatabase,
    pub queue: QueuePair,
    pub sqs: aws_sdk_sqs::Client,
    pub health: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts a consumer; `max_receive_count` is the queue's redrive threshold and `extra`
/// flags override the defaults.
pub async fn spawn_consumer(max_receive_count: u32, extra: &[&str]) -> TestConsumer {
    if std::env::var_os("TEST_LOG").is_some() {
        shared::telemetry::init(shared::telemetry::LogFormat::Pretty);
    }
    let db = testkit::db::fresh("notifications");
    let sqs = testkit::sqs::client().await;
    let queue = testkit::sqs::create_pair(&sqs, "notify", max_receive_count)
        .await
        .expect("queues");
    let mut args = vec![
        "notification-service".to_owned(),
        format!("--database-url={}", db.url),
        "--health-addr=127.0.0.1:0".to_owned(),
        format!("--sqs-queue-url={}", queue.url),
        // Explicit, so the stack's own SQS_DLQ_URL in the environment cannot leak in.
        format!("--sqs-dlq-url={}", queue.dlq_url),
        format!(
            "--aws-endpoint-url={}",
            testkit::stack_var("AWS_ENDPOINT_URL")
        ),
        format!("--smtp-url={}", testkit::stack_var("TEST_SMTP_URL")),
        "--retry-base-delay=200ms".to_owned(),
        // A copy that finds another worker's live lease waits for the lease end: keep
        // that short so the queue drains quickly.
        "--lease-duration=4s".to_owned(),
        "--sqs-wait-time=1s".to_owned(),
        "--log-format=pretty".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let app = Application::build(Settings::parse_from(args))
        .await
        .expect("app builds");
    let health = format!("http://127.0.0.1:{}", app.health_port());
    let pool = PgPool::connect(&db.url).await.expect("test pool");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestConsumer {
        pool,
        db,
        queue,
        sqs,
        health,
        shutdown,
        task,
    }
}

/// A payment event for a fresh charge id, to `email`.
pub fn event_to(email: &str) -> Envelope {
    Envelope::payment_succeeded(
        uuid::Uuid::new_v4(),
        time::OffsetDateTime::now_utc(),
        PaymentSucceeded {
            charge_id: testkit::unique("ch"),
            amount: 1250,
            currency: "usd".into(),
            customer_email: email.into(),
            description: Some("Order 1001".into()),
        },
    )
}

/// An event to a unique, accepted address.
pub fn event() -> Envelope {
    event_to(&format!("{}@example.com", testkit::unique("jane")))
}

impl TestConsumer {
    /// Puts a raw body on the queue.
    pub async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue.url)
            .message_body(body)
            .send()
            .await
            .expect("sent");
    }

    /// Puts `copies` copies of the event on the queue in one batch (as a duplicate
    /// publish would).
    pub async fn send_copies(&self, event: &Envelope, copies: usize) {
        let body = serde_json::to_string(event).expect("json");
        testkit::sqs::send_bodies(&self.sqs, &self.queue.url, &vec![body; copies])
            .await
            .expect("batch sent");
    }

    pub async fn wait_drained(&self) {
        testkit::sqs::wait_drained(&self.sqs, &self.queue.url, Duration::from_secs(30))
            .await
            .expect("queue drained");
    }

    /// (state, attempts) of the key's dedup row.
    pub async fn delivery(&self, key: &str) -> Option<(String, i32)> {
        sqlx::query_as("SELECT state, attempts FROM deliveries WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .expect("query")
    }

    /// Stops the service as SIGTERM would, asserting it drains promptly, and drops the
    /// database.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stops within 10 s of the signal")
            .expect("task")
            .expect("clean shutdown");
        self.pool.close().await;
        self.db.drop_database().await.expect("dropped");
    }
}

/// Waits until exactly `n` emails for `key` have arrived, then checks no more come
/// while the queue is drained.
pub async fn wait_for_emails(key: &str, n: usize) -> Vec<testkit::mail::ReceivedMail> {
    testkit::wait::until(
        &format!("{n} email(s) for {key}"),
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { testkit::mail::for_key(key).ok().filter(|m| m.len() >= n) },
    )
    .await
    .expect("emails arrive")
}

/// Emails the sink received for `key` so far.
pub fn emails_for(key: &str) -> usize {
    testkit::mail::for_key(key).expect("maildir readable").len()
}

impl TestConsumer {
    /// Exactly one email arrived for `key` and the dedup row says `sent`, claimed
    /// `attempts` times.
    pub async fn assert_sent_once(&self, key: &str, attempts: i32) {
        assert_eq!(emails_for(key), 1, "emails for {key}");
        assert_eq!(self.delivery(key).await, Some(("sent".into(), attempts)));
    }
}
