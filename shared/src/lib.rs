//! Code both services share: the event contract on the queue, and the plumbing every
//! process needs (logging, shutdown, the SQS client, the Postgres connection).
//!
//! Schemas and queries stay in the services: each one owns its database and migrations.

pub mod aws;
pub mod chaos;
pub mod event;
pub mod postgres;
pub mod redact;
pub mod shutdown;
pub mod telemetry;
