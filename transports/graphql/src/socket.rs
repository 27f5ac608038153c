//! `/graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws`
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>) and the
//! legacy `graphql-ws` (subscriptions-transport-ws) sub-protocol.
//!
//! async-graphql runs the protocol; this module holds it to the letter and
//! adds what a chat needs around it:
//!
//! - a guard on the incoming stream ([`Guarded`]) that parses every message
//!   first and closes the socket itself on what the protocol forbids
//!   (4400 not a valid message, 4401 `subscribe` before the ack, 4409 a
//!   `subscribe` whose id is still running, 4429 a second `connection_init`)
//!   — before async-graphql could act on it;
//! - a heartbeat: a WebSocket ping frame every `ping_interval` (and a legacy
//!   `{"type":"ka"}`), and a close 1001 when nothing at all arrived for
//!   `ping_interval + ping_timeout`; 4408 without `connection_init` in time;
//!   4403 when the token from `connection_init` expires;
//! - a writer that drains async-graphql's bounded queue in bursts (the
//!   burst write of `parlor_wire::burst`, shared with the raw WebSocket) and
//!   closes with 1013 when the client stays unable to take frames; it also
//!   writes the `next` frames of `joinRoom` subscriptions itself, each
//!   event's JSON made once for all subscribers with the same selection
//!   ([`crate::shared_delivery`]), after whatever async-graphql queued
//!   before them;
//! - the id of every operation the guard passes, in order, for the
//!   executor to give each `joinRoom` delivery its frames' id.
//!
//! How the socket ends decides what happens to its seats: a client close
//! with 1000 (or a client `complete`) is a leave; every other end, and every
//! close the server makes (see [`crate::close`]), is a loss: seats go to
//! grace. One task per socket; the timers are one `Sleep`.

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use async_graphql::{Data, http::ClientMessage};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket},
    },
    http::HeaderMap,
    response::Response,
};
use futures_channel::mpsc;
use futures_util::{
    FutureExt, Sink, SinkExt, Stream, StreamExt, future::BoxFuture, stream::FuturesUnordered,
};
use parlor_engine::{Authenticator, ErrorKind, Timestamp, bearer_token};
use parlor_wire::burst::{self, Burst, Ready, WRITE_BUFFER};
use serde_json::Value;
use tokio::time::{Instant, sleep_until};

use crate::{
    GraphqlState,
    close::{self, Close},
    schema::{SocketState, Viewer},
    shared_delivery::{Delivery, Step},
};

/// The legacy protocol's keep-alive message (`GQL_CONNECTION_KEEP_ALIVE`).
/// async-graphql 7 has none of its own: its `keepalive_timeout` closes an
/// idle socket instead, and its `ka` message is commented out.
const KA: &str = r#"{"type":"ka"}"#;

pub(crate) async fn upgrade(
    State(state): State<Arc<GraphqlState>>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let legacy = is_legacy(&headers);
    ws.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| serve(state, socket, protocol, legacy))
}

/// Whether the client speaks the legacy `graphql-ws`: the first protocol it
/// offers that we know, as [`GraphQLProtocol`] picks it.
fn is_legacy(headers: &HeaderMap) -> bool {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| {
            p.eq_ignore_ascii_case("graphql-ws") || p.eq_ignore_ascii_case("graphql-transport-ws")
        })
        .is_some_and(|p| p.eq_ignore_ascii_case("graphql-ws"))
}

/// What the guard, the authenticator and the writer of one socket share.
/// Times are ms since `started`.
struct Link {
    socket: Arc<SocketState>,
    legacy: bool,
    started: Instant,
    /// When the last frame of any kind arrived.
    last_seen: AtomicU64,
    /// When the token from `connection_init` expires (`u64::MAX`: never).
    expires: AtomicU64,
    initialized: AtomicBool,
    acked: AtomicBool,
    /// Whether async-graphql waits for room in the outgoing queue. It then
    /// reads nothing (it sends each message before reading the next), so
    /// the client's pongs wait unread: no silence is judged meanwhile. A
    /// dead peer still ends: its writes stall, and the writer closes 1013.
    queue_full: AtomicBool,
    /// The client closed with 1000: a failed write after it is no loss.
    clean: AtomicBool,
    /// The close the guard decided on.
    close: Mutex<Option<Close>>,
    /// Operation ids the client started and the server has not yet
    /// completed (graphql-transport-ws: a new `subscribe` with a live one is
    /// 4409).
    running: Mutex<HashMap<String, Op>>,
}

