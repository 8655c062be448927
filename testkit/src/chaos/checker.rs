//! The per-key checker: after the faults are healed and the queues drained, compares
//! what the client was told, what the payments database holds, and what the SMTP server
//! received, key by key.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;

use super::load::{ClientOutcome, LoadResult};
use crate::mail::ReceivedMail;

/// Which effects of the one irreducible window a scenario may show. Either is allowed
/// only with evidence in the dedup table that the window was hit, never unexplained.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowance {
    /// At-least-once: a duplicate whose dedup row shows a takeover (attempts ≥ 2: the
    /// email was accepted, the worker died or lost the reply before recording `sent`).
    pub window_duplicates: bool,
    /// At-most-once: a miss whose dedup row says `sent` (recorded before a send that
    /// never happened).
    pub window_misses: bool,
}

/// Figures for one scenario; each field is a count unless said otherwise.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Keys posted.
    pub keys: usize,
    /// HTTP requests sent.
    pub requests: usize,
    /// Charges in the database for this run.
    pub charges: usize,
    /// Keys acknowledged with a 201.
    pub acknowledged: usize,
    /// Keys whose client never got a final answer.
    pub unknown: usize,
    /// Keys with an unknown attempt that completed later.
    pub recovered: usize,
    /// Emails received for this run.
    pub emails: usize,
    /// Charged, no email.
    pub lost: usize,
    /// Charges with more than one email.
    pub duplicated: usize,
    /// Of those, duplicates the dedup table attributes to the irreducible window.
    pub window_duplicates: usize,
    /// Of the lost, misses the dedup table attributes to the at-most-once window.
    pub window_misses: usize,
    /// Most emails any one charge received (2 at most is the irreducible window's bound).
    pub max_emails_per_charge: usize,
    /// Width of the irreducible window as measured: between the SMTP server accepting an
    /// email and `sent` being committed (the other way round at most once), p50 and p99
    /// in milliseconds over this scenario's charges that got exactly one email.
    pub window_ms: (f64, f64),
    /// Emails for a charge that does not exist.
    pub unexpected: usize,
    /// Acknowledged to the client but not in the database.
    pub acknowledged_not_charged: usize,
    /// Finally refused to the client but charged.
    pub failed_but_charged: usize,
    /// Messages left on the queue.
    pub left_in_queue: u64,
    /// Messages in the DLQ that are not accounted-for poison.
    pub unaccounted_in_dlq: usize,
    /// Poison messages injected.
    pub poison_injected: usize,
    /// Poison messages found in the DLQ with a poison reason.
    pub poison_in_dlq: usize,
    /// Duplicate deliveries injected onto the queue.
    pub duplicates_injected: usize,
    /// Crashes (SIGKILL at a crash point) or kills the harness caused.
    pub crashes: usize,
    /// Seconds from the first charge to the end of the drain.
    pub seconds: f64,
    /// What broke, empty when the scenario held.
    pub violations: Vec<String>,
}

/// Inputs the checker reads.
pub struct Evidence<'a> {
    /// The payments database.
    pub payments: &'a PgPool,
    /// The notifications (dedup) database.
    pub notifications: &'a PgPool,
    /// The run's key and recipient prefix.
    pub run: &'a str,
    /// The client's view.
    pub load: &'a LoadResult,
    /// Every email the sink received (all runs; filtered by recipient here).
    pub mails: &'a [&'a ReceivedMail],
    /// Bodies and `dead_letter_reason` of every DLQ message.
    pub dead_letters: &'a [(String, Option<String>)],
    /// Messages still on the main queue (visible + in flight).
    pub left_in_queue: u64,
}

/// Poison reason codes the consumer writes.
const POISON_REASONS: [&str; 3] = [
    "malformed_body",
    "unknown_event_type",
    "unsupported_version",
];

