//! Measurement 2: commit → SMTP accept, and where the time goes.

use super::*;

/// Measurement 2 on the pipeline system: open-loop arrivals at half the system's maximum,
/// the lower of what the payment side (1) and the whole chain (3) sustain.
pub(super) async fn measure(
    args: &Args,
    driver: &Driver,
    pool: &PgPool,
    notifications: &PgPool,
    inbox: &mut Inbox,
    results: &mut Results,
) -> anyhow::Result<()> {
    let charge_max = Spread::of(
        &results
            .outbox
            .iter()
            .map(RunResult::throughput)
            .collect::<Vec<_>>(),
    )
    .median;
    let pipeline_max = Spread::of(
        &results
            .pipeline
            .iter()
            .map(|p| p.chain_per_s)
            .collect::<Vec<_>>(),
    )
    .median;
    let max = if results.outbox.is_empty() {
        pipeline_max
    } else {
        charge_max.min(pipeline_max)
    };
    let rate = 0.5 * max.max(2.0);
    results.e2e_rate = rate;
    progress(&format!("measurement 2: {rate:.0} charges/s open-loop"));
    driver.open_loop(rate, args.warmup, 4096).await?;
    inbox
        .wait_for(&all_charges(pool).await?, Duration::from_secs(600))
        .await?;
    for round in 0..args.runs {
        let (http, ids) = driver.open_loop(rate, args.duration, 4096).await?;
        let missing = inbox.wait_for(&ids, Duration::from_secs(120)).await?;
        let (latencies, stages) = stage_times(pool, notifications, &ids, inbox).await?;
        let run = E2eRun {
            http,
            latencies_ms: latencies,
            missing,
            stages,
        };
        progress(&format!(
            "run {} end-to-end at {rate:.0}/s: p50 {:.1} ms p99 {:.1} ms over {} emails ({} missing); HTTP p50 {:.1} ms",
            round + 1,
            quantile(&run.latencies_ms, 0.5),
            quantile(&run.latencies_ms, 0.99),
            run.latencies_ms.len(),
            missing,
            run.http.latency(0.5)
        ));
        for (name, v) in &run.stages {
            progress(&format!(
                "  {name}: p50 {:.1} ms p99 {:.1} ms",
                quantile(v, 0.5),
                quantile(v, 0.99)
            ));
        }
        results.e2e.push(run);
    }
    Ok(())
}

/// Commit → SMTP accept per charge, and the stages in between from the rows' own
/// timestamps: the charge's `created_at`, the outbox row's `published_at` (the relay's
/// transaction start, i.e. when it claimed the row), the delivery's `created_at` (the
/// consumer's claim), the sink's receive stamp, and the delivery's `sent_at`.
async fn stage_times(
    payments: &PgPool,
    notifications: &PgPool,
    ids: &[String],
    inbox: &Inbox,
) -> anyhow::Result<(Vec<f64>, Vec<(String, Vec<f64>)>)> {
    let charges: Vec<(String, f64, Option<f64>)> = sqlx::query_as(
        "SELECT c.id, extract(epoch FROM c.created_at)::float8, extract(epoch FROM o.published_at)::float8
         FROM charges c JOIN outbox o ON o.charge_id = c.id WHERE c.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(payments)
    .await?;
    let deliveries: std::collections::HashMap<String, (f64, Option<f64>)> = sqlx::query_as::<
        _,
        (String, f64, Option<f64>),
    >(
        "SELECT charge_id, extract(epoch FROM created_at)::float8, extract(epoch FROM sent_at)::float8
         FROM deliveries WHERE charge_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(notifications)
    .await?
    .into_iter()
    .map(|(id, claimed, sent)| (id, (claimed, sent)))
    .collect();
    let names = [
        "commit → relay claims the outbox row",
        "relay claim → consumer claims the key (publish, queue, receive)",
        "consumer claim → SMTP accept",
        "SMTP accept → `sent` recorded",
    ];
    let mut stages: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut total = Vec::new();
    for (id, created, published) in &charges {
        let Some(received) = inbox.received.get(id) else {
            continue;
        };
        total.push((received - created) * 1e3);
        let (Some(published), Some((claimed, sent))) = (published, deliveries.get(id)) else {
            continue;
        };
        stages[0].push((published - created) * 1e3);
        stages[1].push((claimed - published) * 1e3);
        stages[2].push((received - claimed) * 1e3);
        if let Some(sent) = sent {
            stages[3].push((sent - received) * 1e3);
        }
    }
    Ok((
        sorted(total),
        names
            .iter()
            .zip(stages)
            .map(|(n, v)| ((*n).to_owned(), sorted(v)))
            .collect(),
    ))
}
