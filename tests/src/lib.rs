//! # parlor-tests
//!
//! End-to-end tests of docs/contract.md §1–§9 through real sockets: each test starts
//! the real server ([`parlor_server::serve`]) on `127.0.0.1:0` over a fresh
//! SQLite file and talks to it with real clients — the Rust client of
//! `parlor-ws` and raw tokio-tungstenite sockets for the protocol's edges.
//! This crate holds the harness ([`TestServer`]); the tests are in `tests/`.
//!
//! ```no_run
//! # async fn demo() {
//! let server = parlor_tests::TestServer::start(&[]).await;
//! let alice = server.client("alice");
//! let ticket = alice.reserve("lobby", Some(5)).await.unwrap();
//! # drop(ticket); server.stop().await;
//! # }
//! ```

mod forwarder;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use parlor_ws::client::Client;
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub use forwarder::Forwarder;

/// A raw WebSocket, for the protocol's edges.
pub type RawSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The JWT secret test servers accept (`--jwt-secret`).
pub const JWT_SECRET: &str = "test-secret";

/// A running server on `127.0.0.1:0` over its own SQLite file.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The SQLite URL it uses.
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), parlor_server::StartError>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts with `--dev-auth --jwt-secret test-secret`, generous rate
    /// limits, and `extra` flags.
    pub async fn start(extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("parlor.db").display()
        );
        let mut server =
            TestServer::start_on(&url, &["--dev-auth", "--jwt-secret", JWT_SECRET], extra).await;
        server._dir = Some(dir);
        server
    }

    /// Starts on `database_url` with exactly `auth` and `extra` flags.
    pub async fn start_on(database_url: &str, auth: &[&str], extra: &[&str]) -> TestServer {
        let mut args = vec!["parlor-server", "--database-url", database_url];
        // Generous rate limits unless the test sets its own.
        if !extra.contains(&"--rate-limit") {
            args.extend_from_slice(&["--rate-limit", "100000", "--rate-burst", "100000"]);
        }
        if !extra.contains(&"--reservation-rate") {
            args.extend_from_slice(&["--reservation-rate", "100000"]);
            args.extend_from_slice(&["--reservation-burst", "100000"]);
        }
        if !extra.contains(&"--create-rate") {
            args.extend_from_slice(&["--create-rate", "100000", "--create-burst", "100000"]);
        }
        args.extend_from_slice(auth);
        args.extend_from_slice(extra);
        let config = parlor_server::Config::from_args(args).expect("valid flags");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(parlor_server::serve(config, listener, async {
            let _ = stopped.await;
        }));
        let server = TestServer {
            base,
            database_url: database_url.to_owned(),
            stop: Some(stop),
            task,
            _dir: None,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        for _ in 0..500 {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server at {} never became ready", self.base);
    }

    /// A client as `user` with a dev token.
    pub fn client(&self, user: &str) -> Client {
        Client::new(&self.base, &format!("dev:{user}"))
    }

    /// `ws://…/v1/ws`.
    pub fn ws_url(&self) -> String {
        format!("{}/v1/ws", self.base.replacen("http", "ws", 1))
    }

    /// A raw socket that has not said hello.
    pub async fn raw(&self) -> RawSocket {
        tokio_tungstenite::connect_async(self.ws_url())
            .await
            .expect("connect")
            .0
    }

    /// A raw socket that said hello as `user` (welcome consumed).
    pub async fn raw_as(&self, user: &str) -> RawSocket {
        hello_at(&self.base, user).await.0
    }

    /// A plain HTTP client.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One gauge from `/metrics`.
    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line_prefix)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no metric {line_prefix} in\n{text}"))
    }

    /// How many entries of `kind` (`join`, `leave`, `text`) `user` has in
    /// `room`'s log, as `member` reads it over HTTP (the first 500).
    pub async fn count_entries(&self, member: &str, room: &str, kind: &str, user: &str) -> usize {
        self.client(member)
            .history(room, 0, 500)
            .await
            .expect("history")
            .iter()
            .filter(|e| e.kind == kind && e.sender == user)
            .count()
    }

    /// Graceful stop; waits until `serve` returned.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .expect("server task")
            .expect("server ran");
    }
}

