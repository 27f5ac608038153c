//! Engine errors → GraphQL errors with `extensions.code` (docs/contract.md §7),
//! and [`coded`], which gives every error the schema itself raises (parse,
//! validation, depth and complexity limits) a code too, over HTTP and on the
//! socket ([`crate::executor::TransportSchema`] applies it to every response).

use async_graphql::{ErrorExtensions, Response, ServerError, Value};
use parlor_engine::{Error, ErrorKind};

/// An engine error as a GraphQL error with `extensions.code` (and
/// `extensions.retryAfterMs` when it says when to retry: `RATE_LIMITED`).
pub(crate) fn gql(err: Error) -> async_graphql::Error {
    let retry_after_ms = err.retry_after_duration().map(|d| d.as_millis() as u64);
    async_graphql::Error::new(err.log_and_client_message()).extend_with(|_, ext| {
        ext.set("code", err.code());
        if let Some(ms) = retry_after_ms {
            ext.set("retryAfterMs", ms);
        }
    })
}

fn with_code(mut error: ServerError) -> ServerError {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", Value::from(ErrorKind::InvalidInput.code()));
    }
    error
}

/// `response` with a code on every error: one without is the request's
/// fault (`INVALID_INPUT`): a syntax error, an unknown field, a limit
/// exceeded — async-graphql raises those without a code.
pub(crate) fn coded(mut response: Response) -> Response {
    response.errors = response.errors.into_iter().map(with_code).collect();
    response
}
