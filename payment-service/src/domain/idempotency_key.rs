use super::ValidationError;

/// The client's `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Parses the header value.
    ///
    /// # Errors
    /// `idempotency_key_invalid` when empty, too long, or not visible ASCII.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "idempotency_key_invalid",
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_up_to_255_is_accepted() {
        assert!(IdempotencyKey::parse("order-1001").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn empty_long_spaced_or_non_ascii_keys_are_rejected() {
        for raw in [String::new(), "k".repeat(256), "a b".into(), "clé".into()] {
            assert!(IdempotencyKey::parse(&raw).is_err(), "{raw}");
        }
    }
}
