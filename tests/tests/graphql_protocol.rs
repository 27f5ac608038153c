//! graphql-transport-ws to the letter of its PROTOCOL.md
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>) over raw
//! sockets: each close code the protocol names, and the rule that a close
//! the server makes because of what the client sent is a *lost* connection
//! (grace, resume without a leave/join pair), never a leave. Also the
//! 32-bit ranges of `afterSeq`/`beforeSeq`, and a token expiring on a live
//! socket (4403, lost, resumable with a fresh token).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parlor_tests::{
    JWT_SECRET, RawSocket, TestServer, flood, gql_code, gql_http, gql_join, gql_next, gql_socket,
    gql_socket_as, gql_ticket, gql_ticket_as, jwt, next_json, send,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: &str = "query($r: ID!, $a: Int, $b: Int) { messages(roomId: $r, afterSeq: $a, beforeSeq: $b) { seq kind sender } }";
const ROOM: &str = "query($r: ID!) { room(id: $r) { occupancy } }";

/// The close the server sends next (skipping other frames): code and reason.
async fn closed(ws: &mut RawSocket) -> (u16, String) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a close within 10 s");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                panic!("the socket ended without a close code")
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// `room`'s log as `user` sees it: (kind, sender) pairs.
async fn log(server: &TestServer, user: &str, room: &str) -> Vec<(String, String)> {
    let r = gql_http(
        server,
        Some(&format!("dev:{user}")),
        MESSAGES,
        json!({"r": room}),
    )
    .await;
    r["data"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no log: {r}"))
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["sender"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn count(log: &[(String, String)], kind: &str, sender: &str) -> usize {
    log.iter().filter(|(k, s)| k == kind && s == sender).count()
}

async fn occupancy(server: &TestServer, user: &str, room: &str) -> u64 {
    let r = gql_http(
        server,
        Some(&format!("dev:{user}")),
        ROOM,
        json!({"r": room}),
    )
    .await;
    r["data"]["room"]["occupancy"].as_u64().unwrap()
}

async fn send_text(ws: &mut RawSocket, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_before_the_ack_is_4401() {
    let server = TestServer::start(&[]).await;
    let mut ws = gql_socket(&server, "graphql-transport-ws").await;
    gql_join(&mut ws, "s1", "whatever", None).await;
    assert_eq!(closed(&mut ws).await, (4401, "Unauthorized".to_owned()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_that_is_not_json_is_4400_before_and_after_init() {
    let server = TestServer::start(&[]).await;
    let mut ws = gql_socket(&server, "graphql-transport-ws").await;
    send_text(&mut ws, "this is not json").await;
    assert_eq!(closed(&mut ws).await.0, 4400);

    let mut ws = gql_socket_as(&server, "ann").await;
    send_text(&mut ws, "this is not json").await;
    assert_eq!(closed(&mut ws).await.0, 4400);

    // A message the protocol does not know is not valid either.
    let mut ws = gql_socket_as(&server, "ann").await;
    send(&mut ws, json!({"type": "hello"})).await;
    assert_eq!(closed(&mut ws).await.0, 4400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_init_is_4429() {
    let server = TestServer::start(&[]).await;
    let mut ws = gql_socket_as(&server, "ann").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer dev:ann"}}),
    )
    .await;
    assert_eq!(closed(&mut ws).await.0, 4429);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_ping_is_answered_with_pong() {
    let server = TestServer::start(&[]).await;
    let mut ws = gql_socket_as(&server, "ann").await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    // A pong needs no answer and is not an error.
    send(&mut ws, json!({"type": "pong"})).await;
    send(&mut ws, json!({"type": "ping", "payload": {"n": 1}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_init_is_4408_whatever_else_arrives() {
    let server = TestServer::start(&["--hello-timeout", "1s"]).await;
    let mut ws = gql_socket(&server, "graphql-transport-ws").await;
    let started = Instant::now();
    // Pings mentioning connection_init, before and past the init timeout.
    let mut pongs = 0;
    let close = loop {
        if started.elapsed() < Duration::from_secs(3) {
            send(
                &mut ws,
                json!({"type": "ping", "payload": {"note": "connection_init soon"}}),
            )
            .await;
        }
        match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(Message::Text(_)))) => pongs += 1,
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                break (u16::from(f.code), f.reason.to_string());
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no 4408");
    };
    assert_eq!(close.0, 4408, "{close:?}");
    assert!(pongs > 0, "pings before init are answered");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_id_subscribed_again_is_4409_and_a_loss() {
    let server = TestServer::start(&["--reconnect-grace", "2s"]).await;
    let watcher = gql_ticket(&server, "watch", "dupa", Some(5)).await;
    let mut watch = gql_socket_as(&server, "watch").await;
    gql_join(&mut watch, "w", &watcher, None).await;
    gql_next(&mut watch, "w").await;
    let other = gql_ticket(&server, "watch", "dupb", Some(5)).await;
    gql_join(&mut watch, "w2", &other, None).await;
    gql_next(&mut watch, "w2").await;

    let mut ann = gql_socket_as(&server, "ann").await;
    gql_join(
        &mut ann,
        "s1",
        &gql_ticket(&server, "ann", "dupa", None).await,
        None,
    )
    .await;
    assert_eq!(gql_next(&mut ann, "s1").await["__typename"], "Joined");
    gql_join(
        &mut ann,
        "s1",
        &gql_ticket(&server, "ann", "dupb", None).await,
        None,
    )
    .await;
    assert_eq!(
        closed(&mut ann).await,
        (4409, "Subscriber for s1 already exists".to_owned())
    );
    // Room A untouched: ann's seat waits in grace, no leave yet.
    assert_eq!(occupancy(&server, "watch", "dupa").await, 2);
    assert_eq!(
        count(&log(&server, "watch", "dupa").await, "LEAVE", "ann"),
        0
    );
    // ann never joined room B (her ticket for it holds a reserved seat only).
    assert_eq!(
        count(&log(&server, "watch", "dupb").await, "JOIN", "ann"),
        0
    );
    // After the grace: the loss becomes exactly one leave.
    let deadline = Instant::now() + Duration::from_secs(8);
    while count(&log(&server, "watch", "dupa").await, "LEAVE", "ann") == 0 {
        assert!(Instant::now() < deadline, "no leave after the grace");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(&log(&server, "watch", "dupa").await, "LEAVE", "ann"),
        1
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_is_free_again_after_complete() {
    let server = TestServer::start(&[]).await;
    let mut ann = gql_socket_as(&server, "ann").await;
    gql_join(
        &mut ann,
        "s1",
        &gql_ticket(&server, "ann", "reuse", Some(3)).await,
        None,
    )
    .await;
    gql_next(&mut ann, "s1").await;
    send(&mut ann, json!({"id": "s1", "type": "complete"})).await;
    // The seat is freed by the complete; then the same id may run again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while occupancy(&server, "watch", "reuse").await != 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reused at once, before the server's answer to the complete is read.
    gql_join(
        &mut ann,
        "s1",
        &gql_ticket(&server, "ann", "reuse", None).await,
        None,
    )
    .await;
    let mut completes = 0;
    let joined = loop {
        let m = next_json(&mut ann).await;
        match m["type"].as_str() {
            Some("complete") => completes += 1,
            Some("next") => break m,
            _ => panic!("{m}"),
        }
    };
    assert!(completes <= 1);
    assert_eq!(
        joined["payload"]["data"]["joinRoom"]["__typename"],
        "Joined"
    );
    // And the answer to the first complete did not end the second s1: a
    // third subscribe with s1 is a duplicate.
    gql_join(&mut ann, "s1", "any", None).await;
    assert_eq!(closed(&mut ann).await.0, 4409);
    server.stop().await;
}

/// A member whose client sent something invalid is lost, not gone: it
/// resumes within the grace with no leave/join pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_for_the_clients_fault_is_a_loss_not_a_leave() {
    let server = TestServer::start(&["--reconnect-grace", "10s"]).await;
    let watcher = gql_ticket(&server, "watch", "bad", Some(5)).await;
    let mut watch = gql_socket_as(&server, "watch").await;
    gql_join(&mut watch, "w", &watcher, None).await;
    gql_next(&mut watch, "w").await;

    for (round, fault) in ["this is not json", r#"{"type":"connection_init"}"#]
        .iter()
        .enumerate()
    {
        let mut ann = gql_socket_as(&server, "ann").await;
        let t = gql_ticket(&server, "ann", "bad", None).await;
        let after = if round == 0 { None } else { Some(0) };
        gql_join(&mut ann, "s", &t, after).await;
        let joined = gql_next(&mut ann, "s").await;
        assert_eq!(joined["__typename"], "Joined", "{joined}");
        send_text(&mut ann, fault).await;
        let (code, _) = closed(&mut ann).await;
        assert!(code == 4400 || code == 4429, "{code}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let entries = log(&server, "watch", "bad").await;
        assert_eq!(count(&entries, "LEAVE", "ann"), 0, "{fault}: {entries:?}");
        assert_eq!(count(&entries, "JOIN", "ann"), 1, "{fault}: {entries:?}");
        assert_eq!(occupancy(&server, "watch", "bad").await, 2);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqs_outside_32_bits_are_invalid_input_never_wrapped() {
    let server = TestServer::start(&[]).await;
    let t = gql_ticket(&server, "ann", "range", Some(3)).await;
    let mut ann = gql_socket_as(&server, "ann").await;
    gql_join(&mut ann, "s", &t, None).await;
    gql_next(&mut ann, "s").await;
    for (a, b) in [
        (json!(-1), Value::Null),
        (Value::Null, json!(-1)),
        (json!(2147483648_i64), Value::Null),
        (Value::Null, json!(2147483648_i64)),
        (json!(9223372036854775808_u64), Value::Null),
        (Value::Null, json!(i64::MIN)),
    ] {
        let r = gql_http(
            &server,
            Some("dev:ann"),
            MESSAGES,
            json!({"r": "range", "a": a, "b": b}),
        )
        .await;
        assert_eq!(gql_code(&r), "INVALID_INPUT", "{a} {b}: {r}");
        assert!(r["data"].is_null() || r.get("data").is_none(), "{r}");
    }
    // Literals GraphQL itself rejects.
    for query in [
        r#"{ messages(roomId: "range", afterSeq: 2147483648) { seq } }"#,
        r#"{ messages(roomId: "range", beforeSeq: -2147483649) { seq } }"#,
    ] {
        let r = gql_http(&server, Some("dev:ann"), query, json!({})).await;
        assert_eq!(gql_code(&r), "INVALID_INPUT", "{query}: {r}");
    }
    // The edges of the range are fine.
    let r = gql_http(
        &server,
        Some("dev:ann"),
        MESSAGES,
        json!({"r": "range", "a": 0, "b": 2147483647}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["messages"].as_array().unwrap().len(), 1, "{r}");
    // joinRoom's afterSeq too.
    let mut bob = gql_socket_as(&server, "bob").await;
    for after in [json!(-1), json!(2147483648_i64)] {
        let t = gql_ticket(&server, "bob", "range", None).await;
        send(&mut bob, json!({"id": "j", "type": "subscribe", "payload": {"query": parlor_tests::JOIN_ROOM, "variables": {"t": t, "a": after}}})).await;
        let m = loop {
            let m = next_json(&mut bob).await;
            if m["id"] == "j" {
                break m;
            }
        };
        let errors = if m["type"] == "error" {
            json!({"errors": m["payload"]})
        } else {
            m["payload"].clone()
        };
        assert_eq!(gql_code(&errors), "INVALID_INPUT", "{after}: {m}");
        // Its complete, when the error came as `next`.
        if m["type"] == "next" {
            assert_eq!(next_json(&mut bob).await["type"], "complete");
        }
    }
    // Errors async-graphql raises itself (a literal out of range, an
    // unknown field) get the contract's code on the socket too.
    for (id, query) in [
        (
            "lit",
            r#"subscription { joinRoom(ticket: "x", afterSeq: 2147483648) { __typename } }"#,
        ),
        (
            "unknown",
            r#"subscription { joinRoom(ticket: "x") { ... on Entry { nope } } }"#,
        ),
    ] {
        send(
            &mut bob,
            json!({"id": id, "type": "subscribe", "payload": {"query": query}}),
        )
        .await;
        let m = loop {
            let m = next_json(&mut bob).await;
            if m["id"] == id {
                break m;
            }
        };
        assert_eq!(
            (m["type"].as_str(), gql_code(&m["payload"])),
            (Some("next"), "INVALID_INPUT"),
            "{m}"
        );
        assert_eq!(next_json(&mut bob).await["type"], "complete");
    }
    server.stop().await;
}

/// The token from `connection_init` expires on the live socket: 4403, as a
/// loss; a reconnect with a fresh token resumes with no leave/join pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_closes_4403_as_a_loss_and_a_fresh_one_resumes() {
    let server = TestServer::start(&["--reconnect-grace", "10s"]).await;
    let watcher = gql_ticket(&server, "watch", "exp", Some(5)).await;
    let mut watch = gql_socket_as(&server, "watch").await;
    gql_join(&mut watch, "w", &watcher, None).await;
    gql_next(&mut watch, "w").await;

    let short = jwt(Some("alice"), 5, JWT_SECRET);
    let mut alice = gql_socket(&server, "graphql-transport-ws").await;
    send(
        &mut alice,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {short}")}}),
    )
    .await;
    assert_eq!(next_json(&mut alice).await["type"], "connection_ack");
    let t = gql_ticket_as(&server, &short, "exp", None).await;
    gql_join(&mut alice, "a", &t, None).await;
    assert_eq!(gql_next(&mut alice, "a").await["__typename"], "Joined");
    assert_eq!(gql_next(&mut watch, "w").await["kind"], "JOIN");
    let sent = gql_http(
        &server,
        Some("dev:watch"),
        "mutation { sendMessage(roomId: \"exp\", clientId: \"c1\", body: \"hi\") { seq } }",
        json!({}),
    )
    .await;
    let last = sent["data"]["sendMessage"]["seq"].as_u64().unwrap();
    assert_eq!(gql_next(&mut alice, "a").await["seq"], last);

    // Past exp: no more deliveries, a 4403 close.
    let (code, reason) = closed(&mut alice).await;
    assert_eq!(code, 4403, "{reason}");
    gql_http(
        &server,
        Some("dev:watch"),
        "mutation { sendMessage(roomId: \"exp\", clientId: \"c2\", body: \"missed\") { seq } }",
        json!({}),
    )
    .await;
    let entries = log(&server, "watch", "exp").await;
    assert_eq!(count(&entries, "LEAVE", "alice"), 0, "{entries:?}");
    assert_eq!(occupancy(&server, "watch", "exp").await, 2);

    // A fresh token: resume after `last`, no leave/join pair.
    let fresh = jwt(Some("alice"), 600, JWT_SECRET);
    let mut alice = gql_socket(&server, "graphql-transport-ws").await;
    send(
        &mut alice,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {fresh}")}}),
    )
    .await;
    assert_eq!(next_json(&mut alice).await["type"], "connection_ack");
    let t = gql_ticket_as(&server, &fresh, "exp", None).await;
    gql_join(&mut alice, "a", &t, Some(last)).await;
    assert_eq!(gql_next(&mut alice, "a").await["__typename"], "Joined");
    let missed = gql_next(&mut alice, "a").await;
    assert_eq!(
        (missed["seq"].as_u64(), missed["body"].as_str()),
        (Some(last + 1), Some("missed"))
    );
    let entries = log(&server, "watch", "exp").await;
    assert_eq!(count(&entries, "LEAVE", "alice"), 0, "{entries:?}");
    assert_eq!(count(&entries, "JOIN", "alice"), 1, "{entries:?}");
    server.stop().await;
}

/// Parlor's own "too slow" on a GraphQL socket is 1013 (graphql-transport-ws
/// owns 4409), a loss: the client resumes with `afterSeq` without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_closed_with_1013_and_resumes() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start(&["--reconnect-grace", "30s"]).await;
    server
        .client("loud")
        .reserve("gflood", Some(5))
        .await
        .unwrap();
    let mut loud = server.raw_as("loud").await;
    parlor_tests::join_raw(&server, &mut loud, "loud", "gflood", None).await;
    let draining = tokio::spawn(async move {
        while let parlor_tests::Frame::Json(_) = parlor_tests::next_frame(&mut loud).await {}
    });

    // The slow client: a tiny receive buffer, and it stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let addr = server.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("{}/graphql/ws", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut slow, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    send(
        &mut slow,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer dev:slow"}}),
    )
    .await;
    assert_eq!(next_json(&mut slow).await["type"], "connection_ack");
    gql_join(
        &mut slow,
        "s",
        &gql_ticket(&server, "slow", "gflood", None).await,
        None,
    )
    .await;
    let joined = gql_next(&mut slow, "s").await;
    let start = joined["lastSeq"].as_u64().unwrap();

    flood(&server, "loud", "gflood").await;
    // Patience is 2 s; then read what was delivered, then the close.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut last = start;
    let (code, reason) = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("a frame within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let m: Value = serde_json::from_str(&t).unwrap();
                if let Some(seq) = m["payload"]["data"]["joinRoom"]["seq"].as_u64() {
                    assert_eq!(seq, last + 1, "in order up to the close");
                    last = seq;
                }
            }
            Some(Ok(Message::Close(Some(f)))) => break (u16::from(f.code), f.reason.to_string()),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, 1013, "{reason}");
    let end = server.client("loud").room("gflood").await.unwrap()["last_seq"]
        .as_u64()
        .unwrap();
    assert!(last < end, "it was cut off before the end");

    // A loss, not a leave: resume after the last seq it saw.
    // (A leave would have freed slow's seat; in grace it still counts.)
    assert_eq!(occupancy(&server, "loud", "gflood").await, 2);
    let mut again = gql_socket_as(&server, "slow").await;
    gql_join(
        &mut again,
        "s",
        &gql_ticket(&server, "slow", "gflood", None).await,
        Some(last),
    )
    .await;
    assert_eq!(gql_next(&mut again, "s").await["__typename"], "Joined");
    assert_eq!(
        gql_next(&mut again, "s").await["seq"].as_u64(),
        Some(last + 1)
    );
    draining.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_protocol_closes_on_invalid_messages_too() {
    let server = TestServer::start(&[]).await;
    let mut ws = gql_socket(&server, "graphql-ws").await;
    send(
        &mut ws,
        json!({"id": "1", "type": "start", "payload": {"query": "{ __typename }"}}),
    )
    .await;
    assert_eq!(closed(&mut ws).await.0, 4401);
    let mut ws = gql_socket(&server, "graphql-ws").await;
    send_text(&mut ws, "this is not json").await;
    assert_eq!(closed(&mut ws).await.0, 4400);
    // A refused connection_init: `connection_error` with its code, then 4403.
    let mut ws = gql_socket(&server, "graphql-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer nope"}}),
    )
    .await;
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["type"], "connection_error", "{refused}");
    assert_eq!(
        gql_code(&json!({"errors": [refused["payload"]]})),
        "UNAUTHENTICATED",
        "{refused}"
    );
    assert_eq!(closed(&mut ws).await.0, 4403);
    server.stop().await;
}

/// The client's close 1000 is a leave; any other client close code is a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_1000_is_a_leave_and_another_code_a_loss() {
    let server = TestServer::start(&["--reconnect-grace", "10s"]).await;
    let watcher = gql_ticket(&server, "watch", "cl", Some(5)).await;
    let mut watch = gql_socket_as(&server, "watch").await;
    gql_join(&mut watch, "w", &watcher, None).await;
    gql_next(&mut watch, "w").await;
    for (user, code) in [("one", 1000_u16), ("other", 4000)] {
        let mut ws = gql_socket_as(&server, user).await;
        gql_join(
            &mut ws,
            "s",
            &gql_ticket(&server, user, "cl", None).await,
            None,
        )
        .await;
        gql_next(&mut ws, "s").await;
        assert_eq!(gql_next(&mut watch, "w").await["kind"], "JOIN");
        ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
        if code == 1000 {
            // A leave, at once.
            let e = gql_next(&mut watch, "w").await;
            assert_eq!(
                (e["kind"].as_str(), e["sender"].as_str()),
                (Some("LEAVE"), Some("one"))
            );
        }
    }
    // other's seat waits in grace.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entries = log(&server, "watch", "cl").await;
    assert_eq!(count(&entries, "LEAVE", "other"), 0, "{entries:?}");
    assert_eq!(occupancy(&server, "watch", "cl").await, 2);
    server.stop().await;
}

/// A `complete` is a leave even when a close other than 1000 follows it at
/// once (a page unloading): the seat goes with the subscription, before
/// the close marks the socket lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_then_at_once_a_close_1001_is_a_leave() {
    let server = TestServer::start(&["--reconnect-grace", "10s"]).await;
    let watcher = gql_ticket(&server, "watch", "bye", Some(5)).await;
    let mut watch = gql_socket_as(&server, "watch").await;
    gql_join(&mut watch, "w", &watcher, None).await;
    gql_next(&mut watch, "w").await;
    let mut ws = gql_socket_as(&server, "ann").await;
    gql_join(
        &mut ws,
        "s",
        &gql_ticket(&server, "ann", "bye", None).await,
        None,
    )
    .await;
    gql_next(&mut ws, "s").await;
    assert_eq!(gql_next(&mut watch, "w").await["kind"], "JOIN");
    // Both in one write.
    let complete = json!({"id": "s", "type": "complete"}).to_string();
    ws.feed(Message::Text(complete.into())).await.unwrap();
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 1001.into(),
        reason: "unload".into(),
    }))
    .await
    .unwrap();
    let e = gql_next(&mut watch, "w").await;
    assert_eq!(
        (e["kind"].as_str(), e["sender"].as_str()),
        (Some("LEAVE"), Some("ann"))
    );
    assert_eq!(occupancy(&server, "watch", "bye").await, 1);
    server.stop().await;
}
