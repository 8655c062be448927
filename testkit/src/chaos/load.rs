//! The load driver: posts charges with unique keys and retries exactly as a careful
//! client does (same key, on timeouts, connection errors, 409 and 5xx), recording how
//! each key ended.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::system::API_KEY;

/// How one idempotency key ended, from the client's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutcome {
    /// A 201 arrived; `recovered` when an earlier attempt had an unknown outcome.
    Acknowledged {
        /// The charge the API returned.
        charge_id: String,
        /// An earlier attempt timed out or lost its connection.
        recovered: bool,
    },
    /// A final refusal (4xx other than 409).
    Failed {
        /// The status.
        status: u16,
    },
    /// No final answer within the retry budget.
    Unknown,
}

/// What to post.
#[derive(Clone)]
pub struct Load {
    /// Prefix of every key and recipient of this run.
    pub run: String,
    /// How many keys.
    pub charges: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Pause between starting two keys (paces the load across the fault schedule).
    pub pace: Duration,
    /// API base URLs; key `i` goes to `apis[i % len]` first, then rotates on failure.
    pub apis: Vec<String>,
    /// Recipient of key `i` (chooses SMTP fault modes).
    pub recipient: Arc<dyn Fn(usize) -> String + Send + Sync>,
    /// How long a key may keep retrying.
    pub budget: Duration,
}

/// The result of a load run.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Per key.
    pub outcomes: HashMap<String, ClientOutcome>,
    /// HTTP requests sent.
    pub requests: usize,
}

impl Load {
    /// The key of charge `i`.
    pub fn key(&self, i: usize) -> String {
        format!("{}-{i}", self.run)
    }
}

async fn one_key(load: &Load, http: &reqwest::Client, i: usize) -> (String, ClientOutcome, usize) {
    let key = load.key(i);
    let body: Value = json!({"amount": 100 + i, "currency": "usd", "customer_email": (load.recipient)(i), "description": "chaos"});
    let started = Instant::now();
    let mut recovered = false;
    let mut requests = 0;
    let mut pause = Duration::from_millis(50);
    let mut attempt = 0;
    while started.elapsed() < load.budget {
        let api = &load.apis[(i + attempt) % load.apis.len()];
        attempt += 1;
        requests += 1;
        let sent = http
            .post(format!("{api}/v1/charges"))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let id = r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned));
                match id {
                    Some(charge_id) => {
                        return (
                            key,
                            ClientOutcome::Acknowledged {
                                charge_id,
                                recovered,
                            },
                            requests,
                        )
                    }
                    // The body was lost on the way: the outcome is unknown, retry.
                    None => recovered = true,
                }
            }
            Ok(r)
                if r.status() == StatusCode::CONFLICT
                    || r.status().is_server_error()
                    || r.status() == StatusCode::REQUEST_TIMEOUT =>
            {
                // 408: the server gave up mid-request; the commit may or may not have happened.
                if r.status() == StatusCode::REQUEST_TIMEOUT {
                    recovered = true;
                }
            }
            Ok(r) => {
                return (
                    key,
                    ClientOutcome::Failed {
                        status: r.status().as_u16(),
                    },
                    requests,
                )
            }
            Err(_) => recovered = true,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
    (key, ClientOutcome::Unknown, requests)
}

/// Posts every key, `concurrency` at a time, each started at least `pace` after the last.
pub async fn drive(load: Load) -> LoadResult {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(load.concurrency)
        .build()
        .unwrap_or_default();
    let load = Arc::new(load);
    let pace = load.pace;
    let results: Vec<(String, ClientOutcome, usize)> = stream::iter(0..load.charges)
        // `then` runs one at a time: the pause paces the starts of the keys.
        .then(|i| async move {
            tokio::time::sleep(pace).await;
            i
        })
        .map(|i| {
            let (load, http) = (load.clone(), http.clone());
            async move { one_key(&load, &http, i).await }
        })
        .buffer_unordered(load.concurrency.max(1))
        .collect()
        .await;
    let mut out = LoadResult::default();
    for (key, outcome, requests) in results {
        out.requests += requests;
        out.outcomes.insert(key, outcome);
    }
    out
}
