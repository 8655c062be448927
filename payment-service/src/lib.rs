//! The payment service: `POST /v1/charges` commits a charge, its idempotency record and
//! an outbox row in one transaction; the relay publishes outbox rows to SQS.
//!
//! The tree: `config` (environment), `startup` (wiring and lifecycle), `routes` (HTTP),
//! `domain` (validated request types), `idempotency` (replay decisions), `outbox` (the
//! relay), `reaper` (retention), `error` (status codes and error codes).

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod idempotency;
pub mod outbox;
pub mod reaper;
pub mod routes;
pub mod startup;
