//! Engine errors → HTTP responses with the contract's JSON error body; the
//! status of each code comes from the engine's table (`ErrorKind::http_status`).

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use parlor_engine::{Error, ErrorKind};
use serde_json::json;

/// An engine error as an HTTP response: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl From<ErrorKind> for ApiError {
    fn from(kind: ErrorKind) -> Self {
        ApiError(kind.into())
    }
}

/// The status of each code ([`ErrorKind::http_status`], docs/contract.md §7).
fn status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The error as the `data` of an SSE `error` event, or an HTTP body.
pub(crate) fn body(err: &Error) -> serde_json::Value {
    json!({"error": {"code": err.code(), "message": err.client_message()}})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (status(self.0.kind()), Json(body(&self.0))).into_response()
    }
}
