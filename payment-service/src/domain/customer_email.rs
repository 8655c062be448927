use std::str::FromStr;

use super::ValidationError;

/// The address the confirmation email goes to. Its `Debug` is masked so it cannot leak
/// into logs by accident.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct CustomerEmail(String);

impl CustomerEmail {
    /// Longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Accepts a syntactically valid address of at most [`Self::MAX_LEN`] bytes.
    ///
    /// # Errors
    /// `customer_email_invalid` otherwise.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let valid = trimmed.len() <= Self::MAX_LEN
            && email_address::EmailAddress::from_str(trimmed).is_ok()
            // Display names ("Jane <jane@x>") are valid RFC 5322 but not an address.
            && !trimmed.contains('<');
        if valid {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ValidationError::new(
                "customer_email_invalid",
                "customer_email",
                "customer_email must be a valid email address",
            ))
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CustomerEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shared::redact::mask_email(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_accepted_and_trimmed() {
        assert_eq!(
            CustomerEmail::parse(" jane@example.com ").map(|e| e.as_str().to_owned()),
            Ok("jane@example.com".into())
        );
    }

    #[test]
    fn invalid_addresses_are_rejected() {
        let long = format!("{}@example.com", "a".repeat(250));
        for raw in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "Jane <jane@example.com>",
            long.as_str(),
        ] {
            assert_eq!(
                CustomerEmail::parse(raw).map_err(|e| e.code),
                Err("customer_email_invalid"),
                "{raw}"
            );
        }
    }

    #[test]
    fn debug_output_is_masked() {
        let email = CustomerEmail::parse("jane@example.com").expect("valid");
        assert_eq!(format!("{email:?}"), "j***@example.com");
    }
}
