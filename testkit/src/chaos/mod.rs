//! The chaos suite's harness: drive load, inject faults on a schedule (crash points,
//! network faults, SIGTERM, Postgres restarts), restart what died, heal, drain, then
//! count per key with [`checker`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::PgPool;

use crate::{
    proxy::Fault,
    system::{Options, System},
};

pub mod checker;
pub mod load;

pub use checker::{Allowance, Report};

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The payment service.
    Payment,
    /// The notification service.
    Notification,
}

/// Which dependency's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Postgres (both services).
    Postgres,
    /// SQS.
    Sqs,
    /// The SMTP server.
    Smtp,
}

/// A fault applied at a point of the schedule.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Set a proxy's fault.
    Proxy(Target, Fault),
    /// SIGTERM every replica of a service, wait for its exit, start it again.
    Sigterm(Service),
    /// Terminate every Postgres backend of the run's databases.
    TerminateBackends,
    /// `pg_ctlcluster ... restart -m immediate` of the machine's cluster.
    RestartPostgres,
}

/// A crash point armed in one service: die at every `every`-th hit, `max` times.
#[derive(Debug, Clone, Copy)]
pub struct Crash {
    /// Which service.
    pub service: Service,
    /// The crash point's name (see `shared::chaos`).
    pub point: &'static str,
    /// Die on this hit after each (re)start.
    pub every: u64,
    /// Crashes at most; after that the service runs unarmed.
    pub max: usize,
}

/// Which effects of the irreducible window a scenario may show (each only with the
/// dedup table's evidence that the window was hit; see [`Allowance`]).
#[derive(Debug, Clone, Copy)]
pub enum Allowed {
    /// None at all.
    Nothing,
    /// Duplicates from the window (at-least-once: a SIGKILL or a lost SMTP reply between
    /// the server accepting and `sent` being recorded, for any message in flight).
    WindowDuplicates,
    /// Misses from the window (at-most-once).
    WindowMisses,
}

/// Chooses the recipient of key `i` of run `run` (and with it the SMTP fault mode).
pub type Recipient = Arc<dyn Fn(&str, usize) -> String + Send + Sync>;

/// One scenario.
pub struct Scenario {
    /// Its name in the report.
    pub name: String,
    /// Keys to post.
    pub charges: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Pause between starting keys.
    pub pace: Duration,
    /// How to start the system.
    pub options: Options,
    /// Recipient of key `i` for run `run` (chooses SMTP fault modes).
    pub recipient: Recipient,
    /// An armed crash point.
    pub crash: Option<Crash>,
    /// Faults at offsets from the start of the load.
    pub schedule: Vec<(Duration, Action)>,
    /// Published events to deliver again (1 or 2 extra copies each).
    pub duplicates: usize,
    /// Poison messages to inject.
    pub poison: usize,
    /// What the scenario may show.
    pub allowed: Allowed,
}

/// A plain recipient: `<run>-<i>@example.com`.
pub fn plain(run: &str, i: usize) -> String {
    format!("{run}-{i}@example.com")
}

struct Supervisor {
    crash: Option<Crash>,
    crashes: usize,
}

impl Supervisor {
    fn spec(&self) -> String {
        self.crash
            .map(|c| format!("{}:{}", c.point, c.every))
            .unwrap_or_default()
    }

    /// Restarts every process that died; a death counts as a crash.
    async fn restart_dead(&mut self, system: &mut System) -> anyhow::Result<()> {
        for service in [Service::Payment, Service::Notification] {
            let n = system.payments.len();
            for i in 0..n {
                let slot = match service {
                    Service::Payment => &mut system.payments[i],
                    Service::Notification => &mut system.notifications[i],
                };
                let dead = slot.as_mut().is_none_or(|p| !p.is_running());
                if !dead {
                    continue;
                }
                self.crashes += 1;
                let armed = self
                    .crash
                    .is_some_and(|c| c.service == service && self.crashes < c.max);
                let spec = if armed { self.spec() } else { String::new() };
                match service {
                    Service::Payment => {
                        system.start_payment(i, &[("CHAOS_CRASH_AT", spec)]).await?
                    }
                    Service::Notification => {
                        system
                            .start_notification(i, &[("CHAOS_CRASH_AT", spec)])
                            .await?
                    }
                }
            }
        }
        Ok(())
    }
}

