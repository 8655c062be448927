//! Wiring and lifecycle: [`Application::build`] connects, migrates and resolves the
//! queues; [`Application::run_until_stopped`] consumes until the shutdown token fires,
//! then drains.

use std::sync::Arc;

use anyhow::Context;
use lettre::message::Mailbox;
use shared::{
    postgres::{connect_and_migrate, PoolSettings},
    shutdown::CancellationToken,
};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::{
    config::Settings,
    consumer::{self, dlq_from_redrive_policy, PollSettings, Processor, Queue},
    email::Mailer,
    health::{self, Probes},
};

/// The dedup schema, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A built, not yet running, notification service.
pub struct Application {
    listener: TcpListener,
    processor: Arc<Processor>,
    poll: PollSettings,
}

impl Application {
    /// Connects, migrates, resolves the queues and binds the health listener.
    ///
    /// # Errors
    /// When a dependency is unreachable or a setting is invalid, saying which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let from: Mailbox = settings.email_from.parse().with_context(|| {
            format!(
                "EMAIL_FROM {:?} is not a valid mailbox",
                settings.email_from
            )
        })?;
        let domain = from.email.domain().to_owned();
        let mailer = Mailer::new(
            &settings.smtp_url,
            settings.smtp_timeout,
            u32::try_from(settings.max_in_flight)
                .unwrap_or(u32::MAX)
                .max(1),
        )?;
        let pool = connect_and_migrate(
            &settings.database_url,
            PoolSettings {
                max_connections: settings.database_max_connections,
                acquire_timeout: std::time::Duration::from_secs(5),
            },
            &MIGRATOR,
        )
        .await?;
        let sqs = shared::aws::sqs_client(Some(&settings.aws_endpoint_url)).await;
        let queue_url = shared::aws::resolve_queue_url(
            &sqs,
            settings.sqs_queue_url.as_deref(),
            shared::aws::DEFAULT_QUEUE_NAME,
        )
        .await?;
        let dlq_url = match settings
            .sqs_dlq_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            Some(url) => url.to_owned(),
            None => dlq_from_redrive_policy(&sqs, &queue_url).await?,
        };
        let listener = TcpListener::bind(&settings.health_addr)
            .await
            .with_context(|| {
                format!(
                    "Cannot listen on {} (HEALTH_ADDR); is another process using it?",
                    settings.health_addr
                )
            })?;
        health::metrics_handle();
        let processor = Arc::new(Processor {
            pool,
            mailer,
            from,
            domain,
            guarantee: settings.delivery_guarantee,
            lease: settings.lease_duration,
            visibility: settings.visibility_timeout,
            queue: Queue::new(sqs, queue_url, dlq_url),
            owner: Uuid::new_v4(),
        });
        let poll = PollSettings {
            pollers: settings.pollers,
            max_in_flight: settings.max_in_flight,
            wait: settings.sqs_wait_time,
            visibility: settings.visibility_timeout,
            retry_base_delay: settings.retry_base_delay,
        };
        Ok(Self {
            listener,
            processor,
            poll,
        })
    }

    /// The port of the health endpoints.
    pub fn health_port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Consumes and serves the health endpoints until `shutdown` fires, then finishes
    /// in-flight messages and returns.
    ///
    /// # Errors
    /// When the health server fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            processor,
            poll,
        } = self;
        let probes = Probes {
            pool: processor.pool.clone(),
            queue: processor.queue.clone(),
            mailer: processor.mailer.clone(),
        };
        tracing::info!(
            health.addr = %listener.local_addr()?,
            delivery.guarantee = ?processor.guarantee,
            sqs.queue_url = processor.queue.url(),
            sqs.dlq_url = processor.queue.dlq_url(),
            "notification-service consuming"
        );
        let consumer = tokio::spawn(consumer::run(processor.clone(), poll, shutdown.clone()));
        let server_shutdown = shutdown.clone();
        let served = axum::serve(listener, health::router(probes))
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await
            .context("health server failed");
        shutdown.cancel();
        consumer.await.context("consumer task panicked")?;
        processor.pool.close().await;
        tracing::info!("notification-service stopped");
        served
    }
}
