//! The chaos suite: every crash and fault window of the design, under load, checked per
//! key. `cargo test` runs the small version (a few hundred charges); `make chaos` sets
//! `CHAOS_SCALE=large` (over 10,000 charges) and `CHAOS_REPORT=docs/RELIABILITY.md`.
//!
//! The binaries must be built with the `chaos` feature (the Makefile does).

use std::{sync::Arc, time::Duration};

use testkit::{
    chaos::{self, plain, Action, Allowed, Crash, Scenario, Service, Target},
    proxy::Fault,
    system::Options,
};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn env(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Settings that make crash recovery fast enough to test: short leases and visibility,
/// short long polls, quick sweeps.
fn options() -> Options {
    Options {
        payment_env: env(&[("RELAY_SWEEP_INTERVAL", "200ms")]),
        notification_env: env(&[
            ("LEASE_DURATION", "3s"),
            ("VISIBILITY_TIMEOUT", "4s"),
            ("SQS_WAIT_TIME", "2s"),
            ("RETRY_BASE_DELAY", "1s"),
            ("SMTP_TIMEOUT", "10s"),
        ]),
        replicas: 1,
        proxies: false,
    }
}

fn scenarios(n: usize, pg_restart: bool) -> Vec<Scenario> {
    let pace = secs(6.0 / n as f64); // spread each scenario's load over about 6 s
    let base = |name: &str| Scenario {
        name: name.to_owned(),
        charges: n,
        concurrency: 8,
        pace,
        options: options(),
        recipient: Arc::new(plain),
        crash: None,
        schedule: Vec::new(),
        duplicates: 0,
        poison: 0,
        allowed: Allowed::Nothing,
    };
    let every = (n / 5).max(2) as u64;
    let crash = |service, point, every| {
        Some(Crash {
            service,
            point,
            every,
            max: 4,
        })
    };
    let with_proxies = || Options {
        proxies: true,
        ..options()
    };
    let mut list = vec![
        Scenario {
            duplicates: n / 2,
            poison: 6,
            ..base("baseline: duplicate deliveries and poison messages")
        },
        Scenario {
            crash: crash(Service::Payment, "after_commit_before_publish", every),
            ..base("payment crash after commit, before publish")
        },
        Scenario {
            crash: crash(Service::Payment, "after_publish_before_mark", 3),
            ..base("payment crash after publish, before marking published")
        },
        // A SIGKILL of the notification service also catches the other messages in flight
        // wherever they are, some between the SMTP server's 250 and `sent`: those
        // duplicates are the irreducible window's, and only with the dedup table's evidence.
        Scenario {
            crash: crash(Service::Notification, "after_claim_before_send", every),
            allowed: Allowed::WindowDuplicates,
            ..base("notification crash after claim, before send")
        },
        Scenario {
            crash: crash(Service::Notification, "after_sent_before_delete", every),
            allowed: Allowed::WindowDuplicates,
            ..base("notification crash after marking sent, before delete")
        },
        Scenario {
            crash: crash(Service::Notification, "after_smtp_before_sent", every),
            allowed: Allowed::WindowDuplicates,
            ..base("irreducible: crash after SMTP accepted, before sent (at-least-once)")
        },
        Scenario {
            crash: crash(Service::Notification, "after_sent_before_smtp", every),
            allowed: Allowed::WindowMisses,
            options: Options {
                notification_env: [
                    options().notification_env,
                    env(&[("DELIVERY_GUARANTEE", "at-most-once")]),
                ]
                .concat(),
                ..options()
            },
            ..base("irreducible, at-most-once: crash after sent, before SMTP")
        },
        Scenario {
            options: with_proxies(),
            schedule: vec![
                (secs(1.0), Action::Proxy(Target::Postgres, Fault::Reset)),
                (secs(1.5), Action::Proxy(Target::Postgres, Fault::Refuse)),
                (secs(3.0), Action::Proxy(Target::Postgres, Fault::Blackhole)),
                (
                    secs(4.5),
                    Action::Proxy(Target::Postgres, Fault::Latency(Duration::from_millis(30))),
                ),
                (secs(5.5), Action::Proxy(Target::Postgres, Fault::None)),
            ],
            ..base("Postgres: reset, refused, black hole, latency")
        },
        Scenario {
            options: with_proxies(),
            schedule: vec![
                (secs(1.0), Action::Proxy(Target::Sqs, Fault::Refuse)),
                (secs(2.5), Action::Proxy(Target::Sqs, Fault::Blackhole)),
                (
                    secs(4.0),
                    Action::Proxy(Target::Sqs, Fault::Latency(Duration::from_millis(50))),
                ),
                (secs(5.0), Action::Proxy(Target::Sqs, Fault::Reset)),
                (secs(5.3), Action::Proxy(Target::Sqs, Fault::None)),
            ],
            ..base("SQS: refused, black hole, latency, reset")
        },
        Scenario {
            options: Options {
                notification_env: [
                    options().notification_env,
                    env(&[("VISIBILITY_TIMEOUT", "2s"), ("LEASE_DURATION", "2s")]),
                ]
                .concat(),
                proxies: true,
                ..options()
            },
            recipient: Arc::new(|run: &str, i: usize| {
                let mode = ["flaky4xx", "flaky421", "slow3500", "", ""][i % 5];
                format!("{mode}-{run}-{i}@example.com")
            }),
            schedule: vec![
                (secs(2.0), Action::Proxy(Target::Smtp, Fault::Refuse)),
                (secs(3.0), Action::Proxy(Target::Smtp, Fault::Blackhole)),
                (secs(4.0), Action::Proxy(Target::Smtp, Fault::None)),
            ],
            ..base(
                "SMTP: 4xx, 421 + disconnect, replies slower than visibility, refused, black hole",
            )
        },
        Scenario {
            recipient: Arc::new(|run: &str, i: usize| {
                if i.is_multiple_of(10) {
                    format!("lostreply-{run}-{i}@example.com")
                } else {
                    plain(run, i)
                }
            }),
            allowed: Allowed::WindowDuplicates,
            ..base("irreducible: SMTP reply lost after the mail was stored")
        },
        Scenario {
            schedule: vec![
                (secs(1.5), Action::Sigterm(Service::Payment)),
                (secs(3.0), Action::Sigterm(Service::Notification)),
            ],
            ..base("SIGTERM of both services under load")
        },
        Scenario {
            options: Options {
                replicas: 2,
                ..options()
            },
            duplicates: n / 4,
            concurrency: 12,
            ..base("two replicas of each service, duplicate deliveries")
        },
        Scenario {
            schedule: vec![
                (secs(1.5), Action::TerminateBackends),
                (secs(3.5), Action::TerminateBackends),
            ],
            ..base("Postgres connections terminated under load")
        },
    ];
    if pg_restart {
        list.push(Scenario {
            schedule: vec![(secs(2.0), Action::RestartPostgres)],
            ..base("Postgres restart -m immediate under load")
        });
    }
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_promise_holds_under_every_fault() {
    let large = std::env::var("CHAOS_SCALE").is_ok_and(|s| s == "large");
    let n = if large { 760 } else { 30 };
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261204);
    let pg_restart = std::env::var("CHAOS_PG_RESTART").is_ok_and(|s| s == "1");
    let only = std::env::var("CHAOS_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    let mut total_keys = 0;
    println!("chaos: seed={seed} keys/scenario={n}");
    println!("{}", chaos::Report::header());
    for (i, scenario) in scenarios(n, pg_restart).into_iter().enumerate() {
        if !only.is_empty() && !scenario.name.contains(&only) {
            continue;
        }
        let name = scenario.name.clone();
        let report = chaos::run(
            scenario,
            seed + i as u64,
            Duration::from_secs(if large { 300 } else { 90 }),
        )
        .await
        .unwrap_or_else(|e| chaos::Report {
            scenario: name.clone(),
            violations: vec![format!("harness: {e:#}")],
            ..Default::default()
        });
        println!("{}", report.row());
        total_keys += report.keys;
        if !report.violations.is_empty() {
            failed.push(name);
        }
        rows.push(report.row());
    }
    println!("chaos: {total_keys} keys in total");
    if let Ok(path) = std::env::var("CHAOS_REPORT") {
        let table = format!("{}\n{}\n", chaos::Report::header(), rows.join("\n"));
        std::fs::write(
            &path,
            format!("<!-- generated: seed {seed}, {total_keys} keys -->\n{table}"),
        )
        .expect("report written");
    }
    assert!(
        failed.is_empty(),
        "scenarios that broke the promise: {failed:?}"
    );
}