async fn apply(system: &mut System, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Proxy(target, fault) => {
            let proxies = system
                .proxies
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("scenario needs proxies"))?;
            match target {
                Target::Postgres => proxies.postgres.set(fault),
                Target::Sqs => proxies.sqs.set(fault),
                Target::Smtp => proxies.smtp.set(fault),
            }
        }
        Action::Sigterm(service) => {
            for i in 0..system.payments.len() {
                let slot = match service {
                    Service::Payment => system.payments[i].take(),
                    Service::Notification => system.notifications[i].take(),
                };
                if let Some(p) = slot {
                    anyhow::ensure!(
                        p.terminate(Duration::from_secs(30)).await?,
                        "{service:?} did not exit cleanly on SIGTERM"
                    );
                }
                match service {
                    Service::Payment => {
                        system
                            .start_payment(i, &[("CHAOS_CRASH_AT", String::new())])
                            .await?
                    }
                    Service::Notification => {
                        system
                            .start_notification(i, &[("CHAOS_CRASH_AT", String::new())])
                            .await?
                    }
                }
            }
        }
        Action::TerminateBackends => {
            let admin = PgPool::connect(&format!(
                "{}/postgres",
                crate::stack_var("TEST_DATABASE_URL").trim_end_matches('/')
            ))
            .await?;
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1)",
            )
            .bind(vec![
                system.payments_db.name.clone(),
                system.notifications_db.name.clone(),
            ])
            .execute(&admin)
            .await?;
            admin.close().await;
        }
        Action::RestartPostgres => {
            let version = std::fs::read_dir("/etc/postgresql")?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .next()
                .ok_or_else(|| anyhow::anyhow!("no cluster under /etc/postgresql"))?;
            let status = tokio::process::Command::new("pg_ctlcluster")
                .args([
                    "--skip-systemctl-redirect",
                    &version,
                    "main",
                    "restart",
                    "-m",
                    "immediate",
                ])
                .status()
                .await?;
            anyhow::ensure!(status.success(), "pg_ctlcluster restart failed");
        }
    }
    Ok(())
}

/// Republishes `n` published events (1 or 2 extra copies each, some side by side in a
/// batch) and injects `poison` poison messages. Returns the copies sent.
async fn inject(
    system: &System,
    payments: &PgPool,
    n: usize,
    poison: usize,
    rng: &mut fastrand::Rng,
) -> anyhow::Result<usize> {
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM outbox ORDER BY random() LIMIT $1")
            .bind(i64::try_from(n)?)
            .fetch_all(payments)
            .await?;
    let mut bodies = Vec::new();
    for p in payloads {
        for _ in 0..rng.usize(1..=2) {
            bodies.push(p.clone());
        }
    }
    let copies = bodies.len();
    let poison_kinds = [
        "{not json".to_owned(),
        r#"{"event_type":"payment.succeeded","version":99,"data":{}}"#.to_owned(),
        r#"{"event_type":"payment.refunded","version":1}"#.to_owned(),
    ];
    bodies.extend((0..poison).map(|i| poison_kinds[i % 3].clone()));
    rng.shuffle(&mut bodies);
    crate::sqs::send_bodies(&system.sqs, &system.queue.url, &bodies).await?;
    Ok(copies)
}

