//! Who may do what (docs/contract.md §2, "Who may do what"), over real
//! clients: HTTP, the raw WebSocket and GraphQL against the real server.
//! The `claims` policy with JWT grants, `open` history rules, private rooms
//! and invitations, and the per-user limits shared by every transport.

use parlor_tests::{JWT_SECRET, RawSocket, TestServer, gql_code, gql_http, next_json, send, until};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// An HS256 JWT for `sub`, valid for an hour, carrying `rooms` grants.
fn token(sub: &str, rooms: Value) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": sub, "exp": exp, "rooms": rooms}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// One HTTP call: (status, JSON body or null, `Retry-After` if any).
async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut req = server
        .http()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

async fn reserve(server: &TestServer, token: &str, room: &str, create: Value) -> (u16, Value) {
    let body = if create.is_null() {
        json!({})
    } else {
        json!({ "create": create })
    };
    let path = format!("/v1/rooms/{room}/reservations");
    let (status, body, _) = call(server, reqwest::Method::POST, &path, token, Some(body)).await;
    (status, body)
}

async fn history(server: &TestServer, token: &str, room: &str) -> (u16, Value) {
    let path = format!("/v1/rooms/{room}/messages?after_seq=0");
    let (status, body, _) = call(server, reqwest::Method::GET, &path, token, None).await;
    (status, body)
}

async fn facts(server: &TestServer, token: &str, room: &str) -> (u16, Value) {
    let path = format!("/v1/rooms/{room}");
    let (status, body, _) = call(server, reqwest::Method::GET, &path, token, None).await;
    (status, body)
}

/// A raw socket that said hello with `token`.
async fn socket(server: &TestServer, token: &str) -> RawSocket {
    let mut ws = server.raw().await;
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

/// Reserves (201 expected) and joins on `ws`; returns `joined`.
async fn join(
    server: &TestServer,
    ws: &mut RawSocket,
    token: &str,
    room: &str,
    create: Value,
) -> Value {
    let (status, body) = reserve(server, token, room, create).await;
    assert_eq!(status, 201, "reserve {room}: {body}");
    send(ws, json!({"type": "join", "ticket": body["ticket"]})).await;
    until(ws, "joined").await.0
}

/// A send on the raw socket: the `ack` or `error` frame that answers it.
async fn ws_send(ws: &mut RawSocket, room: &str, client_id: &str) -> Value {
    send(
        ws,
        json!({"type": "send", "room_id": room, "client_id": client_id, "body": "hi"}),
    )
    .await;
    loop {
        let frame = next_json(ws).await;
        if frame["type"] == "ack" || frame["type"] == "error" {
            return frame;
        }
    }
}

async fn gql_send(server: &TestServer, token: &str, room: &str, client_id: &str) -> Value {
    gql_http(
        server,
        Some(token),
        "mutation($r: ID!, $c: String!) { sendMessage(roomId: $r, clientId: $c, body: \"hi\") { seq } }",
        json!({"r": room, "c": client_id}),
    )
    .await
}

fn texts_by(history: &Value, user: &str) -> usize {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "text" && e["sender"] == user)
        .count()
}

