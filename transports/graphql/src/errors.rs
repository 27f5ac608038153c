//! Engine errors → GraphQL errors with `extensions.code` (docs/contract.md §7), and
//! [`coded`] / [`code_ws_message`], which give every error the schema
//! itself raises (parse, validation, depth and complexity limits) a code
//! too, over HTTP and over the WebSocket.

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

/// [`coded`] for a message async-graphql's WebSocket protocol queued
/// (`next`, or the legacy `data`): `Some` with the message rewritten when
/// an error in its payload had no code, `None` when it needs no change.
///
/// Why here and not in a schema extension: an extension, even one that
/// only wraps the request, puts every field of every subscription event
/// through async-graphql's extension chain (a registry lookup and a boxed
/// future per field) — a quarter of a big room's GraphQL delivery time
/// (docs/benchmarks.md, step 27). A message is looked at only when its
/// text holds an unescaped `"errors":[`, which JSON string content cannot.
pub(crate) fn code_ws_message(text: &str) -> Option<String> {
    if !text.contains(r#""errors":["#) {
        return None;
    }
    let mut message: serde_json::Value = serde_json::from_str(text).ok()?;
    let errors = message
        .get_mut("payload")?
        .get_mut("errors")?
        .as_array_mut()?;
    let mut changed = false;
    for error in errors
        .iter_mut()
        .filter_map(serde_json::Value::as_object_mut)
    {
        let extensions = error
            .entry("extensions")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(extensions) = extensions.as_object_mut()
            && !extensions.contains_key("code")
        {
            extensions.insert("code".into(), ErrorKind::InvalidInput.code().into());
            changed = true;
        }
    }
    changed.then(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_messages_get_a_code_only_where_an_error_lacks_one() {
        let uncoded = r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"Unknown field","locations":[{"line":1,"column":3}]}]}}"#;
        let coded: serde_json::Value =
            serde_json::from_str(&code_ws_message(uncoded).unwrap()).unwrap();
        assert_eq!(
            coded["payload"]["errors"][0]["extensions"]["code"],
            "INVALID_INPUT"
        );
        assert_eq!(coded["payload"]["errors"][0]["message"], "Unknown field");
        let already = r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"m","extensions":{"code":"KICKED"}}]}}"#;
        assert_eq!(code_ws_message(already), None);
        // A body that mentions errors is escaped: never looked at.
        let body =
            r#"{"type":"next","id":"1","payload":{"data":{"joinRoom":{"body":""errors":[1]"}}}}"#;
        assert_eq!(code_ws_message(body), None);
        // App data may hold an `errors` key: parsed, and left as it is.
        let data =
            r#"{"type":"data","id":"1","payload":{"data":{"joinRoom":{"data":{"errors":[1]}}}}}"#;
        assert_eq!(code_ws_message(data), None);
    }
}