/// One operation id's state: whether it is live for the client (started,
/// not completed by either side), and how many server `complete`s for it are
/// still to be written (async-graphql also answers a client `complete` with
/// one, which must not end a new operation that reuses the id).
#[derive(Default)]
struct Op {
    live: bool,
    owed: u32,
}

impl Link {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        // A deadline past what `Instant` holds (a huge interval, no expiry)
        // is a year away: far enough, and re-checked on every wake.
        self.started
            .checked_add(Duration::from_millis(ms))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600))
    }

    /// Ends the socket as a loss with `close`: the seats must see `lost`
    /// before async-graphql drops their subscriptions.
    fn fail(&self, close: Close) {
        self.socket.lost.store(true, Ordering::Release);
        let mut slot = self.close.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(close);
    }

    /// A write failed: the connection is gone, a loss unless the client
    /// had closed it with 1000. No close frame can be sent.
    fn broken(&self) -> Option<Close> {
        if !self.clean.load(Ordering::Acquire) {
            self.socket.lost.store(true, Ordering::Release);
        }
        None
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Op>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the guard makes of one client text: `None` to pass it on to
    /// async-graphql, or the close it calls for.
    fn check(&self, text: &[u8]) -> Option<Close> {
        let Ok(message) = ClientMessage::from_bytes(text) else {
            return Some(close::INVALID_MESSAGE);
        };
        match message {
            ClientMessage::ConnectionInit { .. } => self
                .initialized
                .swap(true, Ordering::AcqRel)
                .then_some(close::TOO_MANY_INITS),
            ClientMessage::Start { id, .. } => {
                // async-graphql reads nothing while it authenticates, so
                // `acked` is exact here.
                if !self.acked.load(Ordering::Acquire) {
                    return Some(close::UNAUTHORIZED);
                }
                let mut running = self.running();
                let op = running.entry(id.clone()).or_default();
                let verdict = if op.live {
                    // Legacy graphql-ws has no such rule: a second `start`
                    // replaces the first (a stop, then a start, with no
                    // `complete` for the first).
                    (!self.legacy).then(|| close::duplicate(&id))
                } else {
                    op.live = true;
                    op.owed += 1;
                    None
                };
                drop(running);
                if verdict.is_none() {
                    self.socket.deliveries.started(id);
                }
                verdict
            }
            ClientMessage::Stop { id } => {
                let mut running = self.running();
                if let Some(op) = running.get_mut(&id) {
                    op.live = false;
                    if op.owed == 0 {
                        running.remove(&id);
                    }
                }
                None
            }
            ClientMessage::ConnectionTerminate if !self.legacy => Some(close::INVALID_MESSAGE),
            ClientMessage::ConnectionTerminate
            | ClientMessage::Ping { .. }
            | ClientMessage::Pong { .. } => None,
        }
    }

    /// Whether the token from `connection_init` has expired.
    fn expired(&self) -> bool {
        self.now() >= self.expires.load(Ordering::Relaxed)
    }

    /// The next time the writer must wake, given the next ping is due at
    /// `next_ping`.
    fn next_wake(&self, next_ping: u64, init_timeout: u64, lost_after: u64) -> u64 {
        let mut wake = next_ping.min(self.expires.load(Ordering::Relaxed)).min(
            self.last_seen
                .load(Ordering::Relaxed)
                .saturating_add(lost_after),
        );
        if !self.initialized.load(Ordering::Acquire) {
            wake = wake.min(init_timeout);
        }
        wake
    }
}

/// The incoming half, guarded: every frame counts as traffic; a message the
/// protocol forbids ends the stream (async-graphql then stops) with the
/// guard's close recorded; any end but a client close 1000 marks the socket
/// lost.
struct Guarded<S> {
    inner: S,
    link: Arc<Link>,
    done: bool,
}

impl<S> Stream for Guarded<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let polled = self.inner.poll_next_unpin(cx);
            let message = match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(message))) => message,
                Poll::Ready(Some(Err(_)) | None) => {
                    self.link.socket.lost.store(true, Ordering::Release);
                    self.done = true;
                    return polled;
                }
            };
            self.link
                .last_seen
                .store(self.link.now(), Ordering::Relaxed);
            let verdict = match &message {
                // Checked per message, not only by the writer's timer: an
                // operation that arrives after the expiry never runs.
                Message::Text(_) | Message::Binary(_) if self.link.expired() => {
                    Some(close::TOKEN_EXPIRED)
                }
                Message::Text(text) => self.link.check(text.as_bytes()),
                Message::Binary(bytes) => self.link.check(bytes),
                // Traffic only (counted above); tungstenite answers pings.
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(frame) => {
                    if frame.as_ref().is_none_or(|f| f.code != 1000) {
                        self.link.socket.lost.store(true, Ordering::Release);
                    } else {
                        self.link.clean.store(true, Ordering::Release);
                    }
                    // The end the close frame says, not the `None` after it.
                    self.done = true;
                    None
                }
            };
            if let Some(close) = verdict {
                tracing::debug!(
                    code = close.code,
                    "graphql socket closed for its client's message"
                );
                self.link.fail(close);
                self.done = true;
                return Poll::Ready(None);
            }
            return Poll::Ready(Some(Ok(message)));
        }
    }
}

