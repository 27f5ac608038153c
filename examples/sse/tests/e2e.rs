//! The SSE transport end to end: the real router on `127.0.0.1:0` over
//! SQLite, read by a plain HTTP client that parses `text/event-stream` the
//! way a browser does, and resumes with `Last-Event-ID`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream::BoxStream};
use parlor_auth::DevTokens;
use parlor_engine::{ChatEngine, Engine, EngineConfig, Message, Principal, RoomId, UserId};
use parlor_seaorm::SeaOrmStore;
use parlor_sse::SseTransport;
use serde_json::{Value, json};

/// One server-sent event.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A `text/event-stream` response read event by event.
struct EventReader {
    bytes: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl EventReader {
    async fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, "message".to_owned(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Event { id, event, data };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.bytes.next())
                .await
                .expect("an event within 10 s")
                .expect("stream still open")
                .expect("read");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

struct Server {
    base: String,
    http: reqwest::Client,
    /// The engine behind the transport, for what an integrator's backend
    /// does through it (system entries, kicks).
    engine: Engine,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(None).await
    }

    /// With a `ping_interval` of the transport's when given.
    async fn start_with(ping_interval: Option<Duration>) -> Server {
        Server::start_configured(ping_interval, EngineConfig::default()).await
    }

    /// With a `ping_interval` of the transport's when given, and the
    /// engine's `config`.
    async fn start_configured(ping_interval: Option<Duration>, config: EngineConfig) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("sse.db").display());
        let store = SeaOrmStore::open(&url).await.unwrap();
        let engine = Engine::builder(Arc::new(store))
            .config(config)
            .start()
            .await
            .unwrap();
        let mut sse = SseTransport::new(Arc::new(engine.clone()), Arc::new(DevTokens));
        if let Some(every) = ping_interval {
            sse = sse.ping_interval(every);
        }
        let app = sse.router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            base,
            http: reqwest::Client::new(),
            engine,
            _dir: dir,
        }
    }

    async fn open(&self, user: &str, query: &str, last_event_id: Option<u64>) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}/sse/v1/rooms/talk/events{query}", self.base))
            .bearer_auth(format!("dev:{user}"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        request.send().await.unwrap()
    }

    async fn stream(&self, user: &str, query: &str, last_event_id: Option<u64>) -> EventReader {
        let response = self.open(user, query, last_event_id).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        EventReader {
            bytes: response
                .bytes_stream()
                .map(|r| r.map(|b| b.to_vec()))
                .boxed(),
            buffer: String::new(),
        }
    }

    async fn send(&self, user: &str, client_id: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/sse/v1/rooms/talk/messages", self.base))
            .bearer_auth(format!("dev:{user}"))
            .json(&json!({"client_id": client_id, "body": body}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn seed() -> u64 {
    std::env::var("PARLOR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_last_event_id_has_no_gap_and_no_duplicate() {
    const MESSAGES: usize = 300;
    let server = Arc::new(Server::start().await);
    let mut alice = server.stream("alice", "?capacity=5&title=Talk", None).await;
    let joined = alice.next().await;
    assert_eq!(joined.event, "joined");
    assert_eq!(joined.data["last_seq"], 1);
    let mut bob = server.stream("bob", "", None).await;
    assert_eq!(bob.next().await.data["members"], json!(["alice", "bob"]));
    let bob_join = alice.next().await;
    assert_eq!(
        (bob_join.data["kind"].as_str(), bob_join.id.as_deref()),
        (Some("join"), Some("2"))
    );

    // Bob sends while alice's stream is cut and resumed at random points.
    let writer = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            for i in 0..MESSAGES {
                let (status, entry) = server
                    .send("bob", &format!("b-{i}"), &format!("m{i}"))
                    .await;
                assert_eq!(status, 201, "{entry}");
            }
        })
    };
    let seed = seed();
    eprintln!("PARLOR_TEST_SEED={seed}");
    let mut drops: Vec<usize> = (0..4)
        .map(|k| (seed as usize >> (k * 8)) % MESSAGES)
        .collect();
    drops.sort_unstable();
    let mut seqs = vec![2u64];
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut resumes = 0;
    while seen.len() < MESSAGES {
        if drops.first().is_some_and(|&d| seen.len() >= d) {
            drops.remove(0);
            drop(alice); // the connection goes away mid-stream
            tokio::time::sleep(Duration::from_millis(seed % 20)).await;
            let last = *seqs.last().unwrap();
            alice = server.stream("alice", "?after_seq=0", Some(last)).await;
            assert_eq!(alice.next().await.event, "joined");
            resumes += 1;
            continue;
        }
        let event = alice.next().await;
        assert_eq!(event.event, "entry");
        let seq = event.data["seq"].as_u64().unwrap();
        assert_eq!(event.id, Some(seq.to_string()), "the event id is the seq");
        assert_eq!(
            seq,
            seqs.last().unwrap() + 1,
            "gap or duplicate after {seqs:?}"
        );
        seqs.push(seq);
        if event.data["kind"] == "text" {
            let previous = seen.insert(event.data["client_id"].as_str().unwrap().into(), seq);
            assert!(previous.is_none(), "delivered twice: {event:?}");
        } else {
            panic!("alice came back within grace, so no join or leave: {event:?}");
        }
    }
    writer.await.unwrap();
    assert!(resumes >= 1);
    // Bob's own stream saw the same log, in the same order.
    for i in 0..MESSAGES {
        let event = bob.next().await;
        assert_eq!(event.data["client_id"], format!("b-{i}"));
        assert_eq!(
            event.data["seq"].as_u64(),
            seen.get(&format!("b-{i}")).copied()
        );
    }
    eprintln!(
        "{MESSAGES} messages, {resumes} resumes, seqs 2..={}",
        seqs.last().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_contract_codes() {
    let server = Server::start().await;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap().to_owned();
    // No room and no capacity; then no token.
    let response = server.open("alice", "", None).await;
    assert_eq!(response.status(), 404);
    assert_eq!(code(&response.json().await.unwrap()), "ROOM_NOT_FOUND");
    let response = server
        .http
        .get(format!("{}/sse/v1/rooms/talk/events", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // The token in the query, as EventSource must send it; capacity 1.
    let response = server
        .http
        .get(format!(
            "{}/sse/v1/rooms/talk/events?capacity=1&access_token=dev:alice",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let full = server.open("bob", "", None).await;
    assert_eq!(full.status(), 409);
    assert_eq!(code(&full.json().await.unwrap()), "ROOM_FULL");

    // Sends: not a member, idempotent, too large, malformed.
    let (status, body) = server.send("bob", "c-1", "hi").await;
    assert_eq!((status, code(&body).as_str()), (403, "NOT_A_MEMBER"));
    let (status, first) = server.send("alice", "c-1", "hi").await;
    assert_eq!(status, 201);
    let (_, again) = server.send("alice", "c-1", "hi").await;
    assert_eq!(
        (first["seq"].clone(), first["id"].clone()),
        (again["seq"].clone(), again["id"].clone())
    );
    let (status, body) = server.send("alice", "c-2", &"x".repeat(5000)).await;
    assert_eq!((status, code(&body).as_str()), (413, "MESSAGE_TOO_LARGE"));
    let response = server
        .http
        .post(format!("{}/sse/v1/rooms/talk/messages", server.base))
        .bearer_auth("dev:alice")
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(code(&response.json().await.unwrap()), "INVALID_INPUT");

    // Leave frees the seat: bob gets in.
    let left = server
        .http
        .post(format!("{}/sse/v1/rooms/talk/leave", server.base))
        .bearer_auth("dev:alice")
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 204);
    let mut bob = server.stream("bob", "?after_seq=0", None).await;
    assert_eq!(bob.next().await.data["occupancy"], 1);
    let kinds: Vec<String> = [
        bob.next().await,
        bob.next().await,
        bob.next().await,
        bob.next().await,
    ]
    .iter()
    .map(|e| e.data["kind"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(kinds, ["join", "text", "leave", "join"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_gets_a_ping_comment_every_interval() {
    let server = Server::start_with(Some(Duration::from_millis(200))).await;
    let mut reader = server.stream("ann", "?capacity=2", None).await;
    let joined = reader.next().await;
    assert_eq!(joined.event, "joined");
    // Raw bytes for 1.5 s: a `: ping` comment line about every 200 ms.
    let mut raw = std::mem::take(&mut reader.buffer);
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(until, reader.bytes.next()).await {
        raw.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let pings = raw.matches(": ping\n\n").count();
    assert!(pings >= 3, "pings in 1.5 s: {pings} in {raw:?}");
    assert!(
        raw.lines().all(|l| l.is_empty() || l == ": ping"),
        "nothing but keep-alives on a quiet stream: {raw:?}"
    );
    // The keep-alive needs no answer: the stream still delivers.
    let (status, _) = server.send("ann", "c-1", "hi").await;
    assert_eq!(status, 201);
    reader.buffer.clear();
    let entry = reader.next().await;
    assert_eq!(entry.data["body"], "hi");
}

/// docs/contract.md §3 and §2 "Moderation" on SSE: a service's `system`
/// entries (with `data`) reach a member in order, once; a kick ends the
/// stream with a `left` event that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_entries_reach_sse_members_and_a_kick_says_why() {
    let server = Server::start().await;
    let mut alice = server.stream("alice", "?capacity=1", None).await;
    assert_eq!(alice.next().await.event, "joined");
    let billing = Principal::service(UserId::new("billing").unwrap());
    let talk = RoomId::new("talk").unwrap();
    for i in 0..1_000 {
        let data = json!({"invoice": i, "paid": true});
        let serde_json::Value::Object(data) = data else {
            unreachable!()
        };
        let message = Message {
            body: (i % 2 == 0).then(|| format!("invoice {i} paid")),
            data: Some(data),
        };
        server
            .engine
            .submit(&billing, &talk, &format!("inv-{i}"), message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    for i in 0..1_000 {
        let e = alice.next().await;
        assert_eq!(e.event, "entry");
        assert_eq!(
            (
                &e.data["kind"],
                &e.data["sender"],
                &e.data["data"]["invoice"]
            ),
            (&json!("system"), &json!("billing"), &json!(i)),
            "{:?}",
            e.data
        );
        assert_eq!(e.id.as_deref(), Some((i + 2).to_string().as_str()));
    }
    assert!(
        server
            .engine
            .kick(&billing, &talk, &UserId::new("alice").unwrap(), None)
            .await
            .unwrap()
    );
    let left = alice.next().await;
    assert_eq!(
        (left.event.as_str(), &left.data),
        ("left", &json!({"reason": "kicked"}))
    );
}

/// docs/contract.md §2 "Read markers" and "Retention" on SSE: `joined`
/// says where the log starts and that it resumed; another member's read
/// marker arrives as a `receipt` event without an `id` (the resume point
/// stays the last entry's seq), never to the reader themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_carries_first_seq_and_resumed_and_receipts_reach_the_others() {
    let server = Server::start().await;
    let mut ann = server.stream("ann", "?capacity=4", None).await;
    let joined = ann.next().await;
    assert_eq!(joined.event, "joined");
    assert_eq!(
        (&joined.data["first_seq"], &joined.data["resumed"]),
        (&json!(1), &json!(true)),
        "{:?}",
        joined.data
    );
    let mut bob = server.stream("bob", "", None).await;
    assert_eq!(bob.next().await.event, "joined");
    let (status, sent) = server.send("ann", "a1", "read me").await;
    assert_eq!(status, 201);
    let seq = sent["seq"].as_u64().unwrap();
    // ann sees bob's join and her text; bob his join and her text.
    for reader in [&mut ann, &mut bob] {
        loop {
            let e = reader.next().await;
            if e.data["seq"] == seq {
                break;
            }
        }
    }
    let read = server
        .engine
        .mark_read(
            &Principal::new(UserId::new("bob").unwrap()),
            &RoomId::new("talk").unwrap(),
            seq,
        )
        .await
        .unwrap();
    assert_eq!((read.last_read_seq, read.unread), (seq, 0));
    let receipt = ann.next().await;
    assert_eq!(receipt.event, "receipt");
    assert_eq!(receipt.id, None, "a receipt does not move Last-Event-ID");
    assert_eq!(receipt.data["room_id"], "talk");
    assert_eq!(receipt.data["user_id"], "bob");
    assert_eq!(receipt.data["seq"], seq);
    assert!(receipt.data["at"].is_string());
    // bob's own stream: the next thing he gets is the next entry.
    let (status, _) = server.send("ann", "a2", "after").await;
    assert_eq!(status, 201);
    let next = bob.next().await;
    assert_eq!(
        (next.event.as_str(), &next.data["body"]),
        ("entry", &json!("after"))
    );
}

/// docs/contract.md §2 "Signals" on SSE: a member posts `typing` to the
/// stream's signal route; the others get a `signal` event without an `id`
/// (it is not a log entry), the sender's own stream nothing; a bad name is
/// `INVALID_INPUT` and someone without a seat `NOT_A_MEMBER`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_reach_the_other_streams_without_an_id() {
    let server = Server::start().await;
    let mut ann = server.stream("ann", "?capacity=4", None).await;
    assert_eq!(ann.next().await.event, "joined");
    let mut bob = server.stream("bob", "", None).await;
    assert_eq!(bob.next().await.event, "joined");
    assert_eq!(ann.next().await.data["kind"], "join", "bob's join");
    let signal = |user: &str, body: Value| {
        server
            .http
            .post(format!("{}/sse/v1/rooms/talk/signals", server.base))
            .bearer_auth(format!("dev:{user}"))
            .json(&body)
            .send()
    };
    let posted = signal("bob", json!({"name": "typing", "data": {"draft": 1}}))
        .await
        .unwrap();
    assert_eq!(posted.status(), 204);
    let got = ann.next().await;
    assert_eq!(got.event, "signal");
    assert_eq!(got.id, None, "a signal does not move Last-Event-ID");
    assert_eq!(
        (
            &got.data["room_id"],
            &got.data["user_id"],
            &got.data["name"],
            &got.data["data"]
        ),
        (
            &json!("talk"),
            &json!("bob"),
            &json!("typing"),
            &json!({"draft": 1})
        )
    );
    assert!(got.data["at"].is_string());
    for (user, body, status, code) in [
        ("bob", json!({"name": "shouting"}), 400, "INVALID_INPUT"),
        ("eve", json!({"name": "typing"}), 403, "NOT_A_MEMBER"),
    ] {
        let refused = signal(user, body).await.unwrap();
        assert_eq!(refused.status(), status);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // bob's own stream: the next thing he gets is the next entry.
    let (status, _) = server.send("ann", "a1", "after").await;
    assert_eq!(status, 201);
    let next = bob.next().await;
    assert_eq!(
        (next.event.as_str(), &next.data["body"]),
        ("entry", &json!("after"))
    );
}

/// A stream that retention overtook ends with an `error` event coded
/// `HISTORY_PRUNED`, then the end; reconnecting with `Last-Event-ID` gets
/// `"resumed": false` and the log from `first_seq`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_overtaken_by_retention_ends_with_an_error_event() {
    // Large messages, so that the backlog fills the socket's buffers while
    // the reader pauses; the pruner runs when the test says.
    const BODY: usize = 60_000;
    let config = EngineConfig::default()
        .max_message_bytes(BODY)
        .reconnect_grace(Duration::from_secs(120))
        .retention_interval(Duration::from_secs(3600));
    let server = Server::start_configured(None, config).await;
    let mut first = server.stream("ann", "?capacity=4", None).await;
    let joined = first.next().await;
    let start = joined.data["last_seq"].as_u64().unwrap();
    // ann's seat waits in grace while a service fills the room.
    drop(first);
    let ann = Principal::new(UserId::new("ann").unwrap());
    let billing = Principal::service(UserId::new("billing").unwrap());
    let talk = RoomId::new("talk").unwrap();
    let body = "x".repeat(BODY);
    let mut last = 0;
    for i in 0..600 {
        last = server
            .engine
            .submit(
                &billing,
                &talk,
                &format!("s{i}"),
                Message::text(body.clone()),
            )
            .await
            .unwrap()
            .await
            .unwrap()
            .seq;
    }
    // Resume from the join: a 36 MB backlog, read from storage in pages.
    let mut reader = server.stream("ann", "", Some(start)).await;
    let joined = reader.next().await;
    assert_eq!(joined.data["resumed"], true, "{:?}", joined.data);
    // While the reader pauses, the room keeps only its newest 10 entries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let update = parlor_engine::RoomPatch {
        retention: Some(Some(parlor_engine::Retention {
            max_entries: Some(10),
            max_age: None,
        })),
        ..Default::default()
    };
    server
        .engine
        .update_room(&ann, &talk, &update)
        .await
        .unwrap();
    assert!(server.engine.prune_now().await.unwrap() > 0);
    let mut seen = start;
    let ended = loop {
        let e = reader.next().await;
        if e.event != "entry" {
            break e;
        }
        let seq = e.data["seq"].as_u64().unwrap();
        assert_eq!(seq, seen + 1, "in order, no gap");
        seen = seq;
    };
    assert_eq!(ended.event, "error", "{:?}", ended.data);
    assert_eq!(ended.data["error"]["code"], "HISTORY_PRUNED");
    assert!(seen < last - 10, "cut short at {seen}");
    // Then the stream ends.
    let rest = tokio::time::timeout(Duration::from_secs(10), reader.bytes.next())
        .await
        .expect("the stream ends");
    assert!(
        rest.is_none_or(|chunk| chunk.is_err()),
        "nothing after the error: {:?}",
        reader.buffer
    );

    let mut again = server.stream("ann", "", Some(seen)).await;
    let joined = again.next().await;
    assert_eq!(
        (&joined.data["resumed"], &joined.data["first_seq"]),
        (&json!(false), &json!(last - 9)),
        "{:?}",
        joined.data
    );
    let next = again.next().await;
    assert_eq!(next.id.as_deref(), Some((last - 9).to_string().as_str()));
}
