//! The whole system as real processes: both services on free ports (optionally several
//! replicas of each, optionally behind fault proxies), each service with a fresh
//! database, sharing a fresh queue pair on LocalStack and the SMTP sink.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;

use crate::{
    db::TestDatabase,
    process::{free_port, wait_http_ok, ServiceProcess},
    proxy::FaultProxy,
    sqs::QueuePair,
};

/// The API key the system accepts.
pub const API_KEY: &str = "sk_test_e2e";

/// How to start the system.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra environment for every payment-service process.
    pub payment_env: Vec<(String, String)>,
    /// Extra environment for every notification-service process.
    pub notification_env: Vec<(String, String)>,
    /// Processes of each service (at least one).
    pub replicas: usize,
    /// Route Postgres, SQS and SMTP traffic of the services through fault proxies.
    pub proxies: bool,
}

/// Fault proxies in front of the services' dependencies.
pub struct Proxies {
    /// In front of Postgres (both services).
    pub postgres: FaultProxy,
    /// In front of LocalStack (both services).
    pub sqs: FaultProxy,
    /// In front of the SMTP sink.
    pub smtp: FaultProxy,
}

/// A running system.
pub struct System {
    /// Base URLs of the payment API replicas.
    pub apis: Vec<String>,
    /// Base URLs of the notification replicas' health endpoints.
    pub healths: Vec<String>,
    /// The payments database.
    pub payments_db: TestDatabase,
    /// The notifications database.
    pub notifications_db: TestDatabase,
    /// The queues.
    pub queue: QueuePair,
    /// The SQS client (direct, never through a proxy).
    pub sqs: aws_sdk_sqs::Client,
    /// Where the services' logs go.
    pub log_dir: PathBuf,
    /// Payment service processes, one slot per replica.
    pub payments: Vec<Option<ServiceProcess>>,
    /// Notification service processes, one slot per replica.
    pub notifications: Vec<Option<ServiceProcess>>,
    /// The proxies, when started with them.
    pub proxies: Option<Proxies>,
    payment_env: Vec<Vec<(String, String)>>,
    notification_env: Vec<Vec<(String, String)>>,
}

fn env(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn socket_of(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    let addrs = parsed.socket_addrs(|| None)?;
    addrs
        .first()
        .copied()
        .with_context(|| format!("no address for {url}"))
}

/// `url` with its port replaced (host becomes 127.0.0.1).
fn via(url: &str, port: u16) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url)?;
    parsed.set_host(Some("127.0.0.1"))?;
    parsed
        .set_port(Some(port))
        .map_err(|()| anyhow::anyhow!("cannot set port on {url}"))?;
    Ok(parsed.to_string().trim_end_matches('/').to_owned())
}

impl System {
    /// One replica of each, no proxies, with extra environment.
    ///
    /// # Errors
    /// When a service does not become ready.
    pub async fn start(
        extra_payment: &[(&str, String)],
        extra_notification: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        Self::start_with(Options {
            payment_env: env(extra_payment),
            notification_env: env(extra_notification),
            replicas: 1,
            proxies: false,
        })
        .await
    }

