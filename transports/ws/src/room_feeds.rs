//! [`RoomFeeds`]: the entry streams of the rooms one connection is in,
//! polled by the connection's writer itself.
//!
//! Why not a task per room feeding a queue: each delivery then woke two
//! tasks (the room's forwarder, then the writer) and crossed a queue; in a
//! fan-out to a thousand sockets that hop was a thousand extra wake-ups per
//! entry. Here the writer takes an entry when the socket can take it, and
//! entries not yet taken wait in the room's live feed (or, past it, in
//! storage, which the stream reads by itself).
//!
//! A feed follows [`EntryStream::next_live`]: the room's entries and the
//! notices of its other members (read receipts). Between entries the
//! writer holds the stream itself, and asks it for what is ready without a
//! wait ([`EntryStream::ready`]); only when the writer has nothing else to
//! do does the stream start a wait, with the task's waker. Each feed carries the
//! generation the reader gave its `join`, so that the end of a stream the
//! reader has since replaced is not taken for the end of the new one.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use parlor_engine::{EntryStream, Live, Result, RoomId};

/// A stream's wait for its next entry or notice, which hands the stream
/// back with it.
type Wait = Pin<Box<dyn Future<Output = (Box<EntryStream>, Result<Live>)> + Send>>;

/// Which `join` of a room on this connection a feed belongs to.
pub(crate) type Generation = u64;

/// What a feed yields next: its room, its generation, and the next entry or
/// notice (or the error that ends the stream).
pub(crate) type Next = (RoomId, Generation, Result<Live>);

/// One room's stream: in hand between entries, or inside its wait.
enum Feed {
    Idle(Box<EntryStream>),
    Waiting(Wait),
    /// Only while it moves from one to the other.
    Moving,
}

