//! The socket's writer task (docs/contract.md §5): the only writer of a connection's
//! socket. It writes, in turn, what the reader queues (welcome, joined,
//! acks, errors, left: [`Outgoing`]) and the entries of the rooms the
//! connection is in ([`RoomFeeds`]), and on a close request the close frame.
//!
//! A socket write that cannot proceed for `slow_client_patience` means the
//! client stopped reading: the connection closes with 4409, and the client,
//! which loses nothing, resumes after its last seq.
//!
//! It also sends a ping frame every `ping_interval` (one timer, re-armed as
//! it fires): the peer's WebSocket stack answers with a pong, which the
//! reader counts as a sign of life, and proxies see traffic.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket},
};
use futures_util::{SinkExt, stream::SplitSink};
use parlor_engine::{Entry, EntryStream, Error, ErrorKind, RoomId};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Duration, Instant, sleep, timeout},
};

use crate::{room_feeds::RoomFeeds, state::WsState, wire::ServerFrame};

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

/// Frames the writer takes from its queue and feeds for one flush.
const BURST: usize = 64;

/// How long the writer keeps trying to deliver a close frame to a client that
/// is not reading, before it drops the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the reader hands the writer, in order.
pub(crate) enum Outgoing {
    Frame(Message),
    /// The `joined` frame, then the room's entries. (Boxed: the queue's
    /// slots are as large as its largest item.)
    Follow(Message, Box<EntryStream>),
    /// No more of the room's entries; answered once none will follow.
    Unfollow(RoomId, oneshot::Sender<()>),
}

/// The "close now" switch: the first code asked for wins, and the writer
/// sends it.
#[derive(Clone)]
pub(crate) struct Closer {
    pub(crate) closing: Arc<watch::Sender<Option<(u16, &'static str)>>>,
    pub(crate) state: Arc<WsState>,
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
        code: err.code(),
        message: &err.client_message(),
        room_id,
        client_id,
        ticket,
    })
}

/// The writer: the socket's only writer, of the queue and the rooms' feeds.
pub(crate) struct Writer {
    sink: SplitSink<WebSocket, Message>,
    queue: mpsc::Receiver<Outgoing>,
    feeds: RoomFeeds,
    closer: Closer,
    /// Set when a feed failed: the burst in hand is written, then the
    /// connection closes with this.
    then_close: Option<(u16, &'static str)>,
}

impl Writer {
    pub(crate) fn new(
        sink: SplitSink<WebSocket, Message>,
        queue: mpsc::Receiver<Outgoing>,
        closer: Closer,
    ) -> Self {
        Writer {
            sink,
            queue,
            feeds: RoomFeeds::default(),
            closer,
            then_close: None,
        }
    }

    /// Writes until the queue closes (every reader handle dropped) or a
    /// close is asked for on `closing`, then closes the socket.
    pub(crate) async fn run(mut self, mut closing: watch::Receiver<Option<(u16, &'static str)>>) {
        let patience = self.closer.state.config.slow_client_patience;
        let every = self.closer.state.config.ping_interval;
        {
            // One wait for the close, not a new one per frame written.
            let closed = closing.changed();
            tokio::pin!(closed);
            let ping = sleep(every);
            tokio::pin!(ping);
            loop {
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
                    item = self.queue.recv() => match item {
                        Some(item) => self.take(item),
                        None => break,
                    },
                    (room_id, next) = self.feeds.next() => Some(self.entry(room_id, next)),
                };
                let Some(first) = first else { continue };
                tokio::select! {
                    biased;
                    _ = &mut closed => break,
                    // (The timer starts only if the write does not finish at
                    // once: `timeout` polls the write first.)
                    written = timeout(patience, self.write_burst(first)) => match written {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        // The client stopped reading.
                        Err(_) => self.closer.too_slow(),
                    },
                }
                if let Some((code, reason)) = self.then_close.take() {
                    self.closer.close(code, reason);
                }
            }
        }
        let requested = *closing.borrow();
        // Boxed: the close path is rare, and an idle connection's writer
        // would otherwise carry its state.
        Box::pin(self.close(requested)).await;
    }

    /// Acts on a queued item; its frame, if it has one.
    fn take(&mut self, item: Outgoing) -> Option<Message> {
        match item {
            Outgoing::Frame(message) => Some(message),
            Outgoing::Follow(joined, entries) => {
                self.feeds.follow(entries);
                Some(joined)
            }
            Outgoing::Unfollow(room_id, done) => {
                self.feeds.unfollow(&room_id);
                let _ = done.send(());
                None
            }
        }
    }

    /// The frame for a feed's next entry, or for the end of the feed.
    fn entry(&mut self, room_id: RoomId, next: Result<Arc<Entry>, Error>) -> Message {
        match next {
            Ok(entry) => Message::Text(self.closer.state.frames.entry(&entry)),
            Err(err) => {
                self.feeds.unfollow(&room_id);
                if err.kind() == ErrorKind::NotAMember {
                    // The user left the room from elsewhere (another transport).
                    text(&ServerFrame::Left {
                        room_id: room_id.as_str(),
                    })
                } else {
                    // Storage failed while catching up: close so the client
                    // resumes from its last seq once storage is back.
                    self.then_close = Some((close::INTERNAL, "storage unavailable, resume later"));
                    error_frame(&err, None, None, None)
                }
            }
        }
    }

    /// Writes `first` and what else is ready (up to [`BURST`] frames) with
    /// one flush. Why: a fan-out hands a connection several entries at once,
    /// and one write per frame made the send syscall the server's largest
    /// cost; an idle connection still gets each frame at once.
    async fn write_burst(&mut self, first: Message) -> Result<(), axum::Error> {
        self.sink.feed(first).await?;
        for _ in 1..BURST {
            let next = match self.queue.try_recv() {
                Ok(item) => self.take(item),
                Err(_) => match self.feeds.ready() {
                    Some((room_id, next)) => Some(self.entry(room_id, next)),
                    None => break,
                },
            };
            if let Some(message) = next {
                self.sink.feed(message).await?;
            }
            if self.then_close.is_some() {
                break;
            }
        }
        self.sink.flush().await
    }

    async fn close(self, requested: Option<(u16, &'static str)>) {
        let Writer {
            mut sink,
            mut queue,
            ..
        } = self;
        // Take what is queued now, so that a reader waiting for an
        // `Unfollow` answer is released at once.
        queue.close();
        let mut queued = Vec::new();
        while let Ok(item) = queue.try_recv() {
            if let Outgoing::Frame(message) | Outgoing::Follow(message, _) = item {
                queued.push(message);
            }
        }
        drop(queue);
        if let Some((code, reason)) = requested {
            // A slow client's backlog is dropped (it resumes from its seq); any
            // other close first delivers what was queued, such as the error
            // frame that explains it.
            if code != close::TOO_SLOW {
                for message in queued {
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
}