#[tokio::test]
async fn claims_grant_rooms_and_actions_on_every_transport() {
    let server = TestServer::start(&["--authorization", "claims"]).await;
    let cara = token(
        "cara",
        json!([{"match": "team-*", "allow": ["create", "join", "read", "send"]}]),
    );
    let bob = token(
        "bob",
        json!([
            {"match": "team-*", "allow": ["join", "read"]},
            {"match": "dm-bob-carol", "allow": ["create", "join", "read", "send"]}
        ]),
    );
    let eve = token("eve", json!([]));

    let mut cara_ws = socket(&server, &cara).await;
    join(
        &server,
        &mut cara_ws,
        &cara,
        "team-a",
        json!({"capacity": 10}),
    )
    .await;

    // bob may join and read team-a …
    let mut bob_ws = socket(&server, &bob).await;
    join(&server, &mut bob_ws, &bob, "team-a", Value::Null).await;
    let (status, page) = history(&server, &bob, "team-a").await;
    assert_eq!(status, 200, "{page}");
    let (status, _) = facts(&server, &bob, "team-a").await;
    assert_eq!(status, 200);

    // … but not send, on any transport, and nothing is appended.
    let refused = ws_send(&mut bob_ws, "team-a", "w1").await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("send"));
    let path = "/v1/rooms/team-a/messages";
    let (status, body, _) = call(
        &server,
        reqwest::Method::POST,
        path,
        &bob,
        Some(json!({"client_id": "h1", "body": "hi"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let answer = gql_send(&server, &bob, "team-a", "g1").await;
    assert_eq!(gql_code(&answer), "FORBIDDEN", "{answer}");
    let (_, page) = history(&server, &cara, "team-a").await;
    assert_eq!(texts_by(&page, "bob"), 0, "nothing appended: {page}");
    // cara, granted send, can.
    assert_eq!(ws_send(&mut cara_ws, "team-a", "c1").await["type"], "ack");

    // In his direct room bob may create, join and send.
    join(
        &server,
        &mut bob_ws,
        &bob,
        "dm-bob-carol",
        json!({"capacity": 2}),
    )
    .await;
    assert_eq!(
        ws_send(&mut bob_ws, "dm-bob-carol", "d1").await["type"],
        "ack"
    );
    assert!(gql_send(&server, &bob, "dm-bob-carol", "d2").await["errors"].is_null());

    // Without a grant: FORBIDDEN on reserve, history and the room's facts.
    let (status, body) = reserve(&server, &eve, "team-a", Value::Null).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert_eq!(history(&server, &eve, "team-a").await.0, 403);
    assert_eq!(facts(&server, &eve, "team-a").await.0, 403);
    // Creating needs `create`.
    let (status, body) = reserve(&server, &bob, "team-b", json!({"capacity": 2})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("create")
    );
}

#[tokio::test]
async fn open_history_needs_a_member_not_a_reservation() {
    let server = TestServer::start(&[]).await;
    let (ann, bob) = ("dev:ann", "dev:bob");
    let mut ann_ws = socket(&server, ann).await;
    join(&server, &mut ann_ws, ann, "hist", json!({"capacity": 5})).await;

    let (status, ticket) = reserve(&server, bob, "hist", Value::Null).await;
    assert_eq!(status, 201);
    let (status, body) = history(&server, bob, "hist").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("NOT_A_MEMBER"))
    );

    let mut bob_ws = socket(&server, bob).await;
    send(
        &mut bob_ws,
        json!({"type": "join", "ticket": ticket["ticket"]}),
    )
    .await;
    until(&mut bob_ws, "joined").await;
    let (status, page) = history(&server, bob, "hist").await;
    assert_eq!(status, 200, "{page}");
    // A room that does not exist at all: ROOM_NOT_FOUND, not NOT_A_MEMBER.
    let (status, body) = history(&server, bob, "nowhere").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ROOM_NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_private_room_does_not_exist_for_strangers_and_admits_the_invited() {
    let server = TestServer::start(&[]).await;
    let (olga, sam, tia) = ("dev:olga", "dev:sam", "dev:tia");
    let mut olga_ws = socket(&server, olga).await;
    join(
        &server,
        &mut olga_ws,
        olga,
        "secret",
        json!({"capacity": 5, "private": true}),
    )
    .await;

    // To a stranger it looks exactly like a room that does not exist.
    for room in ["secret", "absent"] {
        let (status, body) = reserve(&server, sam, room, Value::Null).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("ROOM_NOT_FOUND")),
            "{room}"
        );
        let (status, body) = facts(&server, sam, room).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("ROOM_NOT_FOUND")),
            "{room}"
        );
        let (status, body) = history(&server, sam, room).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("ROOM_NOT_FOUND")),
            "{room}"
        );
        let room_query = gql_http(
            &server,
            Some(sam),
            "query($r: ID!) { room(id: $r) { id } }",
            json!({"r": room}),
        )
        .await;
        assert_eq!(room_query, json!({"data": {"room": null}}), "{room}");
    }
    // The owner sees it.
    assert_eq!(facts(&server, olga, "secret").await.0, 200);

    // A stranger cannot invite; the owner can (empty body = {}).
    let invite = "/v1/rooms/secret/invites/sam";
    let (status, _, _) = call(&server, reqwest::Method::PUT, invite, sam, None).await;
    assert_eq!(status, 404);
    let (status, body, _) = call(&server, reqwest::Method::PUT, invite, olga, None).await;
    assert_eq!(status, 204, "{body}");
    let mut sam_ws = socket(&server, sam).await;
    join(&server, &mut sam_ws, sam, "secret", Value::Null).await;
    assert_eq!(ws_send(&mut sam_ws, "secret", "s1").await["type"], "ack");
    assert_eq!(history(&server, sam, "secret").await.0, 200);

    // Withdrawn: the next reserve is refused as if the room did not exist.
    let (status, _, _) = call(
        &server,
        reqwest::Method::DELETE,
        invite,
        olga,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = reserve(&server, sam, "secret", Value::Null).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("ROOM_NOT_FOUND"))
    );

    // GraphQL invites the same way.
    let invited = gql_http(
        &server,
        Some(olga),
        "mutation { inviteToRoom(roomId: \"secret\", userId: \"tia\") }",
        json!({}),
    )
    .await;
    assert_eq!(invited, json!({"data": {"inviteToRoom": true}}));
    assert_eq!(reserve(&server, tia, "secret", Value::Null).await.0, 201);
    let withdrawn = gql_http(
        &server,
        Some(olga),
        "mutation { uninviteFromRoom(roomId: \"secret\", userId: \"tia\") }",
        json!({}),
    )
    .await;
    assert_eq!(withdrawn, json!({"data": {"uninviteFromRoom": true}}));
}

