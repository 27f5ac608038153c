//! Service credentials (docs/contract.md §1, "Services"): an integrator's
//! backend calls with header `X-Api-Key: SECRET` and acts as the service
//! `NAME` of `--api-key NAME=SECRET`.
//!
//! Secrets are kept only as SHA-256 digests and compared in constant time
//! (`subtle`), every configured key each time, so neither a secret's bytes
//! nor which key matched shows in the timing; a digest also hides a
//! secret's length. No secret is ever logged: `Debug` prints names only.

use std::sync::Arc;

use async_trait::async_trait;
use parlor_engine::{Authenticator, Error, ErrorKind, Principal, Result, UserId};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::KeyError;

/// The shortest secret accepted, in bytes: a key is a bearer credential
/// with every right, so it must not be guessable.
pub(crate) const MIN_SECRET_BYTES: usize = 16;

/// The configured service keys: (name, digest of the secret).
#[derive(Clone, Default)]
pub struct ServiceKeys {
    keys: Vec<(UserId, [u8; 32])>,
}

impl ServiceKeys {
    /// Reads `NAME=SECRET` specs (`--api-key`, repeatable). A name is a
    /// user id (1–64 of `[A-Za-z0-9_.@-]`); a secret is at least
    /// 16 bytes; names and secrets are unique.
    ///
    /// Errors: a message for the operator that names the key, never the
    /// secret.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, KeyError> {
        let mut keys = ServiceKeys::default();
        for spec in specs {
            let (name, secret) = spec
                .as_ref()
                .split_once('=')
                .ok_or_else(|| KeyError::new("an API key is written NAME=SECRET".to_string()))?;
            let name = UserId::new(name).map_err(|_| {
                KeyError::new(format!(
                    "API key name {name:?} must be 1-64 characters of [A-Za-z0-9_.@-]"
                ))
            })?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeyError::new(format!(
                    "the secret of API key {name} must be at least {MIN_SECRET_BYTES} bytes"
                )));
            }
            let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
            if keys.keys.iter().any(|(n, d)| *n == name || *d == digest) {
                return Err(KeyError::new(format!(
                    "API key {name} repeats a name or a secret"
                )));
            }
            keys.keys.push((name, digest));
        }
        Ok(keys)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The services' names.
    pub fn names(&self) -> impl Iterator<Item = &UserId> {
        self.keys.iter().map(|(name, _)| name)
    }

    /// The service whose secret is `secret`, comparing against every key.
    fn service_of(&self, secret: &str) -> Option<&UserId> {
        let digest = Sha256::digest(secret.as_bytes());
        let mut found = None;
        for (name, expected) in &self.keys {
            if bool::from(expected.ct_eq(digest.as_slice())) {
                found = Some(name);
            }
        }
        found
    }

    /// `users` (the token authenticator) with these keys in front: see
    /// [`WithServiceKeys`].
    pub fn guarding(self, users: Arc<dyn Authenticator>) -> WithServiceKeys {
        WithServiceKeys { users, keys: self }
    }
}

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// An [`Authenticator`] for users and services: tokens go to the user
/// authenticator, but a user whose id is a service's name is refused (so a
/// `system` entry's sender is never mistaken for a user); API keys are
/// checked against the [`ServiceKeys`].
pub struct WithServiceKeys {
    users: Arc<dyn Authenticator>,
    keys: ServiceKeys,
}

#[async_trait]
impl Authenticator for WithServiceKeys {
    async fn authenticate(&self, token: &str) -> Result<Principal> {
        let principal = self.users.authenticate(token).await?;
        if self.keys.names().any(|name| *name == principal.user) {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "this user id is reserved for a service",
            ));
        }
        Ok(principal)
    }

    async fn authenticate_service(&self, key: &str) -> Result<Principal> {
        self.keys
            .service_of(key)
            .map(|name| Principal::service(name.clone()))
            .ok_or_else(|| Error::new(ErrorKind::Unauthenticated, "unknown API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DevTokens;

    const SECRET: &str = "s3cret-billing-0123456789";

    fn keys() -> WithServiceKeys {
        ServiceKeys::parse(&[
            format!("billing={SECRET}"),
            "ops=another-secret-abcdef".into(),
        ])
        .unwrap()
        .guarding(Arc::new(DevTokens))
    }

    #[tokio::test]
    async fn a_key_is_its_service_and_nothing_else_is() {
        let auth = keys();
        let service = auth.authenticate_service(SECRET).await.unwrap();
        assert_eq!(service.user.as_str(), "billing");
        assert!(service.service);
        let ops = auth
            .authenticate_service("another-secret-abcdef")
            .await
            .unwrap();
        assert_eq!(ops.user.as_str(), "ops");
        for wrong in [
            "",
            "s3cret",
            &SECRET[..SECRET.len() - 1],
            &format!("{SECRET}x"),
        ] {
            let err = auth.authenticate_service(wrong).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{wrong:?}");
        }
        // A token is never a service, and a key is never a token.
        let alice = auth.authenticate("dev:alice").await.unwrap();
        assert!(!alice.service);
        assert!(auth.authenticate(SECRET).await.is_err());
    }

    #[tokio::test]
    async fn a_user_named_like_a_service_is_refused() {
        let err = keys().authenticate("dev:billing").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert!(keys().authenticate("dev:billing2").await.is_ok());
    }

    #[test]
    fn specs_are_checked_and_secrets_never_shown() {
        for (spec, says) in [
            ("billing", "NAME=SECRET"),
            ("bad name=0123456789abcdef", "must be 1-64"),
            ("billing=short", "at least 16 bytes"),
        ] {
            let err = ServiceKeys::parse(&[spec]).unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
            assert!(!err.contains("short") && !err.contains("0123"), "{err}");
        }
        let twice = ServiceKeys::parse(&["a=0123456789abcdef", "a=fedcba9876543210"]);
        assert!(twice.unwrap_err().to_string().contains("repeats"));
        let same_secret = ServiceKeys::parse(&["a=0123456789abcdef", "b=0123456789abcdef"]);
        assert!(same_secret.is_err());
        let keys = ServiceKeys::parse(&[format!("billing={SECRET}")]).unwrap();
        assert_eq!(format!("{keys:?}"), r#"["billing"]"#);
        assert!(!format!("{keys:?}").contains(SECRET));
    }
}
