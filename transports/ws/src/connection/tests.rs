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
        let engine = Engine::builder(Arc::new(MemoryStore::default()))
            .config(EngineConfig::default())
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
