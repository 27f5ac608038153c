//! A Rust client for Parlor's HTTP + WebSocket protocol (feature `client`).
//!
//! - [`Client`]: HTTP calls (reserve, room, history, send, edit, redact,
//!   mark read) and [`Client::connect`], a [`Socket`] that has said `hello`.
//! - [`ResumingRoom`]: one room that survives disconnects and server
//!   restarts: it reconnects with backoff and jitter, re-joins after the last
//!   seq it saw, and re-sends unacked messages in order under their original
//!   `client_id`. Every entry comes out once, in seq order. It probes the
//!   server with `{"type":"ping"}` every `ping_interval_ms` of the
//!   `welcome`, and a server silent for longer than interval + timeout is
//!   lost: it reconnects (a frozen network sends no FIN and no RST). Where
//!   retention pruned entries while it was away (`"resumed": false`), it
//!   goes on from the room's `first_seq` and says which seqs it missed
//!   ([`ResumingRoom::missed`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), parlor_ws::client::ClientError> {
//! use parlor_ws::client::{Client, ResumingRoom};
//! let client = Client::new("http://127.0.0.1:8080", "dev:alice");
//! let mut room = ResumingRoom::join(client, "lobby", Some(10)).await?;
//! room.send("c-1", "hello").await;
//! let entry = room.next_entry().await?;
//! # drop(entry); Ok(()) }
//! ```

use std::{collections::VecDeque, fmt};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    net::TcpStream,
    time::{Duration, Instant, sleep_until, timeout, timeout_at},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{
        Message,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

/// tungstenite's read buffer. Why not its 128 KiB default: it zero-fills
/// the free part of the buffer before every read, which costs more than the
/// read itself for the few-hundred-byte frames a chat receives.
const READ_BUFFER: usize = 8 * 1024;

/// The longest an HTTP call or a WebSocket handshake may take. Why: over a
/// network that vanished (no FIN, no RST) a request never ends by itself.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What went wrong, as the client sees it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with a contract error.
    Api {
        /// HTTP status (0 on the WebSocket).
        status: u16,
        /// The docs/contract.md §7 code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The HTTP request failed.
    Http(reqwest::Error),
    /// The WebSocket failed.
    Ws(tokio_tungstenite::tungstenite::Error),
    /// The server closed the socket, with this code.
    Closed(Option<u16>),
    /// The server said something the client did not expect.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api {
                status,
                code,
                message,
            } => write!(f, "{code} ({status}): {message}"),
            ClientError::Http(e) => write!(f, "http: {e}"),
            ClientError::Ws(e) => write!(f, "websocket: {e}"),
            ClientError::Closed(code) => write!(f, "closed by the server ({code:?})"),
            ClientError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The contract code, for `Api` errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        ClientError::Http(e)
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        ClientError::Ws(e)
    }
}

/// A reservation's ticket.
#[derive(Debug, Clone, Deserialize)]
pub struct Ticket {
    /// Opaque; commit it with [`Socket::join`].
    pub ticket: String,
    /// The room.
    pub room_id: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// A log entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// The room.
    pub room_id: String,
    /// Its position.
    pub seq: u64,
    /// Server-made id.
    pub id: String,
    /// `text`, `join`, `leave`, `system`, `edit` or `redaction`.
    pub kind: String,
    /// Who (a user, or a service's name for `system`).
    pub sender: String,
    /// The sender's idempotency key (messages and edits only).
    pub client_id: Option<String>,
    /// The message (text and edits; optional on system; none once redacted).
    pub body: Option<String>,
    /// The app's JSON object, when the message carries one.
    #[serde(default)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// The message an `edit` or a `redaction` changes.
    #[serde(default)]
    pub target_seq: Option<u64>,
    /// Why a `leave` took the seat away (`kicked`, `room_closed`), or a
    /// `redaction`'s note.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the message was last edited (RFC 3339), if it was.
    #[serde(default)]
    pub edited_at: Option<String>,
    /// Whether the message (or the edit's target) was redacted: its body
    /// and data are gone.
    #[serde(default)]
    pub redacted: bool,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
}

