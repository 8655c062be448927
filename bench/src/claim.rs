//! Dedup-claim latency: the notification service's own `dedup::claim` (the insert with a
//! lease, or the takeover, on the `deliveries` primary key) called directly on its
//! database with fresh keys, closed-loop, so the figure is the claim alone.

use std::time::{Duration, Instant};

use shared::event::{Envelope, PaymentSucceeded};
use sqlx::PgPool;

use crate::{load::RunResult, stats::sorted};

/// `workers` concurrent claim loops on `pool` for `duration`.
pub async fn run(pool: &PgPool, workers: usize, duration: Duration) -> RunResult {
    let started = Instant::now();
    let deadline = started + duration;
    let owner = uuid::Uuid::new_v4();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let pool = pool.clone();
        tasks.spawn(async move {
            let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let event = Envelope::payment_succeeded(
                    uuid::Uuid::new_v4(),
                    time::OffsetDateTime::now_utc(),
                    PaymentSucceeded {
                        charge_id: format!("ch_{}", uuid::Uuid::new_v4().simple()),
                        amount: 1250,
                        currency: "usd".into(),
                        customer_email: "jane@example.com".into(),
                        description: None,
                    },
                );
                let message_id =
                    notification_service::email::message_id(&event.idempotency_key, "bench");
                let t = Instant::now();
                let claim = notification_service::dedup::claim(
                    &pool,
                    &event,
                    owner,
                    Duration::from_secs(30),
                    &message_id,
                )
                .await;
                match claim {
                    Ok(notification_service::dedup::Claim::Claimed { .. }) => {
                        ok += 1;
                        latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors, latencies)
        });
    }
    let mut result = RunResult::default();
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok((ok, errors, l)) = done {
            result.ok += ok;
            result.errors += errors;
            latencies.extend(l);
        }
    }
    result.elapsed = started.elapsed();
    result.latencies_ms = sorted(latencies);
    result
}
