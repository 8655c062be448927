//! The whole system as real processes: both services on free ports, each with a fresh
//! database, sharing a fresh queue pair on LocalStack and the SMTP sink.

use std::{path::PathBuf, time::Duration};

use crate::{
    db::TestDatabase,
    process::{free_port, wait_http_ok, ServiceProcess},
    sqs::QueuePair,
};

/// The API key the system accepts.
pub const API_KEY: &str = "sk_test_e2e";

/// A running system.
pub struct System {
    /// Base URL of the payment API.
    pub api: String,
    /// Base URL of the notification service's health endpoints.
    pub health: String,
    /// The payments database.
    pub payments_db: TestDatabase,
    /// The notifications database.
    pub notifications_db: TestDatabase,
    /// The queues.
    pub queue: QueuePair,
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// Where the services' logs go.
    pub log_dir: PathBuf,
    /// The payment service process.
    pub payment: Option<ServiceProcess>,
    /// The notification service process.
    pub notification: Option<ServiceProcess>,
    payment_env: Vec<(String, String)>,
    notification_env: Vec<(String, String)>,
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl System {
    /// Creates the databases' names and the queues and starts both services with `extra`
    /// environment on top (e.g. `LEASE_DURATION`), waiting until both are ready.
    ///
    /// # Errors
    /// When a service does not become ready.
    pub async fn start(
        extra_payment: &[(&str, String)],
        extra_notification: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let sqs = crate::sqs::client().await;
        let queue = crate::sqs::create_pair(&sqs, "e2e", 5).await?;
        let payments_db = crate::db::fresh("e2e_payments");
        let notifications_db = crate::db::fresh("e2e_notifications");
        let log_dir = std::env::temp_dir().join(crate::unique("e2e-logs"));
        std::fs::create_dir_all(&log_dir)?;
        let api_port = free_port()?;
        let health_port = free_port()?;
        let mut payment_env = pairs(&[
            ("DATABASE_URL", payments_db.url.clone()),
            ("LISTEN_ADDR", format!("127.0.0.1:{api_port}")),
            ("SQS_QUEUE_URL", queue.url.clone()),
            ("PAYMENT_API_KEYS", API_KEY.to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        payment_env.extend(pairs(extra_payment));
        let mut notification_env = pairs(&[
            ("DATABASE_URL", notifications_db.url.clone()),
            ("HEALTH_ADDR", format!("127.0.0.1:{health_port}")),
            ("SQS_QUEUE_URL", queue.url.clone()),
            // Empty: found from the queue's redrive policy, as in production.
            ("SQS_DLQ_URL", String::new()),
            ("SMTP_URL", crate::stack_var("TEST_SMTP_URL")),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        notification_env.extend(pairs(extra_notification));
        let mut system = Self {
            api: format!("http://127.0.0.1:{api_port}"),
            health: format!("http://127.0.0.1:{health_port}"),
            payments_db,
            notifications_db,
            queue,
            sqs,
            log_dir,
            payment: None,
            notification: None,
            payment_env,
            notification_env,
        };
        system.start_payment().await?;
        system.start_notification().await?;
        Ok(system)
    }

    /// (Re)starts the payment service and waits for readiness.
    ///
    /// # Errors
    /// When it does not become ready within 60 s.
    pub async fn start_payment(&mut self) -> anyhow::Result<()> {
        let log = self.log_dir.join("payment-service.log");
        self.payment = Some(ServiceProcess::spawn(
            "payment-service",
            &self.payment_env,
            &log,
        )?);
        wait_http_ok(&format!("{}/readyz", self.api), Duration::from_secs(60)).await
    }

    /// (Re)starts the notification service and waits for readiness.
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
        wait_http_ok(&format!("{}/readyz", self.health), Duration::from_secs(60)).await
    }

    /// Reads one counter from the notification service's `/metrics` (0 when absent).
    ///
    /// # Errors
    /// When the endpoint does not answer.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.health))
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b))
    }

    /// SIGTERMs both services; returns whether both exited cleanly within `grace`.
    ///
    /// # Errors
    /// When a process cannot be waited for.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<bool> {
        let mut clean = true;
        if let Some(p) = self.payment.take() {
            clean &= p.terminate(grace).await?;
        }
        if let Some(n) = self.notification.take() {
            clean &= n.terminate(grace).await?;
        }
        Ok(clean)
    }

    /// Drops both databases (after [`System::stop`]).
    ///
    /// # Errors
    /// When Postgres is unreachable.
    pub async fn drop_databases(&self) -> anyhow::Result<()> {
        self.payments_db.drop_database().await?;
        self.notifications_db.drop_database().await
    }
}