async fn authenticate(
    auth: Arc<dyn Authenticator>,
    link: Arc<Link>,
    payload: Value,
) -> async_graphql::Result<Data> {
    let header = ["authorization", "Authorization"]
        .iter()
        .find_map(|k| payload.get(k).and_then(Value::as_str))
        .unwrap_or_default();
    // The token alone is taken too, as async-graphql's examples send it.
    let token = bearer_token(header).unwrap_or(header.trim());
    match auth.authenticate(token).await {
        Ok(principal) => {
            if let Some(left) = principal.time_left(Timestamp::now()) {
                let left = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                link.expires
                    .store(link.now().saturating_add(left), Ordering::Relaxed);
            }
            link.acked.store(true, Ordering::Release);
            let mut data = Data::default();
            data.insert(Viewer(principal));
            Ok(data)
        }
        Err(err) => Err(crate::errors::gql(
            if err.kind() == ErrorKind::Unauthenticated {
                err
            } else {
                ErrorKind::Unauthenticated.into()
            },
        )),
    }
}

async fn serve(
    state: Arc<GraphqlState>,
    socket: WebSocket,
    protocol: GraphQLProtocol,
    legacy: bool,
) {
    let _connection = state.connections.enter();
    let (mut sink, stream) = socket.split();
    let socket_state = Arc::new(SocketState::default());
    let link = Arc::new(Link {
        socket: Arc::clone(&socket_state),
        legacy,
        started: Instant::now(),
        last_seen: AtomicU64::new(0),
        expires: AtomicU64::new(u64::MAX),
        initialized: AtomicBool::new(false),
        acked: AtomicBool::new(false),
        queue_full: AtomicBool::new(false),
        clean: AtomicBool::new(false),
        close: Mutex::new(None),
        running: Mutex::new(HashMap::new()),
    });
    let guarded = Guarded {
        inner: stream,
        link: Arc::clone(&link),
        done: false,
    };
    let (to_client, outgoing) = mpsc::channel::<Message>(64);
    let mut data = Data::default();
    data.insert(Arc::clone(&socket_state));
    let auth = Arc::clone(&state.auth);
    let authenticating = Arc::clone(&link);
    let to_client = Queue {
        inner: to_client,
        link: Arc::clone(&link),
    };
    let protocol_task =
        GraphQLWebSocket::new_with_pair(to_client, guarded, state.schema.clone(), protocol)
            .with_data(data)
            .on_connection_init(move |payload| authenticate(auth, authenticating, payload))
            .serve();

    let mut shutdown = state.shutdown.clone();
    let stopping = async move {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    // The writer's `joinRoom` deliveries (their seats stay with
    // async-graphql's subscriptions, which drop after `link.fail`).
    let mut delivering = FuturesUnordered::new();
    let close = {
        let writer = write(&mut sink, outgoing, &link, &state.config, &mut delivering);
        tokio::pin!(writer, protocol_task);
        let close = tokio::select! {
            closed = &mut writer => closed,
            // The protocol ended: deliver what it queued, then the guard's
            // close if it made one.
            _ = &mut protocol_task => writer.await,
            _ = stopping => Some(close::SHUTDOWN),
        };
        // Before the subscriptions drop with `protocol_task`.
        if let Some(close) = close {
            link.fail(close);
        }
        link.close.lock().unwrap_or_else(|e| e.into_inner()).take()
    };
    let frame = close.map(|close| {
        Message::Close(Some(CloseFrame {
            code: close.code,
            reason: Utf8Bytes::from(close::fit(&close.reason)),
        }))
    });
    burst::finish(&mut sink, [], frame).await;
    drop(delivering);
    // Any handed over but not taken yet.
    drop(link.socket.deliveries.take());
}

/// async-graphql's end of the outgoing queue: notes in [`Link::queue_full`]
/// while it waits for room.
struct Queue {
    inner: mpsc::Sender<Message>,
    link: Arc<Link>,
}

impl Queue {
    fn note(&self, polled: Poll<Result<(), mpsc::SendError>>) -> Poll<Result<(), ()>> {
        self.link
            .queue_full
            .store(polled.is_pending(), Ordering::Release);
        polled.map_err(|_| ())
    }
}

impl futures_util::Sink<Message> for Queue {
    type Error = ();

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let polled = self.inner.poll_ready_unpin(cx);
        self.note(polled)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), ()> {
        self.inner.start_send_unpin(item).map_err(|_| ())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let polled = self.inner.poll_flush_unpin(cx);
        self.note(polled)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        self.inner.poll_close_unpin(cx).map_err(|_| ())
    }
}

