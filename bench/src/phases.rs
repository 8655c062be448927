//! The measurements, in the order they run. Each system run is interleaved with the run of
//! its limit (round robin, the order rotating per round), so that the machine's noise hits
//! both sides of every ratio alike.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use sqlx::PgPool;

mod charges;
mod history;
mod latency;
mod pipeline;

use crate::{
    claim,
    cpu::{Probe, Usage},
    load::{Driver, RunResult},
    machine::{self, Machine},
    mail::Inbox,
    pgbench, progress, queue,
    queue::QueueRun,
    report, seed,
    stats::{quantile, sorted, Spread},
    system::{self, peak_rss_mib, BenchSystem, API_KEY},
    Args,
};

/// One run of the whole pipeline under full charge load.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PipelineRun {
    /// Charges created in the run (warm-up window included).
    pub charges: usize,
    /// Charges answered `201` per second during the load.
    pub charges_per_s: f64,
    /// Emails accepted by the SMTP sink per second while the load ran (after its warm-up).
    pub emails_per_s: f64,
    /// The chain's throughput: charges of the run / (last email − start of the load).
    pub chain_per_s: f64,
    /// Seconds from the end of the load until the last email arrived.
    pub drain_s: f64,
    /// Charges whose email never came (should be 0).
    pub missing: usize,
}

/// One open-loop run at half the maximum throughput.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct E2eRun {
    /// The HTTP side of the run.
    pub http: RunResult,
    /// Commit → SMTP accept, per charge, ms, sorted.
    pub latencies_ms: Vec<f64>,
    /// Charges whose email did not arrive in time.
    pub missing: usize,
    /// Where the time went, per stage: (stage, sorted ms).
    pub stages: Vec<(String, Vec<f64>)>,
}

/// Measurement 4 at one amount of history.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// Rows pre-seeded into each table.
    pub rows: u64,
    /// How long seeding both tables took (concurrently), vacuum included.
    pub seed_time: Option<Duration>,
    /// Charge runs.
    pub charges: Vec<RunResult>,
    /// Dedup-claim runs.
    pub claims: Vec<RunResult>,
    /// Size of `idempotency_keys` and of `deliveries` with their indexes, MiB, after seeding.
    pub sizes_mib: (f64, f64),
}

