//! Settings, read from environment variables (each also a flag); `--help` lists them.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use shared::telemetry::LogFormat;

/// Which side of the one irreducible window to take (crash after the SMTP server
/// accepted the email, before it is recorded as sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeliveryGuarantee {
    /// Record `sent` after the SMTP server accepts: a crash in the window can send a
    /// second copy (same Message-ID), never none.
    AtLeastOnce,
    /// Record `sent` before sending: a crash in the window loses the email, never doubles it.
    AtMostOnce,
}

/// Everything the notification service reads at start.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "notification-service",
    version,
    about = "Consumes payment events from SQS and sends exactly one confirmation email per payment.",
    after_help = "The AWS SDK also reads its own variables: AWS_REGION (default us-east-1), \
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE. Against real SQS set AWS_ENDPOINT_URL \
to an empty value."
)]
pub struct Settings {
    /// Postgres URL of the notifications (dedup) database (created and migrated at start).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/notifications",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address of the health, readiness and metrics endpoints.
    #[arg(long, env = "HEALTH_ADDR", default_value = "127.0.0.1:8081")]
    pub health_addr: String,

    /// URL of the payment-events queue; looked up by name on the endpoint when unset.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,

    /// URL of the dead-letter queue; read from the queue's redrive policy when unset.
    #[arg(long, env = "SQS_DLQ_URL")]
    pub sqs_dlq_url: Option<String>,

    /// SQS endpoint; LocalStack by default, empty for AWS's own endpoint.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = shared::aws::LOCAL_ENDPOINT)]
    pub aws_endpoint_url: String,

    /// SMTP server, in lettre's URL syntax (smtp://host:port, smtps://user:pass@host).
    #[arg(
        long,
        env = "SMTP_URL",
        default_value = "smtp://127.0.0.1:1025",
        hide_env_values = true
    )]
    pub smtp_url: String,

    /// Sender of the confirmation emails.
    #[arg(
        long,
        env = "EMAIL_FROM",
        default_value = "Payments <receipts@example.com>"
    )]
    pub email_from: String,

    /// at-least-once (default) or at-most-once.
    #[arg(
        long,
        env = "DELIVERY_GUARANTEE",
        value_enum,
        default_value = "at-least-once"
    )]
    pub delivery_guarantee: DeliveryGuarantee,

    /// Concurrent long-polling loops (each receives up to 10 messages).
    #[arg(long, env = "POLLERS", default_value_t = 4)]
    pub pollers: usize,

    /// Messages processed at once across all pollers.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 40)]
    pub max_in_flight: usize,

    /// How long a claim on an idempotency key lasts without a heartbeat.
    #[arg(long, env = "LEASE_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// Visibility timeout asked for on receive (heartbeats extend it during a send).
    #[arg(long, env = "VISIBILITY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub visibility_timeout: Duration,

    /// Long-poll wait (SQS allows at most 20 s).
    #[arg(long, env = "SQS_WAIT_TIME", default_value = "20s", value_parser = humantime::parse_duration)]
    pub sqs_wait_time: Duration,

    /// First retry delay after a transient failure; doubles per receive, capped at 15 min.
    #[arg(long, env = "RETRY_BASE_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub retry_base_delay: Duration,

    /// Timeout of each SMTP command.
    #[arg(long, env = "SMTP_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub smtp_timeout: Duration,

    /// Maximum Postgres connections of this process.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Log format: json or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,
}
