//! The built-in [`Authenticator`]s: [`JwtAuthenticator`] (HS256),
//! [`DevTokens`] (`dev:<user>`, for development only) and [`AnyOf`], which
//! tries several in order.

use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

use crate::{
    error::{Error, ErrorKind, Result},
    entry::Timestamp,
    ids::UserId,
    ports::{Authenticator, Principal},
};

fn unauthenticated(message: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}

/// HS256 JWTs signed with a shared secret. `sub` (the user id) and `exp` are
/// required; a bad signature, an expired token, or a missing or invalid
/// `sub` is `UNAUTHENTICATED`. No leeway: `exp` means what it says.
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Seconds since the Unix epoch (RFC 7519 §4.1.4).
    exp: i64,
}

impl JwtAuthenticator {
    /// Checks tokens signed with `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        JwtAuthenticator {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Principal> {
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
            let reason = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => {
                    "the token lacks sub or exp"
                }
                _ => "the token is not valid",
            };
            unauthenticated(reason)
        })?;
        let user = UserId::new(&data.claims.sub)
            .map_err(|_| unauthenticated("the token's sub is not a valid user id"))?;
        let expires_at = Timestamp(data.claims.exp.saturating_mul(1000));
        Ok(Principal::new(user).expiring_at(expires_at))
    }
}

/// Development tokens: `dev:<user-id>` is that user, no secret involved.
/// Only for `--dev-auth`; the server warns at start-up when it is on.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevTokens;

#[async_trait]
impl Authenticator for DevTokens {
    async fn authenticate(&self, token: &str) -> Result<Principal> {
        let user = token
            .strip_prefix("dev:")
            .ok_or_else(|| unauthenticated("not a dev token"))?;
        UserId::new(user)
            .map(Principal::new)
            .map_err(|_| unauthenticated("the dev token's user id is not valid"))
    }
}

/// Tries each authenticator in order; the first that accepts wins.
pub struct AnyOf(pub Vec<Arc<dyn Authenticator>>);

#[async_trait]
impl Authenticator for AnyOf {
    async fn authenticate(&self, token: &str) -> Result<Principal> {
        let mut last = unauthenticated("authentication required");
        for auth in &self.0 {
            match auth.authenticate(token).await {
                Ok(principal) => return Ok(principal),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(secret: &[u8], claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn jwt_needs_a_good_signature_sub_and_exp() {
        let auth = JwtAuthenticator::hs256(b"s3cret");
        let ok = token(b"s3cret", json!({"sub": "alice", "exp": now() + 60}));
        assert_eq!(auth.authenticate(&ok).await.unwrap().user.as_str(), "alice");

        let cases = [
            token(b"other", json!({"sub": "alice", "exp": now() + 60})),
            token(b"s3cret", json!({"sub": "alice", "exp": now() - 1})),
            token(b"s3cret", json!({"exp": now() + 60})),
            token(b"s3cret", json!({"sub": "alice"})),
            token(b"s3cret", json!({"sub": "not valid!", "exp": now() + 60})),
            "garbage".to_owned(),
        ];
        for t in cases {
            let err = auth.authenticate(&t).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{t}");
        }
    }

    #[tokio::test]
    async fn dev_tokens_and_chains() {
        assert_eq!(
            DevTokens.authenticate("dev:bob").await.unwrap().user.as_str(),
            "bob"
        );
        assert!(DevTokens.authenticate("bob").await.is_err());
        assert!(DevTokens.authenticate("dev:").await.is_err());
        let both = AnyOf(vec![
            Arc::new(JwtAuthenticator::hs256(b"k")),
            Arc::new(DevTokens),
        ]);
        assert_eq!(
            both.authenticate("dev:carol").await.unwrap().user.as_str(),
            "carol"
        );
        let jwt = token(b"k", json!({"sub": "dan", "exp": now() + 60}));
        assert_eq!(both.authenticate(&jwt).await.unwrap().user.as_str(), "dan");
        assert!(both.authenticate("nope").await.is_err());
    }
}
