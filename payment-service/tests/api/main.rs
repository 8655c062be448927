//! Integration tests of the payment service against real Postgres and LocalStack: each
//! test gets its own database and queue (see `helpers`).

mod charges;
mod health;
mod helpers;
mod idempotency;
mod publish_mode;
mod relay;
