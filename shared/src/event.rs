//! The event contract between the payment service and the notification service.
//!
//! One SQS message carries one [`Envelope`] as JSON. Anything that does not decode to a
//! known event type and version is *poison*: [`decode`] reports why, and the consumer
//! dead-letters it instead of crashing or retrying forever.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The `event_type` of a successful payment.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// The envelope version this code writes and understands.
pub const CURRENT_VERSION: u32 = 1;
/// SQS message attribute carrying the event type (so a consumer can filter unread).
pub const ATTR_EVENT_TYPE: &str = "event_type";
/// SQS message attribute carrying the W3C `traceparent` of the request that caused it.
pub const ATTR_TRACEPARENT: &str = "traceparent";
/// SQS message attribute set on messages the consumer moved to the dead-letter queue.
pub const ATTR_DEAD_LETTER_REASON: &str = "dead_letter_reason";

/// The JSON body of every message on the payment-events queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; a republished event keeps its id.
    pub event_id: Uuid,
    /// What happened; today always [`PAYMENT_SUCCEEDED`].
    pub event_type: String,
    /// Contract version of `data`.
    pub version: u32,
    /// When the payment was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The consumer's dedup key: exactly one email per key.
    pub idempotency_key: String,
    /// The payment itself.
    pub data: PaymentSucceeded,
}

/// The payload of a `payment.succeeded` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    /// The charge id (`ch_...`).
    pub charge_id: String,
    /// Amount in the currency's minor units.
    pub amount: i64,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// Where the confirmation goes. Never log it unmasked.
    pub customer_email: String,
    /// Free text shown in the email.
    pub description: Option<String>,
}

impl Envelope {
    /// Builds the `payment.succeeded` event for a committed charge.
    pub fn payment_succeeded(
        event_id: Uuid,
        occurred_at: OffsetDateTime,
        data: PaymentSucceeded,
    ) -> Self {
        Self {
            event_id,
            event_type: PAYMENT_SUCCEEDED.to_owned(),
            version: CURRENT_VERSION,
            occurred_at,
            idempotency_key: confirmation_email_key(&data.charge_id),
            data,
        }
    }
}

/// The dedup key of the confirmation email for a charge.
///
/// It names the charge, the side effect and its version, so a future second email type
/// (or a v2 template) gets its own exactly-once scope.
pub fn confirmation_email_key(charge_id: &str) -> String {
    format!("{charge_id}:confirmation_email:v1")
}

/// Why a message body is poison.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoisonReason {
    /// The body is not JSON of the envelope's shape.
    #[error("malformed_body: {0}")]
    Malformed(String),
    /// A well-formed envelope of a type this consumer does not handle.
    #[error("unknown_event_type: {0}")]
    UnknownEventType(String),
    /// A known type at a version this consumer does not understand.
    #[error("unsupported_version: {0}")]
    UnsupportedVersion(u32),
}

impl PoisonReason {
    /// A stable, short code for the dead-letter reason attribute and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_body",
            Self::UnknownEventType(_) => "unknown_event_type",
            Self::UnsupportedVersion(_) => "unsupported_version",
        }
    }
}

/// Decodes and checks a message body.
///
/// # Errors
/// A [`PoisonReason`] when the body is not a supported event.
pub fn decode(body: &str) -> Result<Envelope, PoisonReason> {
    // Read the header fields first so an unknown version is reported as such, not as a
    // shape mismatch of its `data`.
    #[derive(Deserialize)]
    struct Header {
        event_type: String,
        version: u32,
    }
    let header: Header =
        serde_json::from_str(body).map_err(|e| PoisonReason::Malformed(e.to_string()))?;
    if header.event_type != PAYMENT_SUCCEEDED {
        return Err(PoisonReason::UnknownEventType(header.event_type));
    }
    if header.version != CURRENT_VERSION {
        return Err(PoisonReason::UnsupportedVersion(header.version));
    }
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| PoisonReason::Malformed(e.to_string()))?;
    if envelope.idempotency_key.is_empty() || envelope.idempotency_key.len() > 255 {
        return Err(PoisonReason::Malformed("idempotency_key length".into()));
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::payment_succeeded(
            Uuid::nil(),
            time::macros::datetime!(2026-01-02 03:04:05 UTC),
            PaymentSucceeded {
                charge_id: "ch_1".into(),
                amount: 1250,
                currency: "usd".into(),
                customer_email: "jane@example.com".into(),
                description: Some("Order 1".into()),
            },
        )
    }

    #[test]
    fn an_encoded_event_decodes_to_itself() {
        let body = serde_json::to_string(&sample()).expect("serializes");
        assert_eq!(decode(&body), Ok(sample()));
    }

    #[test]
    fn the_dedup_key_names_charge_effect_and_version() {
        assert_eq!(sample().idempotency_key, "ch_1:confirmation_email:v1");
    }

    #[test]
    fn garbage_is_malformed_poison() {
        assert_eq!(
            decode("not json").map_err(|e| e.code()),
            Err("malformed_body")
        );
        assert_eq!(decode("{}").map_err(|e| e.code()), Err("malformed_body"));
    }

    #[test]
    fn an_unknown_version_is_reported_before_its_shape() {
        let body = r#"{"event_type":"payment.succeeded","version":2,"data":42}"#;
        assert_eq!(decode(body), Err(PoisonReason::UnsupportedVersion(2)));
    }

    #[test]
    fn an_unknown_event_type_is_poison() {
        let body = r#"{"event_type":"payment.refunded","version":1}"#;
        assert_eq!(
            decode(body).map_err(|e| e.code()),
            Err("unknown_event_type")
        );
    }

    #[test]
    fn a_valid_shape_with_missing_data_is_malformed() {
        let mut value = serde_json::to_value(sample()).expect("serializes");
        value["data"] = serde_json::json!({"charge_id": "ch_1"});
        let body = value.to_string();
        assert_eq!(decode(&body).map_err(|e| e.code()), Err("malformed_body"));
    }
}
