//! One WebSocket connection (CONTRACT §5).
//!
//! Three kinds of task share a socket:
//! - the **reader** (this function's loop): `hello`, then `join` / `send` /
//!   `leave` frames, in order;
//! - one **forwarder** per joined room, moving that room's entries (frames
//!   from the shared [`FrameCache`](crate::frames)) into the outbound queue;
//! - the **writer**, draining the bounded outbound queue into the socket.
//!
//! Nothing waits long on a slow client: a producer that finds the queue full
//! waits at most `slow_client_patience` for room, then closes the connection
//! with 4409 (the client loses nothing: it resumes after its last seq). The
//! patience absorbs bursts — a backlog page, a fan-out spike — that a client
//! reading at full speed drains in a moment. The reader holds each room's `SeatGuard`;
//! when the loop ends, a client close with code 1000 leaves every room, and
//! any other ending drops the guards, sending the seats to grace.

use std::{collections::HashMap, sync::Arc, time::Instant};

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    response::Response,
};
use futures_util::{
    FutureExt, SinkExt, StreamExt,
    future::BoxFuture,
    stream::{FuturesOrdered, SplitSink},
};
use parlor_engine::{Entry, EntryStream, Error, ErrorKind, RoomId, SeatGuard, UserId};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::{Duration, sleep, timeout},
};

use crate::{
    state::WsState,
    wire::{ClientFrame, ServerFrame},
};

/// Close codes of CONTRACT §5.
mod close {
    pub(super) const NORMAL: u16 = 1000;
    pub(super) const GOING_AWAY: u16 = 1001;
    pub(super) const TOO_BIG: u16 = 1009;
    pub(super) const INTERNAL: u16 = 1011;
    pub(super) const NO_HELLO: u16 = 4401;
    pub(super) const TOO_SLOW: u16 = 4409;
}

/// Bytes of frames the writer gathers before the socket write is forced.
const WRITE_BUFFER: usize = 4 * 1024;
/// Frames the writer takes from its queue for one flush.
const BURST: usize = 64;

/// How long the writer keeps trying to deliver a close frame to a client that
/// is not reading, before it drops the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// `GET /v1/ws`.
pub(crate) async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<WsState>>) -> Response {
    let limit = state.config.max_frame_bytes;
    // Small buffers: an idle connection should cost a few KiB, not the
    // 128 KiB + 128 KiB tungstenite allots by default (client frames are a
    // few hundred bytes; a larger one just takes more reads). The write
    // buffer holds a burst of frames until the writer flushes them (see
    // `write_burst`). tungstenite's own limit sits above ours so that we, not
    // it, see an oversized frame and can answer it with 1009.
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER)
        .max_frame_size(limit.saturating_mul(2))
        .max_message_size(limit.saturating_mul(2))
        .on_upgrade(move |socket| run(state, socket))
}

/// The outbound queue and the "close now" switch, shared by the reader and
/// the forwarders.
#[derive(Clone)]
struct Outbound {
    queue: mpsc::Sender<Message>,
    closing: Arc<watch::Sender<Option<(u16, &'static str)>>>,
    patience: Duration,
    state: Arc<WsState>,
}

impl Outbound {
    /// Queues `message`; false (and the connection is closing) when it can't.
    async fn push(&self, message: Message) -> bool {
        match self.queue.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            // Boxed: the waiting (a timer and a queue slot) is the rare path,
            // and every forwarder's idle future would otherwise carry it.
            Err(mpsc::error::TrySendError::Full(message)) => {
                Box::pin(self.wait_for_room(message)).await
            }
        }
    }

    /// The queue is full: wait up to `patience` for room, else close 4409.
    async fn wait_for_room(&self, message: Message) -> bool {
        match timeout(self.patience, self.queue.send(message)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                if self.close(close::TOO_SLOW, "too slow: resume after your last seq") {
                    self.state
                        .too_slow_closes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                false
            }
        }
    }

    async fn frame(&self, frame: &ServerFrame<'_>) -> bool {
        self.push(Message::Text(Utf8Bytes::from(frame.to_json())))
            .await
    }

