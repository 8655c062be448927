use super::ValidationError;

/// A positive charge amount in the currency's minor units (cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Amount(i64);

impl Amount {
    /// The largest amount accepted in one charge (999,999.99 in a two-decimal currency).
    pub const MAX: i64 = 99_999_999;

    /// Accepts `1..=MAX`.
    ///
    /// # Errors
    /// `amount_invalid` for zero, negative or too large amounts.
    pub fn parse(raw: i64) -> Result<Self, ValidationError> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(ValidationError::new(
                "amount_invalid",
                "amount",
                format!(
                    "amount must be an integer number of minor units between 1 and {}",
                    Self::MAX
                ),
            ))
        }
    }

    /// The amount in minor units.
    pub fn minor_units(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_amounts_up_to_the_maximum_are_accepted() {
        assert_eq!(Amount::parse(1).map(Amount::minor_units), Ok(1));
        assert!(Amount::parse(Amount::MAX).is_ok());
    }

    #[test]
    fn zero_negative_and_oversized_amounts_are_rejected() {
        for raw in [0, -5, Amount::MAX + 1, i64::MAX] {
            assert_eq!(
                Amount::parse(raw).map_err(|e| e.code),
                Err("amount_invalid"),
                "{raw}"
            );
        }
    }
}
