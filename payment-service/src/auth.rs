//! Bearer API keys. Keys are compared and stored as SHA-256 digests, so the secret itself
//! never reaches the database or the logs.

use axum::{extract::FromRequestParts, http::request::Parts};
use sha2::{Digest, Sha256};

use crate::{error::ApiError, startup::AppState};

/// The set of accepted API keys, held as digests.
#[derive(Debug, Clone)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl ApiKeys {
    /// Accepts every non-empty key in `keys`.
    pub fn new(keys: &[String]) -> Self {
        Self(
            keys.iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .map(digest)
                .collect(),
        )
    }

    /// The caller behind `token`, if the token is one of the keys.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let d = digest(token);
        // Comparing fixed-size digests leaks nothing useful about the secret through timing.
        self.0.contains(&d).then(|| Caller {
            id: format!("key_{}", &hex::encode(d)[..16]),
        })
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// An authenticated caller. Idempotency keys and charges are scoped to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A stable, non-secret identifier derived from the API key.
    pub id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        state
            .api_keys
            .authenticate(token.trim())
            .ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_key_authenticates_to_a_stable_non_secret_id() {
        let keys = ApiKeys::new(&["sk_a".into(), " sk_b ".into()]);
        let caller = keys.authenticate("sk_b").expect("listed");
        assert!(caller.id.starts_with("key_") && !caller.id.contains("sk_b"));
        assert_eq!(keys.authenticate("sk_b"), Some(caller));
    }

    #[test]
    fn unknown_and_empty_keys_are_refused() {
        let keys = ApiKeys::new(&["sk_a".into(), String::new()]);
        assert_eq!(keys.authenticate("sk_x"), None);
        assert_eq!(keys.authenticate(""), None);
    }
}