    async fn error(
        &self,
        err: &Error,
        room_id: Option<&str>,
        client_id: Option<&str>,
        ticket: Option<&str>,
    ) -> bool {
        let message = err.client_message();
        self.frame(&ServerFrame::Error {
            code: err.code(),
            message: &message,
            room_id,
            client_id,
            ticket,
        })
        .await
    }

    /// Asks the writer to close with `code` now; true for the first request
    /// (which wins).
    fn close(&self, code: u16, reason: &'static str) -> bool {
        self.closing.send_if_modified(|c| {
            let first = c.is_none();
            if first {
                *c = Some((code, reason));
            }
            first
        })
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    mut closing: watch::Receiver<Option<(u16, &'static str)>>,
) {
    loop {
        tokio::select! {
            biased;
            _ = closing.changed() => break,
            message = queue.recv() => {
                let Some(message) = message else { break };
                tokio::select! {
                    biased;
                    _ = closing.changed() => break,
                    sent = write_burst(&mut sink, &mut queue, message) => if sent.is_err() { return },
                }
            }
        }
    }
    let requested = *closing.borrow();
    if let Some((code, reason)) = requested {
        // A slow client's backlog is dropped (it resumes from its seq); any
        // other close first delivers what was queued, such as the error
        // frame that explains it.
        if code != close::TOO_SLOW {
            while let Ok(message) = queue.try_recv() {
                if !matches!(timeout(CLOSE_GRACE, sink.send(message)).await, Ok(Ok(()))) {
                    return;
                }
            }
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = timeout(CLOSE_GRACE, sink.close()).await;
}

/// Writes `first` and what else is already queued (up to [`BURST`] frames)
/// with one flush. Why: a fan-out hands a connection several entries at once,
/// and one write per frame made the send syscall the server's largest cost;
/// an idle connection still gets each frame at once.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, Message>,
    queue: &mut mpsc::Receiver<Message>,
    first: Message,
) -> Result<(), axum::Error> {
    sink.feed(first).await?;
    for _ in 1..BURST {
        match queue.try_recv() {
            Ok(message) => sink.feed(message).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// How the reader loop ended.
enum Ending {
    /// Close frame with 1000: an explicit leave of every room.
    Left,
    /// Anything else: seats go to grace.
    Lost,
}

struct RoomSub {
    guard: SeatGuard,
    forwarder: JoinHandle<()>,
}

struct Session {
    state: Arc<WsState>,
    out: Outbound,
    user: UserId,
    rooms: HashMap<RoomId, RoomSub>,
    /// Sends queued in the engine and not yet answered, in the order they
    /// came: their acks (and errors) go out in that order.
    in_flight: FuturesOrdered<BoxFuture<'static, Answer>>,
}

/// At most this many sends per connection wait for storage at once; the
/// reader stops reading until the oldest is answered.
const MAX_IN_FLIGHT: usize = 256;

/// How a send ended, for its answer frame.
struct Answer {
    room_id: String,
    client_id: String,
    started: Instant,
    stored: Result<Arc<Entry>, Error>,
}

async fn run(state: Arc<WsState>, socket: WebSocket) {
    let _connection = state.connections.enter();
    let (sink, mut stream) = socket.split();
    let (queue, outbound) = mpsc::channel(state.config.outbound_queue);
    let (closing, closing_rx) = watch::channel(None);
    let out = Outbound {
        queue,
        closing: Arc::new(closing),
        patience: state.config.slow_client_patience,
        state: Arc::clone(&state),
    };
    let writer = tokio::spawn(write_loop(sink, outbound, closing_rx.clone()));

    // The per-frame work is boxed (here and in `read_loop`): it lives on the
    // heap only while it runs, so an idle connection's task stays small.
    if let Some(user) = Box::pin(hello(&state, &out, &mut stream)).await {
        let mut session = Session {
            state,
            out,
            user,
            rooms: HashMap::new(),
            in_flight: FuturesOrdered::new(),
        };
        let ending = session.read_loop(&mut stream, closing_rx).await;
        Box::pin(session.end(ending)).await;
    } else {
        drop(out);
    }
    let _ = writer.await;
}

type Inbound = futures_util::stream::SplitStream<WebSocket>;

/// Waits for a valid `hello`; closes with 4401 if none comes in time.
async fn hello(state: &WsState, out: &Outbound, stream: &mut Inbound) -> Option<UserId> {
    let deadline = sleep(state.config.hello_timeout);
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            _ = &mut deadline => {
                out.close(close::NO_HELLO, "no valid hello in time");
                return None;
            }
            frame = stream.next() => frame,
        };
        let hello = match frame {
            Some(Ok(Message::Text(text))) => serde_json::from_str::<ClientFrame>(&text).ok(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => None,
            _ => return None,
        };
        let Some(ClientFrame::Hello { token }) = hello else {
            let err = Error::new(ErrorKind::Unauthenticated, "the first frame must be hello");
            out.error(&err, None, None, None).await;
            continue;
        };
        match state.auth.authenticate(&token).await {
            Ok(user) => {
                out.frame(&ServerFrame::Welcome {
                    user_id: user.as_str(),
                })
                .await;
                return Some(user);
            }
            Err(err) => {
                out.error(&err, None, None, None).await;
                out.close(close::NO_HELLO, "invalid token");
                return None;
            }
        }
    }
}

impl Session {
    async fn read_loop(
        &mut self,
        stream: &mut Inbound,
        mut closing: watch::Receiver<Option<(u16, &'static str)>>,
    ) -> Ending {
        let mut shutdown = self.state.shutdown.clone();
        if *shutdown.borrow() {
            self.out.close(close::GOING_AWAY, "server shutting down");
            return Ending::Lost;
        }
        loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if text.len() > self.state.config.max_frame_bytes {
                            self.out.close(close::TOO_BIG, "frame too large");
                            return Ending::Lost;
                        }
                        Box::pin(self.handle(&text)).await;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        self.out.error(&Error::new(ErrorKind::InvalidInput, "binary frames are not supported"), None, None, None).await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) if f.code == close::NORMAL => Ending::Left,
                            _ => Ending::Lost,
                        };
                    }
                    Some(Err(err)) => {
                        // tungstenite's own size limit (twice ours) tripped.
                        if err.to_string().contains("Space limit exceeded") {
                            self.out.close(close::TOO_BIG, "frame too large");
                        }
                        return Ending::Lost;
                    }
                    None => return Ending::Lost,
                },
                Some(answer) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.answer(answer).await;
                }
                _ = closing.changed() => return Ending::Lost,
                _ = shutdown.changed() => {
                    self.out.close(close::GOING_AWAY, "server shutting down");
                    return Ending::Lost;
                }
            }
        }
    }

    async fn handle(&mut self, text: &str) {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let err = Error::new(
                    ErrorKind::InvalidInput,
                    format!("malformed or unknown frame: {e}"),
                );
                self.out.error(&err, None, None, None).await;
                return;
            }
        };
        match frame {
            ClientFrame::Hello { .. } => {
                self.out
                    .error(
                        &Error::new(ErrorKind::InvalidInput, "already said hello"),
                        None,
                        None,
                        None,
                    )
                    .await;
            }
            ClientFrame::Join { ticket, after_seq } => self.join(&ticket, after_seq).await,
            ClientFrame::Send {
                room_id,
                client_id,
                body,
            } => self.send(&room_id, &client_id, &body).await,
            ClientFrame::Leave { room_id } => self.leave(&room_id).await,
        }
    }

    async fn join(&mut self, ticket: &str, after_seq: Option<u64>) {
        let state = &self.state;
        match state.engine.commit(&self.user, ticket, after_seq).await {
            Ok(membership) => {
                let (joined, entries, guard) = membership.into_parts();
                // Joining a room this connection is in again re-subscribes:
                // the new stream replaces the old one (same seat).
                if let Some(old) = self.rooms.remove(&joined.room_id) {
                    stop(old.forwarder).await;
                }
                self.out.frame(&ServerFrame::joined(&joined)).await;
                let forwarder = tokio::spawn(forward(entries, self.out.clone(), Arc::clone(state)));
                self.rooms
                    .insert(joined.room_id.clone(), RoomSub { guard, forwarder });
            }
            Err(err) => {
                self.out.error(&err, None, None, Some(ticket)).await;
            }
        }
    }

    /// Queues the send in the engine and reads on: sends of one connection
    /// are pipelined — queued in order, stored together, answered in order.
    async fn send(&mut self, room_id: &str, client_id: &str, body: &str) {
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(answer) = self.in_flight.next().await {
                self.answer(answer).await;
            }
        }
        let started = Instant::now();
        let queued = match RoomId::new(room_id) {
            Err(err) => Err(err),
            Ok(_) if !self.state.limiter.allow(&self.user) => Err(ErrorKind::RateLimited.into()),
            Ok(room) => {
                self.state
                    .engine
                    .submit(&self.user, &room, client_id, body)
                    .await
            }
        };
        let (room_id, client_id) = (room_id.to_owned(), client_id.to_owned());
        // Refusals queue behind earlier sends too, so answers keep send order.
        self.in_flight.push_back(
            async move {
                let stored = match queued {
                    Ok(pending) => pending.await,
                    Err(err) => Err(err),
                };
                Answer {
                    room_id,
                    client_id,
                    started,
                    stored,
                }
            }
            .boxed(),
        );
    }

    async fn answer(&mut self, answer: Answer) {
        match answer.stored {
            Ok(entry) => {
                let latency = answer.started.elapsed().as_secs_f64();
                self.state.send_latency.observe(latency);
                self.out.frame(&ServerFrame::ack(&entry)).await;
            }
            Err(err) => {
                self.out
                    .error(&err, Some(&answer.room_id), Some(&answer.client_id), None)
                    .await;
            }
        }
    }

    async fn leave(&mut self, room_id: &str) {
        let room = match RoomId::new(room_id) {
            Ok(room) => room,
            Err(err) => {
                self.out.error(&err, Some(room_id), None, None).await;
                return;
            }
        };
        match self.rooms.remove(&room) {
            Some(sub) => {
                stop(sub.forwarder).await;
                if let Err(err) = sub.guard.leave().await {
                    tracing::warn!(code = err.code(), "leave was not confirmed");
                }
                self.out.frame(&ServerFrame::Left { room_id }).await;
            }
            None => {
                self.out
                    .error(&ErrorKind::NotAMember.into(), Some(room_id), None, None)
                    .await;
            }
        }
    }

    async fn end(self, ending: Ending) {
        for (_, sub) in self.rooms {
            stop(sub.forwarder).await;
            match ending {
                Ending::Left => {
                    if let Err(err) = sub.guard.leave().await {
                        tracing::warn!(code = err.code(), "leave on close was not confirmed");
                    }
                }
                Ending::Lost => drop(sub.guard),
            }
        }
    }
}

/// Stops a forwarder and waits until it has: `abort` alone takes effect at
/// the task's next await, and a frame pushed after `left` would confuse the
/// client.
async fn stop(forwarder: JoinHandle<()>) {
    forwarder.abort();
    let _ = forwarder.await;
}

/// Moves one room's entries into the connection's queue until it closes.
async fn forward(mut entries: EntryStream, out: Outbound, state: Arc<WsState>) {
    loop {
        match entries.next().await {
            Ok(entry) => {
                if !out.push(Message::Text(state.frames.entry(&entry))).await {
                    return;
                }
            }
            Err(err) if err.kind() == ErrorKind::NotAMember => {
                // The user left the room from elsewhere (another transport).
                out.frame(&ServerFrame::Left {
                    room_id: entries.room_id().as_str(),
                })
                .await;
                return;
            }
            Err(err) => {
                // Storage failed while catching up: close so the client
                // resumes from its last seq once storage is back.
                out.error(&err, None, None, None).await;
                out.close(close::INTERNAL, "storage unavailable, resume later");
                return;
            }
        }
    }
}
