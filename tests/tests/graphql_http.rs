//! `/graphql` over HTTP, the values the GraphQL-over-HTTP spec names (the
//! full audit is `graphql_http_audit.rs`): media types by `Accept`, queries
//! over GET and 405 for mutations there, GraphiQL only for `text/html`, and a
//! malformed body as a JSON GraphQL error with `INVALID_INPUT`.

use parlor_tests::{TestServer, gql_code};
use reqwest::{StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_types_methods_and_malformed_bodies() {
    let server = TestServer::start(&[]).await;
    let url = format!("{}/graphql", server.base);
    let http = server.http();

    // POST, Accept: application/json → application/json.
    let r = http
        .post(&url)
        .header("accept", "application/json")
        .bearer_auth("dev:ann")
        .json(&json!({"query": "{ room(id: \"x\") { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        content_type(&r).starts_with("application/json"),
        "{}",
        content_type(&r)
    );
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"data": {"room": null}})
    );

    // POST, Accept: application/graphql-response+json → that type; a
    // document that does not parse is 400 without `data`.
    let r = http
        .post(&url)
        .header("accept", "application/graphql-response+json")
        .json(&json!({"query": "{ room(id: "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&r).starts_with("application/graphql-response+json"));
    let body: Value = r.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(gql_code(&body), "INVALID_INPUT");

    // A malformed body: a JSON GraphQL error, never a Rust debug string.
    for accept in ["application/json", "application/graphql-response+json"] {
        let r = http
            .post(&url)
            .header("accept", accept)
            .header("content-type", "application/json")
            .body(r#"{"query": "{ room(id: \"x\") { id } }""#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(content_type(&r).starts_with(accept), "{}", content_type(&r));
        let body: Value = r.json().await.unwrap();
        assert_eq!(gql_code(&body), "INVALID_INPUT", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains("Error(") && !message.contains("line:"),
            "{message}"
        );
    }

    // No content type: 415, still a GraphQL error.
    let r = http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(gql_code(&r.json::<Value>().await.unwrap()), "INVALID_INPUT");

    // GET with a query executes it.
    let with = |params: &[(&str, &str)]| reqwest::Url::parse_with_params(&url, params).unwrap();
    let r = http
        .get(with(&[
            ("query", "query Q($r: ID!) { room(id: $r) { id } }"),
            ("variables", r#"{"r": "x"}"#),
            ("operationName", "Q"),
        ]))
        .bearer_auth("dev:ann")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(content_type(&r).starts_with("application/json"));
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"data": {"room": null}})
    );

    // GET refuses mutations with 405, and runs nothing.
    let r = http
        .get(with(&[(
            "query",
            "mutation { reserveSeat(roomId: \"viaget\", create: {capacity: 2}) { ticket } }",
        )]))
        .bearer_auth("dev:ann")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers().get("allow").unwrap(), "POST");
    let r = http
        .post(&url)
        .bearer_auth("dev:ann")
        .json(&json!({"query": "{ room(id: \"viaget\") { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"data": {"room": null}})
    );

    // GraphiQL only for a browser asking for HTML; with --dev-auth it
    // carries a working dev token.
    let r = http
        .get(&url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert!(content_type(&r).starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(
        page.contains("'Authorization': 'Bearer dev:guest'"),
        "{page}"
    );
    assert!(page.contains("could not load its scripts"), "{page}");
    let r = http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(gql_code(&r.json::<Value>().await.unwrap()), "INVALID_INPUT");
    server.stop().await;
}