/// Builds the report and lists the violations of the promise.
///
/// # Errors
/// Database errors.
pub async fn check(
    evidence: Evidence<'_>,
    allowance: Allowance,
    mut report: Report,
) -> anyhow::Result<Report> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT idempotency_key, charge_id FROM idempotency_keys WHERE idempotency_key LIKE $1 || '-%'")
            .bind(evidence.run)
            .fetch_all(evidence.payments)
            .await?;
    let charged: HashMap<String, String> = rows
        .into_iter()
        .filter_map(|(k, c)| Some((k, c?)))
        .collect();
    let charge_ids: HashSet<&String> = charged.values().collect();
    let mut emails_per_charge: HashMap<String, usize> = HashMap::new();
    let mut first_received: HashMap<String, f64> = HashMap::new();
    for mail in evidence
        .mails
        .iter()
        .filter(|m| m.to.as_deref().is_some_and(|t| t.contains(evidence.run)))
    {
        let key = mail.idempotency_key.clone().unwrap_or_default();
        let charge = key
            .strip_suffix(":confirmation_email:v1")
            .unwrap_or(&key)
            .to_owned();
        if let Some(at) = mail.received_at {
            let first = first_received.entry(charge.clone()).or_insert(at);
            *first = first.min(at);
        }
        *emails_per_charge.entry(charge).or_default() += 1;
    }

    report.keys = evidence.load.outcomes.len();
    report.requests = evidence.load.requests;
    report.charges = charged.len();
    report.emails = emails_per_charge.values().sum();
    let lost: Vec<String> = charge_ids
        .iter()
        .filter(|c| !emails_per_charge.contains_key(c.as_str()))
        .map(|c| (*c).clone())
        .collect();
    let duplicated: Vec<String> = emails_per_charge
        .iter()
        .filter(|(c, n)| **n > 1 && charge_ids.contains(c))
        .map(|(c, _)| c.clone())
        .collect();
    report.lost = lost.len();
    report.duplicated = duplicated.len();
    let deliveries: HashMap<String, (String, i32)> = sqlx::query_as::<_, (String, String, i32)>(
        "SELECT charge_id, state, attempts FROM deliveries WHERE charge_id = ANY($1)",
    )
    .bind([lost.clone(), duplicated.clone()].concat())
    .fetch_all(evidence.notifications)
    .await?
    .into_iter()
    .map(|(c, state, attempts)| (c, (state, attempts)))
    .collect();
    let sent_at: Vec<(String, f64)> = sqlx::query_as(
        "SELECT charge_id, extract(epoch FROM sent_at)::float8 FROM deliveries WHERE sent_at IS NOT NULL",
    )
    .fetch_all(evidence.notifications)
    .await?;
    let mut widths: Vec<f64> = sent_at
        .iter()
        // Charges that got one email: a duplicate's window was cut by a crash.
        .filter(|(c, _)| emails_per_charge.get(c) == Some(&1))
        .filter_map(|(c, sent)| Some((sent - first_received.get(c)?).abs() * 1000.0))
        .collect();
    widths.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        widths
            .get(((widths.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    report.window_ms = (pct(0.5), pct(0.99));
    report.max_emails_per_charge = emails_per_charge.values().copied().max().unwrap_or(0);
    report.window_duplicates = duplicated
        .iter()
        .filter(|c| deliveries.get(*c).is_some_and(|(_, a)| *a >= 2))
        .count();
    report.window_misses = lost
        .iter()
        .filter(|c| deliveries.get(*c).is_some_and(|(s, _)| s == "sent"))
        .count();
    report.unexpected = emails_per_charge
        .keys()
        .filter(|c| !charge_ids.contains(c))
        .count();
    for (key, outcome) in &evidence.load.outcomes {
        match outcome {
            ClientOutcome::Acknowledged {
                charge_id,
                recovered,
            } => {
                report.acknowledged += 1;
                if charged.get(key) != Some(charge_id) {
                    report.acknowledged_not_charged += 1;
                }
                if *recovered {
                    report.recovered += 1;
                }
            }
            ClientOutcome::Failed { .. } => {
                if charged.contains_key(key) {
                    report.failed_but_charged += 1;
                }
            }
            ClientOutcome::Unknown => report.unknown += 1,
        }
    }
    report.left_in_queue = evidence.left_in_queue;
    report.poison_in_dlq = evidence
        .dead_letters
        .iter()
        .filter(|(_, reason)| {
            reason
                .as_deref()
                .is_some_and(|r| POISON_REASONS.contains(&r))
        })
        .count();
    report.unaccounted_in_dlq = evidence.dead_letters.len() - report.poison_in_dlq;

    let mut v = Vec::new();
    let allowed_misses = if allowance.window_misses {
        report.window_misses
    } else {
        0
    };
    if report.lost > allowed_misses {
        v.push(format!(
            "lost {} ({} explained by the at-most-once window)",
            report.lost, allowed_misses
        ));
    }
    let allowed_duplicates = if allowance.window_duplicates {
        report.window_duplicates
    } else {
        0
    };
    if report.duplicated > allowed_duplicates {
        v.push(format!(
            "duplicated {} ({} explained by the irreducible window)",
            report.duplicated, allowed_duplicates
        ));
    }
    for (name, n) in [
        ("unexpected", report.unexpected),
        (
            "acknowledged-but-not-charged",
            report.acknowledged_not_charged,
        ),
        ("failed-but-charged", report.failed_but_charged),
        ("unaccounted in DLQ", report.unaccounted_in_dlq),
    ] {
        if n > 0 {
            v.push(format!("{name} {n}"));
        }
    }
    if report.max_emails_per_charge > 2 {
        v.push(format!(
            "a charge got {} emails",
            report.max_emails_per_charge
        ));
    }
    if report.left_in_queue > 0 {
        v.push(format!("left in queue {}", report.left_in_queue));
    }
    if report.poison_in_dlq != report.poison_injected {
        v.push(format!(
            "poison in DLQ {} != injected {}",
            report.poison_in_dlq, report.poison_injected
        ));
    }
    report.violations = v;
    Ok(report)
}

impl Report {
    /// The Markdown table header matching [`Report::row`].
    pub fn header() -> &'static str {
        "| scenario | keys | requests | charges | acked | unknown | recovered | emails | lost | duplicated | window dup. / miss | max emails per charge | window p50 / p99 ms | unexpected | acked-not-charged | failed-but-charged | dup deliveries injected | poison in DLQ / injected | crashes | left in queue | seconds | held |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    }

    /// One Markdown table row.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {:.1} / {:.1} | {} | {} | {} | {} | {} / {} | {} | {} | {:.1} | {} |",
            self.scenario,
            self.keys,
            self.requests,
            self.charges,
            self.acknowledged,
            self.unknown,
            self.recovered,
            self.emails,
            self.lost,
            self.duplicated,
            self.window_duplicates,
            self.window_misses,
            self.max_emails_per_charge,
            self.window_ms.0,
            self.window_ms.1,
            self.unexpected,
            self.acknowledged_not_charged,
            self.failed_but_charged,
            self.duplicates_injected,
            self.poison_in_dlq,
            self.poison_injected,
            self.crashes,
            self.left_in_queue,
            self.seconds,
            if self.violations.is_empty() { "yes".to_owned() } else { format!("NO: {}", self.violations.join("; ")) },
        )
    }
}
