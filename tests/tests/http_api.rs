//! docs/contract.md §1, §2, §4, §7 over real HTTP: auth, validation, reservations,
//! pending rooms, history, sends — and 60 concurrent reserves for 5 seats.

use std::time::Duration;

use parlor_tests::{JWT_SECRET, TestServer, jwt, reserve_raw};
use serde_json::{Value, json};

async fn get(server: &TestServer, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut req = server.http().get(format!("{}{path}", server.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = server
        .http()
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication() {
    let server = TestServer::start(&[]).await;
    let good = jwt(Some("alice"), 60, JWT_SECRET);
    let cases = [
        (None, "no token"),
        (
            Some(jwt(Some("alice"), 60, "wrong-secret")),
            "bad signature",
        ),
        (Some(jwt(Some("alice"), -5, JWT_SECRET)), "expired"),
        (Some(jwt(None, 60, JWT_SECRET)), "no sub"),
        (Some("dev:not valid!".to_owned()), "bad dev user"),
    ];
    for (token, what) in cases {
        let (status, body) = reserve_raw(
            &server,
            token.as_deref(),
            "r1",
            json!({"create": {"capacity": 2}}),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (401, "UNAUTHENTICATED"),
            "{what}: {body}"
        );
        assert!(body["error"]["message"].is_string());
    }
    let (status, body) = reserve_raw(
        &server,
        Some(&good),
        "r1",
        json!({"create": {"capacity": 2}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for key in ["ticket", "room_id", "expires_at"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    server.stop().await;

    // Without --dev-auth a dev token is just a bad token.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let jwt_only = TestServer::start_on(&url, &["--jwt-secret", JWT_SECRET], &[]).await;
    let (status, body) = reserve_raw(
        &jwt_only,
        Some("dev:alice"),
        "r1",
        json!({"create": {"capacity": 2}}),
    )
    .await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
    jwt_only.stop().await;

    // With neither, the server refuses to start and says why.
    let config =
        parlor_server::Config::from_args(["parlor-server", "--database-url", &url]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = parlor_server::serve(config, listener, async {})
        .await
        .unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("--jwt-secret") && said.contains("--dev-auth"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_and_room_lifecycle() {
    let server = TestServer::start(&["--max-capacity", "50", "--reservation-ttl", "3s"]).await;
    let (ann, bob) = ("dev:ann", "dev:bob");
    let reserve = |token: &'static str, room: &'static str, body: Value| {
        let server = &server;
        async move { reserve_raw(server, Some(token), room, body).await }
    };

    for (room, body, what) in [
        ("bad.id", json!({}), "dot in room id"),
        ("ok", json!({"create": {"capacity": 0}}), "capacity 0"),
        (
            "ok",
            json!({"create": {"capacity": 51}}),
            "over max capacity",
        ),
        (
            "ok",
            json!({"create": {"capacity": 2, "title": "t".repeat(201)}}),
            "long title",
        ),
        (
            "ok",
            json!({"create": {"title": "no capacity"}}),
            "missing capacity",
        ),
        ("ok", json!({"nonsense": 1}), "unknown field"),
    ] {
        let (status, v) = reserve(ann, room, body).await;
        assert_eq!((status, code(&v)), (400, "INVALID_INPUT"), "{what}: {v}");
    }
    let long = "r".repeat(65);
    let (status, v) = reserve_raw(&server, Some(ann), &long, json!({})).await;
    assert_eq!((status, code(&v)), (400, "INVALID_INPUT"));
    let (status, v) = server
        .http()
        .post(format!("{}/v1/rooms/x/reservations", server.base))
        .bearer_auth(ann)
        .body("{not json")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(code(&v.json::<Value>().await.unwrap()), "INVALID_INPUT");

    // Absent without create; then pending; another user; expiry.
    let (status, v) = reserve(ann, "lobby", json!({})).await;
    assert_eq!((status, code(&v)), (404, "ROOM_NOT_FOUND"));
    let (status, _) = reserve(
        ann,
        "lobby",
        json!({"create": {"capacity": 1, "title": "Lobby"}}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v) = reserve(bob, "lobby", json!({"create": {"capacity": 5}})).await;
    assert_eq!((status, code(&v)), (409, "ROOM_PENDING"));
    let (status, v) = get(&server, Some(ann), "/v1/rooms/lobby").await;
    assert_eq!(
        (status, code(&v)),
        (404, "ROOM_NOT_FOUND"),
        "pending is not a room yet"
    );
    let (status, _) = reserve(ann, "lobby", json!({})).await;
    assert_eq!(status, 201, "the creator again: a fresh ticket");
    tokio::time::sleep(Duration::from_millis(3600)).await;
    // The pending room is gone: bob may create it now.
    let bob_ticket = server
        .client("bob")
        .reserve("lobby", Some(1))
        .await
        .unwrap();
    let mut bob_socket = server.client("bob").connect().await.unwrap();
    let joined = bob_socket.join(&bob_ticket.ticket, None).await.unwrap();
    assert_eq!(
        (joined.capacity, joined.occupancy, joined.last_seq),
        (1, 1, 1)
    );
    let (status, v) = get(&server, Some(ann), "/v1/rooms/lobby").await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"room_id": "lobby", "title": null, "capacity": 1, "occupancy": 1, "last_seq": 1,
            "first_seq": 1, "retention": null, "private": false, "closed": false,
            "last_read_seq": 0, "unread": 0, "can_moderate": false})
    );
    let (status, v) = reserve(ann, "lobby", json!({})).await;
    assert_eq!((status, code(&v)), (409, "ROOM_FULL"));
    let (status, v) = get(&server, Some(ann), "/v1/rooms/nowhere").await;
    assert_eq!((status, code(&v)), (404, "ROOM_NOT_FOUND"));
    let (status, _) = get(&server, None, "/v1/rooms/lobby").await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_send_and_history_paging() {
    let server = TestServer::start(&["--max-message-bytes", "32"]).await;
    let ann = server.client("ann");
    let t = ann.reserve("hist", Some(3)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&t.ticket, None).await.unwrap();

    for i in 1..=30 {
        let e = ann
            .send("hist", &format!("c{i}"), &format!("m{i}"))
            .await
            .unwrap();
        assert_eq!(e.seq, i + 1, "after ann's join");
    }
    let again = ann.send("hist", "c5", "other body").await.unwrap();
    assert_eq!(
        (again.seq, again.body.as_deref()),
        (6, Some("m5")),
        "idempotent by client_id"
    );

    let seqs = |v: &Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let (s, v) = get(
        &server,
        Some("dev:ann"),
        "/v1/rooms/hist/messages?after_seq=10&limit=5",
    )
    .await;
    assert_eq!((s, seqs(&v)), (200, vec![11, 12, 13, 14, 15]));
    let (_, v) = get(
        &server,
        Some("dev:ann"),
        "/v1/rooms/hist/messages?before_seq=10&limit=3",
    )
    .await;
    assert_eq!(seqs(&v), vec![7, 8, 9], "scrolling back");
    let (_, v) = get(&server, Some("dev:ann"), "/v1/rooms/hist/messages?limit=2").await;
    assert_eq!(seqs(&v), vec![30, 31], "latest");
    let (_, v) = get(&server, Some("dev:ann"), "/v1/rooms/hist/messages").await;
    assert_eq!(seqs(&v).len(), 31, "default limit 100");
    let entry = &v["messages"][1];
    for key in [
        "room_id",
        "seq",
        "id",
        "kind",
        "sender",
        "client_id",
        "body",
        "created_at",
    ] {
        assert!(!entry[key].is_null(), "{key} in {entry}");
    }
    assert_eq!(v["messages"][0]["kind"], "join");
    assert!(entry["created_at"].as_str().unwrap().ends_with('Z'));
    for q in ["limit=0", "limit=501", "after_seq=-1", "after_seq=x"] {
        let (s, v) = get(
            &server,
            Some("dev:ann"),
            &format!("/v1/rooms/hist/messages?{q}"),
        )
        .await;
        assert_eq!((s, code(&v)), (400, "INVALID_INPUT"), "{q}");
    }

    // Not a member: no seat → history and send refused.
    let (s, v) = get(&server, Some("dev:zed"), "/v1/rooms/hist/messages").await;
    assert_eq!((s, code(&v)), (403, "NOT_A_MEMBER"));
    let (s, v) = post(
        &server,
        "dev:zed",
        "/v1/rooms/hist/messages",
        json!({"client_id": "z", "body": "hi"}),
    )
    .await;
    assert_eq!((s, code(&v)), (403, "NOT_A_MEMBER"));

    // Bodies.
    for (body, status, expected) in [
        (
            json!({"client_id": "big", "body": "x".repeat(33)}),
            413,
            "MESSAGE_TOO_LARGE",
        ),
        (
            json!({"client_id": "ws", "body": "   "}),
            400,
            "INVALID_INPUT",
        ),
        (json!({"client_id": "", "body": "hi"}), 400, "INVALID_INPUT"),
        (json!({"body": "no client id"}), 400, "INVALID_INPUT"),
    ] {
        let (s, v) = post(&server, "dev:ann", "/v1/rooms/hist/messages", body.clone()).await;
        assert_eq!((s, code(&v)), (status, expected), "{body}");
    }
    let (s, v) = post(
        &server,
        "dev:ann",
        "/v1/rooms/hist/messages",
        json!({"client_id": "ok", "body": "x".repeat(32)}),
    )
    .await;
    assert_eq!((s, v["seq"].as_u64()), (201, Some(32)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reserves_admit_exactly_the_free_seats() {
    let server = TestServer::start(&[]).await;
    let owner = server.client("owner");
    for round in 0..50 {
        let room = format!("race{round}");
        // The owner creates and keeps a seat, so 4 of the 5 are free.
        let t = owner.reserve(&room, Some(5)).await.unwrap();
        let mut socket = owner.connect().await.unwrap();
        socket.join(&t.ticket, None).await.unwrap();

        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let client = server.client(&format!("u{i}"));
                let room = room.clone();
                tokio::spawn(async move {
                    client
                        .reserve(&room, None)
                        .await
                        .map_err(|e| e.code().map(str::to_owned))
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(code) => assert_eq!(code.as_deref(), Some("ROOM_FULL")),
            }
        }
        assert_eq!(admitted, 4, "round {round}: exactly the free seats");
        let (_, info) = get(&server, Some("dev:owner"), &format!("/v1/rooms/{room}")).await;
        assert_eq!(info["occupancy"], 5);
        socket.close(1000).await.unwrap();
    }
    server.stop().await;
}

/// A raw request; the status, the content type and the body as JSON (Null
/// when it is not JSON).
async fn raw(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, String, Value) {
    let mut req = server
        .http()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth("dev:ann");
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        kind,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_a_contract_json_error() {
    use reqwest::Method;
    let server = TestServer::start(&[]).await;
    let ann = server.client("ann");
    let t = ann.reserve("edge", Some(3)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&t.ticket, None).await.unwrap();

    // (method, path, body, status, code, what)
    type Case = (
        Method,
        &'static str,
        Option<Vec<u8>>,
        u16,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        // Path: a room id that does not percent-decode to UTF-8.
        (
            Method::POST,
            "/v1/rooms/a%FF/reservations",
            Some(b"{}".to_vec()),
            400,
            "INVALID_INPUT",
            "path, reserve",
        ),
        (
            Method::GET,
            "/v1/rooms/a%FF",
            None,
            400,
            "INVALID_INPUT",
            "path, room",
        ),
        (
            Method::GET,
            "/v1/rooms/a%FF/messages",
            None,
            400,
            "INVALID_INPUT",
            "path, history",
        ),
        (
            Method::POST,
            "/v1/rooms/a%FF/messages",
            Some(br#"{"client_id":"c","body":"b"}"#.to_vec()),
            400,
            "INVALID_INPUT",
            "path, send",
        ),
        // Query.
        (
            Method::GET,
            "/v1/rooms/edge/messages?after_seq=%FF",
            None,
            400,
            "INVALID_INPUT",
            "query, not UTF-8",
        ),
        (
            Method::GET,
            "/v1/rooms/edge/messages?after_seq=abc",
            None,
            400,
            "INVALID_INPUT",
            "query, not a number",
        ),
        (
            Method::GET,
            "/v1/rooms/edge/messages?limit=-1",
            None,
            400,
            "INVALID_INPUT",
            "query, negative limit",
        ),
        (
            Method::GET,
            "/v1/rooms/edge/messages?limit=501",
            None,
            400,
            "INVALID_INPUT",
            "query, limit too big",
        ),
        // Body.
        (
            Method::POST,
            "/v1/rooms/edge/reservations",
            Some(br#"{"create": "#.to_vec()),
            400,
            "INVALID_INPUT",
            "body, truncated JSON",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/messages",
            Some(vec![0xFF, 0xFE]),
            400,
            "INVALID_INPUT",
            "body, not UTF-8",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/messages",
            Some(br#"{"client_id": 5}"#.to_vec()),
            400,
            "INVALID_INPUT",
            "body, wrong shape",
        ),
        // Every body is an object: serde takes a struct from an array too
        // (Schemathesis found `[]` accepted as `{}`).
        (
            Method::PUT,
            "/v1/rooms/edge/invites/bob",
            Some(b"[]".to_vec()),
            400,
            "INVALID_INPUT",
            "invite body, an array",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/reservations",
            Some(b" [null]".to_vec()),
            400,
            "INVALID_INPUT",
            "reserve body, an array",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/reservations",
            Some(br#"{"create": [2]}"#.to_vec()),
            400,
            "INVALID_INPUT",
            "create, an array",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/messages",
            Some(br#"["c-1", "hi"]"#.to_vec()),
            400,
            "INVALID_INPUT",
            "send body, an array",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/reservations",
            Some(b"null".to_vec()),
            400,
            "INVALID_INPUT",
            "reserve body, null",
        ),
        (
            Method::POST,
            "/v1/rooms/edge/messages",
            Some(vec![b' '; 3 * 1024 * 1024]),
            413,
            "MESSAGE_TOO_LARGE",
            "body over the limit",
        ),
        // Method.
        (
            Method::PUT,
            "/v1/rooms/edge",
            None,
            405,
            "INVALID_INPUT",
            "method",
        ),
    ];
    for (method, path, body, status, want, what) in cases {
        let (got, kind, v) = raw(&server, method, path, body).await;
        assert_eq!((got, code(&v)), (status, want), "{what}: {kind} {v}");
        assert!(kind.starts_with("application/json"), "{what}: {kind}");
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_seqs_outside_0_to_2_pow_63_minus_1_are_invalid_input() {
    let server = TestServer::start(&[]).await;
    let ann = server.client("ann");
    let t = ann.reserve("range", Some(3)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&t.ticket, None).await.unwrap();
    for i in 2..=6 {
        let e = ann.send("range", &format!("c{i}"), "m").await.unwrap();
        assert_eq!(e.seq, i);
    }
    let count = |v: &Value| v["messages"].as_array().map_or(0, Vec::len);
    let at = |q: &str| format!("/v1/rooms/range/messages?{q}");
    let refused = [
        "after_seq=9223372036854775808",
        "before_seq=9223372036854775808",
        "after_seq=18446744073709551615",
        "after_seq=18446744073709551616",
        "after_seq=-1",
        "before_seq=-1",
        // Empty is no integer either (Schemathesis found `limit=` read as
        // absent, against the OpenAPI document's `integer`).
        "after_seq=",
        "before_seq=",
        "limit=",
        "limit=1.5",
    ];
    for q in refused {
        let (s, v) = get(&server, Some("dev:ann"), &at(q)).await;
        assert_eq!((s, code(&v)), (400, "INVALID_INPUT"), "{q}: {v}");
    }
    let accepted = [
        ("after_seq=9223372036854775807", 0),
        ("before_seq=9223372036854775807", 6),
        ("after_seq=0", 6),
        ("before_seq=0", 0),
    ];
    for (q, n) in accepted {
        let (s, v) = get(&server, Some("dev:ann"), &at(q)).await;
        assert_eq!((s, count(&v)), (200, n), "{q}: {v}");
    }
    server.stop().await;
}

/// `GET /v1/openapi.json` answers without a token, as JSON, with the
/// document `docs/openapi.json` holds (`parlor_ws::openapi_json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_without_a_token() {
    let server = TestServer::start(&[]).await;
    let r = server
        .http()
        .get(format!("{}/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), parlor_ws::openapi_json());
    server.stop().await;
}
