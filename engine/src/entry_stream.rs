//! [`EntryStream`]: a room's entries after a point — backlog from storage,
//! then live — each exactly once, in seq order, with no gap at the seam.
//!
//! The stream subscribes to the live feed *before* it learns where the
//! backlog ends, so nothing can fall between the two. It then keeps one
//! number, `delivered`: a live entry at or below it is a duplicate and is
//! skipped; one above `delivered + 1` reveals a gap (a lagging feed, or a
//! bus that lost or reordered something) and sends the stream back to storage
//! until it has caught up. A feed the bus closed is replaced, and storage
//! read to its end. Storage is the truth; the live feed is a shortcut.
//!
//! Across nodes, entries arrive out of order as a matter of course: node B
//! publishes seq 11 to its own subscribers before seq 10, stored by node A a
//! moment earlier, arrives through Redis. So an entry ahead of the next one
//! waits a little (`reorder_wait`) for the ones before it; only a gap that
//! outlasts the wait costs a read — not one read per subscriber per
//! reordering.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::{
    sync::{
        broadcast::error::{RecvError, TryRecvError},
        watch,
    },
    time::Instant,
};

use crate::{
    entry::{Entry, LeaveReason, MAX_HISTORY_LIMIT, Seq, SeqRange},
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    notice::Notice,
    ports::{Bus, LiveEntries, LiveNotices, Store},
    seat_ledger::SeatEnd,
    stats::GaugeGuard,
};

/// What a live stream hands out next: an entry of the log, or a notice
/// (never stored, no seq).
#[derive(Debug, Clone)]
pub enum Live {
    /// The next entry, in seq order.
    Entry(Arc<Entry>),
    /// A notice about another member (a read receipt), as it came.
    Notice(Arc<Notice>),
}

/// One subscriber's view of a room: its log, gap-free (see the module
/// docs), and the notices of the room's other members.
pub struct EntryStream {
    entries: Entries,
    notices: Notices,
}

/// A room's notices as one subscriber takes them.
struct Notices {
    feed: LiveNotices,
    feed_room: RoomId,
    /// Whose stream: their own notices are not handed back to them.
    user: UserId,
}

impl Notices {
    /// What one notice received means for the stream: one to hand out, or
    /// none (its own, or the feed lagged or was replaced).
    fn take(&mut self, received: Result<Arc<Notice>, RecvError>, bus: &dyn Bus) -> Option<Live> {
        match received {
            Ok(notice) if notice.sender != self.user => Some(Live::Notice(notice)),
            Ok(_) | Err(RecvError::Lagged(_)) => None,
            // The bus replaced its feeds (a Redis bus that lost its
            // connection): notices are momentary, take a new feed.
            Err(RecvError::Closed) => {
                self.feed = bus.subscribe_notices(&self.feed_room);
                None
            }
        }
    }
}

impl EntryStream {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        room_id: RoomId,
        user: UserId,
        live: LiveEntries,
        after: Seq,
        stored_up_to: Seq,
        reorder_wait: Duration,
        ended: watch::Receiver<Option<SeatEnd>>,
        subscriber: GaugeGuard,
    ) -> Self {
        let notices = Notices {
            feed: bus.subscribe_notices(&room_id),
            feed_room: room_id.clone(),
            user,
        };
        EntryStream {
            entries: Entries::new(
                store,
                bus,
                room_id,
                live,
                after,
                stored_up_to,
                reorder_wait,
                ended,
                subscriber,
            ),
            notices,
        }
    }

    /// The room this stream follows.
    pub fn room_id(&self) -> &RoomId {
        &self.entries.room_id
    }

    /// The seq of the last entry handed out (or the join point).
    pub fn delivered(&self) -> Seq {
        self.entries.delivered
    }

    /// The next entry (notices are skipped). Cancel-safe: dropping the
    /// future loses nothing.
    ///
    /// Errors (each ends the stream): after the user left the room from
    /// anywhere, `NOT_A_MEMBER`; after a kick or a ban, `KICKED`; after
    /// the room closed, `ROOM_CLOSED`; when entries it had yet to deliver
    /// were pruned by retention, `HISTORY_PRUNED`; storage errors.
    pub async fn next(&mut self) -> Result<Arc<Entry>> {
        match self.entries.next(None).await? {
            Live::Entry(entry) => Ok(entry),
            Live::Notice(_) => unreachable!("no notices were asked for"),
        }
    }

    /// The next entry if one is ready now, without waiting and without
    /// reading storage: `None` when the stream would have to wait (or read
    /// a gap from storage first: [`next_live`](Self::next_live) does).
    /// Errors as [`next`](Self::next), the storage ones aside. A writer
    /// that has just taken an entry asks this for more before it writes,
    /// at no cost when there is none.
    pub fn ready(&mut self) -> Option<Result<Live>> {
        self.entries.ready()
    }

    /// The next entry or notice. Notices are taken only while the stream
    /// waits for live entries — never in the middle of a catch-up read,
    /// which a stream of notices would otherwise keep starting over.
    /// Cancel-safe. Errors as [`next`](Self::next).
    pub async fn next_live(&mut self) -> Result<Live> {
        self.entries.next(Some(&mut self.notices)).await
    }
}