/// Drains async-graphql's queue into the socket and keeps the heartbeat;
/// returns the close it decided on (`None`: the queue ended).
async fn write(
    sink: &mut (impl Sink<Message> + Unpin),
    mut outgoing: mpsc::Receiver<Message>,
    link: &Link,
    config: &crate::GraphqlConfig,
    delivering: &mut FuturesUnordered<BoxFuture<'static, (String, Delivery, Step)>>,
) -> Option<Close> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let interval = ms(config.ping_interval).max(1);
    let lost_after = interval.saturating_add(ms(config.ping_timeout));
    let init_timeout = ms(config.init_timeout);
    let patience = config.slow_client_patience;
    let mut next_ping = interval;
    let mut wake = link.next_wake(next_ping, init_timeout, lost_after);
    let timer = sleep_until(link.at(wake));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            () = &mut timer => {
                let now = link.now();
                if !link.initialized.load(Ordering::Acquire) && now >= init_timeout {
                    return Some(close::INIT_TIMEOUT);
                }
                if link.expired() {
                    return Some(close::TOKEN_EXPIRED);
                }
                let silent = now.saturating_sub(link.last_seen.load(Ordering::Relaxed));
                if silent >= lost_after && !link.queue_full.load(Ordering::Acquire) {
                    return Some(close::PING_TIMEOUT);
                }
                if now >= next_ping {
                    next_ping = now.saturating_add(interval);
                    // The ping frame, and the legacy keep-alive after the ack.
                    let mut ka = (link.legacy && link.acked.load(Ordering::Acquire))
                        .then(|| Message::Text(Utf8Bytes::from_static(KA)));
                    let ping = Message::Ping(Default::default());
                    let beat = burst::write_burst(sink, patience, ping, || {
                        ka.take().map_or(Ready::Done, Ready::Frame)
                    });
                    if let Err(end) = written(beat.await, link) {
                        return end;
                    }
                }
            }
            first = outgoing.next() => {
                let first = rewrite(first?, link);
                let more = || match outgoing.try_recv() {
                    Ok(message) => Ready::Frame(rewrite(message, link)),
                    Err(_) => Ready::Done,
                };
                let burst = burst::write_burst(sink, patience, first, more).await;
                if let Err(end) = written(burst, link) {
                    return end;
                }
            }
            () = link.socket.deliveries.added() => {
                for delivery in link.socket.deliveries.take() {
                    let head = next_head(&delivery.id, link.legacy);
                    delivering.push(step(head, delivery));
                }
            }
            Some((head, mut delivery, next)) = delivering.next(), if !delivering.is_empty() => {
                // What async-graphql queued goes first: a subscription's
                // `Joined` (queued before it handed its delivery over), and
                // the `complete` of one the client completed.
                let mut frames: VecDeque<Message> = std::iter::from_fn(|| outgoing.try_recv().ok())
                    .map(|message| rewrite(message, link))
                    .collect();
                let mut next = Some(next);
                // What else this subscription has ready joins the burst: one
                // write for several events, as on the raw WebSocket.
                while let Some(Step::Event(payload)) = next.take_if(|n| matches!(n, Step::Event(_)))
                {
                    if delivery.is_cancelled() {
                        next = Some(Step::Cancelled);
                        break;
                    }
                    frames.push_back(next_frame(&head, &payload));
                    if frames.len() >= burst::BURST {
                        break;
                    }
                    next = delivery.step().now_or_never();
                }
                match next {
                    None | Some(Step::Event(_)) => delivering.push(step(head, delivery)),
                    // Dropped: its seat goes as async-graphql's drop of it
                    // would have taken it.
                    Some(Step::Cancelled) => drop(delivery),
                    Some(Step::Ended(last)) => delivery.finish(last),
                }
                // In bursts of at most `BURST` frames, until all are written.
                while let Some(first) = frames.pop_front() {
                    let more = || frames.pop_front().map_or(Ready::Done, Ready::Frame);
                    let burst = burst::write_burst(sink, patience, first, more).await;
                    if let Err(end) = written(burst, link) {
                        return end;
                    }
                }
            }
        }
        // The ack may have brought a token expiry; init may have come.
        let next = link.next_wake(next_ping, init_timeout, lost_after);
        if next != wake {
            wake = next;
            timer.as_mut().reset(link.at(wake));
        }
    }
}

