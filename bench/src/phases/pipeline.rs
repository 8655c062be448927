//! Measurement 3 (and 5, notification side): the whole chain against the queue alone and
//! the consumer alone; then measurement 2 on the same system.

use super::*;

/// Measurements 3 (pipeline against the queue's ceiling), 2 (latency at half the maximum)
/// and 5 (notification side), on one system with both services.
pub(super) async fn pipeline_and_latency(
    args: &Args,
    sqs: &aws_sdk_sqs::Client,
    work: &Path,
    inbox: &mut Inbox,
    results: &mut Results,
) -> anyhow::Result<()> {
    progress("measurement 3: starting the pipeline system");
    let mut system = BenchSystem::start("pipeline", sqs, work, &args.service_env, &[]).await?;
    let pool = system::pool(&system.payments_url, 2).await?;
    let notifications = system::pool(&system.notifications_url, 2).await?;
    let c = args.concurrency;
    let driver = Driver::new(&system.api, API_KEY, c)?;
    let drain_deadline = Duration::from_secs(600);

    progress("warm-up");
    driver.closed_loop(c, args.warmup).await;
    let missing = inbox
        .wait_for(&all_charges(&pool).await?, drain_deadline)
        .await?;
    anyhow::ensure!(missing == 0, "{missing} warm-up emails never arrived");

    let names = [
        db_name(&system.payments_url).to_owned(),
        db_name(&system.notifications_url).to_owned(),
    ];
    let databases = [names[0].as_str(), names[1].as_str()];
    for round in 0..args.runs {
        for step in 0..3 {
            match (step + round) % 3 {
                0 => {
                    let probe_for = |s: &BenchSystem| {
                        Probe::discover(
                            &[
                                ("payment", s.payment_pid()),
                                ("notification", s.notification_pid()),
                            ],
                            &databases,
                        )
                    };
                    let run =
                        pipeline_run(args, &driver, &pool, inbox, || probe_for(&system), results)
                            .await?;
                    progress(&format!(
                        "run {} pipeline: {} charges at {:.0}/s, all emailed at {:.0}/s (while charging: {:.0} emails/s), last email {:.1} s after the load, {} missing",
                        round + 1,
                        run.charges,
                        run.charges_per_s,
                        run.chain_per_s,
                        run.emails_per_s,
                        run.drain_s,
                        run.missing
                    ));
                    results.pipeline.push(run);
                }
                1 => {
                    let probe = Probe::discover(&[], &[]);
                    let before = probe.sample();
                    let q = queue::ceiling(sqs, 4, 8, args.warmup, args.duration).await?;
                    results.cpu_queue = Probe::usage(&before, &probe.sample());
                    progress(&format!(
                        "run {} queue ceiling: {:.0} msgs/s through ({:.0} sent/s)",
                        round + 1,
                        q.through_per_s,
                        q.sent_per_s
                    ));
                    results.queue.push(q);
                }
                _ => {
                    let (rate, cpu) =
                        consumer_alone(args, &mut system, &driver, &pool, inbox, &databases)
                            .await?;
                    results.cpu_consumer = cpu;
                    progress(&format!(
                        "run {} consumer alone: {rate:.0} emails/s from a backlog",
                        round + 1
                    ));
                    results.consumer.push(rate);
                }
            }
        }
    }
    progress(&format!(
        "CPU, pipeline window: {}",
        results.cpu_pipeline.show()
    ));
    progress(&format!("CPU, queue ceiling: {}", results.cpu_queue.show()));

    super::latency::measure(args, &driver, &pool, &notifications, inbox, results).await?;
    results.rss_notification = peak_rss_mib(system.notification_pid());
    pool.close().await;
    notifications.close().await;
    system.shutdown().await?;
    Ok(())
}

/// The whole chain under full closed-loop charge load for the warm-up plus the measured
/// time; then waits for every email.
async fn pipeline_run(
    args: &Args,
    driver: &Driver,
    pool: &PgPool,
    inbox: &mut Inbox,
    probe: impl Fn() -> Probe,
    results: &mut Results,
) -> anyhow::Result<PipelineRun> {
    let c = args.concurrency;
    let before_count = all_charges(pool).await?.len();
    let start = epoch_now();
    let load = driver.clone();
    let total = args.warmup + args.duration;
    let handle = tokio::spawn(async move { load.closed_loop(c, total).await });
    tokio::time::sleep(args.warmup).await;
    let probe = probe();
    let before = probe.sample();
    tokio::time::sleep(args.duration).await;
    results.cpu_pipeline = Probe::usage(&before, &probe.sample());
    let r = handle.await.context("the load task failed")?;
    let load_end = epoch_now();
    let ids = all_charges(pool).await?;
    let missing = inbox.wait_for(&ids, Duration::from_secs(600)).await?;
    let window = (
        start + args.warmup.as_secs_f64(),
        start + total.as_secs_f64(),
    );
    let in_window = inbox
        .received
        .values()
        .filter(|at| **at >= window.0 && **at < window.1)
        .count();
    let last = inbox.received.values().copied().fold(start, f64::max);
    let charges = ids.len() - before_count;
    Ok(PipelineRun {
        charges,
        charges_per_s: r.throughput(),
        emails_per_s: in_window as f64 / args.duration.as_secs_f64(),
        chain_per_s: charges as f64 / (last - start).max(1e-3),
        drain_s: (last - load_end).max(0.0),
        missing,
    })
}

/// The notification service's own ceiling: with it stopped, charges pile up a backlog on
/// the queue (the relay publishes them all); then it is started and the backlog's drain
/// timed over its middle 90%.
async fn consumer_alone(
    args: &Args,
    system: &mut BenchSystem,
    driver: &Driver,
    pool: &PgPool,
    inbox: &mut Inbox,
    databases: &[&str],
) -> anyhow::Result<(f64, Usage)> {
    system.stop_notification().await?;
    let before = epoch_now();
    driver.closed_loop(args.concurrency, args.duration).await;
    wait_outbox_drained(pool, Duration::from_secs(300)).await?;
    system.start_notification().await?;
    let probe = Probe::discover(&[("notification", system.notification_pid())], databases);
    let cpu_before = probe.sample();
    let ids = all_charges(pool).await?;
    let missing = inbox.wait_for(&ids, Duration::from_secs(600)).await?;
    let usage = Probe::usage(&cpu_before, &probe.sample());
    anyhow::ensure!(
        missing == 0,
        "{missing} emails of the backlog never arrived"
    );
    let stamps = sorted(
        inbox
            .received
            .values()
            .copied()
            .filter(|at| *at > before)
            .collect(),
    );
    // The middle 90%: a straggler at either end (a message an abandoned long poll of the
    // stopped process took, invisible until its visibility timeout) says nothing about
    // the drain rate.
    let (p5, p95) = (quantile(&stamps, 0.05), quantile(&stamps, 0.95));
    let inside = stamps.iter().filter(|t| **t >= p5 && **t <= p95).count();
    Ok((
        inside.saturating_sub(1) as f64 / (p95 - p5).max(1e-3),
        usage,
    ))
}
