//! Connecting to a service's own database and bringing its schema up to date.
//!
//! Only the plumbing lives here; each service passes its own embedded migrations.

use std::time::Duration;

use anyhow::Context;
use sqlx::{
    migrate::{MigrateDatabase, Migrator},
    postgres::PgPoolOptions,
    PgPool, Postgres,
};

use crate::redact::redact_url;

/// Pool settings a service chooses.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Upper bound of open connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails (and is answered 503).
    pub acquire_timeout: Duration,
}

/// Creates the database if it is missing, opens a pool and runs `migrator`.
///
/// Two replicas may start at once: a lost creation race is ignored, and sqlx takes an
/// advisory lock around the migrations.
///
/// # Errors
/// With a message that names the (password-free) URL when Postgres is unreachable.
pub async fn connect_and_migrate(
    url: &str,
    settings: PoolSettings,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let shown = redact_url(url);
    let exists = Postgres::database_exists(url).await.with_context(|| {
        format!("PostgreSQL is not reachable at {shown}; start it or set DATABASE_URL")
    })?;
    if !exists {
        if let Err(e) = Postgres::create_database(url).await {
            // Another replica created it first: Postgres says 42P04 (duplicate_database)
            // or, when both CREATEs ran at the same instant, 23505 (unique_violation on
            // pg_database's name index).
            let raced = matches!(&e, sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("42P04" | "23505")));
            if !raced {
                return Err(e).with_context(|| format!("Failed to create database {shown}"));
            }
        }
        tracing::info!(database.url = %shown, "created database");
    }
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect(url)
        .await
        .with_context(|| format!("Failed to connect to {shown}"))?;
    migrator
        .run(&pool)
        .await
        .with_context(|| format!("Failed to run migrations on {shown}"))?;
    Ok(pool)
}

/// True when a database error means "Postgres is unavailable" rather than a bug: the
/// caller answers 503 or retries later instead of failing the request for good.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(d) => d
            .code()
            // Class 08: connection exception; 57P01..03: admin shutdown / crash / cannot connect now.
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}
