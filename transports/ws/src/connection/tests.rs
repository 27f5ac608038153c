//! The WebSocket session without a socket: [`serve`] over an in-memory
//! sink/stream pair (bounded futures channels of [`Message`]), the engine
//! on the in-memory test store, and tokio's paused clock, so the timers of
//! docs/contract.md §5 (hello deadline, patience) run in virtual time. The
//! same idea as axum's `testing-websockets` example and async-graphql's
//! channel-driven tests; `tests/tests/websocket.rs` checks the same rules
//! over real sockets.

use std::{
    convert::Infallible,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::extract::ws::Message;
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use parlor_auth::DevTokens;
use parlor_engine::Principal;
use parlor_engine::{
    ChatEngine, Engine, EngineConfig, EntryKind, Membership, RoomId, RoomSpec, SeqRange, UserId,
    testkit::MemoryStore,
};
use serde_json::{Value, json};
use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Instant, sleep},
};

use super::serve;
use crate::{WsConfig, state::WsState};

/// An engine and the transport's state, without a router or a listener.
struct Server {
    engine: Engine,
    state: Arc<WsState>,
    _shutdown: watch::Sender<bool>,
}

impl Server {
    async fn start(config: WsConfig) -> Self {
        Server::start_with(config, EngineConfig::default()).await
    }

    async fn start_with(config: WsConfig, engine_config: EngineConfig) -> Self {
        let engine = Engine::builder(Arc::new(MemoryStore::default()))
            .config(engine_config)
            .start()
            .await
            .unwrap();
        let (shutdown, watching) = watch::channel(false);
        let state = WsState::new(
            Arc::new(engine.clone()),
            Arc::new(DevTokens),
            config,
            watching,
        );
        Server {
            engine,
            state: Arc::new(state),
            _shutdown: shutdown,
        }
    }

    /// A connection whose "socket" holds at most `buffered` frames the
    /// client has not read yet.
    fn connect(&self, buffered: usize) -> Client {
        let (to_server, inbound) = mpsc::channel(16);
        let (outbound, from_server) = mpsc::channel(buffered);
        let session = tokio::spawn(serve(Arc::clone(&self.state), outbound, inbound));
        Client {
            to_server,
            from_server,
            session,
        }
    }

    /// A connection past `hello` as `user`.
    async fn hello(&self, user: &str, buffered: usize) -> Client {
        let mut client = self.connect(buffered);
        client
            .send(json!({"type": "hello", "token": format!("dev:{user}")}))
            .await;
        let welcome = client.json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["user_id"], user);
        client
    }

    /// A ticket for `user` in `room` (created with 8 seats if absent).
    async fn ticket(&self, user: &str, room: &str) -> String {
        self.engine
            .reserve(
                &Principal::new((uid(user)).clone()),
                &rid(room),
                Some(RoomSpec::with_capacity(8)),
            )
            .await
            .unwrap()
            .ticket
    }

    /// `user` joined to `room` through the engine itself, as through
    /// another transport.
    async fn member(&self, user: &str, room: &str) -> Membership {
        let ticket = self.ticket(user, room).await;
        self.engine
            .commit(&Principal::new((uid(user)).clone()), &ticket, None)
            .await
            .unwrap()
    }

    /// The room's log, read by `reader` (who needs a seat).
    async fn log(&self, reader: &str, room: &str) -> Vec<parlor_engine::Entry> {
        self.engine
            .history(
                &Principal::new((uid(reader)).clone()),
                &rid(room),
                SeqRange::after(0, 500),
            )
            .await
            .unwrap()
            .entries
    }
}

fn uid(user: &str) -> UserId {
    UserId::new(user).unwrap()
}

fn rid(room: &str) -> RoomId {
    RoomId::new(room).unwrap()
}

/// What the client reads.
#[derive(Debug, PartialEq)]
enum Frame {
    Json(Value),
    /// A close frame: code and reason.
    Close(u16, String),
    /// The server closed its end (no more frames).
    Ended,
}

/// The client's ends of the pair.
struct Client {
    to_server: mpsc::Sender<Result<Message, Infallible>>,
    from_server: mpsc::Receiver<Message>,
    session: JoinHandle<()>,
}