impl Feed {
    /// The next entry or notice if ready: an idle stream is asked without
    /// waiting first ([`EntryStream::ready`]), and only with `wait` does it
    /// start a wait, polled with `cx`.
    fn poll(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<Result<Live>> {
        if let Feed::Idle(entries) = self {
            if let Some(next) = entries.ready() {
                return Poll::Ready(next);
            }
            if !wait {
                return Poll::Pending;
            }
            let Feed::Idle(mut entries) = std::mem::replace(self, Feed::Moving) else {
                unreachable!("idle above")
            };
            // `next_live` is cancel-safe, but its future is kept until it
            // resolves.
            *self = Feed::Waiting(Box::pin(async move {
                let next = entries.next_live().await;
                (entries, next)
            }));
        }
        let Feed::Waiting(waiting) = self else {
            unreachable!("waiting by now")
        };
        match waiting.as_mut().poll(cx) {
            Poll::Ready((entries, next)) => {
                *self = Feed::Idle(entries);
                Poll::Ready(next)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The rooms' streams, polled in turn so that a busy room cannot starve a
/// quiet one.
#[derive(Default)]
pub(crate) struct RoomFeeds {
    feeds: Vec<(RoomId, Generation, Feed)>,
    /// Where the next poll starts.
    turn: usize,
}

impl RoomFeeds {
    /// Follows a room's stream; it replaces one this connection had for the
    /// room (a second `join` re-subscribes).
    pub(crate) fn follow(&mut self, entries: Box<EntryStream>, generation: Generation) {
        let room_id = entries.room_id().clone();
        self.unfollow(&room_id);
        // Most connections follow one room: no spare slots.
        self.feeds.reserve_exact(1);
        self.feeds.push((room_id, generation, Feed::Idle(entries)));
    }

    /// Stops following `room_id`.
    pub(crate) fn unfollow(&mut self, room_id: &RoomId) {
        self.feeds.retain(|(room, _, _)| room != room_id);
    }

    /// The next entry or notice (or the error that ends a stream) of any
    /// room; with `wait`, streams with nothing ready start waiting on `cx`.
    fn poll_next(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<Next> {
        let n = self.feeds.len();
        for i in 0..n {
            let at = (self.turn + i) % n;
            let (room_id, generation, feed) = &mut self.feeds[at];
            if let Poll::Ready(next) = feed.poll(cx, wait) {
                self.turn = at + 1;
                return Poll::Ready((room_id.clone(), *generation, next));
            }
        }
        Poll::Pending
    }

    /// The next entry or notice of any room (or the error that ends its
    /// stream); pending while no room is followed.
    pub(crate) async fn next(&mut self) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx, true)).await
    }

    /// An entry or notice that is ready now, without waiting: a stream in
    /// hand is asked without a wait of its own, one already waiting is
    /// polled. (What would make a feed ready later is noticed by the next
    /// [`next`](Self::next), which polls every feed with the task's waker.)
    pub(crate) fn ready(&mut self) -> Option<Next> {
        match self.poll_next(&mut Context::from_waker(Waker::noop()), false) {
            Poll::Ready(next) => Some(next),
            Poll::Pending => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use parlor_engine::{
        ChatEngine, Engine, EngineConfig, EntryKind, Principal, RoomSpec, SeatGuard, UserId,
        testkit::MemoryStore,
    };

    use super::*;

    async fn join(engine: &Engine, user: &UserId, room: &str) -> (EntryStream, SeatGuard) {
        let room = RoomId::new(room).unwrap();
        let ticket = engine
            .reserve(
                &Principal::new(user.clone()),
                &room,
                Some(RoomSpec::with_capacity(4)),
            )
            .await
            .unwrap()
            .ticket;
        let (_, entries, seat) = engine
            .commit(&Principal::new(user.clone()), &ticket, None)
            .await
            .unwrap()
            .into_parts();
        (entries, seat)
    }

    /// The texts `feeds` yields within a moment, as (room, body).
    async fn texts(feeds: &mut RoomFeeds) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok((room, _, next)) =
            tokio::time::timeout(Duration::from_millis(200), feeds.next()).await
        {
            let Live::Entry(entry) = next.unwrap() else {
                continue;
            };
            if entry.kind == EntryKind::Text {
                out.push((room.to_string(), entry.body.clone().unwrap_or_default()));
            }
        }
        out
    }

    #[tokio::test]
    async fn feeds_follow_rooms_in_turn_and_stop_when_told() {
        let engine = Engine::builder(Arc::new(MemoryStore::default()))
            .config(EngineConfig::default())
            .start()
            .await
            .unwrap();
        let ann = UserId::new("ann").unwrap();
        let mut feeds = RoomFeeds::default();
        let mut seats = Vec::new();
        for room in ["a", "b"] {
            let (entries, seat) = join(&engine, &ann, room).await;
            feeds.follow(Box::new(entries), 0);
            seats.push(seat);
        }
        let (a, b) = (RoomId::new("a").unwrap(), RoomId::new("b").unwrap());
        for i in 0..20 {
            engine
                .send(
                    &Principal::new(ann.clone()),
                    &a,
                    &format!("a{i}"),
                    &format!("a{i}"),
                )
                .await
                .unwrap();
            engine
                .send(
                    &Principal::new(ann.clone()),
                    &b,
                    &format!("b{i}"),
                    &format!("b{i}"),
                )
                .await
                .unwrap();
        }
        let got = texts(&mut feeds).await;
        assert_eq!(got.len(), 40, "every entry once: {got:?}");
        for room in ["a", "b"] {
            let bodies: Vec<_> = got
                .iter()
                .filter(|(r, _)| r == room)
                .map(|(_, b)| b.clone())
                .collect();
            let want: Vec<_> = (0..20).map(|i| format!("{room}{i}")).collect();
            assert_eq!(bodies, want, "room {room} in seq order");
        }
        // Taken in turn: room b is not left waiting until a is drained.
        let first_b = got.iter().position(|(r, _)| r == "b").unwrap();
        assert!(first_b < 20, "b's first entry came at {first_b}");

        // Following a room again replaces its stream: no entry twice.
        let (again, seat) = join(&engine, &ann, "a").await;
        feeds.follow(Box::new(again), 1);
        seats.push(seat);
        engine
            .send(&Principal::new(ann.clone()), &a, "a-late", "a-late")
            .await
            .unwrap();
        assert_eq!(texts(&mut feeds).await, [("a".into(), "a-late".into())]);

        feeds.unfollow(&a);
        engine
            .send(&Principal::new(ann.clone()), &a, "a-gone", "a-gone")
            .await
            .unwrap();
        engine
            .send(&Principal::new(ann.clone()), &b, "b-last", "b-last")
            .await
            .unwrap();
        assert_eq!(texts(&mut feeds).await, [("b".into(), "b-last".into())]);
    }
}
