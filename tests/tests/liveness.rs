//! Liveness on the raw WebSocket (docs/contract.md §8): the server pings every
//! `--ping-interval`; a peer silent for interval + timeout is lost (seats to
//! grace, then one `leave`), a peer that answers pings keeps its seat; the
//! JSON `ping`/`pong` a browser can see; and the Rust `ResumingRoom`, which
//! notices a silent server and resumes. A frozen [`Forwarder`] stands for a
//! network that vanished: no FIN, no RST, no bytes.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parlor_tests::{
    Forwarder, SHORT_HEARTBEAT, TestServer, hello_at, join_raw, next_json, read_in_background,
    reserve_raw, send, until,
};
use parlor_ws::client::{Client, ResumingRoom};
use serde_json::json;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_peer_loses_its_seat_and_a_waiting_user_gets_it() {
    let server = TestServer::start(SHORT_HEARTBEAT).await;
    let fwd = Forwarder::to(&server.base).await;
    // (Ann's one ticket: an unused second one would hold the seat until
    // it expired.)
    let ticket = server
        .client("ann")
        .reserve("lively", Some(2))
        .await
        .unwrap();

    // Ann through the forwarder, her socket read all along (so tungstenite
    // answers pings) until the freeze; Bob directly.
    let (mut ann, welcome) = hello_at(&fwd.base(), "ann").await;
    assert_eq!(welcome["ping_interval_ms"], 1000, "{welcome}");
    assert_eq!(welcome["ping_timeout_ms"], 1000, "{welcome}");
    send(&mut ann, json!({"type": "join", "ticket": ticket.ticket})).await;
    until(&mut ann, "joined").await;
    let reader = tokio::spawn(async move { while ann.next().await.is_some() {} });
    let mut bob = server.raw_as("bob").await;
    join_raw(&server, &mut bob, "bob", "lively", None).await;
    let (mut bob, bob_reader) = read_in_background(bob);
    let (status, body) = reserve_raw(&server, Some("dev:cat"), "lively", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("ROOM_FULL"))
    );

    // Still alive a few intervals later: the pings are answered.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        server.count_entries("bob", "lively", "leave", "ann").await,
        0
    );

    fwd.freeze();
    let frozen = Instant::now();
    // interval + timeout + grace + 1 s.
    let bound = Duration::from_secs(4);
    loop {
        let left = bound
            .checked_sub(frozen.elapsed())
            .expect("ann's seat freed within interval + timeout + grace + 1 s");
        let entry = timeout(left, bob.recv())
            .await
            .expect("ann's leave within interval + timeout + grace + 1 s")
            .expect("bob's socket open");
        if entry["kind"] == "leave" {
            assert_eq!(entry["sender"], "ann", "{entry}");
            break;
        }
    }
    let room = server.client("bob").room("lively").await.unwrap();
    assert_eq!(room["occupancy"], 1, "{room}");
    let (status, body) = reserve_raw(&server, Some("dev:cat"), "lively", json!({})).await;
    assert_eq!(status, 201, "the freed seat can be reserved: {body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.count_entries("bob", "lively", "leave", "ann").await,
        1,
        "exactly one leave"
    );
    assert_eq!(
        server.count_entries("bob", "lively", "join", "ann").await,
        1
    );
    reader.abort();
    bob_reader.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_peer_that_answers_pings_keeps_its_seat() {
    let server = TestServer::start(SHORT_HEARTBEAT).await;
    server
        .client("ivy")
        .reserve("quiet", Some(2))
        .await
        .unwrap();
    let mut ivy = server.raw_as("ivy").await;
    join_raw(&server, &mut ivy, "ivy", "quiet", None).await;

    // Ten times interval + timeout, reading (tungstenite answers each ping
    // by itself) and sending nothing.
    let idle = Duration::from_secs(20);
    let started = Instant::now();
    let mut pings = 0;
    while let Some(left) = idle.checked_sub(started.elapsed()) {
        match timeout(left, ivy.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(other) => panic!("an idle socket got {other:?}"),
        }
    }
    assert!(pings >= 10, "a ping about every second: {pings} in 20 s");

    send(
        &mut ivy,
        json!({"type": "send", "room_id": "quiet", "client_id": "c-1", "body": "still here"}),
    )
    .await;
    let (ack, _) = until(&mut ivy, "ack").await;
    assert_eq!(ack["client_id"], "c-1");
    assert_eq!(
        server.count_entries("ivy", "quiet", "leave", "ivy").await,
        0
    );
    let room = server.client("ivy").room("quiet").await.unwrap();
    assert_eq!(room["occupancy"], 1, "{room}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_ping_is_answered_before_and_after_hello() {
    let server = TestServer::start(SHORT_HEARTBEAT).await;
    let mut ws = server.raw().await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await, json!({"type": "pong"}));
    send(&mut ws, json!({"type": "hello", "token": "dev:pat"})).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "welcome", "user_id": "pat", "ping_interval_ms": 1000,
               "ping_timeout_ms": 1000, "expires_at": null})
    );
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await, json!({"type": "pong"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_room_notices_a_silent_server_and_resumes_exactly_once() {
    // Grace long enough for the resume to find the seat.
    let server = TestServer::start(&["--ping-interval", "1s", "--ping-timeout", "1s"]).await;
    let fwd = Forwarder::to(&server.base).await;
    let mut room = ResumingRoom::join(Client::new(&fwd.base(), "dev:ann"), "resume", Some(5))
        .await
        .unwrap();
    let mut bob_ws = server.raw_as("bob").await;
    join_raw(&server, &mut bob_ws, "bob", "resume", None).await;
    let bob = server.client("bob");
    let reader = tokio::spawn(async move { while bob_ws.next().await.is_some() {} });

    bob.send("resume", "m1", "m1").await.unwrap();
    let mut seen = Vec::new();
    loop {
        let e = timeout(Duration::from_secs(10), room.next_entry())
            .await
            .expect("m1")
            .unwrap();
        seen.push(e.seq);
        if e.body.as_deref() == Some("m1") {
            break;
        }
    }

    fwd.freeze_current();
    let frozen = Instant::now();
    for m in ["m2", "m3", "m4"] {
        bob.send("resume", m, m).await.unwrap();
    }
    room.send("r-1", "mine").await;
    let mut texts = Vec::new();
    let mut first_after = None;
    while texts.len() < 4 {
        let e = timeout(Duration::from_secs(15), room.next_entry())
            .await
            .expect("the resumed stream")
            .unwrap();
        first_after.get_or_insert_with(|| frozen.elapsed());
        seen.push(e.seq);
        if e.kind == "text" {
            texts.push(e.body.clone().unwrap());
        }
    }
    // interval + timeout to notice, plus slack for the reconnect.
    let noticed = first_after.unwrap();
    assert!(
        noticed <= Duration::from_secs(5),
        "resumed {noticed:?} after the freeze"
    );
    assert_eq!(room.reconnects(), 1);
    assert_eq!(texts, ["m2", "m3", "m4", "mine"], "each once, in order");
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "gap-free, no duplicate: {seen:?}"
    );
    let log = bob.history("resume", 0, 500).await.unwrap();
    let mine = log
        .iter()
        .filter(|e| e.client_id.as_deref() == Some("r-1"))
        .count();
    assert_eq!(mine, 1, "the re-sent message is stored once");
    assert_eq!(
        log.iter()
            .filter(|e| e.sender == "ann" && e.kind != "text")
            .count(),
        1,
        "one join, no leave: the resume found the seat in grace"
    );
    reader.abort();
    server.stop().await;
}
