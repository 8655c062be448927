//! The system under measurement: both release binaries as processes, each service with
//! its own fresh database, sharing a fresh queue pair on the stack's LocalStack.
//!
//! Databases are named `bench_*`, not `test_*`: `make test` drops every `test_*`
//! database when it starts, and may run on this machine while the bench does.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use sqlx::{postgres::PgPoolOptions, PgPool};
use testkit::{
    process::{free_port, wait_http_ok, ServiceProcess},
    sqs::QueuePair,
};

/// The API key the bench's systems accept.
pub const API_KEY: &str = "sk_bench";

/// A running system.
pub struct BenchSystem {
    /// A short name for logs.
    pub label: String,
    /// Base URL of the payment API.
    pub api: String,
    /// Base URL of the notification service's health endpoints.
    pub health: String,
    /// URL of the payments database.
    pub payments_url: String,
    /// URL of the notifications database.
    pub notifications_url: String,
    /// The queues.
    pub queue: QueuePair,
    /// Where the services' logs go.
    pub log_dir: PathBuf,
    sqs: aws_sdk_sqs::Client,
    payment: Option<ServiceProcess>,
    notification: Option<ServiceProcess>,
    payment_env: Vec<(String, String)>,
    notification_env: Vec<(String, String)>,
}

/// `postgres://…:5432` without a database, from the stack's `TEST_DATABASE_URL`.
pub fn server_url() -> String {
    testkit::stack_var("TEST_DATABASE_URL")
        .trim_end_matches('/')
        .to_owned()
}

/// A pool on `url` with up to `max` connections.
///
/// # Errors
/// When Postgres is unreachable.
pub async fn pool(url: &str, max: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .with_context(|| format!("Failed to connect to {}", shared::redact::redact_url(url)))
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl BenchSystem {
    /// Starts both services (`common` environment for both, then `extra_payment` for the
    /// payment service, on top of their defaults) and
    /// waits until both are ready; each has created and migrated its database by then.
    ///
    /// # Errors
    /// When a service does not become ready.
    pub async fn start(
        label: &str,
        sqs: &aws_sdk_sqs::Client,
        log_root: &std::path::Path,
        common: &[(String, String)],
        extra_payment: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let queue = testkit::sqs::create_pair(sqs, &format!("bench-{label}"), 5).await?;
        let server = server_url();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let payments_url = format!("{server}/bench_{label}_payments_{suffix}");
        let notifications_url = format!("{server}/bench_{label}_notifications_{suffix}");
        let log_dir = log_root.join(label);
        std::fs::create_dir_all(&log_dir)?;
        let api_port = free_port()?;
        let health_port = free_port()?;
        let mut payment_env = pairs(&[
            ("DATABASE_URL", payments_url.clone()),
            ("LISTEN_ADDR", format!("127.0.0.1:{api_port}")),
            ("SQS_QUEUE_URL", queue.url.clone()),
            ("PAYMENT_API_KEYS", API_KEY.to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        payment_env.extend(common.iter().cloned());
        payment_env.extend(pairs(extra_payment));
        let mut notification_env = pairs(&[
            ("DATABASE_URL", notifications_url.clone()),
            ("HEALTH_ADDR", format!("127.0.0.1:{health_port}")),
            ("SQS_QUEUE_URL", queue.url.clone()),
            ("SQS_DLQ_URL", queue.dlq_url.clone()),
            ("SMTP_URL", testkit::stack_var("TEST_SMTP_URL")),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        notification_env.extend(common.iter().cloned());
        let mut system = Self {
            label: label.to_owned(),
            api: format!("http://127.0.0.1:{api_port}"),
            health: format!("http://127.0.0.1:{health_port}"),
            payments_url,
            notifications_url,
            queue,
            log_dir,
            sqs: sqs.clone(),
            payment: None,
            notification: None,
            payment_env,
            notification_env,
        };
        system.start_payment().await?;
        system.start_notification().await?;
        Ok(system)
    }

    async fn start_payment(&mut self) -> anyhow::Result<()> {
        let log = self.log_dir.join("payment-service.log");
        self.payment = Some(ServiceProcess::spawn(
            "payment-service",
            &self.payment_env,
            &log,
        )?);
        wait_http_ok(&format!("{}/readyz", self.api), Duration::from_secs(60))
            .await
            .with_context(|| format!("payment-service of {} (log: {})", self.label, log.display()))
    }

    /// (Re)starts the notification service and waits until it is ready.
    ///
    /// # Errors
    /// When it does not become ready within 60 s.
    pub async fn start_notification(&mut self) -> anyhow::Result<()> {
        let log = self.log_dir.join("notification-service.log");
        self.notification = Some(ServiceProcess::spawn(
            "notification-service",
            &self.notification_env,
            &log,
        )?);
        wait_http_ok(&format!("{}/readyz", self.health), Duration::from_secs(60))
            .await
            .with_context(|| {
                format!(
                    "notification-service of {} (log: {})",
                    self.label,
                    log.display()
                )
            })
    }

    /// Stops the notification service (its database stays), so that a measurement of
    /// the payment side alone does not share the two cores with the consumer.
    ///
    /// # Errors
    /// When the process cannot be waited for.
    pub async fn stop_notification(&mut self) -> anyhow::Result<()> {
        if let Some(n) = self.notification.take() {
            n.terminate(Duration::from_secs(20)).await?;
        }
        Ok(())
    }

    /// The payment service's process id.
    pub fn payment_pid(&self) -> Option<u32> {
        self.payment.as_ref().and_then(ServiceProcess::pid)
    }

    /// The notification service's process id.
    pub fn notification_pid(&self) -> Option<u32> {
        self.notification.as_ref().and_then(ServiceProcess::pid)
    }

    /// Stops both services, drops both databases and deletes the queues.
    ///
    /// # Errors
    /// When Postgres is unreachable.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(p) = self.payment.take() {
            p.terminate(Duration::from_secs(20)).await?;
        }
        self.stop_notification().await?;
        let admin = pool(&format!("{}/postgres", server_url()), 1).await?;
        for url in [&self.payments_url, &self.notifications_url] {
            let name = url.rsplit('/').next().unwrap_or_default();
            sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                .execute(&admin)
                .await?;
        }
        admin.close().await;
        for url in [&self.queue.url, &self.queue.dlq_url] {
            self.sqs.delete_queue().queue_url(url).send().await?;
        }
        Ok(())
    }
}

/// Peak resident set size (`VmHWM`) of a process, in MiB.
pub fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
