//! The socket's writer task (docs/contract.md §5): the only writer of a connection's
//! socket. It writes, in turn, what the reader queues (welcome, joined,
//! acks, errors, left: [`Outgoing`]) and the entries and read receipts of
//! the rooms the connection is in ([`RoomFeeds`]), and on a close request
//! the close frame.
//!
//! A room's stream can end while the socket stays: a leave from elsewhere,
//! a kick or a close (the writer says `left`), or retention pruning entries
//! the stream had yet to deliver (`HISTORY_PRUNED`, docs/contract.md §2
//! "Retention": an error frame with `room_id`). The latter is a loss of the
//! room on this socket: the writer tells the reader ([`LostRooms`]), which
//! drops the room's seat guard, so the seat goes to grace until the client
//! joins again with `after_seq`.
//!
//! A socket write that cannot proceed for `slow_client_patience` means the
//! client stopped reading: the connection closes with 4409, and the client,
//! which loses nothing, resumes after its last seq.
//!
//! It also sends a ping frame every `ping_interval` (one timer, re-armed as
//! it fires): the peer's WebSocket stack answers with a pong, which the
//! reader counts as a sign of life, and proxies see traffic.
//!
//! The writing itself — a burst of what is ready, one flush, the patience,
//! the last frames and the close — is `parlor_wire::burst`, shared with the
//! GraphQL socket. The writer takes any [`Sink`] of messages: the socket's
//! half in production, an in-memory channel in the session's tests.

use std::sync::{Arc, Mutex};

use axum::{
    body::Bytes,
    extract::ws::{CloseFrame, Message, Utf8Bytes},
};
use futures_util::Sink;
use parlor_engine::{EntryStream, Error, ErrorKind, Live, RoomId};
use parlor_wire::{
    NoticeJson,
    burst::{self, Burst, Ready},
};
use tokio::{
    sync::{Notify, mpsc, oneshot, watch},
    time::{Instant, sleep},
};

use crate::{
    room_feeds::{Generation, RoomFeeds},
    state::WsState,
    wire::ServerFrame,
};

/// Close codes of docs/contract.md §5.
pub(crate) mod close {
    pub(crate) const NORMAL: u16 = 1000;
    pub(crate) const GOING_AWAY: u16 = 1001;
    pub(crate) const PROTOCOL: u16 = 1002;
    pub(crate) const INVALID_DATA: u16 = 1007;
    pub(crate) const TOO_BIG: u16 = 1009;
    pub(crate) const INTERNAL: u16 = 1011;
    pub(crate) const NO_HELLO: u16 = 4401;
    /// The credential expired without a `refresh` (same code as no hello:
    /// the connection is no longer authenticated).
    pub(crate) const TOKEN_EXPIRED: u16 = 4401;
    pub(crate) const TOO_SLOW: u16 = 4409;
}

/// What the reader hands the writer, in order.
pub(crate) enum Outgoing {
    Frame(Message),
    /// The `joined` frame, then the room's entries, from the reader's join
    /// of this generation. (Boxed: the queue's slots are as large as its
    /// largest item.)
    Follow(Message, Box<EntryStream>, Generation),
    /// No more of the room's entries; answered once none will follow.
    Unfollow(RoomId, oneshot::Sender<()>),
}

/// The rooms whose streams the writer saw end as a loss (`HISTORY_PRUNED`),
/// for the reader to drop their seat guards: the writer notes them, the
/// reader takes them when notified. Bounded by the rooms joined: each
/// stream ends once.
#[derive(Default)]
pub(crate) struct LostRooms {
    rooms: Mutex<Vec<(RoomId, Generation)>>,
    /// Wakes the reader (a permit is kept if it is not waiting).
    pub(crate) notify: Notify,
}

impl LostRooms {
    fn note(&self, room_id: RoomId, generation: Generation) {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((room_id, generation));
        self.notify.notify_one();
    }