/// Everything the report is written from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Results {
    /// The effective arguments.
    pub args: Option<Args>,
    /// Where it ran.
    pub machine: Machine,
    /// `/proc/loadavg` at the end.
    pub load_after: String,
    /// (1) pgbench runs.
    pub pgbench: Vec<RunResult>,
    /// (1, 6) the system with the outbox relay.
    pub outbox: Vec<RunResult>,
    /// (6) the system publishing inline.
    pub inline: Vec<RunResult>,
    /// (1) seconds the relay needed after each outbox run to publish its backlog.
    pub relay_drain_s: Vec<f64>,
    /// CPU during the last pgbench / outbox / inline run.
    pub cpu_pgbench: Usage,
    /// CPU during the last outbox run.
    pub cpu_outbox: Usage,
    /// CPU during the last inline run.
    pub cpu_inline: Usage,
    /// (5) VmHWM of the payment service (outbox), MiB.
    pub rss_payment: Option<f64>,
    /// (5) VmHWM of the payment service (inline), MiB.
    pub rss_payment_inline: Option<f64>,
    /// (5) VmHWM of the notification service after the pipeline runs, MiB.
    pub rss_notification: Option<f64>,
    /// (3) pipeline windows.
    pub pipeline: Vec<PipelineRun>,
    /// (3) queue ceiling runs.
    pub queue: Vec<QueueRun>,
    /// (3) the notification service alone draining a backlog, emails/s.
    pub consumer: Vec<f64>,
    /// CPU during the last pipeline window.
    pub cpu_pipeline: Usage,
    /// CPU during the last queue ceiling run.
    pub cpu_queue: Usage,
    /// CPU while the notification service alone drained its last backlog.
    pub cpu_consumer: Usage,
    /// (2) the arrival rate used, charges/s.
    pub e2e_rate: f64,
    /// (2) runs.
    pub e2e: Vec<E2eRun>,
    /// (4) levels, the first with no seeded rows.
    pub levels: Vec<Level>,
    /// Emails received twice for one charge, over the whole bench (should be 0).
    pub duplicate_emails: u64,
    /// Wall time of each phase.
    pub phase_times: Vec<(String, Duration)>,
    /// Wall time of the whole bench.
    pub total: Option<Duration>,
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn db_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// Waits until the relay has published every outbox row; returns how long that took.
async fn wait_outbox_drained(pool: &PgPool, deadline: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(pool)
                .await?;
        if left == 0 {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "{left} outbox rows still unpublished after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn show_run(what: &str, r: &RunResult) -> String {
    format!(
        "{what}: {:.0}/s p50 {:.1} ms p99 {:.1} ms ({} ok, {} errors{})",
        r.throughput(),
        r.latency(0.5),
        r.latency(0.99),
        r.ok,
        r.errors,
        if r.errors > 0 {
            format!(": {}", r.show_errors())
        } else {
            String::new()
        }
    )
}

/// Runs every measurement and writes the report.
///
/// # Errors
/// When the stack is missing or a measurement fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(saved) = &args.render {
        let results: Results = serde_json::from_slice(&std::fs::read(saved)?)
            .with_context(|| format!("{} is not a saved bench result", saved.display()))?;
        report::write(&results, &args.out)?;
        progress(&format!(
            "wrote {} from {}",
            args.out.display(),
            saved.display()
        ));
        return Ok(());
    }
    let started = Instant::now();
    let sqs = testkit::sqs::client().await;
    let admin = system::pool(&format!("{}/postgres", system::server_url()), 2).await?;
    let mut results = Results {
        machine: Machine::describe(&admin).await,
        ..Results::default()
    };
    admin.close().await;
    let work = std::env::temp_dir().join(testkit::unique("bench"));
    std::fs::create_dir_all(&work)?;
    progress(&format!(
        "{} clients, {:?} runs x{}, warm-up {:?}; logs in {}",
        args.concurrency,
        args.duration,
        args.runs,
        args.warmup,
        work.display()
    ));
    let api_key_id = payment_service::auth::ApiKeys::new(&[API_KEY.to_owned()])
        .authenticate(API_KEY)
        .map(|c| c.id)
        .context("the bench key authenticates")?;
    let mut inbox = Inbox::default();
    inbox.collect()?;

    let wanted = |group: &str| args.only.iter().any(|g| g == group);
    if wanted("charges") {
        let t = Instant::now();
        charges::charges_and_inline(&args, &sqs, &work, &api_key_id, &mut results).await?;
        let name = "1, 5, 6: charges vs pgbench vs inline";
        results.phase_times.push((name.into(), t.elapsed()));
    }
    if wanted("pipeline") {
        let t = Instant::now();
        pipeline::pipeline_and_latency(&args, &sqs, &work, &mut inbox, &mut results).await?;
        let name = "2, 3, 5: pipeline vs queue, end-to-end latency";
        results.phase_times.push((name.into(), t.elapsed()));
    }
    if wanted("history") {
        let t = Instant::now();
        history::history(&args, &sqs, &work, &api_key_id, &mut results).await?;
        let name = "4: growth (seeding included)";
        results.phase_times.push((name.into(), t.elapsed()));
    }

    inbox.collect()?;
    results.duplicate_emails = inbox.duplicates;
    results.load_after = machine::load_average();
    results.machine.measured_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    results.total = Some(started.elapsed());
    results.args = Some(args.clone());
    // The raw figures, for `--render` (large: every latency sample; kept out of docs/).
    let saved = PathBuf::from("target").join(if args.smoke {
        "bench-smoke-results.json"
    } else {
        "bench-results.json"
    });
    if let Err(e) = std::fs::write(&saved, serde_json::to_vec(&results)?) {
        progress(&format!("could not save {}: {e}", saved.display()));
    }
    report::write(&results, &args.out)?;
    progress(&format!(
        "wrote {} in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    ));
    if args.keep_logs {
        progress(&format!("logs kept in {}", work.display()));
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

async fn all_charges(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM charges")
        .fetch_all(pool)
        .await
}
