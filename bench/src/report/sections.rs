//! One section per measurement: the runs, the limits and the CPU split.

use super::*;

fn run_row(o: &mut String, label: &str, r: &RunResult) {
    let _ = writeln!(
        o,
        "| {label} | {:.0} | {:.1} | {:.1} | {} |",
        r.throughput(),
        r.latency(0.5),
        r.latency(0.99),
        if r.errors > 0 {
            format!("{} ({})", r.errors, r.show_errors())
        } else {
            "0".to_owned()
        }
    );
}

pub(super) fn section_charges(o: &mut String, r: &Results, f: &Figures, c: usize) {
    let _ = writeln!(
        o,
        "## 1. Charge throughput against the database's ceiling\n"
    );
    let _ = writeln!(
        o,
        "`POST /v1/charges`, a new random `Idempotency-Key` per request, {c} closed-loop \
         clients on keep-alive connections, against `pgbench` running the same SQL transaction \
         (advisory lock, key lookup, charge insert, outbox insert, key insert, commit; \
         prepared statements, one round trip each, as sqlx sends them) with {c} clients on the \
         same database. The payment service runs with its defaults (pool of 16, relay with 2 \
         workers publishing to LocalStack as charges commit); the notification service is \
         stopped during these runs so that the consumer does not take CPU from the charge \
         path (the whole chain is measurement 3).\n"
    );
    let _ = writeln!(o, "| run | per second | p50 ms | p99 ms | errors |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- |");
    for (i, (pg, sys)) in r.pgbench.iter().zip(&r.outbox).enumerate() {
        run_row(o, &format!("{}: pgbench", i + 1), pg);
        run_row(o, &format!("{}: service", i + 1), sys);
    }
    let _ = writeln!(
        o,
        "\nRatio service / pgbench: **{}** (target ≥ 0.8). After each service run the relay \
         needed {} s more to publish its backlog (0 means it kept up with the commits).\n",
        f.ratio1.show(2),
        spread(r.relay_drain_s.iter().copied()).show(1)
    );
    let per_s = |runs: &[RunResult]| runs.last().map_or(0.0, RunResult::throughput);
    let _ = writeln!(
        o,
        "CPU during the last service run: {}; per charge: {}.  \nCPU during the last pgbench \
         run: {}; per transaction: {}.\n",
        r.cpu_outbox.show(),
        r.cpu_outbox.per_op(per_s(&r.outbox)),
        r.cpu_pgbench.show(),
        r.cpu_pgbench.per_op(per_s(&r.pgbench))
    );
}

pub(super) fn section_latency(o: &mut String, r: &Results, f: &Figures) {
    let _ = writeln!(o, "## 2. End-to-end latency: commit → SMTP accept\n");
    let _ = writeln!(
        o,
        "Open-loop arrivals at {:.0} charges/s, half the lower of the payment side's \
         maximum (1) and the whole pipeline's (3), for {} s per run. Latency per charge = the \
         SMTP sink's `X-Received-At` stamp minus `charges.created_at`; both clocks are this \
         machine's. `created_at` is `now()`, the start of the charge's transaction, so the \
         figure includes the rest of that transaction (a few ms): it slightly overstates \
         commit → accept. Services at their defaults: relay woken by each commit \
         (`RELAY_WORKERS=2`, sweep 1 s); consumer `POLLERS=4`, `MAX_IN_FLIGHT=40`, \
         `SQS_WAIT_TIME=20s` (a long poll returns as soon as a message arrives, so the wait \
         adds no latency), `DELIVERY_GUARANTEE=at-least-once`.\n",
        r.e2e_rate,
        r.args.as_ref().map_or(0.0, |a| a.duration.as_secs_f64())
    );
    let _ = writeln!(
        o,
        "| run | emails | p50 ms | p90 ms | p99 ms | max ms | missing | HTTP p50 / p99 ms |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, e) in r.e2e.iter().enumerate() {
        let v = &e.latencies_ms;
        let _ = writeln!(
            o,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} / {:.1} |",
            i + 1,
            v.len(),
            quantile(v, 0.5),
            quantile(v, 0.9),
            quantile(v, 0.99),
            v.last().copied().unwrap_or(0.0),
            e.missing,
            e.http.latency(0.5),
            e.http.latency(0.99)
        );
    }
    let _ = writeln!(
        o,
        "\np50 **{} ms** (target < 25), p99 **{} ms** (target < 100). The plot above shows \
         the distribution of every run together.\n",
        f.e2e_p50.show(1),
        f.e2e_p99.show(1)
    );
    let _ = writeln!(
        o,
        "Where the time goes, every run together, from the rows' own timestamps (all \
         `now()` = transaction start, so each stage boundary sits at the start of the \
         transaction that records it):\n"
    );
    let _ = writeln!(o, "| stage | p50 ms | p90 ms | p99 ms |");
    let _ = writeln!(o, "| --- | --- | --- | --- |");
    let names: Vec<String> = r
        .e2e
        .first()
        .map(|e| e.stages.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        let all = sorted(
            r.e2e
                .iter()
                .filter_map(|e| e.stages.get(i))
                .flat_map(|(_, v)| v.iter().copied())
                .collect(),
        );
        let _ = writeln!(
            o,
            "| {name} | {:.1} | {:.1} | {:.1} |",
            quantile(&all, 0.5),
            quantile(&all, 0.9),
            quantile(&all, 0.99)
        );
    }
    let _ = writeln!(o);
}

