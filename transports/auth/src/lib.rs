//! # parlor-auth
//!
//! Parlor's built-in [`Authenticator`]s, the identity checks the transports
//! run on every bearer token, and [`HookPolicy`], the room policy that asks
//! the integrator's backend (`--authorization hook`). The authenticators: [`JwtAuthenticator`] (HS256 secrets, RSA and
//! EC public keys, JWK Sets; claims checked by [`JwtRules`]), [`DevTokens`]
//! (`dev:<user>`, for development only) and [`AnyOf`], which tries several
//! in order; [`ServiceKeys`] puts the integrator's backend's API keys
//! (`X-Api-Key`) in front of any of them ([`WithServiceKeys`]). Every
//! refusal is `UNAUTHENTICATED` with a short reason.
//!
//! It depends on `parlor-engine` only, for the port: the engine holds the
//! [`Authenticator`] trait and no JWT library, and the transports take any
//! `Arc<dyn Authenticator>`, so an integrator's own sessions plug in the
//! same way (`docs/plugins.md`, "An authenticator").
//!
//! ```
//! use std::sync::Arc;
//! use parlor_auth::{AnyOf, DevTokens, JwtAuthenticator, JwtRules};
//! use parlor_engine::{Authenticator, ErrorKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let jwt = JwtAuthenticator::hs256(b"a shared secret")
//!     .with_rules(JwtRules::default().audience("parlor"));
//! // Dev tokens are for development only: `dev:<user>` is that user.
//! let auth: Arc<dyn Authenticator> = Arc::new(AnyOf(vec![Arc::new(jwt), Arc::new(DevTokens)]));
//!
//! let principal = auth.authenticate("dev:alice").await.unwrap();
//! assert_eq!(principal.user.as_str(), "alice");
//! assert_eq!(principal.expires_at, None); // a dev token never expires
//! let refused = auth.authenticate("not a token").await.unwrap_err();
//! assert_eq!(refused.kind(), ErrorKind::Unauthenticated);
//! # }
//! ```

mod hook;
mod jwt;
mod keys;
mod service_keys;

use std::sync::Arc;

use async_trait::async_trait;
use parlor_engine::{Authenticator, Error, ErrorKind, Principal, Result, UserId};

pub use hook::{DEFAULT_HOOK_TIMEOUT, HookPolicy, MAX_HOOK_TTL};
pub use jwt::{DEFAULT_LEEWAY, JwtAuthenticator, JwtRules};
pub use keys::KeyError;
pub use service_keys::{ServiceKeys, WithServiceKeys};

fn unauthenticated(message: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
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
    async fn dev_tokens_and_chains() {
        assert_eq!(
            DevTokens
                .authenticate("dev:bob")
                .await
                .unwrap()
                .user
                .as_str(),
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
