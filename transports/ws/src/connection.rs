//! One WebSocket connection (docs/contract.md §5).
//!
//! Two tasks share a socket:
//! - the **reader** (this function's loop): `hello`, then `join` / `send` /
//!   `leave` / `read` frames, in order; it answers through the bounded
//!   outbound queue (`joined`, acks, errors, `left`, `read_state`);
//! - the **writer** ([`socket_writer`](crate::socket_writer)), which writes
//!   that queue and the joined rooms' entries
//!   ([`RoomFeeds`](crate::room_feeds::RoomFeeds), frames from the shared
//!   [`FrameCache`](crate::frames)) and read receipts to the socket. The
//!   reader hands it a room's stream with the `joined` frame, and takes it
//!   back before `left`; a stream that retention overtook the writer ends
//!   itself, and tells the reader to drop the room's seat (a loss).
//!
//! Nothing waits long on a slow client: a socket write that cannot proceed
//! for `slow_client_patience`, or a reader that finds the queue full for as
//! long, closes the connection with 4409 (the client loses nothing: it
//! resumes after its last seq). The patience absorbs bursts — a backlog
//! page, a fan-out spike — that a client reading at full speed drains in a
//! moment. The reader holds each room's `SeatGuard`; when the loop ends, a
//! client close with code 1000 leaves every room, and any other ending drops
//! the guards, sending the seats to grace.
//!
//! Liveness: the writer pings every `ping_interval`; the reader notes when
//! anything last arrived and keeps one timer, for the earlier of "silent for
//! `ping_interval + ping_timeout`" (close 1001, lost) and the credential's
//! expiry (close 4401, lost). The timer is re-armed only when it fires or
//! the credential is renewed, so traffic costs no timer work.
//!
//! The session ([`serve`]) knows no socket: it reads messages from any
//! stream and writes them to any sink. [`upgrade`] gives it the halves of
//! the upgraded WebSocket; its tests (`connection/tests.rs`) give it an
//! in-memory channel pair.

use std::{fmt::Display, sync::Arc};

use axum::{
    extract::{
        State,
        ws::{Message, WebSocketUpgrade},
    },
    response::Response,
};
use futures_util::{FutureExt, Sink, Stream, StreamExt, future::BoxFuture, stream::FuturesOrdered};
use parlor_engine::{Data, Entry, Error, ErrorKind, Principal, RoomId, SeatGuard, Seq, Timestamp};
use parlor_wire::{ReadStateJson, burst::WRITE_BUFFER};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Duration, Instant, sleep, sleep_until, timeout},
};

use crate::{
    room_feeds::Generation,
    socket_writer::{Closer, Outgoing, Writer, close, error_frame, text},
    state::WsState,
    wire::{ClientFrame, ServerFrame},
};

/// `GET /v1/ws`.
pub(crate) async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<WsState>>) -> Response {
    let limit = state.config.max_frame_bytes;
    // Small buffers: an idle connection should cost a few KiB, not the
    // 128 KiB + 128 KiB tungstenite allots by default (client frames are a
    // few hundred bytes; a larger one just takes more reads). The write
    // buffer holds a burst of frames until the writer flushes them (see
    // `Writer::write_burst`). tungstenite's own limit sits above ours so that we, not
    // it, see an oversized frame and can answer it with 1009.
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER)
        .max_frame_size(limit.saturating_mul(2))
        .max_message_size(limit.saturating_mul(2))
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            serve(state, sink, stream)
        })
}

/// The rooms a connection joined: a list, not a map. Why: a connection is
/// in one room or a few, a lookup scans them, and a map's first allocation
/// (four buckets) was a few hundred bytes on every idle connection
/// (docs/benchmarks.md step 26).
#[derive(Default)]
struct JoinedRooms(Vec<(RoomId, Generation, SeatGuard)>);

impl JoinedRooms {
    /// Holds `guard` for `room` under `generation`, dropping the seat guard
    /// of an earlier join of the room on this connection.
    fn insert(&mut self, room: RoomId, generation: Generation, guard: SeatGuard) {
        self.remove(&room);
        self.0.reserve_exact(1);
        self.0.push((room, generation, guard));
    }

