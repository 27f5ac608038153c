//! Engine errors → GraphQL errors with `extensions.code` (docs/contract.md §7), and
//! [`CodedSchema`], which gives every error the schema itself raises
//! (parse, validation, depth and complexity limits) a code too, over HTTP
//! and on the socket.

use std::{future::Future, sync::Arc};

use async_graphql::{
    Data, ErrorExtensions, Executor, Request, Response, ServerError, Value,
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;
use parlor_engine::{Error, ErrorKind};

use crate::schema::ParlorSchema;

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
fn coded(mut response: Response) -> Response {
    response.errors = response.errors.into_iter().map(with_code).collect();
    response
}

/// The schema as the transports run it, over HTTP and on the socket: every
/// response [`coded`].
///
/// Why a wrapper and not a schema extension: an extension, even one that
/// only wraps requests and streams, puts every field of every subscription
/// event through async-graphql's extension chain (a registry lookup and a
/// boxed future per field) — a quarter of a big room's GraphQL delivery
/// time (docs/benchmarks.md, step 27).
#[derive(Clone)]
pub(crate) struct CodedSchema(pub(crate) ParlorSchema);

impl Executor for CodedSchema {
    fn execute(&self, request: Request) -> impl Future<Output = Response> + Send {
        let running = self.0.execute(request);
        async move { coded(running.await) }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        Executor::execute_stream(&self.0, request, session_data)
            .map(coded)
            .boxed()
    }
}
