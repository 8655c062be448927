//! The confirmation email: rendering, the deterministic `Message-ID`, and sending over
//! SMTP with lettre, with failures sorted into transient and permanent.

use std::time::Duration;

use anyhow::Context;
use lettre::{
    message::{
        header::{ContentType, Header, HeaderName, HeaderValue},
        Mailbox,
    },
    transport::smtp::PoolConfig,
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use sha2::{Digest, Sha256};
use shared::event::Envelope;

/// The header that carries the idempotency key to the mail provider (and to anyone
/// reading the raw message), so a provider that deduplicates can, and a human can see
/// which event an email belongs to.
pub const IDEMPOTENCY_HEADER: &str = "X-Idempotency-Key";

#[derive(Debug, Clone)]
struct IdempotencyKeyHeader(String);

impl Header for IdempotencyKeyHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The `Message-ID` for a key: the same on every attempt, so a duplicate that slips
/// through the irreducible window is recognisable (and collapsible) downstream.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let digest = hex::encode(&Sha256::digest(idempotency_key.as_bytes())[..16]);
    format!("<{digest}@{domain}>")
}

/// Formats minor units in the currency's exponent: 1250 usd is `12.50 USD`.
pub fn format_amount(minor_units: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    let exponent = iso_currency::Currency::from_code(&code)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    if exponent == 0 {
        return format!("{minor_units} {code}");
    }
    let divisor = 10_i64.pow(u32::from(exponent));
    let sign = if minor_units < 0 { "-" } else { "" };
    let (whole, fraction) = (minor_units.abs() / divisor, minor_units.abs() % divisor);
    format!(
        "{sign}{whole}.{fraction:0width$} {code}",
        width = usize::from(exponent)
    )
}

/// Why an email could not be built (the event's data is unusable: permanent).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the email: {0}")]
pub struct RenderError(String);

/// Builds the confirmation email for `event`.
///
/// # Errors
/// [`RenderError`] when the recipient is not a valid address.
pub fn render(event: &Envelope, from: &Mailbox, message_id: &str) -> Result<Message, RenderError> {
    let to: Mailbox = event
        .data
        .customer_email
        .parse()
        .map_err(|_| RenderError("invalid recipient address".into()))?;
    let amount = format_amount(event.data.amount, &event.data.currency);
    let mut body = format!(
        "Thank you for your payment.\n\nAmount: {amount}\nCharge: {}\n",
        event.data.charge_id
    );
    if let Some(description) = &event.data.description {
        body.push_str(&format!("Description: {description}\n"));
    }
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!("Payment received: {amount}"))
        .message_id(Some(message_id.to_owned()))
        .header(IdempotencyKeyHeader(event.idempotency_key.clone()))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| RenderError(e.to_string()))
}

/// How a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: 4xx, connection refused or lost, timeout.
    #[error("transient SMTP failure: {0}")]
    Transient(String),
    /// Retrying cannot help: a 5xx answer.
    #[error("permanent SMTP failure: {0}")]
    Permanent(String),
}

/// Sends email over a pooled SMTP connection.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    /// A mailer for `smtp_url` (lettre URL syntax) with a timeout per SMTP command.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn new(smtp_url: &str, timeout: Duration, max_connections: u32) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .context("SMTP_URL is not a valid SMTP URL (e.g. smtp://127.0.0.1:1025)")?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(max_connections))
            .build();
        Ok(Self { transport })
    }

    /// Sends `message`.
    ///
    /// # Errors
    /// [`SendError`], classified for retry.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }

    /// True when the server answers a NOOP (readiness).
    pub async fn is_reachable(&self) -> bool {
        self.transport.test_connection().await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::event::PaymentSucceeded;

    fn event(email: &str) -> Envelope {
        Envelope::payment_succeeded(
            uuid::Uuid::nil(),
            time::OffsetDateTime::UNIX_EPOCH,
            PaymentSucceeded {
                charge_id: "ch_1".into(),
                amount: 1250,
                currency: "usd".into(),
                customer_email: email.into(),
                description: Some("Order 1".into()),
            },
        )
    }

    #[test]
    fn the_message_id_depends_only_on_the_key() {
        let a = message_id("ch_1:confirmation_email:v1", "example.com");
        assert_eq!(a, message_id("ch_1:confirmation_email:v1", "example.com"));
        assert_ne!(a, message_id("ch_2:confirmation_email:v1", "example.com"));
        assert!(a.starts_with('<') && a.ends_with("@example.com>"));
    }

    #[test]
    fn amounts_use_the_currency_exponent() {
        assert_eq!(format_amount(1250, "usd"), "12.50 USD");
        assert_eq!(format_amount(5, "eur"), "0.05 EUR");
        assert_eq!(format_amount(1250, "jpy"), "1250 JPY");
        assert_eq!(format_amount(1234, "kwd"), "1.234 KWD");
    }

    #[test]
    fn the_email_carries_the_message_id_and_the_key() {
        let from: Mailbox = "Payments <receipts@example.com>".parse().expect("valid");
        let id = message_id("ch_1:confirmation_email:v1", "example.com");
        let raw = String::from_utf8(
            render(&event("jane@example.com"), &from, &id)
                .expect("renders")
                .formatted(),
        )
        .expect("utf8");
        assert!(raw.contains(&format!("Message-ID: {id}")), "{raw}");
        assert!(
            raw.contains("X-Idempotency-Key: ch_1:confirmation_email:v1"),
            "{raw}"
        );
        assert!(raw.contains("12.50 USD"), "{raw}");
    }

    #[test]
    fn an_invalid_recipient_cannot_be_rendered() {
        let from: Mailbox = "receipts@example.com".parse().expect("valid");
        assert!(render(&event("not an address"), &from, "<x@y>").is_err());
    }
}
