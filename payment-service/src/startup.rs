//! Wiring and lifecycle: [`Application::build`] connects and migrates, binds the
//! listener and prepares the relay; [`Application::run_until_stopped`] serves until the
//! shutdown token fires, then drains.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use shared::postgres::{connect_and_migrate, PoolSettings};
use shared::shutdown::CancellationToken;
use sqlx::PgPool;
use tokio::{net::TcpListener, sync::Notify};

use crate::{
    auth::ApiKeys,
    config::{PublishMode, Settings},
    outbox::{Relay, SqsPublisher},
    reaper,
};

/// The payments schema, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The payments database.
    pub pool: PgPool,
    /// Accepted API keys.
    pub api_keys: Arc<ApiKeys>,
    /// Wakes the relay after a commit.
    pub relay_signal: Arc<Notify>,
    /// How long idempotency keys are honoured.
    pub idempotency_retention: Duration,
    /// For the readiness probe (and the inline publish mode).
    pub sqs: aws_sdk_sqs::Client,
    /// For the readiness probe (and the inline publish mode).
    pub queue_url: String,
    /// Who publishes a committed charge's event: the relay, or the request (bench only).
    pub publish_mode: PublishMode,
}

/// A built, not yet running, payment service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    settings: Settings,
}

impl Application {
    /// Connects, migrates, resolves the queue and binds the listener.
    ///
    /// # Errors
    /// When Postgres or SQS is unreachable or the address is taken, with a message that
    /// says which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = connect_and_migrate(
            &settings.database_url,
            PoolSettings {
                max_connections: settings.database_max_connections,
                acquire_timeout: settings.database_acquire_timeout,
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
        let listener = TcpListener::bind(&settings.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "Cannot listen on {} (LISTEN_ADDR); is another process using it?",
                    settings.listen_addr
                )
            })?;
        let state = AppState {
            pool,
            api_keys: Arc::new(ApiKeys::new(&settings.api_keys)),
            relay_signal: Arc::new(Notify::new()),
            idempotency_retention: settings.idempotency_key_retention,
            sqs,
            queue_url,
            publish_mode: settings.publish_mode,
        };
        let router = crate::routes::router(state.clone(), settings.request_timeout);
        Ok(Self {
            listener,
            router,
            state,
            settings,
        })
    }

    /// The port the API listens on (useful with `LISTEN_ADDR=127.0.0.1:0`).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The payments database pool.
    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// Serves the API and runs the relay workers and the reaper until `shutdown` fires;
    /// then stops accepting, finishes in-flight requests and relay batches, and returns.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            state,
            settings,
        } = self;
        let publisher = Arc::new(SqsPublisher::new(
            state.sqs.clone(),
            state.queue_url.clone(),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..settings.relay_workers.max(1) {
            let relay = Relay {
                pool: state.pool.clone(),
                publisher: publisher.clone(),
                signal: state.relay_signal.clone(),
                sweep_interval: settings.relay_sweep_interval,
            };
            tasks.spawn(relay.run(shutdown.clone()));
        }
        tasks.spawn(reaper::run(
            state.pool.clone(),
            settings.idempotency_key_retention,
            settings.outbox_retention,
            shutdown.clone(),
        ));
        tracing::info!(listen.addr = %listener.local_addr()?, "payment-service listening");
        let server_shutdown = shutdown.clone();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await
            .context("HTTP server failed")?;
        // The server stops first when the token fires; the relay and reaper follow.
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        state.pool.close().await;
        tracing::info!("payment-service stopped");
        Ok(())
    }
}
