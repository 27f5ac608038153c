//! Origins and CORS over the real server (docs/contract.md §9): the server's own
//! origin is always allowed beside `--allowed-origin`; a listed origin gets
//! CORS answers (preflight included) on `/v1` and `/graphql`; a foreign one
//! gets 403 `FORBIDDEN` on `/v1`, `/graphql` and both WebSocket upgrades;
//! `--trust-forwarded` takes the own origin from a proxy's headers, and
//! without it those headers change nothing.

use parlor_tests::{TestServer, next_json, send};
use reqwest::{Method, Response, header::HeaderMap};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

const OTHER: &str = "http://other.test";
const EVIL: &str = "http://evil.test";

/// A WebSocket upgrade to `path` with `headers`: the HTTP status the server
/// answered (101 when it upgraded).
async fn upgrade(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> u16 {
    let url = format!("{}{path}", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, response)) => {
            if path == "/graphql/ws" {
                // Upgraded and usable: the init is acknowledged.
                send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": "Bearer dev:ann"}})).await;
                assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
            } else {
                send(&mut ws, json!({"type": "hello", "token": "dev:ann"})).await;
                assert_eq!(next_json(&mut ws).await["type"], "welcome");
            }
            response.status().as_u16()
        }
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade to {path} failed without an HTTP answer: {e}"),
    }
}

/// `method path` with `headers` (and a bearer token).
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Response {
    let mut request = server
        .http()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth("dev:ann");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// A 403 with the contract's body and no CORS permission.
async fn assert_forbidden(response: Response, what: &str) {
    assert_eq!(response.status(), 403, "{what}");
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        None,
        "{what}: no CORS headers for a refused origin"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "FORBIDDEN", "{what}: {body}");
}

/// Past the origin check: the room (reserved, not yet committed, so not
/// stored) is looked up and not found.
async fn assert_passed(response: Response, what: &str) {
    assert_eq!(response.status(), 404, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ROOM_NOT_FOUND", "{what}: {body}");
}

const ROOM_QUERY: &str = r#"{"query": "{ room(id: \"lobby\") { id } }"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_origin_stays_allowed_beside_a_listed_one() {
    let server = TestServer::start(&["--allowed-origin", OTHER]).await;
    let own = server.base.as_str();

    let r = call(
        &server,
        Method::POST,
        "/v1/rooms/lobby/reservations",
        &[("origin", own)],
        Some(json!({"create": {"capacity": 5}})),
    )
    .await;
    assert_eq!(r.status(), 201, "own origin on /v1: {:?}", r.text().await);
    let r = call(
        &server,
        Method::POST,
        "/v1/rooms/lobby/reservations",
        &[("origin", OTHER)],
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status(), 201, "the listed origin on /v1");
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(OTHER)
    );
    let exposed = header(r.headers(), "access-control-expose-headers").unwrap_or_default();
    assert!(
        exposed.to_ascii_lowercase().contains("retry-after"),
        "exposed: {exposed}"
    );

    assert_eq!(
        upgrade(&server, "/v1/ws", &[("origin", own)]).await,
        101,
        "own origin on /v1/ws"
    );
    let gql = [
        ("origin", own),
        ("sec-websocket-protocol", "graphql-transport-ws"),
    ];
    assert_eq!(
        upgrade(&server, "/graphql/ws", &gql).await,
        101,
        "own origin on /graphql/ws"
    );
    let gql = [
        ("origin", OTHER),
        ("sec-websocket-protocol", "graphql-transport-ws"),
    ];
    assert_eq!(
        upgrade(&server, "/graphql/ws", &gql).await,
        101,
        "the listed origin on /graphql/ws"
    );

    let r = server
        .http()
        .post(format!("{}/graphql", server.base))
        .header("origin", own)
        .header("content-type", "application/json")
        .body(ROOM_QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "own origin on /graphql");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_everywhere() {
    let server = TestServer::start(&["--allowed-origin", OTHER]).await;
    let r = call(
        &server,
        Method::POST,
        "/v1/rooms/lobby/reservations",
        &[("origin", EVIL)],
        Some(json!({"create": {"capacity": 5}})),
    )
    .await;
    assert_forbidden(r, "POST /v1 reservations").await;
    let r = call(
        &server,
        Method::GET,
        "/v1/rooms/lobby",
        &[("origin", EVIL)],
        None,
    )
    .await;
    assert_forbidden(r, "GET /v1 room").await;
    let r = server
        .http()
        .post(format!("{}/graphql", server.base))
        .header("origin", EVIL)
        .header("content-type", "application/json")
        .body(ROOM_QUERY)
        .send()
        .await
        .unwrap();
    assert_forbidden(r, "POST /graphql").await;
    let r = call(
        &server,
        Method::GET,
        "/graphql",
        &[("origin", EVIL), ("accept", "text/html")],
        None,
    )
    .await;
    assert_forbidden(r, "GET /graphql").await;
    assert_eq!(
        upgrade(&server, "/v1/ws", &[("origin", EVIL)]).await,
        403,
        "/v1/ws"
    );
    let gql = [
        ("origin", EVIL),
        ("sec-websocket-protocol", "graphql-transport-ws"),
    ];
    assert_eq!(
        upgrade(&server, "/graphql/ws", &gql).await,
        403,
        "/graphql/ws"
    );
    let legacy = [("origin", EVIL), ("sec-websocket-protocol", "graphql-ws")];
    assert_eq!(
        upgrade(&server, "/graphql/ws", &legacy).await,
        403,
        "/graphql/ws, legacy"
    );
    // A preflight from it gets no permission either.
    let r = preflight(&server, "/v1/rooms/lobby/reservations", EVIL).await;
    assert_forbidden(r, "preflight from a foreign origin").await;
    server.stop().await;
}

