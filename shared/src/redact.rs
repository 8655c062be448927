//! Masking for values that must never reach the logs in full.

/// Masks an email address for logs: `jane.doe@example.com` becomes `j***@example.com`.
///
/// The domain stays (useful when one provider rejects mail); the local part, which
/// identifies the customer, does not.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Removes the password from a connection URL before it is logged or printed.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_keeps_only_its_first_letter_and_domain() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask_email("not-an-email"), "***");
    }

    #[test]
    fn a_url_loses_its_password() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/payments"),
            "postgres://app:***@db:5432/payments"
        );
        assert_eq!(
            redact_url("postgres://db/payments"),
            "postgres://db/payments"
        );
    }
}