/// A page of history: the entries, and the oldest seq the room still
/// stores (retention pruned those below it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistoryPage {
    /// Ascending by seq.
    pub messages: Vec<Entry>,
    /// The oldest seq still stored (`last_seq + 1` when none is).
    pub first_seq: u64,
}

/// A user's read state in a room: the answer to marking it read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReadState {
    /// The room.
    pub room_id: String,
    /// The seq marked read last (0: never).
    pub last_read_seq: u64,
    /// Messages after it that others sent and that are not redacted.
    pub unread: u64,
}

/// Another member's read marker moved (a `receipt`; not a log entry).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Receipt {
    /// The room.
    pub room_id: String,
    /// Who read.
    pub user_id: String,
    /// Up to which seq.
    pub seq: u64,
    /// When (RFC 3339).
    pub at: String,
}

/// Another member's momentary signal (a `signal`; not a log entry).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Signal {
    /// The room.
    pub room_id: String,
    /// Who sent it.
    pub user_id: String,
    /// `typing`, `stopped_typing`, or an app's own `x-…` name.
    pub name: String,
    /// The app's JSON object, if any.
    #[serde(default)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the server took it (RFC 3339).
    pub at: String,
}

/// The facts of a join.
#[derive(Debug, Clone, Deserialize)]
pub struct Joined {
    /// The room.
    pub room_id: String,
    /// Its seats.
    pub capacity: u32,
    /// Seats held.
    pub occupancy: u32,
    /// The newest seq, this join included.
    pub last_seq: u64,
    /// The oldest seq the room still stores (retention prunes below it).
    #[serde(default)]
    pub first_seq: u64,
    /// False when retention pruned entries after the `after_seq` asked
    /// for: the stream starts at `first_seq` and what lay between is gone.
    #[serde(default = "resumed_by_default")]
    pub resumed: bool,
    /// How many users are joined or in grace (0 from a server that does
    /// not say: one older than `member_count`).
    #[serde(default)]
    pub member_count: u32,
    /// The first 100 of them by user id, sorted (the rest through
    /// `GET /v1/rooms/{id}/members`).
    pub members: Vec<String>,
}

/// A server that does not say `resumed` prunes nothing.
fn resumed_by_default() -> bool {
    true
}

/// A send's acknowledgement: the entry is durable.
#[derive(Debug, Clone, Deserialize)]
pub struct Ack {
    /// The room.
    pub room_id: String,
    /// The idempotency key it answers.
    pub client_id: String,
    /// The entry's seq.
    pub seq: u64,
    /// The entry's id.
    pub id: String,
    /// The entry's time.
    pub created_at: String,
}

/// An `error` frame.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorFrame {
    /// The docs/contract.md §7 code.
    pub code: String,
    /// Why.
    pub message: String,
    /// The room it concerns.
    pub room_id: Option<String>,
    /// The send it answers.
    pub client_id: Option<String>,
    /// The join it answers.
    pub ticket: Option<String>,
}

/// A frame from the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// `hello` accepted.
    Welcome {
        /// Who the server thinks we are.
        user_id: String,
        /// How often the server pings, in ms (absent from older servers).
        #[serde(default)]
        ping_interval_ms: Option<u64>,
        /// How much longer than the interval a silent peer is given, in ms.
        #[serde(default)]
        ping_timeout_ms: Option<u64>,
        /// When the token expires (RFC 3339), if it does.
        #[serde(default)]
        expires_at: Option<String>,
    },
    /// The answer to `{"type":"ping"}`.
    Pong,
    /// A `refresh` was accepted.
    Refreshed {
        /// The new token's expiry (RFC 3339), if it expires.
        #[serde(default)]
        expires_at: Option<String>,
    },
    /// A join succeeded.
    Joined(Joined),
    /// A log entry.
    Entry(Entry),
    /// A send is durable.
    Ack(Ack),
    /// The answer to [`Socket::mark_read`].
    ReadState(ReadState),
    /// Another member marked the room read.
    Receipt(Receipt),
    /// Another member's signal (typing…).
    Signal(Signal),
    /// A leave is done.
    Left {
        /// The room left.
        room_id: String,
        /// Why the seat was taken away (`kicked`, `room_closed`), if it was.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Something was refused.
    Error(ErrorFrame),
}