    /// The rooms lost since the last call.
    pub(crate) fn take(&self) -> Vec<(RoomId, Generation)> {
        std::mem::take(
            &mut *self
                .rooms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The "close now" switch: the first code asked for wins, and the writer
/// sends it. It also carries what the writer tells the reader back
/// ([`LostRooms`]).
#[derive(Clone)]
pub(crate) struct Closer {
    pub(crate) closing: Arc<watch::Sender<Option<(u16, &'static str)>>>,
    pub(crate) state: Arc<WsState>,
    pub(crate) lost: Arc<LostRooms>,
}

impl Closer {
    /// Asks the writer to close with `code` now; true for the first request
    /// (which wins).
    pub(crate) fn close(&self, code: u16, reason: &'static str) -> bool {
        self.closing.send_if_modified(|c| {
            let first = c.is_none();
            if first {
                *c = Some((code, reason));
            }
            first
        })
    }

    pub(crate) fn too_slow(&self) {
        if self.close(close::TOO_SLOW, "too slow: resume after your last seq") {
            self.state
                .too_slow_closes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub(crate) fn text(frame: &ServerFrame<'_>) -> Message {
    Message::Text(Utf8Bytes::from(frame.to_json()))
}

pub(crate) fn error_frame(
    err: &Error,
    room_id: Option<&str>,
    client_id: Option<&str>,
    ticket: Option<&str>,
) -> Message {
    text(&ServerFrame::Error {
        error: err.into(),
        room_id,
        client_id,
        ticket,
    })
}

/// The writer: the socket's only writer, of the queue and the rooms' feeds.
pub(crate) struct Writer<S> {
    sink: S,
    source: Source,
}

/// What the writer writes from: the reader's queue and the rooms' feeds.
struct Source {
    queue: mpsc::Receiver<Box<Outgoing>>,
    feeds: RoomFeeds,
    closer: Closer,
    /// Set when a feed failed: the burst in hand is written, then the
    /// connection closes with this.
    then_close: Option<(u16, &'static str)>,
}

impl<S> Writer<S>
where
    S: Sink<Message> + Unpin,
{
    pub(crate) fn new(sink: S, queue: mpsc::Receiver<Box<Outgoing>>, closer: Closer) -> Self {
        Writer {
            sink,
            source: Source {
                queue,
                feeds: RoomFeeds::default(),
                closer,
                then_close: None,
            },
        }
    }

    /// Writes until the queue closes (every reader handle dropped) or a
    /// close is asked for on `closing`, then closes the socket.
    pub(crate) async fn run(mut self, mut closing: watch::Receiver<Option<(u16, &'static str)>>) {
        let patience = self.source.closer.state.config.slow_client_patience;
        let every = self.source.closer.state.config.ping_interval;
        {
            // One wait for the close, not a new one per frame written.
            let closed = closing.changed();
            tokio::pin!(closed);
            let ping = sleep(every);
            tokio::pin!(ping);
            loop {
                let source = &mut self.source;
                let first = tokio::select! {
                    biased;
                    _ = &mut closed => break,
                    // Before the queue and the feeds: a busy socket is
                    // pinged too, so a client that only reads still answers
                    // with pongs the reader can see.
                    _ = &mut ping => {
                        ping.as_mut().reset(Instant::now() + every);
                        Some(Message::Ping(Bytes::new()))
                    }
                    item = source.queue.recv() => match item {
                        Some(item) => source.take(*item),
                        None => break,
                    },
                    (room_id, generation, next) = source.feeds.next() => source.entry(room_id, generation, next),
                };
                let Some(first) = first else { continue };
                let sink = &mut self.sink;
                // A failed feed ends the burst (the close follows); the
                // check comes after each look, so the first one is made.
                let mut looked = false;
                let more = || {
                    if looked && source.then_close.is_some() {
                        return Ready::Done;
                    }
                    looked = true;
                    source.ready()
                };
                tokio::select! {
                    biased;
                    _ = &mut closed => break,
                    // One flush for `first` and what else is ready (up to
                    // `burst::BURST` frames): a fan-out hands a connection
                    // several entries at once, and one write per frame made
                    // the send syscall the server's largest cost.
                    written = burst::write_burst(sink, patience, first, more) => match written {
                        Burst::Written => {}
                        Burst::Failed(_) => return,
                        // The client stopped reading.
                        Burst::Stalled => source.closer.too_slow(),
                    },
                }
                if let Some((code, reason)) = source.then_close.take() {
                    source.closer.close(code, reason);
                }
            }
        }
        let requested = *closing.borrow();
        // Boxed: the close path is rare, and an idle connection's writer
        // would otherwise carry its state.
        Box::pin(self.close(requested)).await;
    }

    async fn close(self, requested: Option<(u16, &'static str)>) {
        let Writer {
            mut sink,
            source: Source { mut queue, .. },
        } = self;
        // Take what is queued now, so that a reader waiting for an
        // `Unfollow` answer is released at once.
        queue.close();
        let mut queued = Vec::new();
        while let Ok(item) = queue.try_recv() {
            if let Outgoing::Frame(message) | Outgoing::Follow(message, _, _) = *item {
                queued.push(message);
            }
        }
        drop(queue);
        let Some((code, reason)) = requested else {
            return burst::finish(&mut sink, [], None).await;
        };
        // A slow client's backlog is dropped (it resumes from its seq); any
        // other close first delivers what was queued, such as the error
        // frame that explains it.
        if code == close::TOO_SLOW {
            queued.clear();
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        burst::finish(&mut sink, queued, Some(Message::Close(Some(frame)))).await;
    }
}

impl Source {
    /// Acts on a queued item; its frame, if it has one.
    fn take(&mut self, item: Outgoing) -> Option<Message> {
        match item {
            Outgoing::Frame(message) => Some(message),
            Outgoing::Follow(joined, entries, generation) => {
                self.feeds.follow(entries, generation);
                Some(joined)
            }
            Outgoing::Unfollow(room_id, done) => {
                self.feeds.unfollow(&room_id);
                let _ = done.send(());
                None
            }
        }
    }

    /// The frame for a feed's next entry or notice, or for the end of the
    /// feed; `None` for a notice this transport does not send.
    fn entry(
        &mut self,
        room_id: RoomId,
        generation: Generation,
        next: Result<Live, Error>,
    ) -> Option<Message> {
        match next {
            Ok(Live::Entry(entry)) => Some(Message::Text(self.closer.state.frames.entry(&entry))),
            Ok(Live::Notice(notice)) => {
                NoticeJson::from_notice(&notice).map(|json| text(&ServerFrame::from(json)))
            }
            Err(err) => {
                self.feeds.unfollow(&room_id);
                let reason = match err.kind() {
                    // The user left the room from elsewhere (another transport).
                    ErrorKind::NotAMember => Some(None),
                    ErrorKind::Kicked => Some(Some("kicked")),
                    ErrorKind::RoomClosed => Some(Some("room_closed")),
                    _ => None,
                };
                if let Some(reason) = reason {
                    Some(text(&ServerFrame::Left {
                        room_id: room_id.as_str(),
                        reason,
                    }))
                } else if err.kind() == ErrorKind::HistoryPruned {
                    // Retention overtook the stream: the room is lost on
                    // this socket (the seat goes to grace), the socket
                    // stays; the client joins again with `after_seq`.
                    let frame = error_frame(&err, Some(room_id.as_str()), None, None);
                    self.closer.lost.note(room_id, generation);
                    Some(frame)
                } else {
                    // Storage failed while catching up: close so the client
                    // resumes from its last seq once storage is back.
                    self.then_close = Some((close::INTERNAL, "storage unavailable, resume later"));
                    Some(error_frame(&err, None, None, None))
                }
            }
        }
    }

    /// What else is ready for the burst in hand: the queue first, then the
    /// feeds.
    fn ready(&mut self) -> Ready<Message> {
        match self.queue.try_recv() {
            Ok(item) => self.take(*item).map_or(Ready::Nothing, Ready::Frame),
            Err(_) => match self.feeds.ready() {
                Some((room_id, generation, next)) => self
                    .entry(room_id, generation, next)
                    .map_or(Ready::Nothing, Ready::Frame),
                None => Ready::Done,
            },
        }
    }
}