    /// Starts the system as `options` say and waits until every process is ready.
    ///
    /// # Errors
    /// When a service does not become ready.
    pub async fn start_with(options: Options) -> anyhow::Result<Self> {
        let sqs = crate::sqs::client().await;
        let queue = crate::sqs::create_pair(&sqs, "e2e", 5).await?;
        let payments_db = crate::db::fresh("e2e_payments");
        let notifications_db = crate::db::fresh("e2e_notifications");
        let log_dir = std::env::temp_dir().join(crate::unique("e2e-logs"));
        std::fs::create_dir_all(&log_dir)?;

        let mut payments_url = payments_db.url.clone();
        let mut notifications_url = notifications_db.url.clone();
        let mut endpoint = crate::stack_var("AWS_ENDPOINT_URL");
        let mut smtp = crate::stack_var("TEST_SMTP_URL");
        let proxies = if options.proxies {
            let proxies = Proxies {
                postgres: FaultProxy::start(socket_of(&payments_url)?).await?,
                sqs: FaultProxy::start(socket_of(&endpoint)?).await?,
                smtp: FaultProxy::start(socket_of(&smtp)?).await?,
            };
            payments_url = via(&payments_url, proxies.postgres.port())?;
            notifications_url = via(&notifications_url, proxies.postgres.port())?;
            endpoint = via(&endpoint, proxies.sqs.port())?;
            smtp = via(&smtp, proxies.smtp.port())?;
            Some(proxies)
        } else {
            None
        };

        let replicas = options.replicas.max(1);
        let mut apis = Vec::new();
        let mut healths = Vec::new();
        let mut payment_env = Vec::new();
        let mut notification_env = Vec::new();
        for _ in 0..replicas {
            let api_port = free_port()?;
            let health_port = free_port()?;
            apis.push(format!("http://127.0.0.1:{api_port}"));
            healths.push(format!("http://127.0.0.1:{health_port}"));
            let mut p = env(&[
                ("DATABASE_URL", payments_url.clone()),
                ("LISTEN_ADDR", format!("127.0.0.1:{api_port}")),
                ("SQS_QUEUE_URL", queue.url.clone()),
                ("AWS_ENDPOINT_URL", endpoint.clone()),
                ("PAYMENT_API_KEYS", API_KEY.to_owned()),
                ("LOG_FORMAT", "json".to_owned()),
            ]);
            p.extend(options.payment_env.iter().cloned());
            payment_env.push(p);
            let mut n = env(&[
                ("DATABASE_URL", notifications_url.clone()),
                ("HEALTH_ADDR", format!("127.0.0.1:{health_port}")),
                ("SQS_QUEUE_URL", queue.url.clone()),
                // Empty: found from the queue's redrive policy, as in production.
                ("SQS_DLQ_URL", String::new()),
                ("AWS_ENDPOINT_URL", endpoint.clone()),
                ("SMTP_URL", smtp.clone()),
                ("LOG_FORMAT", "json".to_owned()),
            ]);
            n.extend(options.notification_env.iter().cloned());
            notification_env.push(n);
        }
        let mut system = Self {
            apis,
            healths,
            payments_db,
            notifications_db,
            queue,
            sqs,
            log_dir,
            payments: (0..replicas).map(|_| None).collect(),
            notifications: (0..replicas).map(|_| None).collect(),
            proxies,
            payment_env,
            notification_env,
        };
        for i in 0..replicas {
            system.start_payment(i, &[]).await?;
            system.start_notification(i, &[]).await?;
        }
        Ok(system)
    }

    /// The first payment API.
    pub fn api(&self) -> &str {
        &self.apis[0]
    }

    /// The first notification health endpoint.
    pub fn health(&self) -> &str {
        &self.healths[0]
    }

    /// (Re)starts payment replica `i` with `extra` environment for this start only and
    /// waits until it serves its health endpoint.
    ///
    /// # Errors
    /// When it does not come up within 60 s.
    pub async fn start_payment(
        &mut self,
        i: usize,
        extra: &[(&str, String)],
    ) -> anyhow::Result<()> {
        self.payments[i] = Some(self.spawn("payment-service", &self.payment_env[i], i, extra)?);
        wait_http_ok(
            &format!("{}/healthz", self.apis[i]),
            Duration::from_secs(60),
        )
        .await
    }

    /// (Re)starts notification replica `i` with `extra` environment for this start only
    /// and waits until it serves its health endpoint.
    ///
    /// # Errors
    /// When it does not come up within 60 s.
    pub async fn start_notification(
        &mut self,
        i: usize,
        extra: &[(&str, String)],
    ) -> anyhow::Result<()> {
        self.notifications[i] =
            Some(self.spawn("notification-service", &self.notification_env[i], i, extra)?);
        wait_http_ok(
            &format!("{}/healthz", self.healths[i]),
            Duration::from_secs(60),
        )
        .await
    }

    fn spawn(
        &self,
        name: &str,
        base: &[(String, String)],
        i: usize,
        extra: &[(&str, String)],
    ) -> anyhow::Result<ServiceProcess> {
        let mut vars = base.to_vec();
        vars.extend(env(extra));
        ServiceProcess::spawn(name, &vars, &self.log_dir.join(format!("{name}-{i}.log")))
    }

    /// Sums one counter over the live notification replicas' `/metrics` (0 when absent).
    ///
    /// # Errors
    /// When an endpoint does not answer.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let mut total = 0.0;
        for (health, process) in self.healths.iter().zip(&self.notifications) {
            if process.is_none() {
                continue;
            }
            let text = reqwest::get(format!("{health}/metrics"))
                .await?
                .text()
                .await?;
            total += text
                .lines()
                .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .fold(0.0, |a, b| a + b);
        }
        Ok(total)
    }

    /// SIGTERMs every process; returns whether all exited cleanly within `grace`.
    ///
    /// # Errors
    /// When a process cannot be waited for.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<bool> {
        let mut clean = true;
        for slot in self
            .payments
            .iter_mut()
            .chain(self.notifications.iter_mut())
        {
            if let Some(p) = slot.take() {
                clean &= p.terminate(grace).await?;
            }
        }
        Ok(clean)
    }

    /// Drops both databases (after [`System::stop`]).
    ///
    /// # Errors
    /// When Postgres is unreachable.
    pub async fn drop_databases(&self) -> anyhow::Result<()> {
        self.payments_db.drop_database().await?;
        self.notifications_db.drop_database().await
    }
}
