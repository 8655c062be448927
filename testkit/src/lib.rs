//! Test support: every integration test gets its own database and its own queues on the
//! real Postgres and LocalStack that `make test` starts, and reads what the real SMTP
//! sink received.
//!
//! The stack's addresses come from the environment `scripts/with-test-stack.sh` sets:
//! `AWS_ENDPOINT_URL`, `TEST_DATABASE_URL`, `TEST_SMTP_URL`, `TEST_SMTP_MAILDIR`.

pub mod chaos;
pub mod db;
pub mod mail;
pub mod process;
pub mod proxy;
pub mod sqs;
pub mod system;
pub mod wait;

/// Reads a variable the test stack must set, with a message that says how to get it.
///
/// # Panics
/// When the variable is missing: the tests are not running under `make test`.
#[allow(clippy::panic)]
pub fn stack_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test` (scripts/with-test-stack.sh starts LocalStack and the SMTP sink)")
    })
}

/// A short unique suffix for names of databases, queues and keys.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
