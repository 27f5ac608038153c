//! The origin allow-list, checked before any handler (and so before a
//! WebSocket upgrade): a browser page from elsewhere gets 403 `FORBIDDEN`.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::header::{HOST, ORIGIN},
    middleware::Next,
    response::{IntoResponse, Response},
};
use parlor_engine::{Error, ErrorKind};

use crate::{errors::ApiError, state::WsState};

pub(crate) async fn check_origin(
    State(state): State<Arc<WsState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !allowed(&state.config.allowed_origins, origin, host) {
            tracing::info!(origin, "refused a request from a disallowed origin");
            return ApiError(Error::new(ErrorKind::Forbidden, "origin not allowed"))
                .into_response();
        }
    }
    next.run(request).await
}

fn allowed(list: &[String], origin: &str, host: &str) -> bool {
    if list.is_empty() {
        // Same origin only: scheme://host[:port] where host[:port] is ours.
        return origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host);
    }
    list.iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn lists_and_same_origin() {
        assert!(allowed(&[], "http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!allowed(&[], "http://evil.example", "127.0.0.1:8080"));
        let list = vec!["https://chat.example.com".to_owned()];
        assert!(allowed(&list, "https://chat.example.com", "x"));
        assert!(!allowed(&list, "https://evil.example", "x"));
        assert!(
            !allowed(&list, "http://127.0.0.1:8080", "127.0.0.1:8080"),
            "a list replaces same-origin"
        );
    }
}
