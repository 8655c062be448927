//! "What stops each target, and the next step": the figures read against each other.

use super::*;

/// Every run's stage samples pooled: (name, p50, p99).
fn stages(r: &Results) -> Vec<(String, f64, f64)> {
    let names: Vec<String> = r
        .e2e
        .first()
        .map(|e| e.stages.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let all = sorted(
                r.e2e
                    .iter()
                    .filter_map(|e| e.stages.get(i))
                    .flat_map(|(_, v)| v.iter().copied())
                    .collect(),
            );
            (name, quantile(&all, 0.5), quantile(&all, 0.99))
        })
        .collect()
}

pub(super) fn section_analysis(o: &mut String, r: &Results, f: &Figures) {
    let _ = writeln!(o, "## What stops each target, and the next step\n");
    let per_s = |runs: &[RunResult]| runs.last().map_or(0.0, RunResult::throughput);
    if !r.outbox.is_empty() {
        let _ = writeln!(
            o,
            "- **(1) Charges, {:.2} of pgbench.** Both sides saturate the same CPUs (machine \
             {:.0}% during the service run, {:.0}% during pgbench). CPU per charge: {}; per \
             pgbench transaction: {}. The database work per transaction is about the same; the \
             service adds the HTTP and JSON path, the relay (its claim and `published_at` \
             update, one commit per batch of 10) and LocalStack receiving every event, all on \
             the cores Postgres needs. {}",
            f.ratio1.median,
            r.cpu_outbox.machine,
            r.cpu_pgbench.machine,
            r.cpu_outbox.per_op(per_s(&r.outbox)),
            r.cpu_pgbench.per_op(per_s(&r.pgbench)),
            if f.ratio1.median >= 0.8 {
                "The target is met."
            } else {
                "Next step: the ratio the target means needs Postgres on cores of its own \
                 (another machine, or `taskset` pinning Postgres away from the rest); on one \
                 shared 2-CPU machine the service's non-database CPU per charge bounds it."
            }
        );
    }
    let st = stages(r);
    if let Some(slowest) = st.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        let smtp = st
            .iter()
            .find(|s| s.0.contains("SMTP accept") && s.0.starts_with("consumer"));
        let nagle = smtp.is_some_and(|s| s.1 >= 30.0);
        let queueing = st
            .iter()
            .find(|s| s.0.starts_with("relay claim"))
            .filter(|s| s.1 >= 15.0)
            .map(|s| {
                let which = if s.0 == slowest.0 {
                    "It".to_owned()
                } else {
                    format!("The next, \"{}\" (p50 {:.1} ms),", s.0, s.1)
                };
                format!(
                    " {which} is the relay's `SendMessageBatch`, LocalStack (one Python \
                     process serving the relay and every poller on the shared CPUs) and the \
                     wait for a poller: a poller receives again only when every message of \
                     its batch is done."
                )
            })
            .unwrap_or_default();
        // Describe the largest stage first, whichever it is.
        let (first, then) = if queueing.starts_with(" It ") {
            (queueing, String::new())
        } else {
            (String::new(), queueing)
        };
        let _ = writeln!(
            o,
            "- **(2) Latency, p50 {:.1} ms, p99 {:.1} ms.** The largest stage is \"{}\" \
             (p50 {:.1} ms).{first} {}{then}",
            f.e2e_p50.median,
            f.e2e_p99.median,
            slowest.0,
            slowest.1,
            if nagle {
                "That stage is one SMTP exchange on a pooled connection, on loopback: it \
                 should take about a millisecond. It takes 40 ms because lettre 0.11.23 never \
                 sets `TCP_NODELAY`: it writes the message body and then the closing \
                 `\\r\\n.\\r\\n` as a second small write, which Nagle's algorithm holds until \
                 the server acknowledges the body, and the server delays that ACK by Linux's \
                 40 ms minimum because it has nothing to answer until it sees the dot. Fixed \
                 upstream (lettre pull request #1159, \"set TCP_NODELAY on connections\": 42 ms \
                 → 1.2–2 ms per message), not yet in a release; next step: \
                 `[patch.crates-io] lettre` to that commit, or 0.11.24 when it is published. \
                 Not measured by `make bench` itself but by the same bench in a separate \
                 experiment (2026-12-04, this machine) with a copy of the sink that \
                 acknowledges every segment at once (`TCP_QUICKACK`, the server-side \
                 equivalent of the fix): at about 50 charges/s this stage fell from p50 46 ms \
                 to 3.5 ms and the end-to-end p50 from 54 ms to 15 ms; at half the then \
                 higher maximum (222 charges/s) the end-to-end p50 was 45–49 ms and p99 \
                 84–108 ms, the rest being the queueing stage below and the shared CPUs."
            } else if f.e2e_p50.median < 25.0 && f.e2e_p99.median < 100.0 {
                "Both targets are met."
            } else {
                "The tail comes from the machine's CPUs being shared with everything else \
                 (see the CPU lines below)."
            }
        );
    }
    if !r.pipeline.is_empty() {
        let consumer_last = r.consumer.last().copied().unwrap_or_default();
        let _ = writeln!(
            o,
            "- **(3) Pipeline, {:.2} of the lower ceiling.** The chain is bounded by its \
             consumer: the notification service alone drains {:.0} emails/s, against {:.0} \
             messages/s for the queue alone and {:.0} charges/s. CPU per email of the consumer \
             alone: {}. Per email it does what the queue test does (receive, delete) plus a \
             claim and a `sent` update (two commits in its own database) and an SMTP exchange \
             with a Python sink that writes a file per email{}.{} Next step: {}",
            f.ratio3,
            f.consumer.median,
            f.queue.median,
            f.charge.median,
            r.cpu_consumer.per_op(consumer_last),
            if st
                .iter()
                .any(|s| s.0.starts_with("consumer") && s.1 >= 30.0)
            {
                ", and every send holds its slot for the 40 ms Nagle stall of (2)"
            } else {
                ""
            },
            if r.cpu_consumer.machine > 0.0 && r.cpu_consumer.machine < 170.0 {
                format!(
                    " The machine was at {:.0}% of {}% while the consumer drained alone: it \
                     is not CPU-bound but bound by waiting, with at most `MAX_IN_FLIGHT=40` \
                     messages (4 pollers × 10) each held for its batch's slowest send plus \
                     the claim, `sent` and delete round trips.",
                    r.cpu_consumer.machine,
                    r.machine.cpus * 100
                )
            } else {
                String::new()
            },
            if f.ratio3 >= 0.8 {
                "none; the target is met."
            } else if !st
                .iter()
                .any(|s| s.0.starts_with("consumer") && s.1 >= 30.0)
            {
                "the bound is CPU per email on shared cores (the Python sink, LocalStack, two \
                 commits): recording `sent` for a whole receive batch in one statement would \
                 halve the consumer's commits, and the ratio the target means needs the queue \
                 and the consumer on cores of their own."
            } else {
                "the TCP_NODELAY fix of (2). In the separate experiment of (2) (the stall \
                 removed on the sink's side) the consumer alone went to 694–719 emails/s and \
                 the chain to 431–456 emails/s, 0.36–0.38 of the queue's ceiling; \
                 `POLLERS=8`, `MAX_IN_FLIGHT=80` added about 5% to the consumer and nothing to \
                 the chain. Past the stall the bound is CPU per email on shared cores (the \
                 Python sink, LocalStack, two commits): recording `sent` for a whole receive \
                 batch in one statement would halve the consumer's commits, and the ratio \
                 the target means needs the queue and the consumer on cores of their own."
            }
        );
    }
    if let Some(base) = r.levels.first() {
        let last = r.levels.len() - 1;
        for (i, level) in r.levels.iter().enumerate().skip(1) {
            let (t, cl) = level_ratios(base, level);
            let fits = |v: f64| if v >= 0.9 { "within" } else { "beyond" };
            let claim_fits = if cl.median <= 1.1 { "within" } else { "beyond" };
            let _ = writeln!(
                o,
                "- **(4) {} rows: throughput {:.2} ({} 10%), claim p50 {:.2} ({claim_fits} \
                 10%) of the empty case.** `idempotency_keys` is then {:.0} MiB and \
                 `deliveries` {:.0} MiB with their indexes, against shared_buffers of the \
                 machine table. {}{}",
                rows(level.rows),
                t.median,
                fits(t.median),
                cl.median,
                level.sizes_mib.0,
                level.sizes_mib.1,
                if t.median >= 0.9 {
                    "The charge path does not slow down: its lookups and inserts are one \
                     B-tree descent each, and the cost of a descent grows with the tree's \
                     depth, not its row count. "
                } else {
                    "The charge path slows down: new random keys land on random leaf pages of \
                     an index larger than the buffer cache, so inserts read pages from the OS \
                     cache and write full-page images to the WAL. "
                },
                if cl.median <= 1.1 {
                    "The claim keeps its latency."
                } else if i < last {
                    "The claim (one `INSERT … ON CONFLICT` on the `deliveries` primary key, a \
                     random key each time) gets slower by a fraction of a millisecond: with \
                     the index beyond shared_buffers its leaf pages come from the OS cache."
                } else {
                    "The claim (one `INSERT … ON CONFLICT` on the `deliveries` primary key, a \
                     random key each time) gets slower by a fraction of a millisecond: with \
                     the index beyond shared_buffers its leaf pages come from the OS cache. \
                     Next step, in the product: `deliveries` is never purged (the notification \
                     service has no reaper), so it only grows; a dedup record is needed only \
                     as long as a copy of its event can still arrive (the queue's retention, \
                     at most 14 days, plus any replay window), and purging older rows keeps \
                     the index the size of that window."
                }
            );
        }
    }
    let _ = writeln!(
        o,
        "- **(5) Memory**: payment {}, notification {} at peak: {}.",
        mib(r.rss_payment),
        mib(r.rss_notification),
        if [r.rss_payment, r.rss_notification]
            .iter()
            .flatten()
            .any(|v| *v >= 64.0)
        {
            "over the 64 MiB target: look at the pools (HTTP, database, SMTP) first"
        } else {
            "under 64 MiB"
        }
    );
    if !r.inline.is_empty() {
        let _ = writeln!(
            o,
            "- **(6) The outbox is {:.2}× the inline variant.** Publishing inline costs every \
             request a `SendMessage` round trip (one message per call) before it can answer; \
             the relay publishes after the answer, 10 messages per `SendMessageBatch`, so the \
             queue's per-call cost is shared. {}\n",
            f.ratio6.median,
            if f.ratio6.median >= 1.0 {
                "Target met: the safety costs nothing here; it is faster."
            } else {
                "The outbox is the slower here: its relay's database work outweighs the saved \
                 round trips on this machine."
            }
        );
    }
}