#[tokio::test]
async fn one_set_of_limits_for_every_transport() {
    let server = TestServer::start(&[
        "--rate-limit",
        "5",
        "--rate-burst",
        "10",
        "--reservation-rate",
        "1",
        "--reservation-burst",
        "3",
        "--create-rate",
        "1",
        "--create-burst",
        "2",
    ])
    .await;
    let (ann, bob) = ("dev:ann", "dev:bob");
    let mut ann_ws = socket(&server, ann).await;
    join(&server, &mut ann_ws, ann, "busy", json!({"capacity": 5})).await;

    // 100 GraphQL sends in a burst: the bucket's 10, then RATE_LIMITED with
    // a time to wait.
    let answers = futures_util::future::join_all((0..100).map(|i| {
        let server = &server;
        async move { gql_send(server, ann, "busy", &format!("g{i}")).await }
    }))
    .await;
    let limited: Vec<&Value> = answers
        .iter()
        .filter(|a| gql_code(a) == "RATE_LIMITED")
        .collect();
    let sent = answers.iter().filter(|a| a["errors"].is_null()).count();
    assert!(
        (10..=12).contains(&sent),
        "about the burst got through: {sent}"
    );
    assert_eq!(sent + limited.len(), 100);
    let wait = limited[0]["errors"][0]["extensions"]["retryAfterMs"]
        .as_u64()
        .expect("retryAfterMs");
    assert!((1..=200).contains(&wait), "{wait}");
    // The same limit on the raw socket: 20 pipelined sends cannot all pass.
    for i in 0..20 {
        send(
            &mut ann_ws,
            json!({"type": "send", "room_id": "busy", "client_id": format!("w{i}"), "body": "hi"}),
        )
        .await;
    }
    let mut refused = Vec::new();
    let mut answered = 0;
    while answered < 20 {
        let frame = next_json(&mut ann_ws).await;
        match frame["type"].as_str() {
            Some("ack") => answered += 1,
            Some("error") => {
                answered += 1;
                refused.push(frame);
            }
            _ => {}
        }
    }
    assert!(!refused.is_empty(), "some of 20 sends at 5/s are refused");
    assert_eq!(refused[0]["code"], "RATE_LIMITED", "{}", refused[0]);
    assert!(refused[0]["retry_after_ms"].as_u64().unwrap() > 0);

    // Reservations: 3 at once (the create above was ann's), then 429 on
    // HTTP with Retry-After, and on GraphQL too (one bucket).
    for _ in 0..3 {
        assert_eq!(reserve(&server, bob, "busy", Value::Null).await.0, 201);
    }
    let path = "/v1/rooms/busy/reservations";
    let (status, body, retry) =
        call(&server, reqwest::Method::POST, path, bob, Some(json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("RATE_LIMITED"))
    );
    assert!(body["error"]["retry_after_ms"].as_u64().unwrap() > 0);
    assert_eq!(retry.as_deref(), Some("1"));
    let answer = gql_http(
        &server,
        Some(bob),
        "mutation { reserveSeat(roomId: \"busy\") { ticket } }",
        json!({}),
    )
    .await;
    assert_eq!(gql_code(&answer), "RATE_LIMITED", "{answer}");

    // Room creations: 2 at once, then RATE_LIMITED (cid has reservations
    // to spare, so the creation bucket is what refuses).
    let cid = "dev:cid";
    for room in ["c1", "c2"] {
        assert_eq!(
            reserve(&server, cid, room, json!({"capacity": 2})).await.0,
            201
        );
    }
    let (status, body) = reserve(&server, cid, "c3", json!({"capacity": 2})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("RATE_LIMITED"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("room creations")
    );
}

/// The integrator's backend for `--authorization hook`: ann may do
/// everything, bob may join and read; answers hold for a minute. Counts each
/// (user, room, action) it is asked; `down` makes it hang.
#[derive(Default)]
struct Hook {
    asked: Mutex<HashMap<String, usize>>,
    down: AtomicBool,
}

async fn hook_answer(
    axum::extract::State(hook): axum::extract::State<Arc<Hook>>,
    axum::Json(q): axum::Json<Value>,
) -> axum::Json<Value> {
    if hook.down.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let key = format!("{} {} {}", q["user"], q["room_id"], q["action"]);
    *hook.asked.lock().unwrap().entry(key).or_default() += 1;
    let allow = q["user"] == "ann"
        || (q["user"] == "bob" && ["join", "read"].contains(&q["action"].as_str().unwrap()));
    axum::Json(json!({"allow": allow, "ttl_ms": 60_000}))
}

#[tokio::test]
async fn a_hook_decides_once_per_ttl_and_fails_closed() {
    let hook = Arc::new(Hook::default());
    let app = axum::Router::new()
        .route("/authz", axum::routing::post(hook_answer))
        .with_state(Arc::clone(&hook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/authz", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = TestServer::start(&[
        "--authorization",
        "hook",
        "--authz-hook-url",
        &url,
        "--authz-hook-timeout",
        "300ms",
    ])
    .await;
    let (ann, bob, cat) = ("dev:ann", "dev:bob", "dev:cat");
    let mut ann_ws = socket(&server, ann).await;
    join(&server, &mut ann_ws, ann, "hooked", json!({"capacity": 5})).await;

    let mut bob_ws = socket(&server, bob).await;
    assert_eq!(reserve(&server, bob, "hooked", Value::Null).await.0, 201);
    join(&server, &mut bob_ws, bob, "hooked", Value::Null).await;
    assert_eq!(history(&server, bob, "hooked").await.0, 200);
    assert_eq!(history(&server, bob, "hooked").await.0, 200);
    for i in 0..5 {
        let refused = ws_send(&mut bob_ws, "hooked", &format!("b{i}")).await;
        assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    }
    // Each question once within its ttl, however often it came up: ann
    // created the room (create; then she is its owner and never asked),
    // bob joined twice and committed (join), read twice (read), sent five
    // times (send, asked once at commit).
    let asked = hook.asked.lock().unwrap().clone();
    let expected: HashMap<String, usize> = [
        "\"ann\" \"hooked\" \"create\"",
        "\"bob\" \"hooked\" \"join\"",
        "\"bob\" \"hooked\" \"read\"",
        "\"bob\" \"hooked\" \"send\"",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), 1))
    .collect();
    assert_eq!(asked, expected);

    // The backend stops answering: every new question is UNAVAILABLE and
    // nothing is admitted.
    hook.down.store(true, Ordering::SeqCst);
    let (status, body) = reserve(&server, cat, "hooked", Value::Null).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("UNAVAILABLE"))
    );
    let (status, body) = reserve(&server, cat, "elsewhere", json!({"capacity": 2})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("UNAVAILABLE"))
    );
    let (_, room) = facts(&server, ann, "hooked").await;
    assert_eq!(room["occupancy"], 2, "cat holds no seat: {room}");
}
