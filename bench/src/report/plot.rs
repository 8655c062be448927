//! The latency CDF of (1) and (2).

use super::*;

pub(super) fn plot(r: &Results) -> String {
    let e2e = sorted(
        r.e2e
            .iter()
            .flat_map(|e| e.latencies_ms.iter().copied())
            .collect(),
    );
    let http = sorted(
        r.e2e
            .iter()
            .flat_map(|e| e.http.latencies_ms.iter().copied())
            .collect(),
    );
    let charge = sorted(
        r.outbox
            .iter()
            .flat_map(|e| e.latencies_ms.iter().copied())
            .collect(),
    );
    let label = |name: &str, v: &[f64]| {
        format!(
            "{name}: p50 {:.1} ms, p99 {:.1} ms (n={})",
            quantile(v, 0.5),
            quantile(v, 0.99),
            v.len()
        )
    };
    latency_cdf(
        &format!(
            "Latency CDF: commit → SMTP accept at {:.0} charges/s, and POST /v1/charges",
            r.e2e_rate
        ),
        &[
            Series {
                label: label("commit → SMTP accept (2)", &e2e),
                color: "#1f77b4",
                values: &e2e,
            },
            Series {
                label: label(&format!("POST /v1/charges at {:.0}/s", r.e2e_rate), &http),
                color: "#2ca02c",
                values: &http,
            },
            Series {
                label: label(
                    &format!(
                        "POST /v1/charges, {} clients closed-loop (1)",
                        r.args.as_ref().map_or(0, |a| a.concurrency)
                    ),
                    &charge,
                ),
                color: "#ff7f0e",
                values: &charge,
            },
        ],
        &[(25.0, "p50 target 25 ms"), (100.0, "p99 target 100 ms")],
    )
}
