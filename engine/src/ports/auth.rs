//! The [`Authenticator`] port: who is making a request.

use async_trait::async_trait;

use crate::{error::Result, ids::UserId};

/// Turns a bearer token into a user. Transports call it with the token from
/// `Authorization: Bearer …`, a `hello` frame or a `connection_init` payload,
/// and answer `UNAUTHENTICATED` on any error.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The user `token` stands for, or `UNAUTHENTICATED`.
    async fn authenticate(&self, token: &str) -> Result<UserId>;
}
