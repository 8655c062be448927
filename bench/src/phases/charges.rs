//! Measurements 1, 5 (payment side) and 6: the outbox system against pgbench on its own
//! database and against the inline variant.

use super::*;

/// Measurements 1, 5 (payment) and 6: the outbox system, pgbench on its database, and the
/// inline variant, payment side only (the consumers are stopped: see the report).
pub(super) async fn charges_and_inline(
    args: &Args,
    sqs: &aws_sdk_sqs::Client,
    work: &Path,
    api_key_id: &str,
    results: &mut Results,
) -> anyhow::Result<()> {
    progress("measurements 1 and 6: starting the outbox and inline systems");
    let mut outbox = BenchSystem::start("outbox", sqs, work, &args.service_env, &[]).await?;
    outbox.stop_notification().await?;
    let mut inline = BenchSystem::start(
        "inline",
        sqs,
        work,
        &args.service_env,
        &[("PUBLISH_MODE", "inline".into())],
    )
    .await?;
    inline.stop_notification().await?;
    let outbox_pool = system::pool(&outbox.payments_url, 2).await?;
    let c = args.concurrency;
    let d_outbox = Driver::new(&outbox.api, API_KEY, c)?;
    let d_inline = Driver::new(&inline.api, API_KEY, c)?;
    let pg_dir = work.join("pgbench");

    progress("warm-up");
    d_outbox.closed_loop(c, args.warmup).await;
    wait_outbox_drained(&outbox_pool, Duration::from_secs(300)).await?;
    d_inline.closed_loop(c, args.warmup).await;
    pgbench::run(&outbox.payments_url, api_key_id, c, args.warmup, &pg_dir).await?;

    let databases = [db_name(&outbox.payments_url), db_name(&inline.payments_url)];
    for round in 0..args.runs {
        for step in 0..3 {
            let probe = Probe::discover(
                &[
                    ("payment (outbox)", outbox.payment_pid()),
                    ("payment (inline)", inline.payment_pid()),
                ],
                &databases,
            );
            let before = probe.sample();
            match (step + round) % 3 {
                0 => {
                    // pgbench opens its own connections: find them once it runs.
                    let (url, key, dir) = (
                        outbox.payments_url.clone(),
                        api_key_id.to_owned(),
                        pg_dir.clone(),
                    );
                    let duration = args.duration;
                    let run =
                        tokio::spawn(
                            async move { pgbench::run(&url, &key, c, duration, &dir).await },
                        );
                    let settle = (args.duration / 5).min(Duration::from_secs(1));
                    tokio::time::sleep(settle).await;
                    let probe = Probe::discover(&[], &databases);
                    let before = probe.sample();
                    tokio::time::sleep(args.duration.saturating_sub(settle * 2)).await;
                    results.cpu_pgbench = Probe::usage(&before, &probe.sample());
                    let r = run.await.context("the pgbench task failed")??;
                    progress(&show_run(&format!("run {} pgbench", round + 1), &r));
                    results.pgbench.push(r);
                }
                1 => {
                    let r = d_outbox.closed_loop(c, args.duration).await;
                    results.cpu_outbox = Probe::usage(&before, &probe.sample());
                    let drain = wait_outbox_drained(&outbox_pool, Duration::from_secs(300)).await?;
                    results.relay_drain_s.push(drain.as_secs_f64());
                    progress(&format!(
                        "{}; relay backlog published {:.1} s later",
                        show_run(&format!("run {} outbox", round + 1), &r),
                        drain.as_secs_f64()
                    ));
                    results.outbox.push(r);
                }
                _ => {
                    let r = d_inline.closed_loop(c, args.duration).await;
                    results.cpu_inline = Probe::usage(&before, &probe.sample());
                    progress(&show_run(&format!("run {} inline", round + 1), &r));
                    results.inline.push(r);
                }
            }
        }
    }
    progress(&format!("CPU, outbox run: {}", results.cpu_outbox.show()));
    progress(&format!("CPU, pgbench run: {}", results.cpu_pgbench.show()));
    results.rss_payment = peak_rss_mib(outbox.payment_pid());
    results.rss_payment_inline = peak_rss_mib(inline.payment_pid());
    outbox_pool.close().await;
    outbox.shutdown().await?;
    inline.shutdown().await?;
    Ok(())
}
