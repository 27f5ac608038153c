//! A Rust client for Parlor's HTTP + WebSocket protocol (feature `client`).
//!
//! - [`Client`]: HTTP calls (reserve, room, history, send) and
//!   [`Client::connect`], a [`Socket`] that has said `hello`.
//! - [`ResumingRoom`]: one room that survives disconnects and server
//!   restarts: it reconnects with backoff and jitter, re-joins after the last
//!   seq it saw, and re-sends unacked messages in order under their original
//!   `client_id`. Every entry comes out once, in seq order.
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

use std::{collections::VecDeque, fmt, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
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

/// What went wrong, as the client sees it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with a contract error.
    Api {
        /// HTTP status (0 on the WebSocket).
        status: u16,
        /// The CONTRACT §7 code.
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
    /// `text`, `join` or `leave`.
    pub kind: String,
    /// Who.
    pub sender: String,
    /// The sender's idempotency key (text only).
    pub client_id: Option<String>,
    /// The message (text only).
    pub body: Option<String>,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
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
    /// Joined and in-grace users.
    pub members: Vec<String>,
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
    /// The CONTRACT §7 code.
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
    },
    /// A join succeeded.
    Joined(Joined),
    /// A log entry.
    Entry(Entry),
    /// A send is durable.
    Ack(Ack),
    /// A leave is done.
    Left {
        /// The room left.
        room_id: String,
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
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
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
        #[derive(Deserialize)]
        struct Messages {
            messages: Vec<Entry>,
        }
        let response = self
            .http
            .get(self.url(&format!(
                "/v1/rooms/{room}/messages?after_seq={after_seq}&limit={limit}"
            )))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(api::<Messages>(response).await?.messages)
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

    /// Opens `/v1/ws` and says `hello`.
    pub async fn connect(&self) -> Result<Socket, ClientError> {
        let url = format!("{}/v1/ws", self.base.replacen("http", "ws", 1));
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _) = connect_async_with_config(url, Some(config), false).await?;
        let mut socket = Socket {
            ws,
            pending: VecDeque::new(),
        };
        socket
            .send_json(json!({"type": "hello", "token": self.token}))
            .await?;
        match socket.next_event().await? {
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

/// A WebSocket that has said `hello`.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Events read while waiting for a specific answer.
    pending: VecDeque<Event>,
}

impl Socket {
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

    async fn read(&mut self) -> Result<Event, ClientError> {
        loop {
            match self.ws.next().await {
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
}

/// How many reconnect attempts before giving up.
const RECONNECT_ATTEMPTS: u32 = 60;

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
        })
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

    /// Queues a message and sends it if connected; it is re-sent after a
    /// reconnect until acknowledged.
    pub async fn send(&mut self, client_id: &str, body: &str) {
        self.unacked
            .push_back((client_id.to_owned(), body.to_owned()));
        if let Some(socket) = &mut self.socket
            && socket.send(&self.room, client_id, body).await.is_err()
        {
            self.socket = None;
        }
    }

    /// The next entry, each exactly once in seq order, across reconnects.
    /// A message the server refuses for good (too large, …) comes back as
    /// `Err(Api)` and is dropped from the unacked queue.
    pub async fn next_entry(&mut self) -> Result<Entry, ClientError> {
        loop {
            let Some(socket) = &mut self.socket else {
                self.reconnect().await?;
                continue;
            };
            match socket.next_event().await {
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
            match self.try_resume().await {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(e) => {
                    last_error = Some(e);
                    self.current = (self.current + 1) % self.clients.len();
                }
            }
            // Backoff with jitter, so a restarted server is not hit by every
            // client at the same instant.
            let jitter = delay.as_millis() as u64 * u64::from(rand_percent()) / 100;
            tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        Err(last_error.unwrap_or(ClientError::Closed(None)))
    }

    async fn try_resume(&self) -> Result<Socket, ClientError> {
        let client = &self.clients[self.current];
        let ticket = client.reserve(&self.room, None).await?;
        let mut socket = client.connect().await?;
        socket.join(&ticket.ticket, Some(self.last_seq)).await?;
        for (client_id, body) in &self.unacked {
            socket.send(&self.room, client_id, body).await?;
        }
        Ok(socket)
    }
}

fn rand_percent() -> u8 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 100) as u8
}
