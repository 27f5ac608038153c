//! The [`Authenticator`] port: who is making a request, and for how long
//! their credential holds.

use async_trait::async_trait;

use crate::{entry::Timestamp, error::Result, ids::UserId};

/// Who a credential stands for.
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
}

impl Principal {
    /// `user`, with a credential that never expires.
    pub fn new(user: UserId) -> Self {
        Principal {
            user,
            expires_at: None,
        }
    }

    /// The same principal, with a credential that expires at `at`.
    pub fn expiring_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// Turns a bearer token into a [`Principal`]. Transports call it with the
/// token from `Authorization: Bearer …`, a `hello` or `refresh` frame or a
/// `connection_init` payload, and answer `UNAUTHENTICATED` on any error.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Who `token` stands for, or `UNAUTHENTICATED` (a bad, expired or
    /// not-yet-valid token).
    async fn authenticate(&self, token: &str) -> Result<Principal>;
}
