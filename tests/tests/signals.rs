//! docs/contract.md §2 "Signals" through the real server: a `signal` sent
//! on a raw WebSocket, with GraphQL's `sendSignal` and over HTTP reaches
//! the other members on every transport — raw `signal` frames, GraphQL
//! `Signal` events — and never the sender; it is not stored; a refused one
//! is an error frame naming the room and the socket stays up; signals have
//! their own rate bucket.

use std::time::Duration;

use parlor_tests::{
    RawSocket, TestServer, gql_http, gql_socket_as, gql_ticket, join_raw, next_json, send, until,
};
use serde_json::{Value, json};

const JOIN: &str = "subscription($t: String!) { joinRoom(ticket: $t) { __typename \
    ... on Joined { roomId } \
    ... on Entry { seq kind sender body } \
    ... on Signal { roomId userId name data at } } }";
const SIGNAL: &str =
    "mutation($r: ID!, $n: String!, $d: JSON) { sendSignal(roomId: $r, name: $n, data: $d) }";

/// The next GraphQL `joinRoom` event that is not an entry.
async fn next_signal(ws: &mut RawSocket) -> Value {
    loop {
        let m = next_json(ws).await;
        assert_eq!(m["type"], "next", "{m}");
        let event = m["payload"]["data"]["joinRoom"].clone();
        if event["__typename"] != "Entry" {
            return event;
        }
    }
}

