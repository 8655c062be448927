//! The charge ceiling: the SQL transaction of `POST /v1/charges`
//! (payment-service/src/routes/charges.rs and idempotency.rs, outbox/mod.rs) run directly
//! by `pgbench` with the same number of clients on the same database, prepared statements
//! (as sqlx caches them), one round trip per statement as the service does.
//!
//! Two deliberate differences, both in the ceiling's favour being fair: the outbox row is
//! inserted already published (`published_at = now()`), so that the service's idle relay
//! does not pick the bench's rows up and load the machine during the ceiling run; and the
//! keys come from pgbench's random generator instead of a UUID.

use std::{path::Path, time::Duration};

use anyhow::Context;
use shared::event::{Envelope, PaymentSucceeded};

use crate::{load::RunResult, stats::sorted};

/// The transaction, statement for statement as the service sends it.
const SCRIPT: &str = r"\set k random(1, 9000000000000000000)
BEGIN;
SELECT pg_try_advisory_xact_lock(hashtextextended(:api_key_id || '/pgb-' || :client_id || '-' || :k, 0));
SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE api_key_id = :api_key_id AND idempotency_key = 'pgb-' || :client_id || '-' || :k AND created_at > now() - 86400000 * interval '1 millisecond';
INSERT INTO charges (id, api_key_id, amount, currency, customer_email, description) VALUES ('ch_pgb' || :client_id || 'x' || :k, :api_key_id, 1250, 'usd', 'jane@example.com', 'Order 1001') RETURNING id, amount, currency, customer_email, description, status, created_at;
INSERT INTO outbox (event_id, charge_id, payload, traceparent, published_at) VALUES (gen_random_uuid(), 'ch_pgb' || :client_id || 'x' || :k, :payload, :traceparent, now());
INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, response_status, response_body, charge_id) VALUES (:api_key_id, 'pgb-' || :client_id || '-' || :k, :request_hash::bytea, 201, :body::jsonb, 'ch_pgb' || :client_id || 'x' || :k) ON CONFLICT (api_key_id, idempotency_key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body, charge_id = EXCLUDED.charge_id, created_at = now();
END;
";

/// A realistic event payload and stored response body (what the service writes).
pub fn sample_payload() -> (String, String) {
    let charge_id = format!("ch_{}", uuid::Uuid::new_v4().simple());
    let event = Envelope::payment_succeeded(
        uuid::Uuid::new_v4(),
        time::OffsetDateTime::now_utc(),
        PaymentSucceeded {
            charge_id: charge_id.clone(),
            amount: 1250,
            currency: "usd".into(),
            customer_email: "jane@example.com".into(),
            description: Some("Order 1001".into()),
        },
    );
    let body = serde_json::json!({
        "id": charge_id, "object": "charge", "amount": 1250, "currency": "usd",
        "customer_email": "jane@example.com", "description": "Order 1001",
        "status": "succeeded", "created_at": "2025-01-01T00:00:00Z",
    });
    (
        serde_json::to_string(&event).unwrap_or_default(),
        body.to_string(),
    )
}

/// `pgbench --version`, or why it cannot be run.
pub async fn version() -> String {
    match tokio::process::Command::new("pgbench")
        .arg("--version")
        .output()
        .await
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Err(e) => format!("pgbench not runnable: {e}"),
    }
}

/// Runs the transaction with `clients` clients for `duration` against `db_url`, as
/// `api_key_id`; `work_dir` holds the script and the per-transaction logs.
///
/// # Errors
/// When pgbench fails or its output cannot be read.
pub async fn run(
    db_url: &str,
    api_key_id: &str,
    clients: usize,
    duration: Duration,
    work_dir: &Path,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(work_dir)?;
    for entry in std::fs::read_dir(work_dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pgb."))
        {
            std::fs::remove_file(path)?;
        }
    }
    let script = work_dir.join("charge.sql");
    std::fs::write(&script, SCRIPT)?;
    let (payload, body) = sample_payload();
    let secs = duration.as_secs().max(1);
    let threads = clients.clamp(1, 2);
    let output = tokio::process::Command::new("pgbench")
        .args(["--no-vacuum", "--protocol=prepared"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={threads}"))
        .arg(format!("--time={secs}"))
        .arg(format!("--file={}", script.display()))
        .arg("--log")
        .arg(format!("--log-prefix={}", work_dir.join("pgb").display()))
        .arg(format!("--define=api_key_id={api_key_id}"))
        .arg(format!("--define=payload={payload}"))
        .arg(format!("--define=body={body}"))
        .arg(format!("--define=request_hash=\\x{}", "ab".repeat(32)))
        .arg("--define=traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .arg(db_url)
        .output()
        .await
        .context("Failed to run pgbench (is it installed? scripts/bench.sh installs it)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {stderr}\n{stdout}"
    );
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
    let (latencies, failed) = read_logs(work_dir)?;
    let ok = latencies.len() as u64;
    Ok(RunResult {
        ok,
        errors: failed,
        elapsed: Duration::from_secs_f64(ok as f64 / tps.max(1e-9)),
        latencies_ms: sorted(latencies),
        error_kinds: (failed > 0)
            .then(|| ("failed".to_owned(), failed))
            .into_iter()
            .collect(),
    })
}

/// Reads pgbench's per-transaction logs (`client tx latency_us script epoch us`).
fn read_logs(dir: &Path) -> anyhow::Result<(Vec<f64>, u64)> {
    let mut latencies = Vec::new();
    let mut failed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pgb."))
        {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            match line.split_whitespace().nth(2).map(str::parse::<f64>) {
                Some(Ok(us)) => latencies.push(us / 1e3),
                _ => failed += 1,
            }
        }
        std::fs::remove_file(&path)?;
    }
    Ok((latencies, failed))
}