/// A raw socket to `base` (the server, or a [`Forwarder`] before it) that
/// said hello as `user`; returns it and the `welcome`.
pub async fn hello_at(base: &str, user: &str) -> (RawSocket, Value) {
    let url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
    let mut ws = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect")
        .0;
    send(
        &mut ws,
        json!({"type": "hello", "token": format!("dev:{user}")}),
    )
    .await;
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// Server flags for heartbeat tests: 1 s ping interval, 1 s ping timeout,
/// 1 s reconnect grace.
pub const SHORT_HEARTBEAT: &[&str] = &[
    "--ping-interval",
    "1s",
    "--ping-timeout",
    "1s",
    "--reconnect-grace",
    "1s",
];

/// Text frames [`read_in_background`] holds for the test; a test that reads
/// none of them still has room for a few minutes of heartbeat traffic.
const BACKGROUND_FRAMES: usize = 1024;

/// Reads `ws` from a task, so that its stack answers pings while the test
/// waits; the text frames come out of the channel as JSON (bounded: when
/// the test leaves [`BACKGROUND_FRAMES`] unread, the reading pauses). The
/// task ends with the socket and returns its close code.
pub fn read_in_background(
    mut ws: RawSocket,
) -> (tokio::sync::mpsc::Receiver<Value>, JoinHandle<Option<u16>>) {
    let (tx, rx) = tokio::sync::mpsc::channel(BACKGROUND_FRAMES);
    let task = tokio::spawn(async move {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    let _ = tx.send(serde_json::from_str(&text).unwrap()).await;
                }
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    });
    (rx, task)
}

/// Sends more than the kernel can buffer between the server and a client
/// that stopped reading: 8 tasks × 200 texts of 3 900 bytes (~6.5 MB; the
/// server's send buffer grows to 4 MiB here) into `room` as `user`, over HTTP.
pub async fn flood(server: &TestServer, user: &str, room: &str) {
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let client = server.client(user);
            let room = room.to_owned();
            tokio::spawn(async move {
                for i in 0..200 {
                    client
                        .send(&room, &format!("s{s}-{i}"), &"y".repeat(3900))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
}

/// An HS256 JWT for `sub` that expires `exp_in_secs` from now (negative: past).
pub fn jwt(sub: Option<&str>, exp_in_secs: i64, secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({"exp": now + exp_in_secs});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Sends one JSON text frame.
pub async fn send(ws: &mut RawSocket, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send frame");
}

/// The next text frame as JSON (panics on close).
pub async fn next_json(ws: &mut RawSocket) -> Value {
    match next_frame(ws).await {
        Frame::Json(v) => v,
        Frame::Closed(code) => panic!("socket closed with {code:?}"),
    }
}

/// A frame from the server: JSON, or the close (with its code).
#[derive(Debug)]
pub enum Frame {
    /// A text frame.
    Json(Value),
    /// The server closed (`None`: without a close frame).
    Closed(Option<u16>),
}

/// The next frame, waiting at most 10 s.
pub async fn next_frame(ws: &mut RawSocket) -> Frame {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Frame::Json(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(f))) => return Frame::Closed(f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Closed(None),
        }
    }
}

/// Reads frames until one of type `kind`, returning it and what came before.
pub async fn until(ws: &mut RawSocket, kind: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return (v, before);
        }
        before.push(v);
    }
}

