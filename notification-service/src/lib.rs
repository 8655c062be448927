//! The notification service: long-polls the payment-events queue, claims each event's
//! idempotency key in the dedup table, sends the email over SMTP, marks it sent and
//! deletes the message.
//!
//! The tree: `config` (environment), `startup` (wiring and lifecycle), `consumer` (the
//! SQS loop and per-message processing), `dedup` (the lease table), `email` (rendering
//! and SMTP), `health` (probes and metrics).

pub mod config;
pub mod consumer;
pub mod dedup;
pub mod email;
pub mod health;
pub mod startup;
