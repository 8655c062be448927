use super::ValidationError;

/// An ISO 4217 currency, held as its lower-case code (`usd`), as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Currency(String);

impl Currency {
    /// Accepts any ISO 4217 code in either case.
    ///
    /// # Errors
    /// `currency_invalid` for anything that is not an ISO 4217 code.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match iso_currency::Currency::from_code(&raw.to_ascii_uppercase()) {
            Some(c) => Ok(Self(c.code().to_ascii_lowercase())),
            None => Err(ValidationError::new(
                "currency_invalid",
                "currency",
                "currency must be a three-letter ISO 4217 code such as usd",
            )),
        }
    }

    /// The lower-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_codes_in_any_case_become_lower_case() {
        assert_eq!(
            Currency::parse("USD").map(|c| c.as_str().to_owned()),
            Ok("usd".into())
        );
        assert_eq!(
            Currency::parse("eur").map(|c| c.as_str().to_owned()),
            Ok("eur".into())
        );
    }

    #[test]
    fn unknown_codes_are_rejected() {
        for raw in ["", "us", "usdd", "xyz", "💵"] {
            assert_eq!(
                Currency::parse(raw).map_err(|e| e.code),
                Err("currency_invalid"),
                "{raw}"
            );
        }
    }
}