/// Reserves over HTTP as `user`; the raw response (status, JSON).
pub async fn reserve_raw(
    server: &TestServer,
    token: Option<&str>,
    room: &str,
    body: Value,
) -> (u16, Value) {
    let mut req = server
        .http()
        .post(format!("{}/v1/rooms/{room}/reservations", server.base))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Joins `room` on a raw socket with a fresh ticket for `user`; returns `joined`.
pub async fn join_raw(
    server: &TestServer,
    ws: &mut RawSocket,
    user: &str,
    room: &str,
    after_seq: Option<u64>,
) -> Value {
    let ticket = server
        .client(user)
        .reserve(room, None)
        .await
        .expect("reserve")
        .ticket;
    let mut frame = json!({"type": "join", "ticket": ticket});
    if let Some(a) = after_seq {
        frame["after_seq"] = json!(a);
    }
    send(ws, frame).await;
    let (joined, _) = until(ws, "joined").await;
    joined
}

/// POSTs a GraphQL operation to `/graphql` as `token` (none: anonymous);
/// returns the JSON response.
pub async fn gql_http(
    server: &TestServer,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut req = server
        .http()
        .post(format!("{}/graphql", server.base))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// GraphQL `reserveSeat` for `room` with `token` (creating the room with
/// `create` as its capacity, when given): the whole response.
pub async fn gql_reserve_as(
    server: &TestServer,
    token: &str,
    room: &str,
    create: Option<u32>,
) -> Value {
    const RESERVE: &str =
        "mutation($r: ID!, $c: CreateRoom) { reserveSeat(roomId: $r, create: $c) { ticket } }";
    let c = create.map(|capacity| json!({"capacity": capacity}));
    gql_http(server, Some(token), RESERVE, json!({"r": room, "c": c})).await
}

/// The ticket of [`gql_reserve_as`]; panics with the response when there is none.
pub async fn gql_ticket_as(
    server: &TestServer,
    token: &str,
    room: &str,
    create: Option<u32>,
) -> String {
    let r = gql_reserve_as(server, token, room, create).await;
    r["data"]["reserveSeat"]["ticket"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket: {r}"))
        .to_owned()
}

/// [`gql_ticket_as`] with `user`'s dev token.
pub async fn gql_ticket(
    server: &TestServer,
    user: &str,
    room: &str,
    create: Option<u32>,
) -> String {
    gql_ticket_as(server, &format!("dev:{user}"), room, create).await
}

/// The first error's `extensions.code` of a GraphQL response.
pub fn gql_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

/// A GraphQL WebSocket speaking `protocol` (`graphql-transport-ws` or the
/// legacy `graphql-ws`), not yet initialised.
pub async fn gql_socket(server: &TestServer, protocol: &str) -> RawSocket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("graphql socket")
        .0
}

/// A `graphql-transport-ws` socket initialised as `user`.
pub async fn gql_socket_as(server: &TestServer, user: &str) -> RawSocket {
    let mut ws = gql_socket(server, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer dev:{user}")}})).await;
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

/// The `joinRoom` subscription document.
pub const JOIN_ROOM: &str = "subscription($t: String!, $a: Int) { joinRoom(ticket: $t, afterSeq: $a) { __typename \
    ... on Joined { roomId capacity occupancy lastSeq members } \
    ... on Entry { roomId seq id kind sender clientId body createdAt } } }";

/// Starts `joinRoom` as operation `id` on a `graphql-transport-ws` socket.
pub async fn gql_join(ws: &mut RawSocket, id: &str, ticket: &str, after_seq: Option<u64>) {
    send(
        ws,
        json!({"id": id, "type": "subscribe", "payload": {"query": JOIN_ROOM, "variables": {"t": ticket, "a": after_seq}}}),
    )
    .await;
}

/// The next `next` payload's `joinRoom` for operation `id` (panics on
/// `error` or `complete`).
pub async fn gql_next(ws: &mut RawSocket, id: &str) -> Value {
    loop {
        let m = next_json(ws).await;
        if m["id"] != id {
            continue;
        }
        match m["type"].as_str() {
            Some("next") => return m["payload"]["data"]["joinRoom"].clone(),
            _ => panic!("expected next for {id}, got {m}"),
        }
    }
}

/// Whether `test` can run its Node script: Node, and `npm ci` done in
/// `tests/js` (`package` installed there). Otherwise it prints a `SKIPPED`
/// line and returns false — or, when `PARLOR_REQUIRE_JS` is set (`.ci/run`
/// sets it once it installed the tools), panics, so that a suite CI must run
/// can never pass by skipping.
#[allow(clippy::print_stderr, reason = "the test's SKIPPED line, for CI logs")]
pub fn node_ready(test: &str, package: &str) -> bool {
    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let node = std::process::Command::new("node").arg("--version").output();
    if node.is_ok() && js.join("node_modules").join(package).exists() {
        return true;
    }
    let why = format!("SKIPPED {test}: needs Node and `npm ci` in tests/js (for {package})");
    assert!(
        std::env::var_os("PARLOR_REQUIRE_JS").is_none(),
        "{why}, and PARLOR_REQUIRE_JS is set"
    );
    eprintln!("{why}");
    false
}

/// Chromium's path for `test`'s browser script (`PARLOR_CHROMIUM`, default
/// Debian's `/usr/bin/chromium`) when it and playwright-core are here;
/// otherwise `None` after a `SKIPPED` line, or a panic under
/// `PARLOR_REQUIRE_JS` (see [`node_ready`]).
#[allow(clippy::print_stderr, reason = "the test's SKIPPED line, for CI logs")]
pub fn chromium_ready(test: &str) -> Option<String> {
    if !node_ready(test, "playwright-core") {
        return None;
    }
    let chromium = std::env::var("PARLOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if std::path::Path::new(&chromium).exists() {
        return Some(chromium);
    }
    let why = format!("SKIPPED {test}: needs Chromium at {chromium} (PARLOR_CHROMIUM)");
    assert!(
        std::env::var_os("PARLOR_REQUIRE_JS").is_none(),
        "{why}, and PARLOR_REQUIRE_JS is set"
    );
    eprintln!("{why}");
    None
}

/// Runs `tests/js/<script>` with Node and `args` (and `env`), off the async
/// threads; returns whether it succeeded and all it printed.
pub async fn run_node(
    script: &str,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> (bool, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("js")
        .join(script);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(path)
            .args(args)
            .envs(env)
            .output()
            .expect("run node")
    })
    .await
    .expect("node task");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}