pub(super) fn section_pipeline(o: &mut String, r: &Results, f: &Figures) {
    let _ = writeln!(o, "## 3. Pipeline throughput against the queue's ceiling\n");
    let _ = writeln!(
        o,
        "Both services; closed-loop charges ({} clients) for the warm-up plus the measured \
         time, then every email awaited. **Chain throughput** = the run's charges / (last \
         email − start of the load): charges in, emails out, backlog included. Also shown: \
         emails/s while the charges were still coming (after the warm-up). Interleaved with \
         two limits, measured in the same rounds: the queue alone on a fresh queue (4 \
         producers calling `SendMessageBatch` with 10 messages of the same payload and \
         attributes, 8 consumers calling `ReceiveMessage` (10) + `DeleteMessageBatch`, \
         nothing else; messages deleted per second), and the notification service alone \
         (stopped while charges pile up a backlog, then started; timed over the middle 90% of \
         the backlog's emails).\n",
        r.args.as_ref().map_or(0, |a| a.concurrency)
    );
    let _ = writeln!(
        o,
        "| run | charges | charges/s | chain emails/s | emails/s while charging | last email after the load | missing | queue alone through / sent per s | consumer alone emails/s |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, p) in r.pipeline.iter().enumerate() {
        let q = r.queue.get(i).copied().unwrap_or_default();
        let _ = writeln!(
            o,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} s | {} | {:.0} / {:.0} | {:.0} |",
            i + 1,
            p.charges,
            p.charges_per_s,
            p.chain_per_s,
            p.emails_per_s,
            p.drain_s,
            p.missing,
            q.through_per_s,
            q.sent_per_s,
            r.consumer.get(i).copied().unwrap_or_default()
        );
    }
    let _ = writeln!(
        o,
        "\nChain {} emails/s = **{:.2}** of min(queue {:.0}, charges {:.0}) (target ≥ 0.8). \
         The notification service alone drains {} emails/s: the chain reaches {:.2} of that. \
         Duplicate emails over the whole bench: {}.\n",
        f.pipeline.show(0),
        f.ratio3,
        f.queue.median,
        f.charge.median,
        f.consumer.show(0),
        if f.consumer.median > 0.0 {
            f.pipeline.median / f.consumer.median
        } else {
            0.0
        },
        r.duplicate_emails
    );
    let consumer_last = r.consumer.last().copied().unwrap_or_default();
    let _ = writeln!(
        o,
        "CPU during the last pipeline window: {}.  \nCPU during the last queue-only run: {}; \
         per message: {}.  \nCPU while the notification service alone drained its last \
         backlog: {}; per email: {}.\n",
        r.cpu_pipeline.show(),
        r.cpu_queue.show(),
        r.cpu_queue
            .per_op(r.queue.last().map_or(0.0, |q| q.through_per_s)),
        r.cpu_consumer.show(),
        r.cpu_consumer.per_op(consumer_last)
    );
}

