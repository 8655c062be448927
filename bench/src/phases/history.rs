//! Measurement 4: the same load on databases already holding millions of rows.

use super::*;

/// Measurement 4: the same charge load and dedup claims on databases already holding
/// 0, 1M, 10M … rows, round robin.
pub(super) async fn history(
    args: &Args,
    sqs: &aws_sdk_sqs::Client,
    work: &Path,
    api_key_id: &str,
    results: &mut Results,
) -> anyhow::Result<()> {
    let c = args.concurrency;
    let mut rows = vec![0];
    rows.extend(args.seed_rows.iter().copied().filter(|r| *r > 0));
    let mut systems = Vec::new();
    for n in &rows {
        progress(&format!("measurement 4: system with {n} rows"));
        let mut s =
            BenchSystem::start(&format!("rows{n}"), sqs, work, &args.service_env, &[]).await?;
        s.stop_notification().await?;
        let payments = system::pool(&s.payments_url, 2).await?;
        let notifications = system::pool(&s.notifications_url, 8).await?;
        let mut level = Level {
            rows: *n,
            ..Level::default()
        };
        if *n > 0 {
            progress(&format!(
                "seeding {n} rows into idempotency_keys and deliveries"
            ));
            let took = seed::both(&payments, &notifications, api_key_id, *n).await?;
            progress(&format!("seeded {n} rows in {:.0} s", took.as_secs_f64()));
            level.seed_time = Some(took);
        }
        level.sizes_mib = (
            table_mib(&payments, "idempotency_keys").await?,
            table_mib(&notifications, "deliveries").await?,
        );
        let driver = Driver::new(&s.api, API_KEY, c)?;
        systems.push((s, payments, notifications, driver, level));
    }
    progress("warm-up");
    for (_, payments, notifications, driver, _) in &systems {
        driver.closed_loop(c, args.warmup).await;
        wait_outbox_drained(payments, Duration::from_secs(300)).await?;
        claim::run(notifications, 8, args.warmup).await;
    }
    let n = systems.len();
    for round in 0..args.runs {
        for step in 0..n {
            let (_, payments, notifications, driver, level) = &mut systems[(step + round) % n];
            let r = driver.closed_loop(c, args.duration).await;
            wait_outbox_drained(payments, Duration::from_secs(300)).await?;
            let claims = claim::run(notifications, 8, args.duration / 2).await;
            progress(&format!(
                "run {} with {} rows: {}; {}",
                round + 1,
                level.rows,
                show_run("charges", &r),
                show_run("claims", &claims)
            ));
            level.charges.push(r);
            level.claims.push(claims);
        }
    }
    for (s, payments, notifications, _, level) in systems {
        payments.close().await;
        notifications.close().await;
        s.shutdown().await?;
        results.levels.push(level);
    }
    Ok(())
}

async fn table_mib(pool: &PgPool, table: &str) -> Result<f64, sqlx::Error> {
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
        .bind(table)
        .fetch_one(pool)
        .await?;
    Ok(bytes as f64 / 1024.0 / 1024.0)
}
