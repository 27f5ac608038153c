//! [`ApiError`]: an engine error as an HTTP response — the status from the
//! engine's table of docs/contract.md §7 ([`ErrorKind::http_status`]) and
//! the body of §4 ([`ErrorBody`]).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use parlor_engine::{Error, ErrorKind};

use crate::json::ErrorBody;

/// The HTTP status of an error kind ([`ErrorKind::http_status`], the
/// contract's table; 500 if the table held something that is no status).
fn status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An engine error as an HTTP response: the status of its kind
/// ([`ErrorKind::http_status`], docs/contract.md §7) and the JSON body
/// `{"error": {"code", "message"}}` ([`ErrorBody`]). Return it from an axum
/// handler; `?` makes one from an [`Error`] or an [`ErrorKind`].
#[derive(Debug)]
pub struct ApiError(pub Error);

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
    /// With `Retry-After` (whole seconds, rounded up: RFC 9110, section
    /// 10.2.3) when the error says when to retry (`RATE_LIMITED`).
    fn into_response(self) -> Response {
        let mut response = (status(self.0.kind()), Json(ErrorBody::from(&self.0))).into_response();
        if let Some(wait) = self.0.retry_after_duration() {
            let seconds = wait.as_millis().div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        response
    }
}
