//! Engine errors → HTTP statuses and the contract's JSON error body. Each
//! transport maps codes itself; this one has no other place that does.

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

/// The status of each code, from docs/contract.md §7.
fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden | ErrorKind::TicketInvalid | ErrorKind::NotAMember => {
            StatusCode::FORBIDDEN
        }
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::RoomNotFound => StatusCode::NOT_FOUND,
        ErrorKind::RoomFull | ErrorKind::RoomPending => StatusCode::CONFLICT,
        ErrorKind::TicketExpired => StatusCode::GONE,
        ErrorKind::MessageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
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