    /// The generation of the join that holds `room`.
    fn generation(&self, room: &RoomId) -> Option<Generation> {
        self.0
            .iter()
            .find(|(r, _, _)| r == room)
            .map(|(_, generation, _)| *generation)
    }

    fn remove(&mut self, room: &RoomId) -> Option<(Generation, SeatGuard)> {
        let at = self.0.iter().position(|(r, _, _)| r == room)?;
        let (_, generation, guard) = self.0.swap_remove(at);
        Some((generation, guard))
    }
}

/// The reader's side of the outbound queue.
struct Outbound {
    /// Boxed items: a bounded channel allocates its first block of 32
    /// slots when made, and a slot of an `Outgoing` (64 bytes) made that
    /// block 2 KiB on every idle connection (docs/benchmarks.md step 26).
    queue: mpsc::Sender<Box<Outgoing>>,
    closer: Closer,
}

impl Outbound {
    /// Queues `item`; false (and the connection is closing) when it can't.
    async fn push(&self, item: Outgoing) -> bool {
        match self.queue.try_send(Box::new(item)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            // Boxed: the waiting (a timer and a queue slot) is the rare path.
            Err(mpsc::error::TrySendError::Full(item)) => Box::pin(self.wait_for_room(item)).await,
        }
    }

    /// The queue is full: wait up to `patience` for room, else close 4409.
    async fn wait_for_room(&self, item: Box<Outgoing>) -> bool {
        let patience = self.closer.state.config.slow_client_patience;
        match timeout(patience, self.queue.send(item)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                self.closer.too_slow();
                false
            }
        }
    }

    async fn frame(&self, frame: &ServerFrame<'_>) -> bool {
        self.push(Outgoing::Frame(text(frame))).await
    }

    async fn error(
        &self,
        err: &Error,
        room_id: Option<&str>,
        client_id: Option<&str>,
        ticket: Option<&str>,
    ) -> bool {
        self.push(Outgoing::Frame(error_frame(
            err, room_id, client_id, ticket,
        )))
        .await
    }

    fn close(&self, code: u16, reason: &'static str) -> bool {
        self.closer.close(code, reason)
    }
}

/// How the reader loop ended.
enum Ending {
    /// Close frame with 1000: an explicit leave of every room.
    Left,
    /// Anything else: seats go to grace.
    Lost,
}

struct Session {
    state: Arc<WsState>,
    out: Outbound,
    /// Who is connected, with their token's claims (the room policy reads
    /// them); replaced by a `refresh` for the same user.
    principal: Principal,
    /// When the credential expires (then: close 4401, lost), if it does.
    expires: Option<Instant>,
    /// When a frame (of any kind) last arrived.
    last_heard: Instant,
    /// The seats of the rooms joined, with the generation of the join
    /// that holds each; the writer follows their entries.
    rooms: JoinedRooms,
    /// The generation of the next join.
    joins: Generation,
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

/// Serves one connection: reads the client's messages from `stream`,
/// writes the server's to `sink` (from a task of its own), until the
/// connection ends; then settles its seats (a client close with 1000
/// leaves, any other end is a loss). Returns once the writer is done too.
pub(crate) async fn serve<Si, St, E>(state: Arc<WsState>, sink: Si, mut stream: St)
where
    Si: Sink<Message> + Unpin + Send + 'static,
    St: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    let _connection = state.connections.enter();
    let (queue, outbound) = mpsc::channel(state.config.outbound_queue);
    let (closing, closing_rx) = watch::channel(None);
    let closer = Closer {
        closing: Arc::new(closing),
        state: Arc::clone(&state),
        lost: Arc::default(),
    };
    let out = Outbound {
        queue,
        closer: closer.clone(),
    };
    let writer = Writer::new(sink, outbound, closer);
    let writer = tokio::spawn(writer.run(closing_rx.clone()));