/// What a burst's outcome leaves the writer: go on, or end — with the
/// close to send (1013 for a client that stays unable to take frames), or
/// `None` for a socket that broke.
fn written<E>(burst: Burst<E>, link: &Link) -> Result<(), Option<Close>> {
    match burst {
        Burst::Written => Ok(()),
        Burst::Failed(_) => Err(link.broken()),
        Burst::Stalled => Err(Some(close::TOO_SLOW)),
    }
}

/// A delivery's next step, with the head of its `next` frames.
fn step(head: String, mut delivery: Delivery) -> BoxFuture<'static, (String, Delivery, Step)> {
    Box::pin(async move {
        let next = delivery.step().await;
        (head, delivery, next)
    })
}

/// A `next` frame: `head`, the payload, the closing brace.
fn next_frame(head: &str, payload: &str) -> Message {
    let mut text = String::with_capacity(head.len() + payload.len() + 1);
    text.push_str(head);
    text.push_str(payload);
    text.push('}');
    Message::Text(Utf8Bytes::from(text))
}

/// `{"type":"next","id":…,"payload":` (the legacy protocol's `data`), as
/// async-graphql writes it; the payload and a closing brace follow.
fn next_head(id: &str, legacy: bool) -> String {
    let kind = if legacy { "data" } else { "next" };
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".to_owned());
    format!(r#"{{"type":"{kind}","id":{id},"payload":"#)
}

/// What async-graphql queued, as the client should see it: a server
/// `complete` ends its id; a refused `connection_init` is 4403 — on the
/// legacy protocol after its `connection_error`, which carries its code
/// (async-graphql sends that message and ends with no close at all).
fn rewrite(message: Message, link: &Link) -> Message {
    match message {
        Message::Text(text) if text.as_str().starts_with(r#"{"type":"connection_error""#) => {
            // A close of the guard's own (4408, 4429) came first and stays.
            link.fail(close::FORBIDDEN);
            Message::Text(Utf8Bytes::from(coded_connection_error(text.as_str())))
        }
        Message::Text(text) => {
            if text.as_str().starts_with(r#"{"type":"complete""#)
                && let Ok(done) = serde_json::from_str::<Value>(text.as_str())
                && let Some(id) = done.get("id").and_then(Value::as_str)
            {
                let mut running = link.running();
                if let Some(op) = running.get_mut(id) {
                    op.owed = op.owed.saturating_sub(1);
                    if op.owed == 0 {
                        running.remove(id);
                    }
                }
            }
            Message::Text(text)
        }
        // async-graphql closes a refused connection_init with 1002 and the
        // authenticator's message; graphql-transport-ws says 4403
        // Forbidden, which clients take as final rather than retrying.
        Message::Close(Some(frame))
            if frame.code == 1002 && !link.acked.load(Ordering::Acquire) =>
        {
            Message::Close(Some(CloseFrame {
                code: close::FORBIDDEN.code,
                reason: Utf8Bytes::from_static("Forbidden"),
            }))
        }
        Message::Close(Some(frame)) => {
            // Any other close of async-graphql's own is the server's: a loss.
            link.socket.lost.store(true, Ordering::Release);
            Message::Close(Some(CloseFrame {
                code: frame.code,
                reason: Utf8Bytes::from(close::fit(frame.reason.as_str())),
            }))
        }
        other => other,
    }
}

/// The legacy `connection_error` with `payload.extensions.code`:
/// async-graphql rebuilds the authenticator's error from its message
/// alone, and the only refusal `authenticate` makes is `UNAUTHENTICATED`
/// (docs/contract.md §6: every error carries its code).
fn coded_connection_error(text: &str) -> String {
    let Ok(mut message) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    if let Some(payload) = message.get_mut("payload").and_then(Value::as_object_mut) {
        let extensions = payload
            .entry("extensions")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(extensions) = extensions.as_object_mut() {
            extensions
                .entry("code")
                .or_insert_with(|| ErrorKind::Unauthenticated.code().into());
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_protocol_is_the_first_known_one_offered() {
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
        assert!(is_legacy(&headers));
        headers.insert(
            "sec-websocket-protocol",
            "foo, graphql-transport-ws, graphql-ws".parse().unwrap(),
        );
        assert!(!is_legacy(&headers));
    }
}
