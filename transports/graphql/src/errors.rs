//! Engine errors → GraphQL errors with `extensions.code` (docs/contract.md §7), and
//! [`ErrorCodes`], which gives every error the schema itself raises (parse,
//! validation, depth and complexity limits) a code too.

use std::sync::Arc;

use async_graphql::{
    ErrorExtensions, Response, ServerError, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe},
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;
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

fn coded(mut response: Response) -> Response {
    response.errors = response.errors.into_iter().map(with_code).collect();
    response
}

/// Schema extension: an error without a code is the request's fault
/// (`INVALID_INPUT`): a syntax error, an unknown field, a limit exceeded.
pub(crate) struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        coded(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(coded).boxed()
    }
}
