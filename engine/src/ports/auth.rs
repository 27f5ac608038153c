//! The [`Authenticator`] port: who is making a request, and for how long
//! their credential holds.

use std::time::Duration;

use async_trait::async_trait;

use crate::{entry::Timestamp, error::Result, ids::UserId};

/// A token's claims (a JWT's payload as a JSON object; empty for tokens
/// that carry none, such as dev tokens).
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// Who a credential stands for, and what it says.
///
/// `expires_at` is when the credential stops holding (a JWT's `exp`), or
/// `None` for one that does not expire (dev tokens, sessions an integrator
/// revokes by other means). A live connection authenticated with an expiring
/// credential is closed at `expires_at` unless the client renews it in place
/// (`docs/protocol.md`, "Token renewal").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// The user.
    pub user: UserId,
    /// When the credential expires (milliseconds since the Unix epoch), if it does.
    pub expires_at: Option<Timestamp>,
    /// Everything the credential says, kept for the room policy (the
    /// `claims` policy reads its `rooms` grants from here).
    pub claims: Claims,
    /// An integrator's backend (an API key), not a user: `user` is the key's
    /// name. It may do everything in every room, never holds a seat, and
    /// its messages are `system` entries.
    pub service: bool,
}

impl Principal {
    /// `user`, with a credential that never expires.
    pub fn new(user: UserId) -> Self {
        Principal {
            user,
            expires_at: None,
            claims: Claims::new(),
            service: false,
        }
    }

    /// The service `name` (an API key's name; docs/contract.md §1,
    /// "Services").
    pub fn service(name: UserId) -> Self {
        Principal {
            service: true,
            ..Principal::new(name)
        }
    }

    /// The same principal, with `claims`.
    pub fn with_claims(mut self, claims: Claims) -> Self {
        self.claims = claims;
        self
    }

    /// The same principal, with a credential that expires at `at`.
    pub fn expiring_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// How long the credential still holds at `now` (zero once expired);
    /// `None` for one that never expires. Transports arm their expiry timer
    /// with it, on their own monotonic clock.
    pub fn time_left(&self, now: Timestamp) -> Option<Duration> {
        self.expires_at.map(|at| {
            let ms = at.millis().saturating_sub(now.millis()).max(0);
            Duration::from_millis(ms as u64)
        })
    }
}

/// The token of an `Authorization` value `Bearer <token>`, trimmed; `None`
/// for another scheme or an empty token. The scheme name is matched without
/// regard to case (RFC 9110 §11.1; RFC 6750 §2.1 defines `Bearer`). Every
/// transport reads its header (or `connection_init` field) through this.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Turns a bearer token into a [`Principal`]. Transports call it with the
/// token from `Authorization: Bearer …`, a `hello` or `refresh` frame or a
/// `connection_init` payload, and answer `UNAUTHENTICATED` on any error.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Who `token` stands for, or `UNAUTHENTICATED` (a bad, expired or
    /// not-yet-valid token).
    async fn authenticate(&self, token: &str) -> Result<Principal>;

    /// The service an API key stands for (header `X-Api-Key`), or
    /// `UNAUTHENTICATED`. The default knows no keys.
    async fn authenticate_service(&self, _key: &str) -> Result<Principal> {
        Err(crate::error::Error::new(
            crate::error::ErrorKind::Unauthenticated,
            "unknown API key",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_whatever_the_schemes_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER dev:alice"), Some("dev:alice"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn time_left_saturates_at_zero_and_is_none_without_expiry() {
        let alice = Principal::new(UserId::new("alice").unwrap());
        assert_eq!(alice.time_left(Timestamp(5_000)), None);
        let alice = alice.expiring_at(Timestamp(5_000));
        assert_eq!(
            alice.time_left(Timestamp(3_500)),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(alice.time_left(Timestamp(5_000)), Some(Duration::ZERO));
        assert_eq!(alice.time_left(Timestamp(i64::MAX)), Some(Duration::ZERO));
        let far = Principal::new(UserId::new("bob").unwrap()).expiring_at(Timestamp::MAX);
        assert!(far.time_left(Timestamp(i64::MIN)).is_some());
    }
}
