//! The services as real processes, for the end-to-end and chaos suites.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context;
use tokio::process::{Child, Command};

/// Where a workspace binary is: `$<NAME>_BIN` if set, else beside the test executable's
/// `deps/` folder (the same `target/<profile>/` the tests were built into).
pub fn binary(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("target/debug"));
    profile_dir.join(name)
}

/// A running service process whose output goes to a log file.
pub struct ServiceProcess {
    /// Which binary.
    pub name: String,
    child: Child,
}

impl ServiceProcess {
    /// Starts `name` with `env` on top of the inherited environment, logging to `log`.
    ///
    /// # Errors
    /// When the binary is missing (build the workspace first) or cannot start.
    pub fn spawn(name: &str, env: &[(String, String)], log: &Path) -> anyhow::Result<Self> {
        let bin = binary(name);
        anyhow::ensure!(
            bin.exists(),
            "{} not found: run `cargo build --workspace` first",
            bin.display()
        );
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        let child = Command::new(&bin)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("Failed to start {}", bin.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `KILL`).
    ///
    /// # Errors
    /// When `kill` cannot be run.
    pub async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            Command::new("kill")
                .args([format!("-{signal}"), pid.to_string()])
                .status()
                .await?;
        }
        Ok(())
    }

    /// SIGTERM, then waits up to `grace` for the exit; SIGKILL after that.
    /// Returns whether it exited cleanly (status 0) within the grace period.
    ///
    /// # Errors
    /// When the process cannot be waited for.
    pub async fn terminate(mut self, grace: Duration) -> anyhow::Result<bool> {
        self.signal("TERM").await?;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => Ok(status?.success()),
            Err(_) => {
                self.child.kill().await?;
                Ok(false)
            }
        }
    }

    /// SIGKILL and reap.
    ///
    /// # Errors
    /// When the process cannot be waited for.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits for the process to exit by itself (a crash point), up to `deadline`.
    ///
    /// # Errors
    /// When it is still running at the deadline.
    pub async fn wait_exit(
        &mut self,
        deadline: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        Ok(tokio::time::timeout(deadline, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {deadline:?}", self.name))??)
    }
}

/// Waits until `url` answers 200.
///
/// # Errors
/// When it does not within `deadline`.
pub async fn wait_http_ok(url: &str, deadline: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    crate::wait::until(
        &format!("{url} to answer 200"),
        deadline,
        Duration::from_millis(100),
        || async {
            client
                .get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        },
    )
    .await
}

/// A free TCP port on 127.0.0.1, as the kernel hands it out.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
