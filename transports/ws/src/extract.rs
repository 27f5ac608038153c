//! The HTTP routes' extractors, with axum's rejections turned into the
//! contract's JSON errors (docs/contract.md §4, §7): a path that does not decode
//! (`/v1/rooms/a%FF`), a query that does not parse, or a body that cannot be
//! read is `400 INVALID_INPUT` (a body over the limit: `413
//! MESSAGE_TOO_LARGE`), never axum's plain-text answer. Every route takes
//! its input through these, so no rejection escapes the mapping.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, request::Parts},
};
use parlor_engine::{Error, ErrorKind};
use serde::de::DeserializeOwned;

use parlor_wire::ApiError;

/// An axum rejection (its status and text) as a contract error: a server
/// error stays `INTERNAL` (a routing bug, logged), a 413 is
/// `MESSAGE_TOO_LARGE`, anything else is the client's `INVALID_INPUT`.
fn rejected(status: StatusCode, text: String) -> ApiError {
    let kind = if status.is_server_error() {
        tracing::error!(%status, reason = %text, "extractor failed");
        ErrorKind::Internal
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorKind::MessageTooLarge
    } else {
        ErrorKind::InvalidInput
    };
    ApiError(Error::new(kind, text))
}

/// [`Path`] with contract errors.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(e) => Err(rejected(e.status(), format!("bad path: {}", e.body_text()))),
        }
    }
}

/// [`Query`] with contract errors.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(rejected(
                e.status(),
                format!("bad query: {}", e.body_text()),
            )),
        }
    }
}

/// The raw body ([`Bytes`]) with contract errors; the routes parse the JSON
/// themselves, so that an empty body can mean `{}`.
pub(crate) struct ApiBody(pub(crate) Bytes);

impl<S> FromRequest<S> for ApiBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(ApiBody(bytes)),
            Err(e) => Err(rejected(e.status(), format!("bad body: {}", e.body_text()))),
        }
    }
}
