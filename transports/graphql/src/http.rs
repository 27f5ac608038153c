//! `/graphql` over HTTP, to the letter of the GraphQL-over-HTTP spec
//! (<https://graphql.github.io/graphql-over-http/draft/>), checked by the
//! npm `graphql-http` audit (`tests/js/graphql_http_audit.mjs`):
//!
//! - `POST` with `Content-Type: application/json` (any other or none: 415),
//!   a body `{"query": String, "operationName"?: String, "variables"?: Map,
//!   "extensions"?: Map}`; a body that is not that JSON is 400 with a GraphQL
//!   error whose `extensions.code` is `INVALID_INPUT`.
//! - `GET ?query=…&operationName=…&variables=<JSON>&extensions=<JSON>`
//!   executes queries; a mutation over `GET` is 405 (`Allow: POST`). A `GET`
//!   without `query` from a browser (`Accept: text/html`) gets GraphiQL.
//! - The answer's media type follows `Accept`: `application/graphql-response+json`
//!   when the client lists it (then a request error — unparsable document,
//!   failed validation, bad variables — is 400 with no `data` entry),
//!   otherwise `application/json` (always 200 for a GraphQL result), both
//!   `charset=utf-8`.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Executor, Request, Variables,
    parser::{
        parse_query,
        types::{DocumentOperations, OperationType},
    },
};
use axum::{
    extract::{Query, State},
    http::{
        HeaderMap, HeaderValue, StatusCode, Uri,
        header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE},
    },
    response::{Html, IntoResponse, Response},
};
use parlor_engine::{ErrorKind, bearer_token};
use serde_json::{Value, json};

use crate::{GraphqlState, schema::Viewer};

/// The spec's own media type for GraphQL responses.
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
/// The legacy media type, still what most clients ask for.
const JSON: &str = "application/json; charset=utf-8";

/// Which media type the answer uses (from `Accept`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Media {
    GraphqlResponse,
    Json,
}

impl Media {
    fn from_headers(headers: &HeaderMap) -> Media {
        if accepts(headers, "application/graphql-response+json") {
            Media::GraphqlResponse
        } else {
            Media::Json
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => GRAPHQL_RESPONSE,
            Media::Json => JSON,
        })
    }
}

/// Whether any `Accept` header line names `media`.
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(media))
}

fn wants_html(headers: &HeaderMap) -> bool {
    accepts(headers, "text/html")
}

/// A request error of ours (before execution): `status` with one GraphQL
/// error coded `INVALID_INPUT`, as JSON in the client's media type.
fn invalid(media: Media, status: StatusCode, message: &str) -> Response {
    let body = json!({"errors": [{
        "message": message,
        "extensions": {"code": ErrorKind::InvalidInput.code()},
    }]});
    (
        status,
        [(CONTENT_TYPE, media.content_type())],
        body.to_string(),
    )
        .into_response()
}

/// `GET /graphql`: GraphiQL for a browser, otherwise a query from the URL.
pub(crate) async fn get(
    State(state): State<Arc<GraphqlState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let media = Media::from_headers(&headers);
    let params = match Query::<HashMap<String, String>>::try_from_uri(&uri) {
        Ok(Query(params)) => params,
        Err(_) => return invalid(media, StatusCode::BAD_REQUEST, "malformed query string"),
    };
    let Some(query) = params.get("query") else {
        if wants_html(&headers) {
            return Html(state.graphiql.clone()).into_response();
        }
        return invalid(media, StatusCode::BAD_REQUEST, "missing query parameter");
    };
    // A map parameter: absent, `null`, or a JSON object.
    let parse_map = |name: &str| -> Result<Option<Value>, String> {
        match params
            .get(name)
            .map(|text| serde_json::from_str::<Value>(text))
        {
            None | Some(Ok(Value::Null)) => Ok(None),
            Some(Ok(v @ Value::Object(_))) => Ok(Some(v)),
            Some(_) => Err(format!("{name} must be a JSON object")),
        }
    };
    let (variables, _extensions) = match (parse_map("variables"), parse_map("extensions")) {
        (Ok(variables), Ok(extensions)) => (variables, extensions),
        (Err(message), _) | (_, Err(message)) => {
            return invalid(media, StatusCode::BAD_REQUEST, &message);
        }
    };
    let operation_name = params.get("operationName").filter(|n| !n.is_empty());
    if is_mutation(query, operation_name.map(String::as_str)) {
        // The spec: GET must not run mutations; 405 tells the client to POST.
        let mut response = invalid(media, StatusCode::METHOD_NOT_ALLOWED, "mutations need POST");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let mut request = Request::new(query.clone());
    if let Some(name) = operation_name {
        request = request.operation_name(name.clone());
    }
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(variables));
    }
    execute(&state, &headers, media, request).await
}

