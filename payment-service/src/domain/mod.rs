//! Validated request types: each parses once at the edge, so the rest of the code never
//! holds an invalid amount, currency, email or key.

mod amount;
mod currency;
mod customer_email;
mod description;
mod idempotency_key;
mod new_charge;

pub use amount::Amount;
pub use currency::Currency;
pub use customer_email::CustomerEmail;
pub use description::Description;
pub use idempotency_key::IdempotencyKey;
pub use new_charge::{ChargeRequest, NewCharge};

/// A field that failed validation, with the stable error code the API reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// Stable machine-readable code, e.g. `amount_invalid`.
    pub code: &'static str,
    /// The request field at fault.
    pub param: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ValidationError {
    pub(crate) fn new(code: &'static str, param: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            param,
            message: message.into(),
        }
    }
}
