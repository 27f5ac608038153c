//! The load side of the wire scenarios: reserve (HTTP), then a socket that
//! says hello and joins — over the raw WebSocket (docs/contract.md §4–§5), GraphQL
//! over `graphql-transport-ws` (§6), or the raw baseline, which needs no
//! reservation. Only that subset is used, so any server that speaks it can be
//! measured with `--url`.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message, client::IntoClientRequest, handshake::client::Request, protocol::WebSocketConfig,
    },
};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(crate) type WsSink = SplitSink<Ws, Message>;
pub(crate) type WsStream = SplitStream<Ws>;

/// tungstenite's read buffer for the load's sockets. Why not its 128 KiB
/// default: tungstenite zero-fills the free part of the buffer before every
/// read, and with a thousand subscribers that memset was a sixth of the
/// machine's CPU, taken from the server under test.
pub(crate) const READ_BUFFER: usize = 8 * 1024;

/// Opens a WebSocket with [`READ_BUFFER`].
async fn connect(request: Request) -> Result<Ws, String> {
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Which protocol the load speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The raw WebSocket of `parlor-ws`.
    Ws,
    /// GraphQL subscriptions; sends are `sendMessage` mutations over HTTP.
    Graphql,
    /// The raw baseline server: the same frames, no reservation.
    Raw,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Ws => "ws",
            Protocol::Graphql => "graphql",
            Protocol::Raw => "raw",
        }
    }
}

/// Microseconds since the bench started: what publishers stamp into bodies
/// and subscribers subtract from, on the same clock.
pub(crate) fn now_micros() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A server to put load on.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) base: String,
    pub(crate) protocol: Protocol,
    http: reqwest::Client,
    /// Sends over HTTP that failed (GraphQL's are not waited for): shared
    /// by the target's clones, read into the bench's line.
    failed_sends: Arc<AtomicU64>,
}

/// A joined socket, split so one task can write while another reads.
pub(crate) struct Joined {
    pub(crate) sink: WsSink,
    pub(crate) stream: WsStream,
}

fn token(user: &str) -> String {
    format!("dev:{user}")
}

/// The next text frame; an error once the connection is over.
pub(crate) async fn next_text(stream: &mut WsStream) -> Result<String, String> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

impl Target {
    pub(crate) fn new(base: &str, protocol: Protocol) -> Self {
        Target {
            base: base.trim_end_matches('/').to_owned(),
            protocol,
            http: reqwest::Client::new(),
            failed_sends: Arc::default(),
        }
    }

    /// How many sends not waited for failed so far (GraphQL's `sendMessage`
    /// and `sendSignal` over HTTP).
    pub(crate) fn failed_sends(&self) -> u64 {
        self.failed_sends.load(Ordering::Relaxed)
    }

    /// Phase 1: a ticket for `user` in `room` (creating it with `create`).
    pub(crate) async fn reserve(
        &self,
        room: &str,
        user: &str,
        create: Option<u32>,
    ) -> Result<String, String> {
        if self.protocol == Protocol::Raw {
            return Ok("raw".into());
        }
        let body = match create {
            Some(capacity) => json!({"create": {"capacity": capacity}}),
            None => json!({}),
        };
        let response = self
            .http
            .post(format!("{}/v1/rooms/{room}/reservations", self.base))
            .bearer_auth(token(user))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        match body["ticket"].as_str() {
            Some(ticket) if status.is_success() => Ok(ticket.to_owned()),
            _ => Err(format!("reserve {status}: {body}")),
        }
    }