pub(super) fn section_history(o: &mut String, r: &Results, c: usize) {
    let _ = writeln!(o, "## 4. Cost as the work grows\n");
    let _ = writeln!(
        o,
        "One system per size, measured round robin: the charge load of (1) ({c} clients) and \
         the notification service's own `dedup::claim` called directly on its database (8 \
         concurrent, new keys), with `idempotency_keys` and `deliveries` already holding the \
         rows. Seeded with `generate_series` in chunks of a million, keys spread over the key \
         space like clients' random keys, within the retention period; then `VACUUM ANALYZE`.\n"
    );
    let _ = writeln!(
        o,
        "| rows | seeding (both tables at once) | table + indexes, MiB | charges/s | charge p99 ms | claim p50 ms | claim p99 ms | throughput vs 0 | claim p50 vs 0 |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let Some(base) = r.levels.first() else {
        return;
    };
    for level in &r.levels {
        let (t, cl) = level_ratios(base, level);
        let _ = writeln!(
            o,
            "| {} | {} | {} / {} | {} | {} | {} | {} | {} | {} |",
            rows(level.rows),
            level
                .seed_time
                .map_or_else(|| "—".to_owned(), |d| format!("{:.0} s", d.as_secs_f64())),
            size(level.sizes_mib.0),
            size(level.sizes_mib.1),
            tput(&level.charges).show(0),
            lat(&level.charges, 0.99).show(1),
            lat(&level.claims, 0.5).show(2),
            lat(&level.claims, 0.99).show(2),
            t.show(2),
            cl.show(2)
        );
    }
    let _ = writeln!(o);
}

pub(super) fn section_rss(o: &mut String, r: &Results) {
    let _ = writeln!(o, "## 5. Memory\n");
    let _ = writeln!(
        o,
        "Peak resident set (`VmHWM` from `/proc/<pid>/status`) at the end of the runs: payment \
         service after the load of (1) **{}** (inline variant {}), notification service after \
         the pipeline runs of (3) and (2) **{}**. Target < 64 MiB each.\n",
        mib(r.rss_payment),
        mib(r.rss_payment_inline),
        mib(r.rss_notification)
    );
}

pub(super) fn section_inline(o: &mut String, r: &Results, f: &Figures) {
    let _ = writeln!(o, "## 6. What the outbox costs\n");
    let _ = writeln!(
        o,
        "The same load as (1) against a second payment service started with \
         `PUBLISH_MODE=inline` (bench only): after the commit the request itself publishes \
         with `SendMessage` and marks the outbox row published before answering.\n"
    );
    let _ = writeln!(o, "| run | per second | p50 ms | p99 ms | errors |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- |");
    for (i, (a, b)) in r.outbox.iter().zip(&r.inline).enumerate() {
        run_row(o, &format!("{}: outbox", i + 1), a);
        run_row(o, &format!("{}: inline", i + 1), b);
    }
    let _ = writeln!(
        o,
        "\nOutbox / inline throughput: **{}** (target ≥ 1.0: the outbox must not be the slower). \
         CPU during the last inline run: {}.\n",
        f.ratio6.show(2),
        r.cpu_inline.show()
    );
}

pub(super) fn section_method(o: &mut String, r: &Results) {
    let _ = writeln!(o, "## Method\n");
    let args = r.args.clone();
    let runs = args.as_ref().map_or(0, |a| a.runs);
    let _ = writeln!(
        o,
        "- Release builds of both services, started as processes with fresh databases \
         (`bench_*`) and queues on the stack `scripts/with-test-stack.sh` starts (LocalStack, \
         the SMTP sink, the machine's Postgres).\n\
         - A warm-up of each side before the measured runs; {runs} measured runs of each; \
         each round runs the system and its limit back to back in a rotating order; ratios \
         are computed per round, then the median (min–max) of those is given.\n\
         - Latency percentiles are nearest-rank over every request of a run; \"p50 (min–max)\" \
         is the median of the runs' p50s and their range.\n\
         - CPU figures are percent of one core from `/proc/<pid>/stat` (utime + stime) over \
         the window; \"machine\" is `/proc/stat` and includes anything else running.\n\
         - The load driver is Rust (reqwest, one keep-alive connection per client) on the \
         same cores as everything else; pgbench likewise."
    );
    let _ = writeln!(o);
}
