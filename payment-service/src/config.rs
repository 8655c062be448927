//! Settings, read from environment variables (each also a flag); `--help` lists them.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use shared::telemetry::LogFormat;

/// How a committed charge's event reaches the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PublishMode {
    /// The outbox relay publishes after the commit: the design, and the default.
    Outbox,
    /// Bench only (`make bench`, measurement 6): the request publishes with `SendMessage`
    /// after its commit, before answering, then marks the outbox row published. A failed
    /// publish is left to the relay, so nothing is lost; it exists to measure what the
    /// outbox costs against the naive design, not to run in production.
    Inline,
}

/// Everything the payment service reads at start.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "payment-service",
    version,
    about = "Charge API with an idempotency layer and a transactional outbox relayed to SQS.",
    after_help = "The AWS SDK also reads its own variables: AWS_REGION (default us-east-1), \
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE. Against real SQS set AWS_ENDPOINT_URL \
to an empty value."
)]
pub struct Settings {
    /// Postgres URL of the payments database (created and migrated at start).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/payments",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address the HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// Comma-separated bearer API keys accepted by the API.
    #[arg(
        long,
        env = "PAYMENT_API_KEYS",
        default_value = "sk_test_local",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// URL of the payment-events queue; looked up by name on the endpoint when unset.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,

    /// SQS endpoint; LocalStack by default, empty for AWS's own endpoint.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = shared::aws::LOCAL_ENDPOINT)]
    pub aws_endpoint_url: String,

    /// How long an Idempotency-Key is remembered.
    #[arg(long, env = "IDEMPOTENCY_KEY_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_key_retention: Duration,

    /// How long published outbox rows are kept (for audit and replay) before purging.
    #[arg(long, env = "OUTBOX_RETENTION", default_value = "7days", value_parser = humantime::parse_duration)]
    pub outbox_retention: Duration,

    /// How often the relay sweeps for rows no commit signal announced (crashes, replicas).
    #[arg(long, env = "RELAY_SWEEP_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub relay_sweep_interval: Duration,

    /// Concurrent relay workers in this process (each publishes batches of up to 10).
    #[arg(long, env = "RELAY_WORKERS", default_value_t = 2)]
    pub relay_workers: usize,

    /// Maximum Postgres connections of this process.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub database_acquire_timeout: Duration,

    /// How long one HTTP request may take before it is answered 408.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// outbox (default) or inline: publish inside the request after the commit (bench only).
    #[arg(long, env = "PUBLISH_MODE", value_enum, default_value = "outbox")]
    pub publish_mode: PublishMode,

    /// Log format: json or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,
}
