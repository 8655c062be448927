//! Deadline-based waiting: no sleeps that guess how long something takes.

use std::{future::Future, time::Duration};

/// Polls `check` every `every` until it returns `Some`, or fails after `deadline`.
///
/// # Errors
/// When the deadline passes, naming `what`.
pub async fn until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= end {
            anyhow::bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}