async fn preflight(server: &TestServer, path: &str, origin: &str) -> Response {
    server
        .http()
        .request(Method::OPTIONS, format!("{}{path}", server.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_from_an_allowed_origin_is_answered() {
    let server = TestServer::start(&["--allowed-origin", OTHER]).await;
    for path in [
        "/v1/rooms/lobby/reservations",
        "/v1/rooms/lobby/messages",
        "/graphql",
    ] {
        let r = preflight(&server, path, OTHER).await;
        assert!(
            r.status().is_success(),
            "{path}: preflight got {}",
            r.status()
        );
        let h = r.headers();
        assert_eq!(
            header(h, "access-control-allow-origin"),
            Some(OTHER),
            "{path}"
        );
        let methods = header(h, "access-control-allow-methods").unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{path}: methods {methods}"
        );
        let allowed = header(h, "access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for name in ["authorization", "content-type", "x-api-key"] {
            assert!(allowed.contains(name), "{path}: {name} not in {allowed}");
        }
    }
    let r = server
        .http()
        .post(format!("{}/graphql", server.base))
        .header("origin", OTHER)
        .header("content-type", "application/json")
        .body(ROOM_QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(OTHER),
        "/graphql answer"
    );
    server.stop().await;
}

/// What nginx sends with `proxy_set_header Host $proxy_host` and the
/// `X-Forwarded-*` lines of docs/operations.md; reqwest sets `Host` to the
/// server's own `127.0.0.1:<port>`.
const BEHIND_NGINX: [(&str, &str); 3] = [
    ("x-forwarded-host", "chat.example.com"),
    ("x-forwarded-proto", "https"),
    ("origin", "https://chat.example.com"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_name_the_own_origin_only_when_trusted() {
    let trusting = TestServer::start(&["--trust-forwarded"]).await;
    let r = call(
        &trusting,
        Method::POST,
        "/v1/rooms/lobby/reservations",
        &BEHIND_NGINX,
        Some(json!({"create": {"capacity": 5}})),
    )
    .await;
    assert_eq!(
        r.status(),
        201,
        "behind a trusted proxy: {:?}",
        r.text().await
    );
    let r = call(
        &trusting,
        Method::GET,
        "/v1/rooms/lobby",
        &BEHIND_NGINX,
        None,
    )
    .await;
    assert_passed(r, "GET behind a trusted proxy").await;
    let mut ws_headers = BEHIND_NGINX.to_vec();
    assert_eq!(
        upgrade(&trusting, "/v1/ws", &ws_headers).await,
        101,
        "/v1/ws behind a trusted proxy"
    );
    ws_headers.push(("sec-websocket-protocol", "graphql-transport-ws"));
    assert_eq!(
        upgrade(&trusting, "/graphql/ws", &ws_headers).await,
        101,
        "/graphql/ws behind a trusted proxy"
    );
    let rfc7239 = [
        (
            "forwarded",
            "for=192.0.2.60;proto=https;host=chat.example.com",
        ),
        ("origin", "https://chat.example.com"),
    ];
    let r = call(&trusting, Method::GET, "/v1/rooms/lobby", &rfc7239, None).await;
    assert_passed(r, "Forwarded (RFC 7239)").await;
    // The proxy says https: a page on http with that host is someone else.
    let downgraded = [
        ("x-forwarded-host", "chat.example.com"),
        ("x-forwarded-proto", "https"),
        ("origin", "http://chat.example.com"),
    ];
    let r = call(&trusting, Method::GET, "/v1/rooms/lobby", &downgraded, None).await;
    assert_forbidden(r, "scheme differs from X-Forwarded-Proto").await;
    trusting.stop().await;

    let plain = TestServer::start(&[]).await;
    let r = call(
        &plain,
        Method::POST,
        "/v1/rooms/lobby/reservations",
        &BEHIND_NGINX,
        Some(json!({"create": {"capacity": 5}})),
    )
    .await;
    assert_forbidden(r, "forwarded headers without --trust-forwarded").await;
    let gql = [
        BEHIND_NGINX[0],
        BEHIND_NGINX[1],
        BEHIND_NGINX[2],
        ("sec-websocket-protocol", "graphql-transport-ws"),
    ];
    assert_eq!(
        upgrade(&plain, "/graphql/ws", &gql).await,
        403,
        "/graphql/ws, untrusted forwarding"
    );
    // A client forging them to pass as the server's own origin gets nowhere.
    let forged = [
        ("x-forwarded-host", "evil.test"),
        ("x-forwarded-proto", "http"),
        ("origin", EVIL),
    ];
    let r = call(&plain, Method::GET, "/v1/rooms/lobby", &forged, None).await;
    assert_forbidden(r, "forged X-Forwarded-Host").await;
    plain.stop().await;
}