    // The per-frame work is boxed (here and in `read_loop`): it lives on the
    // heap only while it runs, so an idle connection's task stays small.
    if let Some(principal) = Box::pin(hello(&state, &out, &mut stream)).await {
        let mut session = Session {
            state,
            out,
            expires: deadline_of(&principal),
            principal,
            last_heard: Instant::now(),
            rooms: JoinedRooms::default(),
            joins: 0,
            in_flight: FuturesOrdered::new(),
        };
        let ending = session.read_loop(&mut stream, closing_rx).await;
        Box::pin(session.end(ending)).await;
    } else {
        drop(out);
    }
    let _ = writer.await;
}

/// The `welcome` frame for `principal`.
fn welcome(state: &WsState, principal: &Principal) -> Message {
    text(&ServerFrame::Welcome {
        user_id: principal.user.as_str(),
        ping_interval_ms: millis(state.config.ping_interval),
        ping_timeout_ms: millis(state.config.ping_timeout),
        expires_at: principal.expires_at.map(|t| t.to_string()),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The monotonic instant of `principal`'s expiry (now, if it has passed),
/// at most a year away (re-armed at each wake); `None` if it never expires.
fn deadline_of(principal: &Principal) -> Option<Instant> {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let left = principal.time_left(Timestamp::now())?;
    Some(Instant::now() + left.min(FAR))
}

/// The close a read error calls for, when the client caused it: tungstenite
/// reports these as errors, and RFC 6455 §7.4.1 names their codes. `None`:
/// the peer is gone (reset, I/O error), nobody to tell.
fn close_for(err: &impl Display) -> Option<(u16, &'static str)> {
    // axum wraps tungstenite's error opaquely; its text is all there is.
    let text = err.to_string();
    if text.contains("Space limit exceeded") {
        // tungstenite's own size limit (twice ours) tripped.
        Some((close::TOO_BIG, "frame too large"))
    } else if text.contains("UTF-8") {
        Some((close::INVALID_DATA, "text frame is not UTF-8"))
    } else if text.contains("protocol error") && !text.contains("without closing handshake") {
        // (A reset without a close handshake is worded as a protocol
        // error too, but nobody is left to read a close frame.)
        Some((close::PROTOCOL, "protocol error"))
    } else {
        None
    }
}

/// Waits for a valid `hello`; closes with 4401 if none comes in time.
/// `{"type":"ping"}` is answered before `hello` too (the deadline stands).
async fn hello<E: Display>(
    state: &WsState,
    out: &Outbound,
    stream: &mut (impl Stream<Item = Result<Message, E>> + Unpin),
) -> Option<Principal> {
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
            Some(Err(err)) => {
                if let Some((code, reason)) = close_for(&err) {
                    out.close(code, reason);
                }
                return None;
            }
            Some(Ok(Message::Close(_))) | None => return None,
        };
        let token = match hello {
            Some(ClientFrame::Hello { token }) => token,
            Some(ClientFrame::Ping) => {
                out.frame(&ServerFrame::Pong).await;
                continue;
            }
            _ => {
                let err = Error::new(ErrorKind::Unauthenticated, "the first frame must be hello");
                out.error(&err, None, None, None).await;
                continue;
            }
        };
        match state.auth.authenticate(&token).await {
            Ok(principal) => {
                out.push(Outgoing::Frame(welcome(state, &principal))).await;
                return Some(principal);
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
    async fn read_loop<E: Display>(
        &mut self,
        stream: &mut (impl Stream<Item = Result<Message, E>> + Unpin),
        mut closing: watch::Receiver<Option<(u16, &'static str)>>,
    ) -> Ending {
        let mut shutdown = self.state.shutdown.clone();
        if *shutdown.borrow() {
            self.out.close(close::GOING_AWAY, "server shutting down");
            return Ending::Lost;
        }
        let check = sleep_until(self.next_check());
        tokio::pin!(check);
        let lost = Arc::clone(&self.out.closer.lost);
        loop {
            tokio::select! {
                // Biased, the timer last: a frame already read is seen
                // before the silence check judges (after a long `handle`).
                biased;
                _ = closing.changed() => return Ending::Lost,
                _ = shutdown.changed() => {
                    self.out.close(close::GOING_AWAY, "server shutting down");
                    return Ending::Lost;
                }
                () = lost.notify.notified() => self.release_lost(),
                Some(answer) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.answer(answer).await;
                }
                frame = stream.next() => {
                    self.last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            if text.len() > self.state.config.max_frame_bytes {
                                self.out.close(close::TOO_BIG, "frame too large");
                                return Ending::Lost;
                            }
                            // Checked per frame, not only by the timer: a
                            // send that arrives after the expiry is never
                            // acked, however late the timer fires.
                            if self.expired() {
                                return Ending::Lost;
                            }
                            let expires = self.expires;
                            Box::pin(self.handle(&text)).await;
                            if self.expires != expires {
                                check.as_mut().reset(self.next_check());
                            }
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
                            // A close the client caused (1007, 1009, 1002)
                            // is still a lost connection, not a leave.
                            if let Some((code, reason)) = close_for(&err) {
                                self.out.close(code, reason);
                            }
                            return Ending::Lost;
                        }
                        None => return Ending::Lost,
                    }
                }
                _ = &mut check => {
                    if self.expired() {
                        return Ending::Lost;
                    }
                    if self.last_heard.elapsed() >= self.silence() {
                        tracing::debug!(user = %self.principal.user, "ping timeout: connection lost");
                        self.out.close(close::GOING_AWAY, "ping timeout");
                        return Ending::Lost;
                    }
                    check.as_mut().reset(self.next_check());
                }
            }
        }
    }

    /// `ping_interval + ping_timeout`: this long without a frame, the peer
    /// is lost.
    fn silence(&self) -> Duration {
        self.state.config.ping_interval + self.state.config.ping_timeout
    }

    /// When the reader's timer should next look: the silence limit, or the
    /// credential's expiry if that is sooner.
    fn next_check(&self) -> Instant {
        let silent = self.last_heard + self.silence();
        self.expires.map_or(silent, |at| at.min(silent))
    }

    /// Whether the credential has expired; if so, asks for close 4401.
    fn expired(&self) -> bool {
        let expired = self.expires.is_some_and(|at| at <= Instant::now());
        if expired {
            self.out.close(
                close::TOKEN_EXPIRED,
                "token expired: reconnect with a fresh one",
            );
        }
        expired
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
                data,
            } => {
                let message = parlor_engine::Message { body, data };
                self.send(&room_id, &client_id, message).await
            }
            ClientFrame::Leave { room_id } => self.leave(&room_id).await,
            ClientFrame::Read { room_id, seq } => self.read(&room_id, seq).await,
            ClientFrame::Signal {
                room_id,
                name,
                data,
            } => self.signal(&room_id, &name, data).await,
            ClientFrame::Ping => {
                self.out.frame(&ServerFrame::Pong).await;
            }
            ClientFrame::Refresh { token } => self.refresh(&token).await,
        }
    }

    /// Renews the credential in place: same user, new expiry. A token for
    /// another user, or an invalid one, is refused and the old expiry stands.
    async fn refresh(&mut self, token: &str) {
        match self.state.auth.authenticate(token).await {
            Ok(principal) if principal.user == self.principal.user => {
                self.expires = deadline_of(&principal);
                let expires_at = principal.expires_at.map(|t| t.to_string());
                self.principal = principal;
                self.out.frame(&ServerFrame::Refreshed { expires_at }).await;
            }
            Ok(_) => {
                let err = Error::new(
                    ErrorKind::Unauthenticated,
                    "the refresh token is for another user",
                );
                self.out.error(&err, None, None, None).await;
            }
            Err(err) => {
                self.out.error(&err, None, None, None).await;
            }
        }
    }

    async fn join(&mut self, ticket: &str, after_seq: Option<u64>) {
        let state = &self.state;
        match state
            .engine
            .commit(&self.principal, ticket, after_seq)
            .await
        {
            Ok(membership) => {
                let (joined, entries, guard) = membership.into_parts();
                // Joining a room this connection is in again re-subscribes:
                // the writer's new stream replaces the old one (same seat).
                let generation = self.joins;
                self.joins += 1;
                let frame = text(&ServerFrame::joined(&joined));
                self.out
                    .push(Outgoing::Follow(frame, Box::new(entries), generation))
                    .await;
                self.rooms.insert(joined.room_id.clone(), generation, guard);
            }
            Err(err) => {
                self.out.error(&err, None, None, Some(ticket)).await;
            }
        }
    }

    /// Queues the send in the engine and reads on: sends of one connection
    /// are pipelined — queued in order, stored together, answered in order.
    async fn send(&mut self, room_id: &str, client_id: &str, message: parlor_engine::Message) {
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(answer) = self.in_flight.next().await {
                self.answer(answer).await;
            }
        }
        let started = Instant::now();
        let queued = match RoomId::new(room_id) {
            Err(err) => Err(err),
            Ok(room) => {
                self.state
                    .engine
                    .submit(&self.principal, &room, client_id, message)
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
            Some((_, guard)) => {
                // No entry of the room may follow `left`.
                let (done, unfollowed) = oneshot::channel();
                if self.out.push(Outgoing::Unfollow(room, done)).await {
                    let _ = unfollowed.await;
                }
                if let Err(err) = guard.leave().await {
                    tracing::warn!(code = err.code(), "leave was not confirmed");
                }
                self.out
                    .frame(&ServerFrame::Left {
                        room_id,
                        reason: None,
                    })
                    .await;
            }
            None => {
                self.out
                    .error(&ErrorKind::NotAMember.into(), Some(room_id), None, None)
                    .await;
            }
        }
    }

    /// Raises the read marker of `room_id` to `seq`; answers `read_state`,
    /// or an error frame naming the room.
    async fn read(&mut self, room_id: &str, seq: Seq) {
        let marked = match RoomId::new(room_id) {
            Err(err) => Err(err),
            Ok(room) => self
                .state
                .engine
                .mark_read(&self.principal, &room, seq)
                .await
                .map(|read| (room, read)),
        };
        match marked {
            Ok((room, read)) => {
                let frame = ServerFrame::ReadState(ReadStateJson::new(&room, &read));
                self.out.frame(&frame).await;
            }
            Err(err) => {
                self.out.error(&err, Some(room_id), None, None).await;
            }
        }
    }

    /// Sends a signal; only a refusal is answered (an `error` frame with
    /// the room id): a signal is momentary, and its sender does not get it
    /// back.
    async fn signal(&mut self, room_id: &str, name: &str, data: Option<Data>) {
        let sent = match RoomId::new(room_id) {
            Err(err) => Err(err),
            Ok(room) => {
                self.state
                    .engine
                    .signal(&self.principal, &room, name, data)
                    .await
            }
        };
        if let Err(err) = sent {
            self.out.error(&err, Some(room_id), None, None).await;
        }
    }

    /// Drops the seats of the rooms whose streams the writer ended as a
    /// loss (retention overtook them): each goes to grace, unless the room
    /// was joined again since (a newer generation holds it).
    fn release_lost(&mut self) {
        for (room_id, generation) in self.out.closer.lost.take() {
            if self.rooms.generation(&room_id) == Some(generation) {
                tracing::debug!(room = %room_id, user = %self.principal.user, "stream overtaken by retention: seat lost");
                self.rooms.remove(&room_id);
            }
        }
    }

    async fn end(self, ending: Ending) {
        // The writer stops once the queue it reads is gone (after what is
        // queued, or at once if a close was asked for).
        drop(self.out);
        for (_, _, guard) in self.rooms.0 {
            match ending {
                Ending::Left => {
                    if let Err(err) = guard.leave().await {
                        tracing::warn!(code = err.code(), "leave on close was not confirmed");
                    }
                }
                Ending::Lost => drop(guard),
            }
        }
    }
}

#[cfg(test)]
mod tests;
