//! Integration tests of the notification service against real Postgres, LocalStack and
//! the SMTP sink over TCP: each test gets its own database and queue pair.

mod delivery;
mod failures;
mod helpers;
mod leases;
