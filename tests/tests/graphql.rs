//! docs/contract.md §6 over real GraphQL sockets: every query, mutation and the
//! joinRoom subscription over `graphql-transport-ws` (and the legacy
//! `graphql-ws`), each error code with `extensions.code`, resume with
//! afterSeq after a drop, init timeout, depth limit — and messages crossing
//! between GraphQL and the raw WebSocket with the same seq.

use std::time::Duration;

use parlor_tests::{
    Frame, TestServer, gql_code, gql_http, gql_join, gql_next, gql_socket, gql_socket_as, join_raw,
    next_frame, next_json, send,
};
use serde_json::{Value, json};

const RESERVE: &str = "mutation($r: ID!, $c: CreateRoom) { reserveSeat(roomId: $r, create: $c) { ticket roomId expiresAt } }";
const SEND: &str = "mutation($r: ID!, $c: String!, $b: String!) { sendMessage(roomId: $r, clientId: $c, body: $b) { roomId seq id kind sender clientId body createdAt } }";
const ROOM: &str = "query($r: ID!) { room(id: $r) { id title capacity occupancy lastSeq } }";
const MESSAGES: &str = "query($r: ID!, $a: Int, $b: Int, $l: Int) { messages(roomId: $r, afterSeq: $a, beforeSeq: $b, limit: $l) { seq kind sender clientId body } }";
const LEAVE: &str = "mutation($r: ID!) { leaveRoom(roomId: $r) }";

async fn reserve(server: &TestServer, user: &str, room: &str, create: Option<u32>) -> Value {
    let c = create.map(|capacity| json!({"capacity": capacity, "title": "T"}));
    gql_http(
        server,
        Some(&format!("dev:{user}")),
        RESERVE,
        json!({"r": room, "c": c}),
    )
    .await
}

