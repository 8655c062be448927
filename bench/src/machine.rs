//! The machine and software the figures were measured on.

use sqlx::PgPool;

/// What the report prints about the machine.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `PostgreSQL x.y` and the settings that bound commit throughput.
    pub postgres: String,
    /// `pgbench (PostgreSQL) x.y`.
    pub pgbench: String,
    /// LocalStack's version (from the pinned requirements).
    pub localstack: String,
    /// `rustc x.y.z`.
    pub rustc: String,
    /// Git commit of the measured tree (`+dirty` when it has uncommitted changes).
    pub commit: String,
    /// `/proc/loadavg` when the bench started.
    pub load_before: String,
    /// The bench's own build profile (the services are built the same way).
    #[serde(default)]
    pub profile: String,
    /// When the measurements ended (RFC 3339), set just before the report is written.
    #[serde(default)]
    pub measured_at: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn command(program: &str, args: &[&str]) -> String {
    tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Machine {
    /// Gathers everything; unknown parts stay empty.
    pub async fn describe(admin: &PgPool) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        let mut postgres = String::new();
        if let Ok(version) = sqlx::query_scalar::<_, String>("SHOW server_version")
            .fetch_one(admin)
            .await
        {
            postgres = format!("PostgreSQL {version}");
            for setting in [
                "shared_buffers",
                "synchronous_commit",
                "fsync",
                "max_connections",
            ] {
                if let Ok(v) = sqlx::query_scalar::<_, String>(&format!("SHOW {setting}"))
                    .fetch_one(admin)
                    .await
                {
                    postgres.push_str(&format!(", {setting}={v}"));
                }
            }
        }
        let localstack = read("scripts/requirements/localstack.txt")
            .lines()
            .find(|l| l.starts_with("localstack-core=="))
            .map(|l| l.replace("localstack-core==", "LocalStack "))
            .unwrap_or_default();
        let dirty = !command("git", &["status", "--porcelain", "--untracked-files=no"])
            .await
            .is_empty();
        let commit = format!(
            "{}{}",
            command("git", &["rev-parse", "--short", "HEAD"]).await,
            if dirty { "+dirty" } else { "" }
        );
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            postgres,
            pgbench: crate::pgbench::version().await,
            localstack,
            rustc: command("rustc", &["--version"]).await,
            commit,
            load_before: load_average(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_owned(),
            measured_at: String::new(),
        }
    }
}
