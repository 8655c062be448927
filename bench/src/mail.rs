//! What the SMTP sink accepted: each `.eml` file in `TEST_SMTP_MAILDIR/new` starts with
//! the sink's `X-Received-At: <epoch seconds>` stamp. Files are read once and removed, so
//! polling stays cheap however many emails a run produces.

use std::{
    collections::{hash_map::Entry, HashMap},
    path::PathBuf,
    time::Duration,
};

use mailparse::MailHeaderMap;

/// Receive stamps by charge id, gathered across calls.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Charge id → the sink's receive time (epoch seconds); the first copy wins.
    pub received: HashMap<String, f64>,
    /// Emails seen for a charge that already had one (should stay 0: exactly once).
    pub duplicates: u64,
}

fn maildir() -> PathBuf {
    PathBuf::from(testkit::stack_var("TEST_SMTP_MAILDIR")).join("new")
}

impl Inbox {
    /// Reads and removes every file that arrived since the last call.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn collect(&mut self) -> anyhow::Result<usize> {
        let dir = maildir();
        if !dir.exists() {
            return Ok(0);
        }
        let mut n = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let raw = std::fs::read(&path)?;
            std::fs::remove_file(&path)?;
            let (headers, _) = mailparse::parse_headers(&raw)?;
            let key = headers.get_first_value("X-Idempotency-Key");
            let at = headers
                .get_first_value("X-Received-At")
                .and_then(|v| v.trim().parse::<f64>().ok());
            let (Some(key), Some(at)) = (key, at) else {
                continue;
            };
            let charge_id = key.split(':').next().unwrap_or_default().to_owned();
            match self.received.entry(charge_id) {
                Entry::Occupied(_) => self.duplicates += 1,
                Entry::Vacant(slot) => {
                    slot.insert(at);
                }
            }
            n += 1;
        }
        Ok(n)
    }

    /// Polls until every one of `charge_ids` has its email, or `deadline` passes.
    /// Returns how many are still missing.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub async fn wait_for(
        &mut self,
        charge_ids: &[String],
        deadline: Duration,
    ) -> anyhow::Result<usize> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            self.collect()?;
            let missing = charge_ids
                .iter()
                .filter(|c| !self.received.contains_key(*c))
                .count();
            if missing == 0 || tokio::time::Instant::now() >= end {
                return Ok(missing);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
