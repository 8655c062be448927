//! The HTTP load driver: `POST /v1/charges` with a unique `Idempotency-Key` per request,
//! either closed-loop (a fixed number of clients, each sending its next request when the
//! last one is answered) or open-loop (a fixed arrival rate, whatever the latency).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::sync::Semaphore;

use crate::stats::{quantile, sorted};

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Successful requests (`201`) or transactions.
    pub ok: u64,
    /// Everything else: other statuses and transport errors.
    pub errors: u64,
    /// Wall time of the measured window.
    pub elapsed: Duration,
    /// Latency of each success, in milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    /// What the errors were: an HTTP status or `transport`, with counts.
    pub error_kinds: std::collections::BTreeMap<String, u64>,
}

impl RunResult {
    /// Successes per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Counts one request that took `latency`.
    fn record(&mut self, latency: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.latencies_ms.push(latency.as_secs_f64() * 1e3);
            }
            Err(kind) => {
                self.errors += 1;
                *self.error_kinds.entry(kind).or_default() += 1;
            }
        }
    }

    /// `503×3, transport×1`, or empty.
    pub fn show_errors(&self) -> String {
        self.error_kinds
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `q` latency quantile in milliseconds.
    pub fn latency(&self, q: f64) -> f64 {
        quantile(&self.latencies_ms, q)
    }
}

/// Sends charges to one payment API.
#[derive(Clone)]
pub struct Driver {
    client: reqwest::Client,
    url: String,
    auth: String,
    /// The pre-serialized JSON body every request sends.
    body: Arc<[u8]>,
}

impl Driver {
    /// A driver for the API at `base` (e.g. `http://127.0.0.1:8080`) keeping up to
    /// `connections` keep-alive connections.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base: &str, api_key: &str, connections: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        let body = serde_json::to_vec(&serde_json::json!({
            "amount": 1250,
            "currency": "usd",
            "customer_email": "jane@example.com",
            "description": "Order 1001",
        }))?;
        Ok(Self {
            client,
            url: format!("{base}/v1/charges"),
            auth: format!("Bearer {api_key}"),
            body: body.into(),
        })
    }

    /// One charge with a fresh random key: `Ok(charge id)` on `201`, else what went wrong.
    async fn charge(&self) -> Result<String, String> {
        match self.try_charge().await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(status)) => Err(status.to_string()),
            Err(_) => Err("transport".into()),
        }
    }

    async fn try_charge(&self) -> anyhow::Result<Result<String, u16>> {
        let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let response = self
            .client
            .post(&self.url)
            .header("authorization", &self.auth)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(self.body.to_vec())
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::CREATED {
            return Ok(Err(response.status().as_u16()));
        }
        let body: serde_json::Value = response.json().await?;
        Ok(body["id"].as_str().map(str::to_owned).ok_or(201))
    }

    /// `clients` concurrent closed loops for `duration`.
    pub async fn closed_loop(&self, clients: usize, duration: Duration) -> RunResult {
        let started = Instant::now();
        let deadline = started + duration;
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..clients.max(1) {
            let driver = self.clone();
            workers.spawn(async move {
                let mut part = RunResult::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let outcome = driver.charge().await;
                    part.record(t.elapsed(), outcome.map(|_| ()));
                }
                part
            });
        }
        let mut result = RunResult::default();
        let mut latencies = Vec::new();
        while let Some(done) = workers.join_next().await {
            if let Ok(part) = done {
                result.ok += part.ok;
                result.errors += part.errors;
                latencies.extend(part.latencies_ms);
                for (k, n) in part.error_kinds {
                    *result.error_kinds.entry(k).or_default() += n;
                }
            }
        }
        // The last requests finish a little after the deadline: count the real window.
        result.elapsed = started.elapsed();
        result.latencies_ms = sorted(latencies);
        result
    }

    /// Sends `rate` charges per second for `duration`, on schedule whatever the latency
    /// (at most `max_in_flight` outstanding). Returns the run and the created charges' ids.
    ///
    /// # Errors
    /// When a request task panics.
    pub async fn open_loop(
        &self,
        rate: f64,
        duration: Duration,
        max_in_flight: usize,
    ) -> anyhow::Result<(RunResult, Vec<String>)> {
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
        let limiter = Arc::new(Semaphore::new(max_in_flight.max(1)));
        let started = Instant::now();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = tokio::task::JoinSet::new();
        let mut skipped = 0u64;
        while started.elapsed() < duration {
            ticker.tick().await;
            let Ok(permit) = limiter.clone().try_acquire_owned() else {
                skipped += 1;
                continue;
            };
            let driver = self.clone();
            tasks.spawn(async move {
                let t = Instant::now();
                let r = driver.charge().await;
                drop(permit);
                (t.elapsed(), r)
            });
        }
        let mut result = RunResult::default();
        if skipped > 0 {
            result.errors = skipped;
            result
                .error_kinds
                .insert("not sent (too many in flight)".into(), skipped);
        }
        let mut sent = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (latency, r) = done.context("a request task failed")?;
            result.record(latency, r.map(|id| sent.push(id)));
        }
        result.elapsed = duration;
        result.latencies_ms = sorted(std::mem::take(&mut result.latencies_ms));
        Ok((result, sent))
    }
}