/// HTTP access as one user, and the door to a [`Socket`].
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token.
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

async fn api<T: for<'de> Deserialize<'de>>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    if (200..300).contains(&status) {
        return serde_json::from_value(body).map_err(|e| ClientError::Protocol(e.to_string()));
    }
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or("UNKNOWN")
        .to_owned();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Err(ClientError::Api {
        status,
        code,
        message,
    })
}

impl Client {
    /// A client for the server at `base` (`http://host:port`) as the holder
    /// of `token`.
    pub fn new(base: &str, token: &str) -> Self {
        Client {
            http: http_client(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// The same client with a new connection pool: after a server fell
    /// silent, pooled connections to it are as dead as the socket was.
    fn with_fresh_connections(&self) -> Self {
        Client {
            http: http_client(),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Reserves a seat; `create` with a capacity creates the room if absent.
    pub async fn reserve(&self, room: &str, create: Option<u32>) -> Result<Ticket, ClientError> {
        let body = match create {
            Some(capacity) => json!({"create": {"capacity": capacity}}),
            None => json!({}),
        };
        let response = self
            .http
            .post(self.url(&format!("/v1/rooms/{room}/reservations")))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        api(response).await
    }

    /// The room's info as JSON.
    pub async fn room(&self, room: &str) -> Result<Value, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("/v1/rooms/{room}")))
            .bearer_auth(&self.token)
            .send()
            .await?;
        api(response).await
    }

    /// History after `after_seq`.
    pub async fn history(
        &self,
        room: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, ClientError> {
        Ok(self.history_page(room, after_seq, limit).await?.messages)
    }

    /// History after `after_seq`, with the room's `first_seq`: entries
    /// below it were pruned.
    pub async fn history_page(
        &self,
        room: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let response = self
            .http
            .get(self.url(&format!(
                "/v1/rooms/{room}/messages?after_seq={after_seq}&limit={limit}"
            )))
            .bearer_auth(&self.token)
            .send()
            .await?;
        api(response).await
    }

    /// Sends over HTTP; returns the durable entry.
    pub async fn send(
        &self,
        room: &str,
        client_id: &str,
        body: &str,
    ) -> Result<Entry, ClientError> {
        let response = self
            .http
            .post(self.url(&format!("/v1/rooms/{room}/messages")))
            .bearer_auth(&self.token)
            .json(&json!({"client_id": client_id, "body": body}))
            .send()
            .await?;
        api(response).await
    }

    /// Edits the text message at `seq` (the caller's own) to `body`; returns
    /// the durable `edit` entry.
    pub async fn edit(&self, room: &str, seq: u64, body: &str) -> Result<Entry, ClientError> {
        let response = self
            .http
            .patch(self.url(&format!("/v1/rooms/{room}/messages/{seq}")))
            .bearer_auth(&self.token)
            .json(&json!({"body": body}))
            .send()
            .await?;
        api(response).await
    }

    /// Redacts the message at `seq` (erasing its body and data), with an
    /// optional note; returns the durable `redaction` entry.
    pub async fn redact(
        &self,
        room: &str,
        seq: u64,
        reason: Option<&str>,
    ) -> Result<Entry, ClientError> {
        let body = match reason {
            Some(reason) => json!({"reason": reason}),
            None => json!({}),
        };
        let response = self
            .http
            .delete(self.url(&format!("/v1/rooms/{room}/messages/{seq}")))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        api(response).await
    }

    /// Marks the room read up to `seq` (a lower seq than the stored marker
    /// changes nothing); returns the read state as it is now.
    pub async fn mark_read(&self, room: &str, seq: u64) -> Result<ReadState, ClientError> {
        let response = self
            .http
            .put(self.url(&format!("/v1/rooms/{room}/read")))
            .bearer_auth(&self.token)
            .json(&json!({"seq": seq}))
            .send()
            .await?;
        api(response).await
    }

    /// Opens `/v1/ws` and says `hello`.
    pub async fn connect(&self) -> Result<Socket, ClientError> {
        let url = format!("{}/v1/ws", self.base.replacen("http", "ws", 1));
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let opening = connect_async_with_config(url, Some(config), false);
        let (ws, _) = timeout(REQUEST_TIMEOUT, opening)
            .await
            .map_err(|_| ClientError::Closed(None))??;
        let mut socket = Socket {
            ws,
            pending: VecDeque::new(),
            last_heard: Instant::now(),
            heartbeat: None,
        };
        socket
            .send_json(json!({"type": "hello", "token": self.token}))
            .await?;
        let welcome = timeout(REQUEST_TIMEOUT, socket.next_event())
            .await
            .map_err(|_| ClientError::Closed(None))??;
        match welcome {
            Event::Welcome {
                ping_interval_ms: Some(interval),
                ping_timeout_ms: Some(timeout),
                ..
            } => {
                socket.heartbeat = Some(Heartbeat {
                    interval: Duration::from_millis(interval.max(1)),
                    silence: Duration::from_millis(interval.saturating_add(timeout)),
                });
                Ok(socket)
            }
            Event::Welcome { .. } => Ok(socket),
            Event::Error(e) => Err(ClientError::Api {
                status: 0,
                code: e.code,
                message: e.message,
            }),
            other => Err(ClientError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// The server's heartbeat, from its `welcome`.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// How often to probe (the server's `ping_interval_ms`).
    pub interval: Duration,
    /// Silent for longer than this (interval + timeout), the server is lost.
    pub silence: Duration,
}

/// A WebSocket that has said `hello`.
///
/// The server's ping frames are answered while the socket is read
/// ([`next_event`](Socket::next_event)); a socket nobody reads for longer
/// than the server's `ping_interval + ping_timeout` is closed by the server
/// as lost (its seats go to grace).
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Events read while waiting for a specific answer.
    pending: VecDeque<Event>,
    /// When anything (a frame of any kind, pings included) last arrived.
    last_heard: Instant,
    /// The server's heartbeat, if its `welcome` gave one.
    heartbeat: Option<Heartbeat>,
}

impl Socket {
    /// The server's heartbeat (from `welcome`); `None` from a server that
    /// gave none.
    pub fn heartbeat(&self) -> Option<Heartbeat> {
        self.heartbeat
    }

    /// When anything last arrived from the server.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Sends `{"type":"ping"}`; the server answers [`Event::Pong`].
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.send_json(json!({"type": "ping"})).await
    }

    /// Renews the token in place; the server answers [`Event::Refreshed`]
    /// (or an `UNAUTHENTICATED` error, and the old expiry stands).
    pub async fn refresh(&mut self, token: &str) -> Result<(), ClientError> {
        self.send_json(json!({"type": "refresh", "token": token}))
            .await
    }

    /// Sends one JSON frame.
    pub async fn send_json(&mut self, frame: Value) -> Result<(), ClientError> {
        self.ws.send(Message::text(frame.to_string())).await?;
        Ok(())
    }

    /// Joins with `ticket`, resuming after `after_seq`; waits for `joined`.
    pub async fn join(
        &mut self,
        ticket: &str,
        after_seq: Option<u64>,
    ) -> Result<Joined, ClientError> {
        let mut frame = json!({"type": "join", "ticket": ticket});
        if let Some(after) = after_seq {
            frame["after_seq"] = json!(after);
        }
        self.send_json(frame).await?;
        let mut held = VecDeque::new();
        let outcome = loop {
            match self.read().await {
                Ok(Event::Joined(j)) => break Ok(j),
                Ok(Event::Error(e)) if e.ticket.as_deref() == Some(ticket) => {
                    break Err(ClientError::Api {
                        status: 0,
                        code: e.code,
                        message: e.message,
                    });
                }
                Ok(other) => held.push_back(other),
                Err(e) => break Err(e),
            }
        };
        // Events of other rooms that arrived meanwhile come next, in order.
        held.append(&mut self.pending);
        self.pending = held;
        outcome
    }

    /// Sends a message; the ack comes later as [`Event::Ack`].
    pub async fn send(
        &mut self,
        room: &str,
        client_id: &str,
        body: &str,
    ) -> Result<(), ClientError> {
        self.send_json(
            json!({"type": "send", "room_id": room, "client_id": client_id, "body": body}),
        )
        .await
    }

    /// Marks `room` read up to `seq`; the answer comes later as
    /// [`Event::ReadState`] (or an error naming the room).
    pub async fn mark_read(&mut self, room: &str, seq: u64) -> Result<(), ClientError> {
        self.send_json(json!({"type": "read", "room_id": room, "seq": seq}))
            .await
    }

    /// Sends a signal (`typing`, `stopped_typing`, an app's `x-…` name) to
    /// `room`'s other members; nothing answers unless it is refused (an
    /// [`Event::Error`] naming the room).
    pub async fn signal(
        &mut self,
        room: &str,
        name: &str,
        data: Option<serde_json::Value>,
    ) -> Result<(), ClientError> {
        let mut frame = json!({"type": "signal", "room_id": room, "name": name});
        if let Some(data) = data {
            frame["data"] = data;
        }
        self.send_json(frame).await
    }

    /// Leaves a room; `left` comes later.
    pub async fn leave(&mut self, room: &str) -> Result<(), ClientError> {
        self.send_json(json!({"type": "leave", "room_id": room}))
            .await
    }

    /// The next event; `Closed(code)` once the server has closed.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(event);
        }
        self.read().await
    }

    /// Cancel-safe: a frame is taken off the stream only as it is returned.
    async fn read(&mut self) -> Result<Event, ClientError> {
        loop {
            let message = self.ws.next().await;
            self.last_heard = Instant::now();
            match message {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text)
                        .map_err(|e| ClientError::Protocol(format!("{e}: {text}")));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(ClientError::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }

    /// Closes with `code` (1000 = leave every room; anything else = lost).
    pub async fn close(mut self, code: u16) -> Result<(), ClientError> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        self.ws.close(Some(frame)).await?;
        // Drain until the server's close arrives.
        while let Some(Ok(_)) = self.ws.next().await {}
        Ok(())
    }
}

/// One room that survives disconnects: reconnects, resumes after its last
/// seq, re-sends unacked messages with their original `client_id`.
///
/// While [`next_entry`](ResumingRoom::next_entry) waits, it probes the
/// server with `{"type":"ping"}` every `ping_interval_ms` (from `welcome`)
/// and treats a server silent for longer than `ping_interval_ms +
/// ping_timeout_ms` as lost: it drops the socket (and its pooled HTTP
/// connections) and resumes on a new one. Keep calling `next_entry`: the
/// socket is read, and the server's pings answered, only then.
pub struct ResumingRoom {
    /// Where it reconnects: the first that answers, in turn (several nodes
    /// of a cluster, say).
    clients: Vec<Client>,
    current: usize,
    room: String,
    socket: Option<Socket>,
    last_seq: u64,
    /// Sent and not yet acked, in send order.
    unacked: VecDeque<(String, String)>,
    /// How many times the socket was re-established.
    reconnects: u32,
    /// When to send the next `ping` probe.
    next_probe: Instant,
    /// Whether the last socket was lost to silence (then HTTP connections
    /// are renewed too).
    went_silent: bool,
    /// The seqs retention pruned before this client saw them, one range per
    /// join that came back with `"resumed": false`.
    missed: Vec<std::ops::RangeInclusive<u64>>,
}

/// How many reconnect attempts before giving up.
const RECONNECT_ATTEMPTS: u32 = 60;
/// The longest wait between reconnect attempts (the delay doubles from
/// 50 ms up to it).
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);

impl ResumingRoom {
    /// Reserves (creating the room with `create` seats if absent) and joins.
    /// The stream starts after the room's last seq at join.
    pub async fn join(
        client: Client,
        room: &str,
        create: Option<u32>,
    ) -> Result<Self, ClientError> {
        let ticket = client.reserve(room, create).await?;
        let mut socket = client.connect().await?;
        let joined = socket.join(&ticket.ticket, None).await?;
        Ok(ResumingRoom {
            clients: vec![client],
            current: 0,
            room: room.to_owned(),
            socket: Some(socket),
            last_seq: joined.last_seq,
            unacked: VecDeque::new(),
            reconnects: 0,
            next_probe: Instant::now(),
            went_silent: false,
            missed: Vec::new(),
        }
        .probing_from_now())
    }

    /// Adds another server to reconnect through when the current one does
    /// not answer (another node of the cluster); tried in turn.
    pub fn fall_back_to(&mut self, client: Client) {
        self.clients.push(client);
    }

    /// The seq of the last entry handed out.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Messages sent and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// How many times the connection was re-established.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The seqs this client never received because retention pruned them
    /// while it was away (a re-join answered `"resumed": false`), oldest
    /// first; empty when nothing was missed. The stream went on from the
    /// room's `first_seq` each time.
    pub fn missed(&self) -> &[std::ops::RangeInclusive<u64>] {
        &self.missed
    }

    /// Queues a message and sends it if connected; it is re-sent after a
    /// reconnect until acknowledged.
    pub async fn send(&mut self, client_id: &str, body: &str) {
        self.unacked
            .push_back((client_id.to_owned(), body.to_owned()));
        if let Some(socket) = &mut self.socket {
            // A write that cannot proceed (a vanished network, the kernel's
            // buffer full) is a lost socket too, not a wait forever.
            let patience = socket.heartbeat().map_or(REQUEST_TIMEOUT, |h| h.silence);
            let sent = timeout(patience, socket.send(&self.room, client_id, body)).await;
            if !matches!(sent, Ok(Ok(()))) {
                self.socket = None;
                self.went_silent = true;
            }
        }
    }

    fn probing_from_now(mut self) -> Self {
        self.schedule_probe();
        self
    }

    fn schedule_probe(&mut self) {
        if let Some(heartbeat) = self.socket.as_ref().and_then(Socket::heartbeat) {
            self.next_probe = Instant::now() + heartbeat.interval;
        }
    }

    /// The next event of the current socket, probing it with `ping` while
    /// it is quiet; `None` once the server was silent for longer than its
    /// interval + timeout (the socket is then dropped).
    async fn next_event_or_silence(&mut self) -> Option<Result<Event, ClientError>> {
        loop {
            let socket = self.socket.as_mut()?;
            let Some(heartbeat) = socket.heartbeat() else {
                return Some(socket.next_event().await);
            };
            let lost_at = socket.last_heard() + heartbeat.silence;
            let wake = self.next_probe.min(lost_at);
            tokio::select! {
                event = socket.next_event() => return Some(event),
                _ = sleep_until(wake) => {}
            }
            if Instant::now() >= lost_at {
                tracing::debug!(room = %self.room, "server silent: reconnecting");
                self.socket = None;
                self.went_silent = true;
                return None;
            }
            if Instant::now() >= self.next_probe {
                self.next_probe = Instant::now() + heartbeat.interval;
                // A probe that cannot be written means the socket is gone.
                let written = timeout_at(lost_at, socket.ping()).await;
                if !matches!(written, Ok(Ok(()))) {
                    self.socket = None;
                    self.went_silent = true;
                    return None;
                }
            }
        }
    }

    /// The next entry, each exactly once in seq order, across reconnects.
    /// A message the server refuses for good (too large, …) comes back as
    /// `Err(Api)` and is dropped from the unacked queue.
    pub async fn next_entry(&mut self) -> Result<Entry, ClientError> {
        loop {
            if self.socket.is_none() {
                self.reconnect().await?;
                continue;
            }
            let Some(event) = self.next_event_or_silence().await else {
                continue;
            };
            match event {
                Ok(Event::Entry(entry)) if entry.room_id == self.room => {
                    if entry.seq <= self.last_seq {
                        continue;
                    }
                    self.last_seq = entry.seq;
                    return Ok(entry);
                }
                // Only an ack settles a send: a re-sent duplicate is acked
                // with the original entry.
                Ok(Event::Ack(ack)) => self.settle(Some(&ack.client_id)),
                // Retention overtook the stream: the room's stream on this
                // socket is over (its seat in grace); join again, which
                // goes on from `first_seq`.
                Ok(Event::Error(e))
                    if e.code == "HISTORY_PRUNED" && e.room_id.as_deref() == Some(&self.room) =>
                {
                    tracing::debug!(room = %self.room, "stream overtaken by retention: re-joining");
                    self.socket = None;
                }
                Ok(Event::Error(e)) if e.client_id.is_some() => {
                    if matches!(e.code.as_str(), "RATE_LIMITED" | "UNAVAILABLE") {
                        // Temporary: re-sent on the next connection.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        self.socket = None;
                        continue;
                    }
                    self.settle(e.client_id.as_deref());
                    return Err(ClientError::Api {
                        status: 0,
                        code: e.code,
                        message: e.message,
                    });
                }
                Ok(_) => continue,
                Err(_) => self.socket = None,
            }
        }
    }

    fn settle(&mut self, client_id: Option<&str>) {
        if let Some(id) = client_id {
            self.unacked.retain(|(c, _)| c != id);
        }
    }

    async fn reconnect(&mut self) -> Result<(), ClientError> {
        let mut delay = Duration::from_millis(50);
        let mut last_error = None;
        for _ in 0..RECONNECT_ATTEMPTS {
            if std::mem::take(&mut self.went_silent) {
                for client in &mut self.clients {
                    *client = client.with_fresh_connections();
                }
            }
            match self.try_resume().await {
                Ok((socket, joined)) => {
                    self.resumed(&joined);
                    self.socket = Some(socket);
                    self.reconnects += 1;
                    self.schedule_probe();
                    return Ok(());
                }
                Err(e) => {
                    last_error = Some(e);
                    self.current = (self.current + 1) % self.clients.len();
                    // A timed-out attempt may have left a dead pooled
                    // connection behind.
                    self.went_silent = true;
                }
            }
            // Backoff with "equal jitter" (half the delay, plus a random
            // part of the other half: AWS Architecture Blog, "Exponential
            // Backoff and Jitter", 2015), so a restarted server is not hit
            // by every client at the same instant, and no client waits
            // longer than the cap once it is back.
            let half = delay / 2;
            tokio::time::sleep(half + rand::random_range(Duration::ZERO..=half)).await;
            delay = (delay * 2).min(RECONNECT_DELAY_MAX);
        }
        Err(last_error.unwrap_or(ClientError::Closed(None)))
    }

    async fn try_resume(&self) -> Result<(Socket, Joined), ClientError> {
        let client = &self.clients[self.current];
        let ticket = client.reserve(&self.room, None).await?;
        let mut socket = client.connect().await?;
        let joined = socket.join(&ticket.ticket, Some(self.last_seq)).await?;
        for (client_id, body) in &self.unacked {
            socket.send(&self.room, client_id, body).await?;
        }
        Ok((socket, joined))
    }

    /// Takes note of a re-join: where retention pruned entries after the
    /// last seq seen, they are missed for good, and the stream goes on from
    /// `first_seq` (a later resume starts there, not at the old seq).
    fn resumed(&mut self, joined: &Joined) {
        if joined.resumed || joined.first_seq <= self.last_seq.saturating_add(1) {
            return;
        }
        let gap = self.last_seq + 1..=joined.first_seq - 1;
        tracing::info!(room = %self.room, missed = ?gap, "entries pruned while away: going on from first_seq");
        self.missed.push(gap);
        self.last_seq = joined.first_seq - 1;
    }
}