async fn ticket(server: &TestServer, user: &str, room: &str, create: Option<u32>) -> String {
    let r = reserve(server, user, room, create).await;
    r["data"]["reserveSeat"]["ticket"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket: {r}"))
        .to_owned()
}

/// The code of the error answering operation `id`: a `next` carrying
/// `errors` (a resolver's error, per graphql-transport-ws), then `complete`.
async fn join_error(ws: &mut parlor_tests::RawSocket, id: &str) -> String {
    loop {
        let m = next_json(ws).await;
        if m["id"] == id {
            assert_eq!(m["type"], "next", "{m}");
            assert_eq!(m["payload"]["data"], Value::Null);
            return gql_code(&m["payload"]).to_owned();
        }
    }
}

async fn send_gql(
    server: &TestServer,
    user: &str,
    room: &str,
    client_id: &str,
    body: &str,
) -> Value {
    gql_http(
        server,
        Some(&format!("dev:{user}")),
        SEND,
        json!({"r": room, "c": client_id, "b": body}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_mutations_and_their_error_codes() {
    let server = TestServer::start(&[
        "--max-message-bytes",
        "16",
        "--reservation-ttl",
        "3s",
        "--max-capacity",
        "100",
    ])
    .await;

    let anon = gql_http(&server, None, ROOM, json!({"r": "x"})).await;
    assert_eq!(gql_code(&anon), "UNAUTHENTICATED");
    let bad = gql_http(&server, Some("dev:ann"), ROOM, json!({"r": "not valid!"})).await;
    assert_eq!(gql_code(&bad), "INVALID_INPUT");
    let syntax = gql_http(&server, Some("dev:ann"), "query { room(id: ", json!({})).await;
    assert_eq!(
        gql_code(&syntax),
        "INVALID_INPUT",
        "the schema's own errors carry a code too: {syntax}"
    );
    assert_eq!(
        gql_code(&reserve(&server, "ann", "g1", None).await),
        "ROOM_NOT_FOUND"
    );
    assert_eq!(
        gql_code(&reserve(&server, "ann", "g1", Some(0)).await),
        "INVALID_INPUT"
    );
    assert_eq!(
        gql_code(&reserve(&server, "ann", "g1", Some(101)).await),
        "INVALID_INPUT"
    );

    let r = reserve(&server, "ann", "g1", Some(1)).await;
    let t = r["data"]["reserveSeat"].clone();
    assert_eq!(t["roomId"], "g1");
    assert!(t["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        gql_code(&reserve(&server, "bob", "g1", Some(3)).await),
        "ROOM_PENDING"
    );
    let room = gql_http(&server, Some("dev:ann"), ROOM, json!({"r": "g1"})).await;
    assert_eq!(
        room["data"]["room"],
        Value::Null,
        "pending is not a room yet"
    );

    let mut ann = gql_socket_as(&server, "ann").await;
    gql_join(&mut ann, "1", t["ticket"].as_str().unwrap(), None).await;
    let joined = gql_next(&mut ann, "1").await;
    assert_eq!(
        joined,
        json!({"__typename": "Joined", "roomId": "g1", "capacity": 1, "occupancy": 1, "lastSeq": 1, "members": ["ann"]})
    );
    let room = gql_http(&server, Some("dev:ann"), ROOM, json!({"r": "g1"})).await;
    assert_eq!(
        room["data"]["room"],
        json!({"id": "g1", "title": "T", "capacity": 1, "occupancy": 1, "lastSeq": 1})
    );
    assert_eq!(
        gql_code(&reserve(&server, "bob", "g1", None).await),
        "ROOM_FULL"
    );

    // Tickets.
    let mut bob = gql_socket_as(&server, "bob").await;
    gql_join(&mut bob, "a", t["ticket"].as_str().unwrap(), None).await;
    assert_eq!(
        join_error(&mut bob, "a").await,
        "TICKET_INVALID",
        "used, and ann's"
    );
    gql_join(&mut bob, "b", "forged", None).await;
    assert_eq!(join_error(&mut bob, "b").await, "TICKET_INVALID");
    let late = ticket(&server, "ann", "g1", None).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    gql_join(&mut ann, "c", &late, None).await;
    assert_eq!(join_error(&mut ann, "c").await, "TICKET_EXPIRED");

    // Messages.
    let sent = send_gql(&server, "ann", "g1", "c1", "hi").await;
    assert_eq!(sent["data"]["sendMessage"]["seq"], 2);
    assert_eq!(sent["data"]["sendMessage"]["kind"], "TEXT");
    let again = send_gql(&server, "ann", "g1", "c1", "other").await;
    assert_eq!(
        again["data"]["sendMessage"]["id"], sent["data"]["sendMessage"]["id"],
        "idempotent"
    );
    assert_eq!(
        gql_code(&send_gql(&server, "ann", "g1", "c2", &"x".repeat(17)).await),
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        gql_code(&send_gql(&server, "bob", "g1", "c1", "hi").await),
        "NOT_A_MEMBER"
    );
    for i in 3..=6 {
        send_gql(&server, "ann", "g1", &format!("c{i}"), "m").await;
    }
    let page = gql_http(
        &server,
        Some("dev:ann"),
        MESSAGES,
        json!({"r": "g1", "a": 2, "l": 2}),
    )
    .await;
    let seqs: Vec<_> = page["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4]);
    let back = gql_http(
        &server,
        Some("dev:ann"),
        MESSAGES,
        json!({"r": "g1", "b": 4, "l": 2}),
    )
    .await;
    let seqs: Vec<_> = back["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3], "scrolling back");
    assert_eq!(
        gql_code(&gql_http(&server, Some("dev:bob"), MESSAGES, json!({"r": "g1"})).await),
        "NOT_A_MEMBER"
    );
    assert_eq!(
        gql_code(
            &gql_http(
                &server,
                Some("dev:ann"),
                MESSAGES,
                json!({"r": "g1", "l": 501})
            )
            .await
        ),
        "INVALID_INPUT"
    );

    // The subscription saw every entry once, in order.
    let seen: Vec<u64> = [gql_next(&mut ann, "1").await, gql_next(&mut ann, "1").await]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, vec![2, 3]);

    // leaveRoom: frees the seat at once and completes the subscription.
    let left = gql_http(&server, Some("dev:ann"), LEAVE, json!({"r": "g1"})).await;
    assert_eq!(left["data"]["leaveRoom"], true);
    loop {
        let m = next_json(&mut ann).await;
        if m["type"] == "complete" {
            assert_eq!(m["id"], "1");
            break;
        }
    }
    let room = gql_http(&server, Some("dev:ann"), ROOM, json!({"r": "g1"})).await;
    assert_eq!(room["data"]["room"]["occupancy"], 0);
    let left = gql_http(&server, Some("dev:ann"), LEAVE, json!({"r": "g1"})).await;
    assert_eq!(left["data"]["leaveRoom"], false, "nothing left to leave");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_is_a_leave_and_a_drop_is_grace_with_resume() {
    let server = TestServer::start(&["--reconnect-grace", "5s"]).await;
    let watcher_ticket = ticket(&server, "watch", "g2", Some(5)).await;
    let mut watch = gql_socket_as(&server, "watch").await;
    gql_join(&mut watch, "w", &watcher_ticket, None).await;
    gql_next(&mut watch, "w").await;

    // Complete → leave entry at once.
    let mut ann = gql_socket_as(&server, "ann").await;
    gql_join(
        &mut ann,
        "1",
        &ticket(&server, "ann", "g2", None).await,
        None,
    )
    .await;
    gql_next(&mut ann, "1").await;
    assert_eq!(gql_next(&mut watch, "w").await["kind"], "JOIN");
    send(&mut ann, json!({"id": "1", "type": "complete"})).await;
    let e = gql_next(&mut watch, "w").await;
    assert_eq!(
        (e["kind"].as_str(), e["sender"].as_str()),
        (Some("LEAVE"), Some("ann"))
    );

    // Drop → grace; resume with afterSeq: no gap, no duplicate, no new join.
    let mut cat = gql_socket_as(&server, "cat").await;
    gql_join(
        &mut cat,
        "1",
        &ticket(&server, "cat", "g2", None).await,
        None,
    )
    .await;
    gql_next(&mut cat, "1").await;
    assert_eq!(gql_next(&mut watch, "w").await["kind"], "JOIN");
    send_gql(&server, "watch", "g2", "w1", "one").await;
    let last = gql_next(&mut cat, "1").await["seq"].as_u64().unwrap();
    drop(cat);
    for i in 2..=4 {
        send_gql(&server, "watch", "g2", &format!("w{i}"), "more").await;
    }
    let room = gql_http(&server, Some("dev:watch"), ROOM, json!({"r": "g2"})).await;
    assert_eq!(
        room["data"]["room"]["occupancy"], 2,
        "cat's seat waits in grace"
    );
    let mut cat = gql_socket_as(&server, "cat").await;
    gql_join(
        &mut cat,
        "2",
        &ticket(&server, "cat", "g2", None).await,
        Some(last),
    )
    .await;
    assert_eq!(gql_next(&mut cat, "2").await["__typename"], "Joined");
    let resumed: Vec<u64> = [
        gql_next(&mut cat, "2").await,
        gql_next(&mut cat, "2").await,
        gql_next(&mut cat, "2").await,
    ]
    .iter()
    .map(|e| e["seq"].as_u64().unwrap())
    .collect();
    assert_eq!(resumed, vec![last + 1, last + 2, last + 3]);
    let log = gql_http(&server, Some("dev:watch"), MESSAGES, json!({"r": "g2"})).await;
    let cat_joins = log["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "JOIN" && e["sender"] == "cat")
        .count();
    assert_eq!(cat_joins, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_protocol_init_timeout_bad_init_and_depth_limit() {
    let server = TestServer::start(&["--hello-timeout", "1s"]).await;
    let t = ticket(&server, "ann", "g3", Some(2)).await;

    // The legacy `graphql-ws` sub-protocol: connection_init, start, data, stop.
    let mut legacy = gql_socket(&server, "graphql-ws").await;
    send(
        &mut legacy,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer dev:ann"}}),
    )
    .await;
    assert_eq!(next_json(&mut legacy).await["type"], "connection_ack");
    send(&mut legacy, json!({"id": "1", "type": "start", "payload": {"query": parlor_tests::JOIN_ROOM, "variables": {"t": t}}})).await;
    let m = loop {
        let m = next_json(&mut legacy).await;
        if m["type"] == "data" {
            break m;
        }
    };
    assert_eq!(m["payload"]["data"]["joinRoom"]["__typename"], "Joined");
    send_gql(&server, "ann", "g3", "c1", "over legacy").await;
    let m = loop {
        let m = next_json(&mut legacy).await;
        if m["type"] == "data" {
            break m;
        }
    };
    assert_eq!(m["payload"]["data"]["joinRoom"]["body"], "over legacy");
    send(&mut legacy, json!({"id": "1", "type": "stop"})).await;

    // No connection_init in time: 4408.
    let mut silent = gql_socket(&server, "graphql-transport-ws").await;
    assert!(matches!(
        next_frame(&mut silent).await,
        Frame::Closed(Some(4408))
    ));

    // A bad token in connection_init: 4403 (graphql-transport-ws: Forbidden).
    let mut bad = gql_socket(&server, "graphql-transport-ws").await;
    send(
        &mut bad,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer nope"}}),
    )
    .await;
    assert!(matches!(
        next_frame(&mut bad).await,
        Frame::Closed(Some(4403))
    ));

    // Depth limit.
    let deep = "query { room(id: \"g3\") { id } __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }";
    let r = gql_http(&server, Some("dev:ann"), deep, json!({})).await;
    assert_eq!(gql_code(&r), "INVALID_INPUT", "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("too deep"),
        "{r}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_between_graphql_and_the_raw_websocket() {
    let server = TestServer::start(&[]).await;
    let mut gql = gql_socket_as(&server, "ann").await;
    gql_join(
        &mut gql,
        "1",
        &ticket(&server, "ann", "x1", Some(5)).await,
        None,
    )
    .await;
    gql_next(&mut gql, "1").await;
    let mut raw = server.raw_as("bob").await;
    join_raw(&server, &mut raw, "bob", "x1", None).await;
    assert_eq!(gql_next(&mut gql, "1").await["kind"], "JOIN");

    // GraphQL → raw WebSocket.
    let sent = send_gql(&server, "ann", "x1", "from-gql", "hello raw").await["data"]["sendMessage"]
        .clone();
    let got = next_json(&mut raw).await;
    assert_eq!(
        (got["seq"].clone(), got["body"].clone(), got["id"].clone()),
        (
            sent["seq"].clone(),
            sent["body"].clone(),
            sent["id"].clone()
        )
    );
    assert_eq!(gql_next(&mut gql, "1").await["seq"], sent["seq"]);

    // Raw WebSocket → GraphQL.
    send(
        &mut raw,
        json!({"type": "send", "room_id": "x1", "client_id": "from-raw", "body": "hello gql"}),
    )
    .await;
    let (ack, _) = parlor_tests::until(&mut raw, "ack").await;
    let got = gql_next(&mut gql, "1").await;
    assert_eq!(
        (
            got["seq"].clone(),
            got["body"].as_str(),
            got["clientId"].as_str()
        ),
        (ack["seq"].clone(), Some("hello gql"), Some("from-raw"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_cap_and_introspection_switch() {
    let server = TestServer::start(&[]).await;
    // One seat, many tickets for it: 100 live joinRoom on one socket, then no more.
    let mut ann = gql_socket_as(&server, "ann").await;
    let first = ticket(&server, "ann", "cap", Some(2)).await;
    gql_join(&mut ann, "s0", &first, None).await;
    gql_next(&mut ann, "s0").await;
    for i in 1..100 {
        let t = ticket(&server, "ann", "cap", None).await;
        let id = format!("s{i}");
        gql_join(&mut ann, &id, &t, None).await;
        assert_eq!(gql_next(&mut ann, &id).await["__typename"], "Joined");
    }
    let t = ticket(&server, "ann", "cap", None).await;
    gql_join(&mut ann, "s100", &t, None).await;
    let code = join_error(&mut ann, "s100").await;
    assert_eq!(
        code, "INVALID_INPUT",
        "the 101st subscription on one socket is refused"
    );
    let room = gql_http(&server, Some("dev:ann"), ROOM, json!({"r": "cap"})).await;
    assert_eq!(
        room["data"]["room"]["occupancy"], 1,
        "one seat however many subscriptions"
    );

    // Introspection: on with --dev-auth (this server), off without it.
    let schema_query = "{ __schema { queryType { name } } }";
    let on = gql_http(&server, Some("dev:ann"), schema_query, json!({})).await;
    assert_eq!(on["data"]["__schema"]["queryType"]["name"], "Query");
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let prod = TestServer::start_on(&url, &["--jwt-secret", parlor_tests::JWT_SECRET], &[]).await;
    let token = parlor_tests::jwt(Some("ann"), 60, parlor_tests::JWT_SECRET);
    let off = gql_http(&prod, Some(&token), schema_query, json!({})).await;
    assert!(
        off["data"].is_null() || off["data"]["__schema"].is_null(),
        "introspection is off: {off}"
    );
    prod.stop().await;
}