/// Runs one scenario to the end and returns its report (violations listed, not raised).
///
/// # Errors
/// When the harness itself fails (a service that cannot start, SQS unreachable...).
pub async fn run(
    mut scenario: Scenario,
    seed: u64,
    settle_deadline: Duration,
) -> anyhow::Result<Report> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let run = crate::unique("chaos").replace('_', "");
    if let Some(c) = scenario.crash {
        let env = match c.service {
            Service::Payment => &mut scenario.options.payment_env,
            Service::Notification => &mut scenario.options.notification_env,
        };
        env.push(("CHAOS_CRASH_AT".into(), format!("{}:{}", c.point, c.every)));
    }
    let mut system = System::start_with(scenario.options.clone()).await?;
    let payments = PgPool::connect(&system.payments_db.url).await?;
    let mut supervisor = Supervisor {
        crash: scenario.crash,
        crashes: 0,
    };
    let recipient = scenario.recipient.clone();
    let run_for_recipient = run.clone();
    let load = load::Load {
        run: run.clone(),
        charges: scenario.charges,
        concurrency: scenario.concurrency,
        pace: scenario.pace,
        apis: system.apis.clone(),
        recipient: Arc::new(move |i| recipient(&run_for_recipient, i)),
        budget: Duration::from_secs(120),
    };
    let started = Instant::now();
    let driver = tokio::spawn(load::drive(load));
    let mut schedule = std::mem::take(&mut scenario.schedule);
    schedule.sort_by_key(|(at, _)| *at);
    let mut schedule = schedule.into_iter().peekable();
    let mut harness_errors = Vec::new();
    while !driver.is_finished() || schedule.peek().is_some() {
        while let Some((_, action)) = schedule.next_if(|(at, _)| started.elapsed() >= *at) {
            if let Err(e) = apply(&mut system, action).await {
                harness_errors.push(format!("{action:?}: {e:#}"));
            }
        }
        supervisor.restart_dead(&mut system).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let load_result = driver.await?;
    if let Some(p) = &system.proxies {
        for proxy in [&p.postgres, &p.sqs, &p.smtp] {
            proxy.set(Fault::None);
        }
    }
    let duplicates_injected = inject(
        &system,
        &payments,
        scenario.duplicates,
        scenario.poison,
        &mut rng,
    )
    .await?;

    // Settle: everything published, every charge emailed (unless misses are allowed),
    // the queue empty; keep restarting what crashes meanwhile.
    let mut mailbox = crate::mail::Mailbox::default();
    let deadline = Instant::now() + settle_deadline;
    let misses_allowed = matches!(scenario.allowed, Allowed::WindowMisses);
    loop {
        supervisor.restart_dead(&mut system).await?;
        let unpublished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&payments)
                .await?;
        let charged: Vec<String> = sqlx::query_scalar("SELECT id FROM charges")
            .fetch_all(&payments)
            .await?;
        let mails = mailbox.refresh()?;
        let emailed: std::collections::HashSet<&str> = mails
            .iter()
            .filter_map(|m| {
                m.idempotency_key
                    .as_deref()?
                    .strip_suffix(":confirmation_email:v1")
            })
            .collect();
        let all_emailed = misses_allowed || charged.iter().all(|c| emailed.contains(c.as_str()));
        let depth = crate::sqs::depth(&system.sqs, &system.queue.url).await?;
        if unpublished == 0 && all_emailed && depth == (0, 0) {
            break;
        }
        if Instant::now() >= deadline {
            harness_errors.push(format!("not settled after {settle_deadline:?}: unpublished {unpublished}, queue {depth:?}, all emailed {all_emailed}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let left = crate::sqs::depth(&system.sqs, &system.queue.url).await?;
    let dead_letters: Vec<(String, Option<String>)> =
        crate::sqs::drain(&system.sqs, &system.queue.dlq_url)
            .await?
            .iter()
            .map(|m| {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get(shared::event::ATTR_DEAD_LETTER_REASON))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned);
                (m.body().unwrap_or_default().to_owned(), reason)
            })
            .collect();
    let clean_stop = system.stop(Duration::from_secs(30)).await?;
    let crashes = supervisor.crashes;
    let allowance = match scenario.allowed {
        Allowed::Nothing => Allowance::default(),
        Allowed::WindowDuplicates => Allowance {
            window_duplicates: true,
            window_misses: false,
        },
        Allowed::WindowMisses => Allowance {
            window_duplicates: false,
            window_misses: true,
        },
    };
    let notifications = PgPool::connect(&system.notifications_db.url).await?;
    let mails = mailbox.refresh()?;
    let mut report = checker::check(
        checker::Evidence {
            payments: &payments,
            notifications: &notifications,
            run: &run,
            load: &load_result,
            mails: &mails,
            dead_letters: &dead_letters,
            left_in_queue: left.0 + left.1,
        },
        allowance,
        Report {
            scenario: scenario.name.clone(),
            poison_injected: scenario.poison,
            duplicates_injected,
            crashes,
            seconds,
            ..Report::default()
        },
    )
    .await?;
    if scenario.crash.is_some() && crashes == 0 {
        harness_errors.push(
            "the crash point never fired: were the binaries built with the chaos feature?".into(),
        );
    }
    if !clean_stop {
        harness_errors.push("a service did not exit cleanly on SIGTERM at the end".into());
    }
    report.violations.extend(harness_errors);
    payments.close().await;
    notifications.close().await;
    system.drop_databases().await?;
    Ok(report)
}