    /// A raw WebSocket that said hello and joined nothing (for `idle --hello-only`).
    pub(crate) async fn hello(&self, user: &str) -> Result<Joined, String> {
        let url = format!("{}/v1/ws", self.base.replacen("http", "ws", 1));
        let request = url.into_client_request().map_err(|e| e.to_string())?;
        let (mut sink, mut stream) = connect(request).await?.split();
        let hello = json!({"type": "hello", "token": token(user)});
        sink.send(Message::text(hello.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        let welcome = next_text(&mut stream).await?;
        if !welcome.contains("\"welcome\"") {
            return Err(format!("hello refused: {welcome}"));
        }
        Ok(Joined { sink, stream })
    }

    /// Phase 2: a socket that said hello and joined with `ticket`.
    pub(crate) async fn join(&self, user: &str, ticket: &str) -> Result<Joined, String> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let (url, subprotocol) = match self.protocol {
            Protocol::Graphql => (
                format!("{ws_base}/graphql/ws"),
                Some("graphql-transport-ws"),
            ),
            _ => (format!("{ws_base}/v1/ws"), None),
        };
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(p) = subprotocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (mut sink, mut stream) = connect(request).await?.split();
        let frames = match self.protocol {
            Protocol::Graphql => [
                json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", token(user))}}),
                json!({"id": "1", "type": "subscribe", "payload": {"query": format!(
                    r#"subscription {{ joinRoom(ticket: "{ticket}") {{ __typename ... on Joined {{ lastSeq }} ... on Entry {{ seq body }} ... on Signal {{ userId data }} }} }}"#)}}),
            ],
            _ => [
                json!({"type": "hello", "token": token(user)}),
                json!({"type": "join", "ticket": ticket}),
            ],
        };
        for frame in frames {
            sink.send(Message::text(frame.to_string()))
                .await
                .map_err(|e| e.to_string())?;
        }
        // Until the join is confirmed: `joined`, or GraphQL's `Joined` event.
        loop {
            let text = next_text(&mut stream).await?;
            if text.contains("\"joined\"") || text.contains("\"Joined\"") {
                return Ok(Joined { sink, stream });
            }
            if text.contains("\"error\"") && !text.contains("\"type\":\"next\"") {
                return Err(format!("join refused: {text}"));
            }
        }
    }

    /// The server's `/metrics` (Prometheus text).
    pub(crate) async fn metrics(&self) -> Result<String, String> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.text().await.map_err(|e| e.to_string())
    }

    /// Sends one message as `user`, the way this protocol sends: a frame on
    /// the socket, or for GraphQL a `sendMessage` mutation over HTTP that is
    /// not waited for (so a publisher keeps its pace as a socket's would).
    pub(crate) async fn send(
        &self,
        sink: &mut WsSink,
        user: &str,
        room: &str,
        client_id: &str,
        body: &str,
    ) -> Result<(), String> {
        if self.protocol != Protocol::Graphql {
            let frame =
                json!({"type": "send", "room_id": room, "client_id": client_id, "body": body});
            return sink
                .send(Message::text(frame.to_string()))
                .await
                .map_err(|e| e.to_string());
        }
        let query = format!(
            r#"mutation {{ sendMessage(roomId: "{room}", clientId: "{client_id}", body: "{body}") {{ seq }} }}"#
        );
        self.mutate_in_background(user, json!({ "query": query }), "sendMessage");
        Ok(())
    }

    /// Sends a signal as `user` with GraphQL's `sendSignal` over HTTP,
    /// without waiting for the answer (as [`Target::send`] does).
    pub(crate) fn signal_over_http(&self, user: &str, room: &str, name: &str, data: Value) {
        let query = "mutation($r: ID!, $n: String!, $d: JSON) { sendSignal(roomId: $r, name: $n, data: $d) }";
        let request = json!({"query": query, "variables": {"r": room, "n": name, "d": data}});
        self.mutate_in_background(user, request, "sendSignal");
    }

    /// Posts a GraphQL `request` as `user` and goes on at once; a failure
    /// (of the call, or `errors` in its answer) is counted
    /// ([`Target::failed_sends`]) and the first is said on stderr.
    fn mutate_in_background(&self, user: &str, request: Value, what: &'static str) {
        let request = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token(user))
            .json(&request);
        let failed = Arc::clone(&self.failed_sends);
        tokio::spawn(async move {
            let outcome = match request.send().await {
                Ok(response) => response.json::<Value>().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let error = match outcome {
                Ok(body) if body["errors"].is_null() => return,
                Ok(body) => body.to_string(),
                Err(e) => e,
            };
            if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("bench: {what} failed: {error}");
            }
        });
    }
}

/// Reads what a bench cares about from an entry frame of any protocol: its
/// seq and the publish stamp in a `t:<micros>` body. A string scan, not a
/// JSON parse, so the load side stays cheap beside the server.
pub(crate) fn stamp(frame: &str) -> Option<(u64, u64)> {
    let sent = number_after(frame, "\"body\":\"t:")?;
    let seq = number_after(frame, "\"seq\":")?;
    Some((seq, sent))
}

/// The whole number right after the first `key` in `text`.
pub(crate) fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}
