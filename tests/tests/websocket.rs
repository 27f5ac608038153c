//! docs/contract.md §2, §3, §5 over real WebSockets: hello and 4401, tickets,
//! join / send / ack / order, duplicates, limits, leave vs close 1000 vs an
//! abrupt drop (grace, resume), 1009, 4409, origin, rate limits, bad frames.

use std::time::Duration;

use futures_util::SinkExt;
use parlor_tests::{
    Frame, RawSocket, TestServer, flood, join_raw, next_frame, next_json, send, until,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, protocol::CloseFrame};

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap()
}

/// Joins with `ticket` and expects a refusal naming it; returns the code.
async fn refused(ws: &mut RawSocket, ticket: String) -> String {
    send(ws, json!({"type": "join", "ticket": ticket})).await;
    let e = next_json(ws).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["ticket"], json!(ticket), "the error names the ticket");
    e["code"].as_str().unwrap().to_owned()
}

/// The next entry's (kind, sender).
async fn next_kind(ws: &mut RawSocket) -> (String, String) {
    let e = next_json(ws).await;
    (
        e["kind"].as_str().unwrap().to_owned(),
        e["sender"].as_str().unwrap().to_owned(),
    )
}

async fn close_with(ws: &mut RawSocket, code: u16) {
    ws.send(Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: "".into(),
    })))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_rules() {
    let server = TestServer::start(&["--hello-timeout", "1s"]).await;

    // Silence: 4401 once the hello timeout passes.
    let mut ws = server.raw().await;
    assert!(matches!(
        next_frame(&mut ws).await,
        Frame::Closed(Some(4401))
    ));

    // Anything but hello first: told so, and the socket stays for a hello.
    let mut ws = server.raw().await;
    send(&mut ws, json!({"type": "join", "ticket": "x"})).await;
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("UNAUTHENTICATED"))
    );
    send(&mut ws, json!({"type": "hello", "token": "dev:ann"})).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "welcome", "user_id": "ann", "ping_interval_ms": 25000,
               "ping_timeout_ms": 20000, "expires_at": null})
    );

    // A bad token: an error frame, then 4401.
    let mut ws = server.raw().await;
    send(&mut ws, json!({"type": "hello", "token": "nope"})).await;
    assert_eq!(next_json(&mut ws).await["code"], "UNAUTHENTICATED");
    assert!(matches!(
        next_frame(&mut ws).await,
        Frame::Closed(Some(4401))
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_rules() {
    let server = TestServer::start(&["--reservation-ttl", "3s"]).await;
    let ann = server.client("ann");
    let t = ann.reserve("tix", Some(5)).await.unwrap().ticket;
    let mut bob_ws = server.raw_as("bob").await;
    let mut ann_ws = server.raw_as("ann").await;

    assert_eq!(
        refused(&mut bob_ws, t.clone()).await,
        "TICKET_INVALID",
        "another user's ticket"
    );
    send(&mut ann_ws, json!({"type": "join", "ticket": t})).await;
    assert_eq!(next_json(&mut ann_ws).await["type"], "joined");
    assert_eq!(
        refused(&mut ann_ws, t.clone()).await,
        "TICKET_INVALID",
        "used"
    );
    let mut forged = t.clone().into_bytes();
    forged[5] ^= 1;
    assert_eq!(
        refused(&mut ann_ws, String::from_utf8(forged).unwrap()).await,
        "TICKET_INVALID",
        "forged"
    );
    assert_eq!(
        refused(&mut ann_ws, "made-up".into()).await,
        "TICKET_INVALID"
    );
    let late = server
        .client("bob")
        .reserve("tix", None)
        .await
        .unwrap()
        .ticket;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(refused(&mut bob_ws, late).await, "TICKET_EXPIRED");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_ack_order_and_duplicates() {
    let server = TestServer::start(&["--max-message-bytes", "64"]).await;
    server.client("ann").reserve("talk", Some(5)).await.unwrap();
    let mut ann = server.raw_as("ann").await;
    let joined = join_raw(&server, &mut ann, "ann", "talk", None).await;
    assert_eq!(
        joined,
        json!({"type": "joined", "room_id": "talk", "capacity": 5, "occupancy": 1, "last_seq": 1,
            "first_seq": 1, "resumed": true, "member_count": 1, "members": ["ann"]})
    );
    let mut bob = server.raw_as("bob").await;
    let joined = join_raw(&server, &mut bob, "bob", "talk", None).await;
    assert_eq!(
        (joined["last_seq"].as_u64(), joined["members"].clone()),
        (Some(2), json!(["ann", "bob"]))
    );
    // Ann sees bob's join entry.
    let e = next_json(&mut ann).await;
    assert_eq!(
        (
            e["type"].as_str(),
            e["kind"].as_str(),
            e["sender"].as_str(),
            seq(&e)
        ),
        (Some("entry"), Some("join"), Some("bob"), 2)
    );

    for i in 0..50 {
        send(&mut ann, json!({"type": "send", "room_id": "talk", "client_id": format!("c{i}"), "body": format!("hello {i}")})).await;
    }
    // A duplicate of c7 later: acked with the original, delivered once.
    send(
        &mut ann,
        json!({"type": "send", "room_id": "talk", "client_id": "c7", "body": "again"}),
    )
    .await;

    let (mut acks, mut ann_entries) = (Vec::new(), Vec::new());
    while acks.len() < 51 {
        let f = next_json(&mut ann).await;
        match f["type"].as_str() {
            Some("ack") => acks.push(f),
            Some("entry") => ann_entries.push(f),
            other => panic!("unexpected {other:?}: {f}"),
        }
    }
    while ann_entries.len() < 50 {
        ann_entries.push(next_json(&mut ann).await);
    }
    // Pipelined sends are answered, and stored, in the order they were sent.
    let answered: Vec<&str> = acks
        .iter()
        .map(|a| a["client_id"].as_str().unwrap())
        .collect();
    let sent: Vec<String> = (0..50)
        .map(|i| format!("c{i}"))
        .chain(["c7".into()])
        .collect();
    assert_eq!(answered, sent);
    let ack_seqs: Vec<u64> = acks[..50].iter().map(seq).collect();
    assert_eq!(ack_seqs, (3..=52).collect::<Vec<_>>());
    assert_eq!(
        acks[7]["seq"], acks[50]["seq"],
        "duplicate acked with the original seq"
    );
    assert_eq!(acks[7]["id"], acks[50]["id"]);
    for key in ["room_id", "client_id", "seq", "id", "created_at"] {
        assert!(!acks[0][key].is_null(), "{key} in ack {}", acks[0]);
    }
    let mut bob_entries = Vec::new();
    while bob_entries.len() < 50 {
        bob_entries.push(next_json(&mut bob).await);
    }
    for entries in [&ann_entries, &bob_entries] {
        let seqs: Vec<u64> = entries.iter().map(seq).collect();
        assert_eq!(seqs, (3..=52).collect::<Vec<_>>(), "in order, each once");
        assert_eq!(entries[0]["client_id"], "c0", "own entries carry client_id");
        assert_eq!(entries[7]["body"], "hello 7");
    }

    // Limits and membership, each answered with an error; the socket stays.
    send(
        &mut ann,
        json!({"type": "send", "room_id": "talk", "client_id": "big", "body": "x".repeat(65)}),
    )
    .await;
    let e = next_json(&mut ann).await;
    assert_eq!(
        (
            e["code"].as_str(),
            e["client_id"].as_str(),
            e["room_id"].as_str()
        ),
        (Some("MESSAGE_TOO_LARGE"), Some("big"), Some("talk"))
    );
    send(
        &mut ann,
        json!({"type": "send", "room_id": "elsewhere", "client_id": "x", "body": "hi"}),
    )
    .await;
    assert_eq!(next_json(&mut ann).await["code"], "NOT_A_MEMBER");
    send(&mut ann, json!({"type": "leave", "room_id": "elsewhere"})).await;
    assert_eq!(next_json(&mut ann).await["code"], "NOT_A_MEMBER");
    for bad in [
        json!({"type": "shout"}),
        json!({"type": "send", "room_id": "talk"}),
        json!([1, 2]),
    ] {
        send(&mut ann, bad).await;
        assert_eq!(next_json(&mut ann).await["code"], "INVALID_INPUT");
    }
    ann.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next_json(&mut ann).await["code"], "INVALID_INPUT");
    send(
        &mut ann,
        json!({"type": "send", "room_id": "bad room", "client_id": "x", "body": "hi"}),
    )
    .await;
    assert_eq!(next_json(&mut ann).await["code"], "INVALID_INPUT");
    // A refusal in the middle of a burst is answered in its place: after
    // the acks of the sends before it, which wait for storage, and before
    // the ones after it.
    let burst: Vec<(String, String)> = (0..21)
        .map(|i| match i {
            10 => ("big".to_owned(), "x".repeat(65)),
            i => (format!("p{i}"), format!("burst {i}")),
        })
        .collect();
    for (id, body) in &burst {
        send(
            &mut ann,
            json!({"type": "send", "room_id": "talk", "client_id": id, "body": body}),
        )
        .await;
    }
    let mut answers = Vec::new();
    while answers.len() < burst.len() {
        let f = next_json(&mut ann).await;
        if f["type"] != "entry" {
            answers.push(f["client_id"].as_str().unwrap().to_owned());
        }
    }
    let ids: Vec<String> = burst.into_iter().map(|(id, _)| id).collect();
    assert_eq!(answers, ids);
    send(
        &mut ann,
        json!({"type": "send", "room_id": "talk", "client_id": "still-here", "body": "yes"}),
    )
    .await;
    let (ack, _) = until(&mut ann, "ack").await;
    assert_eq!(
        seq(&ack),
        73,
        "the connection stayed up through every error"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_close_and_abrupt_drop() {
    let server = TestServer::start(&["--reconnect-grace", "3s"]).await;
    server
        .client("watch")
        .reserve("exits", Some(3))
        .await
        .unwrap();
    let mut watch = server.raw_as("watch").await;
    join_raw(&server, &mut watch, "watch", "exits", None).await;
    let occupancy = |server: &TestServer| {
        let client = server.client("watch");
        async move {
            client.room("exits").await.unwrap()["occupancy"]
                .as_u64()
                .unwrap()
        }
    };

    // Two connections, one seat; losing one of them changes nothing.
    let mut a1 = server.raw_as("ann").await;
    join_raw(&server, &mut a1, "ann", "exits", None).await;
    let mut a2 = server.raw_as("ann").await;
    let j = join_raw(&server, &mut a2, "ann", "exits", None).await;
    assert_eq!(j["occupancy"], 2);
    assert_eq!(next_kind(&mut watch).await, ("join".into(), "ann".into()));
    drop(a2);

    // Explicit leave: `left`, the seat is freed at once, a leave entry.
    send(&mut a1, json!({"type": "leave", "room_id": "exits"})).await;
    let (left, _) = until(&mut a1, "left").await;
    assert_eq!(left, json!({"type": "left", "room_id": "exits"}));
    assert_eq!(next_kind(&mut watch).await, ("leave".into(), "ann".into()));
    assert_eq!(occupancy(&server).await, 1);

    // Close 1000: a leave too.
    let mut b = server.raw_as("bob").await;
    join_raw(&server, &mut b, "bob", "exits", None).await;
    assert_eq!(next_kind(&mut watch).await, ("join".into(), "bob".into()));
    close_with(&mut b, 1000).await;
    assert_eq!(next_kind(&mut watch).await, ("leave".into(), "bob".into()));
    assert_eq!(occupancy(&server).await, 1);

    // Abrupt drop: the seat waits in grace; resume with after_seq within it:
    // no gap, no duplicate, no second join.
    let mut c = server.raw_as("cat").await;
    let joined = join_raw(&server, &mut c, "cat", "exits", None).await;
    let cat_join = joined["last_seq"].as_u64().unwrap();
    assert_eq!(next_kind(&mut watch).await, ("join".into(), "cat".into()));
    let watcher = server.client("watch");
    watcher.send("exits", "w1", "one").await.unwrap();
    let seen = seq(&next_json(&mut c).await);
    drop(c); // no close frame
    for i in 2..=4 {
        watcher
            .send("exits", &format!("w{i}"), "more")
            .await
            .unwrap();
    }
    assert_eq!(occupancy(&server).await, 2, "cat's seat is in grace");
    let mut c = server.raw_as("cat").await;
    let rejoined = join_raw(&server, &mut c, "cat", "exits", Some(seen)).await;
    assert_eq!(rejoined["members"], json!(["cat", "watch"]));
    let resumed: Vec<u64> = [
        next_json(&mut c).await,
        next_json(&mut c).await,
        next_json(&mut c).await,
    ]
    .iter()
    .map(seq)
    .collect();
    assert_eq!(
        resumed,
        vec![seen + 1, seen + 2, seen + 3],
        "no gap, no duplicate"
    );
    let log = watcher.history("exits", 0, 500).await.unwrap();
    let cat_joins = log
        .iter()
        .filter(|e| e.kind == "join" && e.sender == "cat")
        .count();
    assert_eq!(cat_joins, 1, "re-commit from grace appends no join");
    assert!(cat_join < seen);

    // Dropped again and not back: after the grace, one leave entry.
    drop(c);
    loop {
        let (kind, sender) = next_kind(&mut watch).await;
        if kind == "leave" {
            assert_eq!(sender, "cat");
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = watcher.history("exits", 0, 500).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.kind == "leave" && e.sender == "cat")
            .count(),
        1
    );
    assert_eq!(occupancy(&server).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_with_1009() {
    let server = TestServer::start(&["--max-frame-bytes", "1024"]).await;
    let mut ws = server.raw_as("ann").await;
    send(
        &mut ws,
        json!({"type": "leave", "room_id": "x".repeat(900)}),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await["code"],
        "INVALID_INPUT",
        "under the limit: an answer"
    );
    ws.send(Message::text("x".repeat(1025))).await.unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        Frame::Closed(Some(1009))
    ));
    // Far over tungstenite's own limit too.
    let mut ws = server.raw_as("ann").await;
    let _ = ws.send(Message::text("x".repeat(10_000))).await;
    assert!(matches!(
        next_frame(&mut ws).await,
        Frame::Closed(Some(1009) | None)
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_closed_with_4409_and_resumes() {
    let server = TestServer::start(&["--outbound-queue", "16"]).await;
    server
        .client("loud")
        .reserve("flood", Some(5))
        .await
        .unwrap();
    let mut loud = server.raw_as("loud").await;
    join_raw(&server, &mut loud, "loud", "flood", None).await;
    // The sender keeps reading its own socket (else it too is cut off with
    // 4409, and its seat in grace cannot send).
    let draining = tokio::spawn(async move {
        while let parlor_tests::Frame::Json(_) = next_frame(&mut loud).await {}
    });

    // The slow client: a tiny receive buffer, and it stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let addr = server.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let request = server.ws_url().into_client_request().unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut slow, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    send(&mut slow, json!({"type": "hello", "token": "dev:slow"})).await;
    next_json(&mut slow).await;
    let joined = join_raw(&server, &mut slow, "slow", "flood", None).await;
    let start = joined["last_seq"].as_u64().unwrap();

    flood(&server, "loud", "flood").await;
    // The server gives up on it once its queue stays full (2 s patience).
    for _ in 0..100 {
        if server.metric("parlor_too_slow_closes_total").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Now read: what was delivered, then the 4409.
    let mut last = start;
    let code = loop {
        match next_frame(&mut slow).await {
            Frame::Json(v) if v["type"] == "entry" => {
                assert_eq!(seq(&v), last + 1, "in order up to the close");
                last = seq(&v);
            }
            Frame::Json(_) => {}
            Frame::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(4409));
    let end = server.client("loud").room("flood").await.unwrap()["last_seq"]
        .as_u64()
        .unwrap();
    assert!(last < end, "it was cut off before the end");

    // It loses nothing: resume after the last seq it saw.
    let mut again = server.raw_as("slow").await;
    join_raw(&server, &mut again, "slow", "flood", Some(last)).await;
    for expected in last + 1..=end {
        let v = next_json(&mut again).await;
        assert_eq!(seq(&v), expected);
    }
    draining.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_and_rate_limits() {
    let server = TestServer::start(&[
        "--allowed-origin",
        "https://chat.example",
        "--rate-limit",
        "1",
        "--rate-burst",
        "3",
    ])
    .await;
    let with_origin = |origin: &str| {
        let mut request = server.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a disallowed origin must get 403 before the upgrade, got {other:?}"),
    }
    assert!(
        tokio_tungstenite::connect_async(with_origin("https://chat.example"))
            .await
            .is_ok()
    );
    assert!(
        tokio_tungstenite::connect_async(server.ws_url())
            .await
            .is_ok(),
        "no Origin: allowed"
    );
    let r = server
        .http()
        .get(format!("{}/v1/rooms/x", server.base))
        .header("Origin", "https://evil.example")
        .bearer_auth("dev:ann")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "FORBIDDEN"
    );

    server
        .client("ann")
        .reserve("slowly", Some(2))
        .await
        .unwrap();
    let mut ann = server.raw_as("ann").await;
    join_raw(&server, &mut ann, "ann", "slowly", None).await;
    for i in 0..4 {
        send(&mut ann, json!({"type": "send", "room_id": "slowly", "client_id": format!("r{i}"), "body": "hi"})).await;
    }
    let mut codes = Vec::new();
    while codes.len() < 4 {
        let f = next_json(&mut ann).await;
        match f["type"].as_str() {
            Some("ack") => codes.push("ack".to_owned()),
            Some("error") => codes.push(f["code"].as_str().unwrap().to_owned()),
            _ => {}
        }
    }
    assert_eq!(
        codes,
        vec!["ack", "ack", "ack", "RATE_LIMITED"],
        "burst of 3, then limited"
    );
    let r = server
        .http()
        .post(format!("{}/v1/rooms/slowly/messages", server.base))
        .bearer_auth("dev:ann")
        .json(&json!({"client_id": "h", "body": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the same bucket over HTTP");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_closes_1007_as_a_lost_connection() {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame as RawFrame,
        coding::{Data, OpCode},
    };
    let server = TestServer::start(&["--reconnect-grace", "5s"]).await;
    server
        .client("watch")
        .reserve("bytes", Some(3))
        .await
        .unwrap();
    let mut watch = server.raw_as("watch").await;
    join_raw(&server, &mut watch, "watch", "bytes", None).await;
    let mut ann = server.raw_as("ann").await;
    let joined = join_raw(&server, &mut ann, "ann", "bytes", None).await;
    assert_eq!(next_kind(&mut watch).await, ("join".into(), "ann".into()));

    // FF FE as a text frame: RFC 6455 §8.1 says fail with 1007.
    let frame = RawFrame::message(vec![0xFF, 0xFE], OpCode::Data(Data::Text), true);
    ann.send(Message::Frame(frame)).await.unwrap();
    assert!(
        matches!(next_frame(&mut ann).await, Frame::Closed(Some(1007))),
        "close 1007"
    );

    // A close the client caused is a lost connection: grace, no leave;
    // a resume finds the seat and appends no second join.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let watcher = server.client("watch");
    let log = watcher.history("bytes", 0, 500).await.unwrap();
    assert!(
        !log.iter().any(|e| e.kind == "leave" && e.sender == "ann"),
        "no leave entry: {log:?}"
    );
    let mut ann = server.raw_as("ann").await;
    let after = joined["last_seq"].as_u64().unwrap();
    let rejoined = join_raw(&server, &mut ann, "ann", "bytes", Some(after)).await;
    assert_eq!(rejoined["members"], json!(["ann", "watch"]));
    let log = watcher.history("bytes", 0, 500).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.sender == "ann" && e.kind != "text")
            .count(),
        1,
        "one join, no leave: {log:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_after_seq_outside_0_to_2_pow_63_minus_1_is_invalid_input() {
    let server = TestServer::start(&[]).await;
    server
        .client("ann")
        .reserve("range", Some(3))
        .await
        .unwrap();
    let mut ann = server.raw_as("ann").await;
    for (after, why) in [
        (json!(9_223_372_036_854_775_808_u64), "2^63"),
        (json!(u64::MAX), "2^64 - 1"),
        (json!(-1), "negative"),
        // In range, but past the room's last seq.
        (json!(9_223_372_036_854_775_807_u64), "2^63 - 1"),
    ] {
        let ticket = server
            .client("ann")
            .reserve("range", None)
            .await
            .unwrap()
            .ticket;
        send(
            &mut ann,
            json!({"type": "join", "ticket": ticket, "after_seq": after}),
        )
        .await;
        let e = next_json(&mut ann).await;
        assert_eq!(e["type"], "error", "{why}: {e}");
        assert_eq!(e["code"], "INVALID_INPUT", "{why}: {e}");
    }
    // The socket stayed; 0 is a valid after_seq.
    let joined = join_raw(&server, &mut ann, "ann", "range", Some(0)).await;
    assert_eq!(joined["room_id"], "range");
    server.stop().await;
}