/// How far the stream must read storage before it trusts the live feed.
#[derive(Debug, Clone, Copy)]
enum CatchUp {
    /// Up to and including this seq.
    UpTo(Seq),
    /// Until storage has nothing more (the feed lagged; we don't know how far).
    Exhaust,
}

/// One subscriber's gap-free view of a room log.
struct Entries {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    room_id: RoomId,
    live: LiveEntries,
    delivered: Seq,
    catch_up: Option<CatchUp>,
    backlog: VecDeque<Arc<Entry>>,
    /// Live entries ahead of the next one, waiting for the gap to fill.
    ahead: BTreeMap<Seq, Arc<Entry>>,
    /// When the oldest of them stops waiting and storage is read instead.
    ahead_until: Option<Instant>,
    reorder_wait: Duration,
    /// Set once the seat was taken away (a leave of the room from anywhere, a
    /// kick, a close).
    ended: watch::Receiver<Option<SeatEnd>>,
    /// The bus closed the live feed: a new one is taken, then storage read.
    feed_closed: bool,
    _subscriber: GaugeGuard,
}

impl Entries {
    #[allow(clippy::too_many_arguments)]
    fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        room_id: RoomId,
        live: LiveEntries,
        after: Seq,
        stored_up_to: Seq,
        reorder_wait: Duration,
        ended: watch::Receiver<Option<SeatEnd>>,
        subscriber: GaugeGuard,
    ) -> Self {
        Entries {
            store,
            bus,
            room_id,
            live,
            delivered: after,
            catch_up: (stored_up_to > after).then_some(CatchUp::UpTo(stored_up_to)),
            backlog: VecDeque::new(),
            ahead: BTreeMap::new(),
            ahead_until: None,
            reorder_wait,
            ended,
            feed_closed: false,
            _subscriber: subscriber,
        }
    }

    /// The next entry, or with `notices` a notice while it waits for one
    /// (see [`EntryStream::next_live`]).
    async fn next(&mut self, mut notices: Option<&mut Notices>) -> Result<Live> {
        loop {
            if let Some(ready) = self.ready() {
                return ready;
            }
            // The bus dropped the feed (a Redis bus does when it loses its
            // connection, since whatever was published meanwhile never
            // reached it): take a new feed, then read storage until it has
            // nothing more.
            if self.feed_closed {
                self.live = self.bus.subscribe(&self.room_id).await;
                self.feed_closed = false;
                self.clear_ahead();
                self.catch_up = Some(CatchUp::Exhaust);
                continue;
            }
            if let Some(catch_up) = self.catch_up {
                self.read_backlog(catch_up).await?;
                continue;
            }
            match self.wait(notices.as_deref_mut()).await? {
                Woke::Live(received) => {
                    if let Some(entry) = self.take(received) {
                        return Ok(Live::Entry(entry));
                    }
                }
                Woke::Notice(live) => return Ok(live),
                Woke::Again => {}
            }
        }
    }

    /// The next entry, or the seat's end, if ready now: from the backlog
    /// read, the entries that came early, or the live feed — without
    /// reading storage and without a wait. Why: in a fan-out every
    /// subscriber takes every entry, and a wait registers (then drops) a
    /// waker on four sources, which in a room of thousands was a large
    /// share of the cost; most entries are taken here instead.
    fn ready(&mut self) -> Option<Result<Live>> {
        loop {
            if let Some(end) = *self.ended.borrow() {
                return Some(Err(ended_because(end)));
            }
            if self.ended.has_changed().is_err() {
                // The seat itself is gone: nothing more is ours.
                return Some(Err(ended_because(SeatEnd::Left)));
            }
            if let Some(entry) = self.backlog.pop_front() {
                if entry.seq > self.delivered {
                    self.delivered = entry.seq;
                    return Some(Ok(Live::Entry(entry)));
                }
                continue;
            }
            if self.catch_up.is_some() || self.feed_closed {
                return None;
            }
            if let Some(entry) = self.next_ahead() {
                return Some(Ok(Live::Entry(entry)));
            }
            let received = match self.live.try_recv() {
                Ok(entry) => Ok(entry),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            if let Some(entry) = self.take(received) {
                return Some(Ok(Live::Entry(entry)));
            }
        }
    }

    /// What one entry received from the live feed means: the entry to hand
    /// out next, or none (a duplicate skipped; one ahead held back for the
    /// gap to fill; a lag, a gap too wide or a closed feed that sends the
    /// stream to storage).
    fn take(&mut self, received: Result<Arc<Entry>, RecvError>) -> Option<Arc<Entry>> {
        match received {
            Ok(entry) if entry.seq <= self.delivered => None,
            Ok(entry) if entry.seq == self.delivered + 1 => {
                self.delivered = entry.seq;
                Some(entry)
            }
            Ok(entry) if self.ahead.len() < MAX_AHEAD => {
                self.ahead_until
                    .get_or_insert_with(|| Instant::now() + self.reorder_wait);
                self.ahead.insert(entry.seq, entry);
                None
            }
            Ok(entry) => {
                self.clear_ahead();
                self.catch_up = Some(CatchUp::UpTo(entry.seq));
                None
            }
            Err(RecvError::Lagged(_)) => {
                self.clear_ahead();
                self.catch_up = Some(CatchUp::Exhaust);
                None
            }
            Err(RecvError::Closed) => {
                self.feed_closed = true;
                None
            }
        }
    }

    /// Waits for the live feed, the seat's end, a notice (with `notices`)
    /// or the end of a reordering wait, whichever comes first.
    ///
    /// Errors: `NOT_A_MEMBER` when the seat itself is gone.
    async fn wait(&mut self, mut notices: Option<&mut Notices>) -> Result<Woke> {
        tokio::select! {
            biased;
            changed = self.ended.changed() => {
                if changed.is_err() {
                    // The seat itself is gone: nothing more is ours.
                    return Err(ended_because(SeatEnd::Left));
                }
                Ok(Woke::Again)
            }
            received = self.live.recv() => Ok(Woke::Live(received)),
            notice = next_notice(notices.as_deref_mut()) => {
                Ok(notices
                    .and_then(|n| n.take(notice, self.bus.as_ref()))
                    .map_or(Woke::Again, Woke::Notice))
            }
            () = wait_until(self.ahead_until) => {
                // The gap did not fill: storage has everything up to the
                // newest entry waiting (it was stored before published).
                let newest = self.ahead.last_key_value().map_or(self.delivered, |(s, _)| *s);
                self.clear_ahead();
                self.catch_up = Some(CatchUp::UpTo(newest));
                Ok(Woke::Again)
            }
        }
    }

    /// The next entry if it already waits among those that came early.
    fn next_ahead(&mut self) -> Option<Arc<Entry>> {
        while let Some(entry) = self.ahead.first_entry() {
            let seq = *entry.key();
            if seq > self.delivered + 1 {
                return None;
            }
            let entry = entry.remove();
            if self.ahead.is_empty() {
                self.ahead_until = None;
            }
            if seq == self.delivered + 1 {
                self.delivered = seq;
                return Some(entry);
            }
        }
        None
    }

    fn clear_ahead(&mut self) {
        self.ahead.clear();
        self.ahead_until = None;
    }

    async fn read_backlog(&mut self, catch_up: CatchUp) -> Result<()> {
        let before = match catch_up {
            CatchUp::UpTo(seq) if seq <= self.delivered => {
                self.catch_up = None;
                return Ok(());
            }
            CatchUp::UpTo(seq) => Some(seq + 1),
            CatchUp::Exhaust => None,
        };
        let range = SeqRange {
            after: Some(self.delivered),
            before,
            limit: MAX_HISTORY_LIMIT,
        };
        let page = self.store.entries(&self.room_id, range).await?;
        if page.first().is_none_or(|e| e.seq > self.delivered + 1) {
            // The next entry is not where it should be (or nothing came
            // after a lag): retention may have pruned what this stream had
            // yet to deliver. The room's row says where its log starts.
            match self.store.room(&self.room_id).await? {
                // Purged: the seat's end (`ROOM_CLOSED`) is on its way.
                None => return Err(ErrorKind::RoomClosed.into()),
                // It cannot go on without a gap, so it ends, and a join
                // with `after_seq` tells the client where the log starts.
                Some(row) if row.first_seq > self.delivered + 1 => {
                    return Err(ErrorKind::HistoryPruned.into());
                }
                // Nothing missing: a lag with nothing new.
                Some(_) if page.is_empty() && matches!(catch_up, CatchUp::Exhaust) => {
                    self.catch_up = None;
                    return Ok(());
                }
                // (Never expected: entries published but not yet readable.
                // Read again shortly rather than skip them.)
                Some(_) if page.is_empty() => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        if page.len() < MAX_HISTORY_LIMIT as usize {
            self.catch_up = None;
        }
        debug_assert!(
            page.first().is_none_or(|e| e.seq == self.delivered + 1)
                && page.windows(2).all(|w| w[1].seq == w[0].seq + 1),
            "storage returned a log with a gap"
        );
        self.backlog.extend(page.into_iter().map(Arc::new));
        Ok(())
    }
}

/// What ended a [`Entries::wait`].
enum Woke {
    /// The live feed's next entry (or its lag or end).
    Live(Result<Arc<Entry>, RecvError>),
    /// A notice to hand out.
    Notice(Live),
    /// Something to look at again (the seat's state, a reordering wait
    /// that ended, a notice not handed out).
    Again,
}

/// Entries held for reordering at most; beyond it storage is read at once.
const MAX_AHEAD: usize = 256;

/// The next notice of `notices`, or never without them.
async fn next_notice(notices: Option<&mut Notices>) -> Result<Arc<Notice>, RecvError> {
    match notices {
        Some(n) => n.feed.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves at `deadline`, or never without one.
async fn wait_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl std::fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryStream")
            .field("room_id", self.room_id())
            .field("delivered", &self.delivered())
            .finish()
    }
}

/// The error that ends a stream whose seat was taken away.
fn ended_because(end: SeatEnd) -> Error {
    match end {
        SeatEnd::Left => Error::new(ErrorKind::NotAMember, "you left this room"),
        SeatEnd::TakenAway(LeaveReason::Kicked) => ErrorKind::Kicked.into(),
        SeatEnd::TakenAway(LeaveReason::RoomClosed) => ErrorKind::RoomClosed.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        entry::NewEntry,
        ids::UserId,
        ports::{InProcessBus, Store},
        room::StoredRoom,
        stats::Gauge,
        testkit::MemoryStore,
    };

    struct Setup {
        store: Arc<MemoryStore>,
        bus: Arc<InProcessBus>,
        stream: EntryStream,
        entries: Vec<Arc<Entry>>,
        _seat: watch::Sender<Option<SeatEnd>>,
    }

    /// A room with seqs 1..=n stored, a bus, and a stream after seq 1.
    async fn setup(n: u64) -> Setup {
        let store = Arc::new(MemoryStore::default());
        let room = RoomId::new("r").unwrap();
        store
            .create_room(&StoredRoom {
                id: room.clone(),
                capacity: 10,
                title: None,
                last_seq: 0,
                owner: None,
                private: false,
                closed: false,
                first_seq: 1,
                retention: None,
            })
            .await
            .unwrap();
        let user = UserId::new("ann").unwrap();
        let batch: Vec<_> = (1..=n)
            .map(|i| NewEntry::text(room.clone(), user.clone(), &format!("c{i}"), "hi"))
            .collect();
        store.append(&batch).await.unwrap();
        let entries: Vec<_> = store.log(&room).into_iter().map(Arc::new).collect();
        let bus = Arc::new(InProcessBus::new(64));
        let live = bus.subscribe(&room).await;
        let (seat, ended) = watch::channel(None);
        let stream = EntryStream::new(
            Arc::clone(&store) as Arc<dyn Store>,
            Arc::clone(&bus) as Arc<dyn Bus>,
            room,
            user,
            live,
            1,
            1,
            Duration::from_millis(100),
            ended,
            Gauge::default().enter(),
        );
        Setup {
            store,
            bus,
            stream,
            entries,
            _seat: seat,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn entries_that_come_early_wait_for_their_turn_without_a_read() {
        let Setup {
            store,
            bus,
            mut stream,
            entries: e,
            _seat,
            ..
        } = setup(4).await;
        let room = stream.room_id().clone();
        store.set_unavailable(true); // any read would fail the stream
        bus.publish(&room, &[Arc::clone(&e[3]), Arc::clone(&e[2])])
            .await;
        tokio::time::advance(Duration::from_millis(50)).await;
        bus.publish(&room, &[Arc::clone(&e[1])]).await;
        let seqs = [
            stream.next().await.unwrap().seq,
            stream.next().await.unwrap().seq,
            stream.next().await.unwrap().seq,
        ];
        assert_eq!(seqs, [2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_that_outlasts_the_wait_is_read_from_storage() {
        let Setup {
            bus,
            mut stream,
            entries: e,
            _seat,
            ..
        } = setup(5).await;
        let room = stream.room_id().clone();
        // Seqs 2 and 3 were lost on the way; 4 and 5 arrive.
        bus.publish(&room, &[Arc::clone(&e[3]), Arc::clone(&e[4])])
            .await;
        let started = Instant::now();
        let mut seqs = Vec::new();
        for _ in 0..4 {
            seqs.push(stream.next().await.unwrap().seq);
        }
        assert_eq!(seqs, [2, 3, 4, 5], "no gap, no duplicate");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "waited first"
        );
        assert!(stream.entries.ahead.is_empty());
    }
}
