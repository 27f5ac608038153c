//! Engine error kinds → HTTP statuses and JSON error bodies (docs/contract.md §7).
//! This is the only place the transport maps codes.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use parlor_engine::{Error, ErrorKind};
use serde_json::json;

/// The HTTP status for an error kind ([`ErrorKind::http_status`], the
/// contract's table).
pub(crate) fn status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.0.code(), "message": self.0.client_message()}});
        (status(self.0.kind()), Json(body)).into_response()
    }
}
