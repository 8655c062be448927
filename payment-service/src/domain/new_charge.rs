use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Amount, Currency, CustomerEmail, Description, ValidationError};

/// The JSON body of `POST /v1/charges`, as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Receipt address.
    pub customer_email: String,
    /// Optional receipt text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A charge request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewCharge {
    /// How much.
    pub amount: Amount,
    /// In what.
    pub currency: Currency,
    /// Who gets the receipt.
    pub customer_email: CustomerEmail,
    /// Receipt text.
    pub description: Option<Description>,
}

impl NewCharge {
    /// Validates every field, reporting the first one at fault.
    ///
    /// # Errors
    /// The [`ValidationError`] of the first invalid field.
    pub fn parse(request: ChargeRequest) -> Result<Self, ValidationError> {
        Ok(Self {
            amount: Amount::parse(request.amount)?,
            currency: Currency::parse(&request.currency)?,
            customer_email: CustomerEmail::parse(&request.customer_email)?,
            description: request
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()?,
        })
    }

    /// A digest of the normalized request: two requests with the same key must have the
    /// same fingerprint to be replays of one another (`USD` and `usd` are the same).
    pub fn fingerprint(&self) -> Vec<u8> {
        // Serializing a struct of plain fields is infallible.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(canonical).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(currency: &str, amount: i64) -> ChargeRequest {
        ChargeRequest {
            amount,
            currency: currency.into(),
            customer_email: "jane@example.com".into(),
            description: Some("Order".into()),
        }
    }

    #[test]
    fn equivalent_requests_share_a_fingerprint() {
        let a = NewCharge::parse(request("USD", 100)).expect("valid");
        let b = NewCharge::parse(request("usd", 100)).expect("valid");
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn different_requests_have_different_fingerprints() {
        let a = NewCharge::parse(request("usd", 100)).expect("valid");
        let b = NewCharge::parse(request("usd", 101)).expect("valid");
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn the_first_invalid_field_is_reported() {
        let err = NewCharge::parse(request("usd", 0)).expect_err("invalid amount");
        assert_eq!((err.code, err.param), ("amount_invalid", "amount"));
    }

    #[test]
    fn unknown_fields_are_rejected_by_the_parser() {
        let raw = r#"{"amount":1,"currency":"usd","customer_email":"a@b.co","capture":false}"#;
        assert!(serde_json::from_str::<ChargeRequest>(raw).is_err());
    }
}
