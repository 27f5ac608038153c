//! The heartbeat on `/graphql/ws` (both `graphql-transport-ws` and the legacy
//! `graphql-ws`), with 1 s ping interval, 1 s ping timeout and 1 s grace: a
//! client behind a frozen TCP forwarder (no FIN, no RST — a phone whose
//! network vanished) loses its seat within interval + timeout + grace + 1 s,
//! with exactly one `leave`, and a waiting user can then reserve; a client
//! that is idle but whose WebSocket stack answers pings keeps its seat.

use std::time::{Duration, Instant};

use parlor_tests::{
    Forwarder, RawSocket, SHORT_HEARTBEAT, TestServer, gql_code, gql_http, gql_reserve_as,
    gql_socket, gql_ticket, next_json, read_in_background, send,
};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ROOM: &str = "query($r: ID!) { room(id: $r) { occupancy } }";

/// A GraphQL socket to `base` speaking `protocol`, initialised as `user`.
async fn socket_at(base: &str, protocol: &str, user: &str) -> RawSocket {
    let url = format!("{}/graphql/ws", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let mut ws = tokio_tungstenite::connect_async(request)
        .await
        .expect("graphql socket")
        .0;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer dev:{user}")}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws
}

/// Starts `joinRoom` as `id` in `protocol` and waits for `Joined`.
async fn join(ws: &mut RawSocket, protocol: &str, id: &str, ticket: &str) {
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    send(ws, json!({"id": id, "type": start, "payload": {"query": parlor_tests::JOIN_ROOM, "variables": {"t": ticket}}})).await;
    loop {
        let m = next_json(ws).await;
        if m["id"] == id {
            assert_eq!(
                m["payload"]["data"]["joinRoom"]["__typename"], "Joined",
                "{m}"
            );
            return;
        }
    }
}

async fn frozen_client_loses_its_seat(protocol: &str) {
    let server = TestServer::start(SHORT_HEARTBEAT).await;
    let room = format!("frozen-{protocol}");
    let fwd = Forwarder::to(&server.base).await;
    let a_ticket = gql_ticket(&server, "a", &room, Some(2)).await;
    let mut a = socket_at(&fwd.base(), protocol, "a").await;
    join(&mut a, protocol, "a", &a_ticket).await;
    let mut b = socket_at(&server.base, protocol, "b").await;
    join(
        &mut b,
        protocol,
        "b",
        &gql_ticket(&server, "b", &room, None).await,
    )
    .await;
    let (_b_events, _b_task) = read_in_background(b);
    assert_eq!(
        gql_code(&gql_reserve_as(&server, "dev:c", &room, None).await),
        "ROOM_FULL"
    );

    fwd.freeze();
    let frozen = Instant::now();
    // interval + timeout + grace + 1 s.
    let bound = Duration::from_secs(4);
    loop {
        let r = gql_reserve_as(&server, "dev:c", &room, None).await;
        if r["data"]["reserveSeat"]["ticket"].is_string() {
            break;
        }
        assert_eq!(gql_code(&r), "ROOM_FULL", "{r}");
        assert!(
            frozen.elapsed() < bound,
            "{protocol}: a's seat still held {:?} after the freeze",
            frozen.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The seat is free; its `leave` entry is being stored.
    let stored = Instant::now();
    while server.count_entries("b", &room, "leave", "a").await == 0 {
        assert!(
            stored.elapsed() < Duration::from_secs(5),
            "{protocol}: no leave"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.count_entries("b", &room, "leave", "a").await,
        1,
        "{protocol}"
    );
    drop(a);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_graphql_transport_ws_client_loses_its_seat() {
    frozen_client_loses_its_seat("graphql-transport-ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_legacy_graphql_ws_client_loses_its_seat() {
    frozen_client_loses_its_seat("graphql-ws").await;
}

/// Idle for 10 × (interval + timeout), answering only the pings its stack
/// answers by itself: both protocols keep their seats; the legacy one got
/// `ka` messages all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_that_answer_pings_keep_their_seats() {
    let server = TestServer::start(SHORT_HEARTBEAT).await;
    let room = "idle";
    let first = gql_ticket(&server, "modern", room, Some(3)).await;
    let mut modern = socket_at(&server.base, "graphql-transport-ws", "modern").await;
    join(&mut modern, "graphql-transport-ws", "m", &first).await;
    let mut legacy = socket_at(&server.base, "graphql-ws", "legacy").await;
    join(
        &mut legacy,
        "graphql-ws",
        "l",
        &gql_ticket(&server, "legacy", room, None).await,
    )
    .await;
    let (_modern_events, modern_task) = read_in_background(modern);
    let (mut legacy_events, legacy_task) = read_in_background(legacy);

    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!modern_task.is_finished() && !legacy_task.is_finished());
    let r = gql_http(&server, Some("dev:modern"), ROOM, json!({"r": room})).await;
    assert_eq!(r["data"]["room"]["occupancy"], 2, "{r}");
    assert_eq!(
        server
            .count_entries("modern", room, "leave", "modern")
            .await,
        0
    );
    assert_eq!(
        server
            .count_entries("modern", room, "leave", "legacy")
            .await,
        0
    );
    let mut kas = 0;
    while let Ok(m) = legacy_events.try_recv() {
        if m["type"] == "ka" {
            kas += 1;
        }
    }
    assert!(kas >= 5, "{kas} ka messages in 20 s at a 1 s interval");
    server.stop().await;
}

/// The protocol's own ping is answered before and after init on a fresh
/// socket with the heartbeat on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_ping_gets_a_pong() {
    let server = TestServer::start(SHORT_HEARTBEAT).await;
    let mut ws = gql_socket(&server, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    server.stop().await;
}
