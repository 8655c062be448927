use super::ValidationError;

/// Optional free text shown on the receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Description(String);

impl Description {
    /// Longest description accepted, in characters.
    pub const MAX_CHARS: usize = 500;

    /// Accepts up to [`Self::MAX_CHARS`] characters without control characters.
    ///
    /// # Errors
    /// `description_invalid` otherwise.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() > Self::MAX_CHARS || raw.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "description_invalid",
                "description",
                format!(
                    "description must be at most {} characters, without control characters",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_accepted() {
        assert!(Description::parse("Order 1001 – thank you").is_ok());
    }

    #[test]
    fn long_or_control_text_is_rejected() {
        assert!(Description::parse(&"x".repeat(501)).is_err());
        assert!(Description::parse("line\nbreak").is_err());
    }
}
