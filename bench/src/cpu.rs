//! Where the CPU went during a run, from `/proc`: the whole machine (`/proc/stat`) and
//! each part of the system (`/proc/<pid>/stat`), so the report can say which part a
//! ceiling comes from on a machine where all of them share the same cores.

use std::{collections::BTreeMap, time::Instant};

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// utime + stime of a process, in ticks (0 when it is gone).
fn process_ticks(pid: u32) -> u64 {
    let stat = read(&format!("/proc/{pid}/stat"));
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page, utime 14 and stime 15.
    let get = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// (busy, total) ticks of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let stat = read("/proc/stat");
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn cmdline(pid: u32) -> String {
    read(&format!("/proc/{pid}/cmdline")).replace('\0', " ")
}

fn environ_has(pid: u32, needle: &str) -> bool {
    read(&format!("/proc/{pid}/environ"))
        .split('\0')
        .any(|kv| kv == needle)
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The processes of each part, found once before a run.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    groups: BTreeMap<String, Vec<u32>>,
}

/// A reading of every group and of the machine.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    groups: BTreeMap<String, u64>,
    machine: (u64, u64),
}

/// CPU use over a window, in percent of one core (200 = both cores of a 2-core machine).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Per part.
    pub parts: Vec<(String, f64)>,
    /// The whole machine, including work that is not the bench's.
    pub machine: f64,
}

impl Probe {
    /// Finds the processes: the given services, Postgres backends serving `databases`
    /// (plus its WAL writer and checkpointer), the stack's LocalStack and SMTP sink (by
    /// their ports, so another engineer's stack on this machine is not counted), and this
    /// process.
    pub fn discover(services: &[(&str, Option<u32>)], databases: &[&str]) -> Self {
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (name, pid) in services {
            if let Some(pid) = pid {
                groups.entry((*name).to_owned()).or_default().push(*pid);
            }
        }
        groups
            .entry("bench driver".into())
            .or_default()
            .push(std::process::id());
        let localstack_port = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .and_then(|u| u.rsplit(':').next().map(str::to_owned))
            .unwrap_or_default();
        let smtp_port = std::env::var("TEST_SMTP_URL")
            .ok()
            .and_then(|u| u.rsplit(':').next().map(str::to_owned))
            .unwrap_or_default();
        for pid in all_pids() {
            let cmd = cmdline(pid);
            let group = if cmd.starts_with("postgres: ")
                && (databases.iter().any(|d| cmd.contains(&format!(" {d} ")))
                    || cmd.contains("walwriter")
                    || cmd.contains("checkpointer")
                    || cmd.contains("background writer"))
            {
                "postgres"
            } else if cmd.contains("localstack.runtime.main")
                && environ_has(pid, &format!("GATEWAY_LISTEN=127.0.0.1:{localstack_port}"))
            {
                "localstack"
            } else if cmd.contains("smtp_sink.py") && cmd.contains(&format!("--port {smtp_port}")) {
                "smtp sink"
            } else if cmd
                .split(' ')
                .next()
                .is_some_and(|a| a.ends_with("pgbench"))
                && databases.iter().any(|d| cmd.contains(*d))
            {
                "pgbench client"
            } else {
                continue;
            };
            groups.entry(group.into()).or_default().push(pid);
        }
        Self { groups }
    }

    /// Reads every group now.
    pub fn sample(&self) -> Sample {
        Sample {
            at: Instant::now(),
            groups: self
                .groups
                .iter()
                .map(|(name, pids)| (name.clone(), pids.iter().map(|p| process_ticks(*p)).sum()))
                .collect(),
            machine: machine_ticks(),
        }
    }

    /// Use between two samples.
    pub fn usage(before: &Sample, after: &Sample) -> Usage {
        let secs = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
        let parts = after
            .groups
            .iter()
            .map(|(name, t1)| {
                let t0 = before.groups.get(name).copied().unwrap_or(0);
                let pct = t1.saturating_sub(t0) as f64 / TICKS_PER_S / secs * 100.0;
                (name.clone(), pct)
            })
            .collect();
        let busy = after.machine.0.saturating_sub(before.machine.0) as f64;
        let total = after.machine.1.saturating_sub(before.machine.1).max(1) as f64;
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        Usage {
            parts,
            machine: busy / total * 100.0 * cpus,
        }
    }
}

impl Usage {
    /// CPU milliseconds per operation of each part at `per_s` operations per second,
    /// largest first: `postgres 0.58 ms, payment 0.35 ms, …`.
    pub fn per_op(&self, per_s: f64) -> String {
        let ms = |pct: f64| pct * 10.0 / per_s.max(1e-9);
        let mut parts: Vec<&(String, f64)> =
            self.parts.iter().filter(|p| ms(p.1) >= 0.005).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
            .iter()
            .map(|(n, pct)| format!("{n} {:.2} ms", ms(*pct)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `payment 80%, postgres 60%, … (machine 195% of 200%)`.
    pub fn show(&self) -> String {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) * 100;
        // Parts idle during the window (below 0.5% of a core) are left out.
        let mut parts: Vec<&(String, f64)> = self.parts.iter().filter(|p| p.1 >= 0.5).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let list: Vec<String> = parts.iter().map(|(n, p)| format!("{n} {p:.0}%")).collect();
        format!(
            "{}; machine {:.0}% of {cpus}%",
            list.join(", "),
            self.machine
        )
    }
}
