//! The SQS client, configured the AWS SDK's way.
//!
//! The SDK reads its own variables (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, profiles, IAM
//! roles...). On top of that, two local-stack defaults: the endpoint defaults to
//! LocalStack on `127.0.0.1:4566`, and when the endpoint is on this machine and no
//! credentials are set, LocalStack's `test`/`test` pair is used. Against real SQS set
//! `AWS_ENDPOINT_URL=` (empty) and the SDK's normal resolution applies unchanged.

use std::time::Duration;

use anyhow::Context;
use aws_config::{meta::region::RegionProviderChain, timeout::TimeoutConfig, BehaviorVersion};
use aws_sdk_sqs::config::Credentials;

/// The endpoint used when `AWS_ENDPOINT_URL` is not set: LocalStack on this machine.
pub const LOCAL_ENDPOINT: &str = "http://127.0.0.1:4566";
/// The region used when the SDK finds none.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The queue the payment events travel on, when `SQS_QUEUE_URL` is not set.
pub const DEFAULT_QUEUE_NAME: &str = "payment-events";

/// Builds an SQS client for `endpoint` (`None` or empty: AWS's own endpoint).
///
/// Timeouts are explicit so that a long poll can never hang forever
/// (aws-sdk-rust issue 1094): one attempt may take the 20 s long poll plus a margin.
pub async fn sqs_client(endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    let endpoint = endpoint.filter(|e| !e.trim().is_empty());
    let region = RegionProviderChain::default_provider().or_else(DEFAULT_REGION);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(90))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if is_local(endpoint) && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "local-stack-default",
            ));
        }
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// True when the endpoint is LocalStack on this machine or in a compose network.
fn is_local(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| {
            matches!(
                h.as_str(),
                "127.0.0.1" | "localhost" | "[::1]" | "localstack"
            )
        })
}

/// Returns `configured`, or looks up the URL of the queue named `name`.
///
/// # Errors
/// When the queue does not exist or SQS cannot be reached.
pub async fn resolve_queue_url(
    client: &aws_sdk_sqs::Client,
    configured: Option<&str>,
    name: &str,
) -> anyhow::Result<String> {
    if let Some(url) = configured.filter(|u| !u.trim().is_empty()) {
        return Ok(url.to_owned());
    }
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("Failed to look up the URL of SQS queue {name:?}; is the queue created and the endpoint reachable?"))?;
    out.queue_url
        .with_context(|| format!("SQS returned no URL for queue {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_compose_hosts_are_local() {
        assert!(is_local("http://127.0.0.1:4566"));
        assert!(is_local("http://localstack:4566"));
        assert!(!is_local("https://sqs.us-east-1.amazonaws.com"));
    }
}
