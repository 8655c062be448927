//! `make bench`: the system measured against the limits of the parts it stands on, each
//! limit measured in the same run, interleaved with the system's runs, and written to
//! `docs/PERFORMANCE.md` with a latency plot.
//!
//! Runs inside `scripts/with-test-stack.sh` (LocalStack, the SMTP sink, Postgres) against
//! the release binaries beside this one. `scripts/bench.sh` does all of that.

mod claim;
mod cpu;
mod load;
mod machine;
mod mail;
mod pgbench;
mod phases;
mod queue;
mod report;
mod seed;
mod stats;
mod svg;
mod system;

use std::{path::PathBuf, time::Duration};

use clap::Parser;

/// What to run and for how long.
#[derive(Debug, Clone, Parser, serde::Serialize, serde::Deserialize)]
#[command(
    name = "bench",
    about = "Measures the system against its parts' limits and writes docs/PERFORMANCE.md."
)]
pub struct Args {
    /// Closed-loop HTTP clients, and pgbench clients for the ceiling.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measured time of each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured load before the measured runs (and before each pipeline window).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Runs of each measurement (medians with min and max are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Rows pre-seeded into idempotency_keys and deliveries for measurement 4 (besides 0).
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    pub seed_rows: Vec<u64>,
    /// Where the report goes; the SVG is written beside it.
    #[arg(long, default_value = "docs/PERFORMANCE.md")]
    pub out: PathBuf,
    /// A seconds-long run that only checks that every measurement works (CI): 4 clients,
    /// 1 s runs, one run, 2,000 seeded rows, report under target/bench-smoke/.
    #[arg(long)]
    pub smoke: bool,
    /// Which groups of measurements to run: `charges` (1, 5, 6), `pipeline` (2, 3, 5),
    /// `history` (4). A partial run still writes a (partial) report.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "charges,pipeline,history"
    )]
    pub only: Vec<String>,
    /// Keep the services' logs (and pgbench's work files) instead of deleting them at the end.
    #[arg(long)]
    pub keep_logs: bool,
    /// Extra environment for both services of every system (KEY=VALUE, repeatable), to
    /// try a setting and measure again; the report lists it.
    #[arg(long = "service-env", value_parser = key_value)]
    pub service_env: Vec<(String, String)>,
    /// Write the report from the results a previous run saved (`target/bench-results.json`)
    /// instead of measuring: for changes to the report itself.
    #[arg(long)]
    pub render: Option<PathBuf>,
    /// The command line to print in the report.
    #[arg(long, default_value = "make bench")]
    pub command: String,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

impl Args {
    fn effective(mut self) -> Self {
        if self.smoke {
            self.concurrency = 4;
            self.duration = Duration::from_secs(1);
            self.warmup = Duration::from_millis(500);
            self.runs = 1;
            self.seed_rows = vec![2_000];
            if self.command == "make bench" {
                self.command = "make bench-smoke".into();
            }
            if self.out.as_path() == std::path::Path::new("docs/PERFORMANCE.md") {
                self.out = PathBuf::from("target/bench-smoke/PERFORMANCE.md");
            }
        }
        self
    }
}

/// Prints a progress line on stderr.
pub fn progress(message: &str) {
    eprintln!("[bench] {message}");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse().effective();
    // The services are the binaries built beside this one (target/release/ under
    // `make bench`), unless the caller points elsewhere.
    let exe = std::env::current_exe()?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    for (var, name) in [
        ("PAYMENT_SERVICE_BIN", "payment-service"),
        ("NOTIFICATION_SERVICE_BIN", "notification-service"),
    ] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, dir.join(name));
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(phases::run(args))
}