/// The next raw frame that is not an entry.
async fn next_non_entry(ws: &mut RawSocket) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["type"] != "entry" {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_cross_transports_to_the_others_only_and_are_never_stored() {
    // Bursts of 10 and no refill within the test, so the count is exact.
    let server = TestServer::start(&["--signal-rate", "0.0001"]).await;
    server
        .client("alice")
        .reserve("chat", Some(10))
        .await
        .expect("create");
    let mut alice = server.raw_as("alice").await;
    join_raw(&server, &mut alice, "alice", "chat", None).await;
    let mut bob = server.raw_as("bob").await;
    join_raw(&server, &mut bob, "bob", "chat", None).await;
    let ticket = gql_ticket(&server, "carol", "chat", None).await;
    let mut carol = gql_socket_as(&server, "carol").await;
    send(
        &mut carol,
        json!({"id": "1", "type": "subscribe", "payload": {"query": JOIN, "variables": {"t": ticket}}}),
    )
    .await;
    assert_eq!(next_signal(&mut carol).await["__typename"], "Joined");
    // Everyone has seen the joins before anyone signals.
    let last_seq = |room: Value| room["last_seq"].as_u64().unwrap();
    let head = last_seq(server.client("alice").room("chat").await.unwrap());
    for ws in [&mut alice, &mut bob] {
        loop {
            let (entry, _) = until(ws, "entry").await;
            if entry["seq"] == head {
                break;
            }
        }
    }

    // Raw WebSocket → raw WebSocket and GraphQL.
    send(
        &mut bob,
        json!({"type": "signal", "room_id": "chat", "name": "typing"}),
    )
    .await;
    let got = next_non_entry(&mut alice).await;
    assert_eq!(
        (&got["type"], &got["room_id"], &got["user_id"], &got["name"]),
        (
            &json!("signal"),
            &json!("chat"),
            &json!("bob"),
            &json!("typing")
        ),
        "{got}"
    );
    assert!(got.get("data").is_none() && got["at"].is_string(), "{got}");
    let got = next_signal(&mut carol).await;
    assert_eq!(
        (
            &got["__typename"],
            &got["userId"],
            &got["name"],
            &got["data"]
        ),
        (
            &json!("Signal"),
            &json!("bob"),
            &json!("typing"),
            &Value::Null
        ),
        "{got}"
    );

    // GraphQL `sendSignal` → raw WebSockets.
    let sent = gql_http(
        &server,
        Some("dev:carol"),
        SIGNAL,
        json!({"r": "chat", "n": "x-reaction", "d": {"emoji": "👍"}}),
    )
    .await;
    assert_eq!(sent["data"]["sendSignal"], true, "{sent}");
    for ws in [&mut alice, &mut bob] {
        let got = next_non_entry(ws).await;
        assert_eq!(
            (&got["user_id"], &got["name"], &got["data"]),
            (
                &json!("carol"),
                &json!("x-reaction"),
                &json!({"emoji": "👍"})
            ),
            "{got}"
        );
    }

    // HTTP → GraphQL and raw; the sender's own socket gets nothing.
    let posted = server
        .http()
        .post(format!("{}/v1/rooms/chat/signals", server.base))
        .bearer_auth("dev:alice")
        .json(&json!({"name": "stopped_typing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 204);
    assert_eq!(next_signal(&mut carol).await["userId"], "alice");
    assert_eq!(next_non_entry(&mut bob).await["user_id"], "alice");

    // Refusals: an error frame naming the room; the socket stays up.
    let oversized = "x".repeat(300);
    for (frame, code) in [
        (
            json!({"type": "signal", "room_id": "chat", "name": "yelling"}),
            "INVALID_INPUT",
        ),
        (
            json!({"type": "signal", "room_id": "chat", "name": "typing", "data": {"pad": oversized}}),
            "MESSAGE_TOO_LARGE",
        ),
        (
            json!({"type": "signal", "room_id": "elsewhere", "name": "typing"}),
            "NOT_A_MEMBER",
        ),
    ] {
        send(&mut bob, frame).await;
        let (err, _) = until(&mut bob, "error").await;
        assert_eq!(err["code"], code, "{err}");
        assert!(err["room_id"].is_string(), "{err}");
    }
    // Its own bucket of 10: bob took 2 (his `typing`, and the signal to a
    // room he is not in, refused after it was counted, as a send is), so 8
    // of these go and 2 are RATE_LIMITED with the wait.
    for _ in 0..10 {
        send(
            &mut bob,
            json!({"type": "signal", "room_id": "chat", "name": "typing"}),
        )
        .await;
    }
    send(&mut bob, json!({"type": "ping"})).await;
    let (_, before_pong) = until(&mut bob, "pong").await;
    let limited: Vec<&Value> = before_pong
        .iter()
        .filter(|f| f["type"] == "error")
        .collect();
    assert_eq!(limited.len(), 2, "{before_pong:?}");
    for err in limited {
        assert_eq!(err["code"], "RATE_LIMITED", "{err}");
        assert!(err["retry_after_ms"].as_u64().is_some(), "{err}");
    }
    // Sends have a bucket of their own.
    server
        .client("bob")
        .send("chat", "b-1", "hi")
        .await
        .unwrap();

    // Nothing was stored: the log holds the joins and bob's text only.
    let info = server.client("alice").room("chat").await.unwrap();
    assert_eq!(last_seq(info), head + 1);
    // alice's socket: the signals bob managed to send, then the text.
    let mut rest = Vec::new();
    while let Ok(frame) =
        tokio::time::timeout(Duration::from_millis(500), next_json(&mut alice)).await
    {
        rest.push(frame);
    }
    assert!(
        rest.iter()
            .all(|f| f["type"] == "signal" || f["type"] == "entry"),
        "{rest:?}"
    );
    assert_eq!(
        rest.iter().filter(|f| f["type"] == "signal").count(),
        8,
        "the 8 within bob's burst: {rest:?}"
    );
    assert!(
        rest.iter().all(|f| f["user_id"] != "alice"),
        "never her own: {rest:?}"
    );
    server.stop().await;
}

/// Twenty members, ten on raw WebSockets and ten on GraphQL subscriptions;
/// one types: the nineteen others get it promptly (a generous bound here;
/// `parlor-bench signal` measures the latency), the typist does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_types_and_nineteen_others_see_it_promptly() {
    let server = TestServer::start(&[]).await;
    server
        .client("m0")
        .reserve("big", Some(20))
        .await
        .expect("create");
    let mut raws = Vec::new();
    for i in 0..10 {
        let user = format!("m{i}");
        let mut ws = server.raw_as(&user).await;
        join_raw(&server, &mut ws, &user, "big", None).await;
        raws.push(ws);
    }
    let mut gqls = Vec::new();
    for i in 10..20 {
        let user = format!("m{i}");
        let ticket = gql_ticket(&server, &user, "big", None).await;
        let mut ws = gql_socket_as(&server, &user).await;
        send(
            &mut ws,
            json!({"id": "1", "type": "subscribe", "payload": {"query": JOIN, "variables": {"t": ticket}}}),
        )
        .await;
        assert_eq!(next_signal(&mut ws).await["__typename"], "Joined");
        gqls.push(ws);
    }
    let mut typist = raws.remove(0);
    let started = std::time::Instant::now();
    send(
        &mut typist,
        json!({"type": "signal", "room_id": "big", "name": "typing"}),
    )
    .await;
    let bound = Duration::from_secs(5);
    for (i, ws) in raws.iter_mut().enumerate() {
        let got = tokio::time::timeout(bound, next_non_entry(ws))
            .await
            .unwrap_or_else(|_| panic!("raw member {} got nothing", i + 1));
        assert_eq!(
            (&got["type"], &got["user_id"]),
            (&json!("signal"), &json!("m0"))
        );
    }
    for (i, ws) in gqls.iter_mut().enumerate() {
        let got = tokio::time::timeout(bound, next_signal(ws))
            .await
            .unwrap_or_else(|_| panic!("GraphQL member {} got nothing", i + 10));
        assert_eq!(
            (&got["__typename"], &got["userId"]),
            (&json!("Signal"), &json!("m0"))
        );
    }
    assert!(started.elapsed() < bound, "all 19 within {bound:?}");
    // The typist's own socket: nothing but entries (the others' joins).
    while let Ok(frame) =
        tokio::time::timeout(Duration::from_millis(300), next_json(&mut typist)).await
    {
        assert_eq!(frame["type"], "entry", "{frame}");
    }
    server.stop().await;
}