/// `POST /graphql`: a JSON body.
pub(crate) async fn post(
    State(state): State<Arc<GraphqlState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let media = Media::from_headers(&headers);
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        return invalid(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        );
    }
    let request = match request_from_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(media, StatusCode::BAD_REQUEST, message),
    };
    execute(&state, &headers, media, request).await
}

/// The body as a GraphQL request, or why not (a fixed message: never the
/// parser's debug output).
fn request_from_json(body: &[u8]) -> Result<Request, &'static str> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body is not a JSON object");
    };
    let Some(Value::String(query)) = fields.remove("query") else {
        return Err("query must be a string");
    };
    let mut request = Request::new(query);
    match fields.remove("operationName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("operationName must be a string"),
    }
    match fields.remove("variables") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => request = request.variables(Variables::from_json(v)),
        Some(_) => return Err("variables must be a map"),
    }
    match fields.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("extensions must be a map"),
    }
    Ok(request)
}

/// Whether the operation `query` would run (by `operation_name`) is a
/// mutation. An unparsable document is not: execution reports it.
fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(document) = parse_query(query) else {
        return false;
    };
    let ty = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty == Some(OperationType::Mutation)
}

async fn execute(
    state: &GraphqlState,
    headers: &HeaderMap,
    media: Media,
    mut request: Request,
) -> Response {
    // A service's API key wins over a bearer token (docs/contract.md §1).
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let principal = match (key, token) {
        (Some(key), _) => state.auth.authenticate_service(key).await.ok(),
        (None, Some(token)) => state.auth.authenticate(token).await.ok(),
        (None, None) => None,
    };
    if let Some(principal) = principal {
        request = request.data(Viewer(principal));
    }
    let response = state.schema.execute(request).await;
    // A request error: nothing ran, so there is no data and no error has
    // a path (a field error always has one).
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    let status = match media {
        Media::GraphqlResponse if request_error => {
            if let Value::Object(fields) = &mut body {
                fields.remove("data");
            }
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    (
        status,
        [(CONTENT_TYPE, media.content_type())],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutation_is_told_apart_by_operation_name() {
        assert!(is_mutation("mutation { leaveRoom(roomId: \"a\") }", None));
        assert!(!is_mutation("{ room(id: \"a\") { id } }", None));
        let both = "query Q { room(id: \"a\") { id } } mutation M { leaveRoom(roomId: \"a\") }";
        assert!(is_mutation(both, Some("M")));
        assert!(!is_mutation(both, Some("Q")));
        assert!(!is_mutation("{ not closed", None));
    }

    #[test]
    fn a_malformed_body_is_a_fixed_message() {
        let err = request_from_json(br#"{"query": "{ room(id: \"x\") { id } }""#).unwrap_err();
        assert_eq!(err, "the body is not a JSON object");
        assert!(request_from_json(br#"{"query": 1}"#).is_err());
        assert!(request_from_json(br#"{"query": "{a}", "variables": []}"#).is_err());
        assert!(request_from_json(br#"{"query": "{a}", "extensions": {}}"#).is_ok());
    }
}
