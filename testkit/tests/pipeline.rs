//! End to end: both services as processes, LocalStack, the SMTP sink over TCP and
//! Postgres. Hundreds of charges, with same-key retries, concurrent same-key requests and
//! injected duplicate SQS deliveries, must become exactly one email each.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::{stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use testkit::system::{System, API_KEY};

const UNIQUE_KEYS: usize = 180;
const CONCURRENT_KEYS: usize = 20;
const REQUESTS_PER_CONCURRENT_KEY: usize = 8;

/// Posts until the outcome is final, as a careful client does: 409 (in flight) and 5xx
/// are retried with the same key. Returns (status, replayed, charge id).
async fn post_until_final(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, bool, String) {
    for _ in 0..100 {
        let response = http
            .post(format!("{api}/v1/charges"))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        if status == StatusCode::CONFLICT || status.is_server_error() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let replayed = response.headers().contains_key("idempotent-replayed");
        let body: Value = response.json().await.expect("json");
        return (
            status,
            replayed,
            body["id"].as_str().unwrap_or_default().to_owned(),
        );
    }
    panic!("no final answer for {key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_charge_becomes_exactly_one_email_despite_retries_and_duplicate_deliveries() {
    let started = Instant::now();
    let mut system = System::start(
        &[],
        &[
            ("LEASE_DURATION", "5s".into()),
            ("RETRY_BASE_DELAY", "500ms".into()),
        ],
    )
    .await
    .expect("system starts");
    let run = testkit::unique("e2e");
    let http = reqwest::Client::new();
    let body_for = |i: usize| json!({"amount": 1000 + i, "currency": "usd", "customer_email": format!("{run}-{i}@example.com"), "description": format!("e2e order {i}")});

    // 1. Unique keys, 16 at a time; every fourth is retried with the same key afterwards.
    let mut requests = 0usize;
    let firsts: Vec<(usize, (StatusCode, bool, String))> = stream::iter(0..UNIQUE_KEYS)
        .map(|i| {
            let (http, api, body) = (http.clone(), system.api().to_owned(), body_for(i));
            let key = format!("{run}-key-{i}");
            async move { (i, post_until_final(&http, &api, &key, &body).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    requests += UNIQUE_KEYS;
    let mut charge_by_key: HashMap<String, String> = HashMap::new();
    for (i, (status, replayed, id)) in firsts {
        assert_eq!((status, replayed), (StatusCode::CREATED, false), "key {i}");
        charge_by_key.insert(format!("{run}-key-{i}"), id);
    }
    let mut replays = 0usize;
    for i in (0..UNIQUE_KEYS).step_by(4) {
        let key = format!("{run}-key-{i}");
        let (status, replayed, id) =
            post_until_final(&http, system.api(), &key, &body_for(i)).await;
        assert_eq!((status, replayed), (StatusCode::CREATED, true));
        assert_eq!(id, charge_by_key[&key], "a retry returns the first charge");
        replays += 1;
        requests += 1;
    }

    // 2. Keys hit by several identical requests at the same instant.
    for k in 0..CONCURRENT_KEYS {
        let i = UNIQUE_KEYS + k;
        let key = format!("{run}-key-{i}");
        let body = body_for(i);
        let answers = futures::future::join_all(
            (0..REQUESTS_PER_CONCURRENT_KEY)
                .map(|_| post_until_final(&http, system.api(), &key, &body)),
        )
        .await;
        requests += REQUESTS_PER_CONCURRENT_KEY;
        let ids: HashSet<&String> = answers.iter().map(|a| &a.2).collect();
        assert_eq!(ids.len(), 1, "one charge id for {key}");
        assert_eq!(
            answers.iter().filter(|a| !a.1).count(),
            1,
            "exactly one original response for {key}"
        );
        charge_by_key.insert(key, answers[0].2.clone());
    }
    let total_keys = UNIQUE_KEYS + CONCURRENT_KEYS;

    // 3. Inject duplicate deliveries: every other event published again, 1-3 extra copies,
    //    some copies side by side in one batch.
    let payments = PgPool::connect(&system.payments_db.url)
        .await
        .expect("payments db");
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM outbox ORDER BY id")
        .fetch_all(&payments)
        .await
        .expect("outbox");
    let mut copies = Vec::new();
    for (n, payload) in payloads.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
        for _ in 0..(1 + n % 3) {
            copies.push(payload.clone());
        }
    }
    testkit::sqs::send_bodies(&system.sqs, &system.queue.url, &copies)
        .await
        .expect("duplicates injected");
    let injected = copies.len();

    // 4. Wait for one email per charge, then for both queues to be empty.
    let expected_keys: HashSet<String> = charge_by_key
        .values()
        .map(|id| format!("{id}:confirmation_email:v1"))
        .collect();
    let ours = |to: &Option<String>| to.as_deref().is_some_and(|t| t.contains(&run));
    testkit::wait::until(
        "an email for every charge",
        Duration::from_secs(120),
        Duration::from_millis(250),
        || async {
            let keys: HashSet<String> = testkit::mail::all()
                .ok()?
                .into_iter()
                .filter(|m| ours(&m.to))
                .filter_map(|m| m.idempotency_key)
                .collect();
            expected_keys.is_subset(&keys).then_some(())
        },
    )
    .await
    .expect("every charge emailed");
    testkit::sqs::wait_drained(&system.sqs, &system.queue.url, Duration::from_secs(60))
        .await
        .expect("queue drained");
    let dlq = testkit::sqs::depth(&system.sqs, &system.queue.dlq_url)
        .await
        .expect("dlq depth");
    let emails_at_end = Instant::now();

    // 5. Count per key.
    let charges: i64 = sqlx::query_scalar("SELECT count(*) FROM charges")
        .fetch_one(&payments)
        .await
        .expect("count");
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for mail in testkit::mail::all()
        .expect("mail")
        .into_iter()
        .filter(|m| ours(&m.to))
    {
        *per_key
            .entry(mail.idempotency_key.unwrap_or_default())
            .or_default() += 1;
    }
    let lost: Vec<&String> = expected_keys
        .iter()
        .filter(|k| !per_key.contains_key(*k))
        .collect();
    let duplicated: Vec<(&String, &usize)> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    let unexpected: Vec<&String> = per_key
        .keys()
        .filter(|k| !expected_keys.contains(*k))
        .collect();
    let emails: usize = per_key.values().sum();
    let dedup_hits = system
        .metric("notification_dedup_hits_total")
        .await
        .expect("metrics");
    let lease_waits = system
        .metric("notification_lease_busy_total")
        .await
        .expect("metrics");
    let clean_exit = system.stop(Duration::from_secs(30)).await.expect("stopped");

    println!(
        "e2e: keys={total_keys} requests={requests} replays={replays} charges={charges} emails={emails} \
         duplicates_injected={injected} dedup_hits={dedup_hits} lease_waits={lease_waits} lost={} duplicated={} \
         unexpected={} dlq={dlq:?} seconds_to_last_email={:.1} clean_sigterm={clean_exit}",
        lost.len(),
        duplicated.len(),
        unexpected.len(),
        emails_at_end.duration_since(started).as_secs_f64(),
    );
    assert_eq!(
        charges,
        i64::try_from(total_keys).expect("fits"),
        "one charge per key"
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
    assert_eq!(emails, total_keys);
    assert_eq!(dlq, (0, 0), "nothing dead-lettered");
    // Every injected copy was absorbed by the dedup table (more if the relay itself
    // published something twice).
    assert!(
        dedup_hits >= injected as f64,
        "dedup hits {dedup_hits} < injected {injected}"
    );
    assert!(clean_exit, "both services drain and exit 0 on SIGTERM");
    payments.close().await;
    system.drop_databases().await.expect("dropped");
}