impl Client {
    async fn send(&mut self, frame: Value) {
        let text = Message::Text(frame.to_string().into());
        self.to_server.send(Ok(text)).await.unwrap();
    }

    fn frame(message: Message) -> Option<Frame> {
        match message {
            Message::Text(text) => Some(Frame::Json(serde_json::from_str(&text).unwrap())),
            Message::Close(Some(close)) => Some(Frame::Close(close.code, close.reason.to_string())),
            Message::Close(None) => Some(Frame::Close(1005, String::new())),
            // The heartbeat's ping frames are not the session's answers.
            Message::Ping(_) | Message::Pong(_) => None,
            Message::Binary(_) => panic!("the server sent a binary frame"),
        }
    }

    /// The next frame, waiting for it.
    async fn next(&mut self) -> Frame {
        loop {
            let Some(message) = self.from_server.next().await else {
                return Frame::Ended;
            };
            if let Some(frame) = Self::frame(message) {
                return frame;
            }
        }
    }

    async fn json(&mut self) -> Value {
        match self.next().await {
            Frame::Json(v) => v,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    /// Frames written so far and not read, without waiting.
    fn written(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(message) = self.from_server.try_recv() {
            frames.extend(Self::frame(message));
        }
        frames
    }

    /// Reads up to the first frame of `kind`: (it, the frames before it).
    async fn until(&mut self, kind: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let v = self.json().await;
            if v["type"] == kind {
                return (v, before);
            }
            before.push(v);
        }
    }

    async fn join(&mut self, ticket: &str, after_seq: Option<u64>) -> Value {
        self.send(json!({"type": "join", "ticket": ticket, "after_seq": after_seq}))
            .await;
        let joined = self.json().await;
        assert_eq!(joined["type"], "joined", "{joined}");
        joined
    }
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

/// Asserts that `entries` are entry frames whose seqs run on by one from
/// `first`; the seq after the last.
fn in_order(entries: &[Value], first: u64) -> u64 {
    let mut next = first;
    for v in entries {
        assert_eq!(v["type"], "entry", "{v}");
        assert_eq!(seq(v), next, "no gap, no duplicate: {v}");
        next += 1;
    }
    next
}

#[tokio::test(start_paused = true)]
async fn without_a_valid_hello_in_time_the_socket_closes_with_4401() {
    let server = Server::start(WsConfig::default()).await;
    let mut client = server.connect(64);
    let opened = Instant::now();

    // `ping` is answered before `hello`, and the deadline stands.
    sleep(Duration::from_secs(6)).await;
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.json().await, json!({"type": "pong"}));
    // Any other frame: UNAUTHENTICATED, and the socket keeps waiting.
    client.send(json!({"type": "join", "ticket": "t"})).await;
    let refused = client.json().await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("UNAUTHENTICATED"))
    );

    // Then nothing until the hello timeout (10 s from the open): 4401.
    assert_eq!(
        client.next().await,
        Frame::Close(4401, "no valid hello in time".into())
    );
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_millis(10_500),
        "closed after {waited:?}"
    );
    assert_eq!(client.next().await, Frame::Ended);
    client.session.await.unwrap();
    assert_eq!(server.state.connections.get(), 0);

    // A refused token in `hello`: the error frame, then 4401 at once.
    let mut client = server.connect(64);
    let opened = Instant::now();
    client
        .send(json!({"type": "hello", "token": "not a token"}))
        .await;
    assert_eq!(client.json().await["code"], "UNAUTHENTICATED");
    assert_eq!(
        client.next().await,
        Frame::Close(4401, "invalid token".into())
    );
    assert!(opened.elapsed() < Duration::from_secs(1));
    client.session.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn pipelined_sends_are_answered_in_the_order_sent() {
    // The engine of `Server::start` has no send limit (EngineConfig's default).
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 1024).await;
    let joined = ann.join(&server.ticket("ann", "talk").await, None).await;
    let last_seq = joined["last_seq"].as_u64().unwrap();

    // 40 sends, none waiting for an answer; two are refused: an empty body
    // (INVALID_INPUT) and a room ann is not in (NOT_A_MEMBER).
    let refused = |i: usize| match i {
        7 => Some(("talk", "INVALID_INPUT")),
        20 => Some(("elsewhere", "NOT_A_MEMBER")),
        _ => None,
    };
    for i in 0..40 {
        let (room, body) = match refused(i) {
            Some(("talk", _)) => ("talk", String::new()),
            Some((room, _)) => (room, "x".to_owned()),
            None => ("talk", format!("m{i}")),
        };
        ann.send(
            json!({"type": "send", "room_id": room, "client_id": format!("c{i}"), "body": body}),
        )
        .await;
    }

    let (mut answers, mut entries) = (Vec::new(), Vec::new());
    while answers.len() < 40 || entries.len() < 38 {
        let v = ann.json().await;
        match v["type"].as_str() {
            Some("ack" | "error") => answers.push(v),
            Some("entry") => entries.push(v),
            _ => panic!("unexpected {v}"),
        }
    }
    // Answered in the order sent, an error in its place among the acks.
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["client_id"], format!("c{i}"), "{answer}");
        match refused(i) {
            Some((room, code)) => {
                assert_eq!(answer["type"], "error", "{answer}");
                assert_eq!(answer["code"], code);
                assert_eq!(answer["room_id"], room);
            }
            None => {
                assert_eq!(answer["type"], "ack", "{answer}");
                assert_eq!(answer["room_id"], "talk");
            }
        }
    }
    // Stored in the order sent: the acks' seqs run on by one from the join.
    let acked: Vec<u64> = answers
        .iter()
        .filter(|a| a["type"] == "ack")
        .map(seq)
        .collect();
    assert_eq!(acked, (last_seq + 1..=last_seq + 38).collect::<Vec<_>>());
    // And each of them delivered once, in order, with its client id.
    in_order(&entries, last_seq + 1);
    let sent: Vec<String> = (0..40)
        .filter(|&i| refused(i).is_none())
        .map(|i| format!("c{i}"))
        .collect();
    let delivered: Vec<&str> = entries
        .iter()
        .map(|e| e["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(delivered, sent);
}

#[tokio::test(start_paused = true)]
async fn a_socket_that_takes_nothing_for_the_patience_is_closed_with_4409_as_a_loss() {
    let server = Server::start(WsConfig::default()).await;
    // The "socket" holds 8 frames; then writes stall until the client reads.
    let mut slow = server.hello("slow", 8).await;
    let joined = slow.join(&server.ticket("slow", "flood").await, None).await;
    let last_seq = joined["last_seq"].as_u64().unwrap();
    let _bob = server.member("bob", "flood").await;

    // The client stops reading while 100 entries are stored.
    for i in 0..100 {
        server
            .engine
            .send(
                &Principal::new((uid("bob")).clone()),
                &rid("flood"),
                &format!("b{i}"),
                "x",
            )
            .await
            .unwrap();
    }
    let end = last_seq + 101; // bob's join, then his 100 texts
    // Past the patience (2 s) of a stalled write.
    sleep(Duration::from_secs(3)).await;
    assert_eq!(server.state.too_slow_closes.load(Ordering::Relaxed), 1);

    // Reading again: what was written before the stall, in order, then
    // 4409 (nothing queued is delivered after it), then the end.
    let mut delivered = Vec::new();
    let close = loop {
        match slow.next().await {
            Frame::Json(v) => delivered.push(v),
            other => break other,
        }
    };
    assert_eq!(
        close,
        Frame::Close(4409, "too slow: resume after your last seq".into())
    );
    let next = in_order(&delivered, last_seq + 1);
    assert!(next <= end, "cut off before the end ({next} of {end})");
    assert_eq!(slow.next().await, Frame::Ended);
    slow.session.await.unwrap();

    // A loss, not a leave: the seat waits in grace, no `leave` entry.
    let room = server
        .engine
        .room(
            &Principal::new(UserId::new("observer").unwrap()),
            &rid("flood"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(room.occupancy, 2);
    let log = server.log("bob", "flood").await;
    assert!(!log.iter().any(|e| e.kind == EntryKind::Leave), "{log:?}");

    // Resuming after the last seq it saw loses nothing, on the same seat.
    let mut again = server.hello("slow", 1024).await;
    let ticket = server.ticket("slow", "flood").await;
    let joined = again.join(&ticket, Some(next - 1)).await;
    assert_eq!(joined["last_seq"], end, "no new join entry");
    let mut rest = Vec::new();
    while rest.len() < usize::try_from(end + 1 - next).unwrap() {
        rest.push(again.json().await);
    }
    assert_eq!(in_order(&rest, next), end + 1);
}

#[tokio::test(start_paused = true)]
async fn after_leave_no_entry_of_the_room_follows_left() {
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 1024).await;
    let joined = ann.join(&server.ticket("ann", "talk").await, None).await;
    let last_seq = joined["last_seq"].as_u64().unwrap();
    let bob = server.member("bob", "talk").await;

    // Bob keeps sending while ann leaves.
    let engine = server.engine.clone();
    let sending = tokio::spawn(async move {
        for i in 0..200 {
            engine
                .send(
                    &Principal::new((uid("bob")).clone()),
                    &rid("talk"),
                    &format!("b{i}"),
                    "x",
                )
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
        bob
    });
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(ann.json().await);
    }
    ann.send(json!({"type": "leave", "room_id": "talk"})).await;
    let (left, before) = ann.until("left").await;
    assert_eq!(left, json!({"type": "left", "room_id": "talk"}));
    seen.extend(before);
    in_order(&seen, last_seq + 1);

    // Every later entry of the room has had time to reach the writer: none
    // was written after `left` — nor ann's own `leave` entry.
    let _bob = sending.await.unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(ann.written(), []);
    let log = server.log("bob", "talk").await;
    let own_leave = log
        .iter()
        .find(|e| e.kind == EntryKind::Leave && e.sender.as_str() == "ann")
        .expect("the leave is in the log");
    assert!(own_leave.seq >= last_seq + 1 + seen.len() as u64);
    assert_eq!(
        server
            .engine
            .room(
                &Principal::new(UserId::new("observer").unwrap()),
                &rid("talk")
            )
            .await
            .unwrap()
            .unwrap()
            .occupancy,
        1
    );

    // The socket stays; leaving again is refused for that room.
    ann.send(json!({"type": "leave", "room_id": "talk"})).await;
    let again = ann.json().await;
    assert_eq!(
        (&again["code"], &again["room_id"]),
        (&json!("NOT_A_MEMBER"), &json!("talk"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_leave_from_elsewhere_ends_the_room_with_left_and_nothing_after() {
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 1024).await;
    ann.join(&server.ticket("ann", "talk").await, None).await;
    let _bob = server.member("bob", "talk").await;

    // ann leaves through the engine (as GraphQL's leaveRoom would).
    assert!(
        server
            .engine
            .leave(&uid("ann"), &rid("talk"))
            .await
            .unwrap()
    );
    let (left, before) = ann.until("left").await;
    assert_eq!(left, json!({"type": "left", "room_id": "talk"}));
    assert!(before.iter().all(|v| v["type"] == "entry"), "{before:?}");

    for i in 0..10 {
        server
            .engine
            .send(
                &Principal::new((uid("bob")).clone()),
                &rid("talk"),
                &format!("b{i}"),
                "x",
            )
            .await
            .unwrap();
    }
    sleep(Duration::from_secs(1)).await;
    assert_eq!(ann.written(), []);
    ann.send(json!({"type": "ping"})).await;
    assert_eq!(ann.json().await, json!({"type": "pong"}));
}

/// `user` sends `body` to `room` through the engine; its seq.
async fn say(server: &Server, user: &str, room: &str, client_id: &str, body: &str) -> u64 {
    server
        .engine
        .send(&Principal::new(uid(user)), &rid(room), client_id, body)
        .await
        .unwrap()
        .seq
}

#[tokio::test(start_paused = true)]
async fn joined_says_where_the_log_starts_and_that_it_resumed() {
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 64).await;
    let joined = ann.join(&server.ticket("ann", "talk").await, None).await;
    assert_eq!(joined["first_seq"], 1, "{joined}");
    assert_eq!(joined["resumed"], true, "{joined}");
    let mut again = server.hello("ann", 64).await;
    let joined = again
        .join(&server.ticket("ann", "talk").await, Some(0))
        .await;
    assert_eq!(
        (&joined["first_seq"], &joined["resumed"]),
        (&json!(1), &json!(true))
    );
}

/// In a room of more than 100 members `joined` names the first 100 by id
/// and counts them all (docs/contract.md §2, "Presence and listing").
#[tokio::test(start_paused = true)]
async fn joined_in_a_big_room_names_a_hundred_and_counts_everyone() {
    let server = Server::start(WsConfig::default()).await;
    let big = Some(RoomSpec::with_capacity(200));
    let mut seated = Vec::new();
    for i in (0..130).rev() {
        let who = Principal::new(uid(&format!("m{i:03}")));
        let ticket = server
            .engine
            .reserve(&who, &rid("hall"), big.clone())
            .await
            .unwrap();
        seated.push(
            server
                .engine
                .commit(&who, &ticket.ticket, None)
                .await
                .unwrap(),
        );
    }
    let mut ann = server.hello("ann", 64).await;
    let joined = ann.join(&server.ticket("ann", "hall").await, None).await;
    assert_eq!(joined["member_count"], 131, "{joined}");
    // "ann" sorts before "m…": she is first, then m000…m098.
    let mut expected = vec!["ann".to_string()];
    expected.extend((0..99).map(|i| format!("m{i:03}")));
    assert_eq!(joined["members"], json!(expected));
    drop(seated.pop()); // m000 loses its connection: grace, still a member
    let again = server
        .hello("ann", 64)
        .await
        .join(&server.ticket("ann", "hall").await, None)
        .await;
    assert_eq!(again["member_count"], 131, "{again}");
}

/// `read` answers `read_state`; the room's other members get a `receipt`,
/// the reader's own sockets none; a lower seq changes nothing and tells no
/// one.
#[tokio::test(start_paused = true)]
async fn read_answers_read_state_and_only_the_others_get_a_receipt() {
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 1024).await;
    ann.join(&server.ticket("ann", "talk").await, None).await;
    let mut bob = server.hello("bob", 1024).await;
    bob.join(&server.ticket("bob", "talk").await, None).await;
    let mut bob_too = server.hello("bob", 1024).await;
    bob_too
        .join(&server.ticket("bob", "talk").await, None)
        .await;
    let first = say(&server, "ann", "talk", "a1", "one").await;
    let second = say(&server, "ann", "talk", "a2", "two").await;
    sleep(Duration::from_millis(100)).await;
    for socket in [&mut ann, &mut bob, &mut bob_too] {
        socket.written();
    }

    bob.send(json!({"type": "read", "room_id": "talk", "seq": first}))
        .await;
    let (state, before) = bob.until("read_state").await;
    assert_eq!(
        state,
        json!({"type": "read_state", "room_id": "talk", "last_read_seq": first, "unread": 1})
    );
    assert!(before.is_empty(), "{before:?}");
    let (receipt, _) = ann.until("receipt").await;
    assert_eq!(receipt["room_id"], "talk");
    assert_eq!(receipt["user_id"], "bob");
    assert_eq!(receipt["seq"], first);
    assert!(
        parlor_engine::Timestamp::parse_rfc3339(receipt["at"].as_str().unwrap()).is_some(),
        "{receipt}"
    );

    // Lower than the marker: answered with the stored one, and no receipt.
    bob.send(json!({"type": "read", "room_id": "talk", "seq": 0}))
        .await;
    let (state, _) = bob.until("read_state").await;
    assert_eq!(
        (&state["last_read_seq"], &state["unread"]),
        (&json!(first), &json!(1))
    );
    bob.send(json!({"type": "read", "room_id": "talk", "seq": second}))
        .await;
    let (state, _) = bob.until("read_state").await;
    assert_eq!(
        (&state["last_read_seq"], &state["unread"]),
        (&json!(second), &json!(0))
    );
    let (receipt, _) = ann.until("receipt").await;
    assert_eq!(receipt["seq"], second, "the ignored seq told no one");

    // The reader's own sockets hear nothing of it.
    sleep(Duration::from_secs(1)).await;
    for frames in [bob.written(), bob_too.written()] {
        assert!(
            frames
                .iter()
                .all(|f| !matches!(f, Frame::Json(v) if v["type"] == "receipt")),
            "{frames:?}"
        );
    }
    assert_eq!(ann.written(), []);
}

/// A refused `read` is an error frame naming the room (a malformed one, like
/// any malformed frame, names nothing); the socket stays.
#[tokio::test(start_paused = true)]
async fn bad_reads_are_refused_naming_the_room() {
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 1024).await;
    let joined = ann.join(&server.ticket("ann", "talk").await, None).await;
    let last = joined["last_seq"].as_u64().unwrap();
    for (room, seq, code) in [
        ("talk", json!(last + 1), "INVALID_INPUT"),
        ("talk", json!(9_223_372_036_854_775_808u64), "INVALID_INPUT"),
        ("elsewhere", json!(0), "ROOM_NOT_FOUND"),
        ("bad room", json!(0), "INVALID_INPUT"),
    ] {
        ann.send(json!({"type": "read", "room_id": room, "seq": seq}))
            .await;
        let refused = ann.json().await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(
            (&refused["code"], &refused["room_id"]),
            (&json!(code), &json!(room)),
            "{refused}"
        );
    }
    for malformed in [
        json!({"type": "read", "room_id": "talk", "seq": -1}),
        json!({"type": "read", "room_id": "talk"}),
        json!({"type": "read", "room_id": "talk", "seq": "3"}),
    ] {
        ann.send(malformed.clone()).await;
        let refused = ann.json().await;
        assert_eq!(refused["code"], "INVALID_INPUT", "{malformed}: {refused}");
        assert!(refused.get("room_id").is_none(), "{refused}");
    }
    ann.send(json!({"type": "read", "room_id": "talk", "seq": last}))
        .await;
    assert_eq!(ann.json().await["type"], "read_state");
}

/// Edits and redactions reach a live socket as entries of their own; a
/// resume afterwards shows the message as stored now — edited, then erased
/// — never a frame cached from its first delivery.
#[tokio::test(start_paused = true)]
async fn edits_and_redactions_are_live_entries_and_a_resume_sees_them_applied() {
    let server = Server::start(WsConfig::default()).await;
    let mut ann = server.hello("ann", 1024).await;
    let joined = ann.join(&server.ticket("ann", "talk").await, None).await;
    let start = joined["last_seq"].as_u64().unwrap();
    let _bob = server.member("bob", "talk").await;
    let bob = Principal::new(uid("bob"));
    let target = say(&server, "bob", "talk", "b1", "helo").await;
    let (original, _) = ann.until("entry").await;
    let original = if original["seq"] == target {
        original
    } else {
        ann.until("entry").await.0
    };
    assert_eq!(original["body"], "helo");

    let edit = server
        .engine
        .edit(
            &bob,
            &rid("talk"),
            target,
            Some("e1"),
            parlor_engine::Message::text("hello"),
        )
        .await
        .unwrap();
    let (live, _) = ann.until("entry").await;
    assert_eq!(live["seq"], edit.seq);
    assert_eq!(
        (
            &live["kind"],
            &live["target_seq"],
            &live["body"],
            &live["client_id"]
        ),
        (
            &json!("edit"),
            &json!(target),
            &json!("hello"),
            &json!("e1")
        )
    );

    // A resume now: the message with its edit, then the edit.
    let mut late = server.hello("ann", 1024).await;
    late.join(&server.ticket("ann", "talk").await, Some(start))
        .await;
    let mut replayed: Vec<Value> = Vec::new();
    while replayed.len() < usize::try_from(edit.seq - start).unwrap() {
        replayed.push(late.json().await);
    }
    let message = replayed.iter().find(|v| v["seq"] == target).unwrap();
    assert_eq!(message["body"], "hello", "{message}");
    assert_eq!(message["edited_at"], json!(edit.created_at.to_string()));
    assert_eq!(replayed.last().unwrap()["kind"], "edit");

    let redaction = server
        .engine
        .redact(&bob, &rid("talk"), target, Some("typo"))
        .await
        .unwrap();
    for socket in [&mut ann, &mut late] {
        let (live, _) = socket.until("entry").await;
        assert_eq!(
            (&live["kind"], &live["target_seq"], &live["reason"]),
            (&json!("redaction"), &json!(target), &json!("typo"))
        );
        assert!(
            live["body"].is_null() && live["client_id"].is_null(),
            "{live}"
        );
    }

    // And after it: neither the original text nor the edit's, anywhere.
    let mut last = server.hello("ann", 1024).await;
    last.join(&server.ticket("ann", "talk").await, Some(start))
        .await;
    let mut replayed = Vec::new();
    while replayed.len() < usize::try_from(redaction.seq - start).unwrap() {
        replayed.push(last.json().await);
    }
    let text = serde_json::to_string(&replayed).unwrap();
    assert!(!text.contains("helo") && !text.contains("hello"), "{text}");
    let message = replayed.iter().find(|v| v["seq"] == target).unwrap();
    assert_eq!(message["redacted"], true, "{message}");
    assert!(message["body"].is_null() && message.get("data").is_none());
    let edit_again = replayed.iter().find(|v| v["seq"] == edit.seq).unwrap();
    assert_eq!(edit_again["redacted"], true, "{edit_again}");
    assert!(edit_again["body"].is_null());
}

/// A stream that retention overtook ends with an error frame naming the
/// room; the room's stream on that socket stops as a loss (the seat goes
/// to grace, no `leave`), the socket stays, and a join with `after_seq`
/// answers `"resumed": false` from `first_seq`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_overtaken_by_retention_ends_with_history_pruned_as_a_loss() {
    let engine_config = EngineConfig::default()
        .live_buffer(4)
        .retention(parlor_engine::Retention {
            max_entries: Some(3),
            max_age: None,
        })
        // The test prunes when it wants to.
        .retention_interval(Duration::from_secs(3600));
    let ws_config = WsConfig::default().slow_client_patience(Duration::from_secs(60));
    let server = Server::start_with(ws_config, engine_config).await;
    // A "socket" that holds 2 frames: the writer stalls until ann reads.
    let mut ann = server.hello("ann", 2).await;
    let joined = ann.join(&server.ticket("ann", "talk").await, None).await;
    let start = joined["last_seq"].as_u64().unwrap();
    let _bob = server.member("bob", "talk").await;
    let mut last = 0;
    for i in 0..40 {
        last = say(&server, "bob", "talk", &format!("b{i}"), "x").await;
    }
    let pruned = server.engine.prune_now().await.unwrap();
    assert!(pruned > 0, "nothing pruned");

    // Reading again: some entries in order, then the error, no more.
    let mut seen = Vec::new();
    let refused = loop {
        let v = ann.json().await;
        if v["type"] == "error" {
            break v;
        }
        seen.push(v);
    };
    assert_eq!(
        (&refused["code"], &refused["room_id"]),
        (&json!("HISTORY_PRUNED"), &json!("talk")),
        "{refused}"
    );
    let next = in_order(&seen, start + 1);
    assert!(next < last, "the stream was cut short ({next} of {last})");

    // The socket stays; the room's seat went to grace, without a leave.
    ann.send(json!({"type": "ping"})).await;
    assert_eq!(ann.json().await, json!({"type": "pong"}));
    let members = server
        .engine
        .members(&Principal::new(uid("bob")), &rid("talk"))
        .await
        .unwrap();
    let ann_seat = members
        .iter()
        .find(|m| m.user_id.as_str() == "ann")
        .unwrap();
    assert_eq!(ann_seat.state.as_str(), "grace", "{members:?}");
    let log = server.log("bob", "talk").await;
    assert!(!log.iter().any(|e| e.kind == EntryKind::Leave), "{log:?}");

    // Joining again on the same socket: not resumed, from first_seq.
    let ticket = server.ticket("ann", "talk").await;
    let joined = ann.join(&ticket, Some(next - 1)).await;
    let first_seq = joined["first_seq"].as_u64().unwrap();
    assert_eq!(joined["resumed"], false, "{joined}");
    assert_eq!(first_seq, last - 2, "the newest 3 are kept: {joined}");
    assert_eq!(joined["last_seq"], last, "same seat, no join entry");
    let rest: Vec<Value> = vec![ann.json().await, ann.json().await, ann.json().await];
    assert_eq!(in_order(&rest, first_seq), last + 1);
}
