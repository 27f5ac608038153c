//! [`RoomLog`]: the append path of one room — an inbox and the task that
//! drains it (group commit).
//!
//! Every entry of a room, text or membership, is queued here; a single task
//! per room takes everything waiting (up to `append_batch_max`), stores it in
//! **one** transaction, then advances `last_seq`, publishes the new entries
//! (or holds them briefly for the next commit: [`Unpublished`]) and acks each
//! sender. One writer per room means the store sees each room's
//! entries in queue order, and a queue drained in batches turns N waiting
//! senders into one commit. The task exists only while there is work: it
//! starts on the first push into an empty inbox and exits when the inbox is
//! empty, so an idle room costs no task.
//!
//! A failed transaction fails its text entries back (`UNAVAILABLE`: the
//! client retries with the same `client_id`) but keeps `join`/`leave` entries
//! at the head of the queue and retries them with backoff: the seat ledger has
//! already acted on them, and the log must follow.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
    time::Instant,
};

use crate::{
    engine::Inner,
    entry::{Entry, EntryKind, NewEntry, Seq},
    error::{Error, Result},
    ids::RoomId,
    live_room::LiveRoom,
    ports::Appended,
    stats::GaugeGuard,
    store_writer::Refused,
};

/// What an append answers: the stored entry, `None` for a membership entry
/// that changed nothing (the log already said it), or why it failed.
pub(crate) type Stored = Result<Option<Arc<Entry>>>;

/// Where the stored entry (or the failure) goes.
pub(crate) type AckSender = oneshot::Sender<Stored>;

/// One entry waiting to be appended.
pub(crate) struct AppendRequest {
    pub(crate) entry: NewEntry,
    pub(crate) ack: Option<AckSender>,
    /// Bounds a room's queued sends; released once the entry is stored.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<AppendRequest>,
    running: bool,
}

/// A room's append queue and its `last_seq`.
pub(crate) struct RoomLog {
    room_id: RoomId,
    inbox: Mutex<Inbox>,
    last_seq: AtomicU64,
    send_permits: Arc<Semaphore>,
}

impl RoomLog {
    pub(crate) fn new(room_id: RoomId, last_seq: Seq, queue: usize) -> Self {
        RoomLog {
            room_id,
            inbox: Mutex::new(Inbox::default()),
            last_seq: AtomicU64::new(last_seq),
            send_permits: Arc::new(Semaphore::new(queue.max(1))),
        }
    }

    /// The seq of the newest entry known durable.
    pub(crate) fn last_seq(&self) -> Seq {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Learns that storage holds entries up to `seq` (appended here or, in a
    /// cluster, by another node).
    pub(crate) fn observe(&self, seq: Seq) {
        self.last_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// Waits for room in the send queue.
    pub(crate) async fn send_permit(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.send_permits)
            .acquire_owned()
            .await
            .expect("the send semaphore is never closed")
    }

    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().expect("inbox lock")
    }

    /// Queues `request`; true when the caller must start the append task.
    pub(crate) fn push(&self, request: AppendRequest) -> bool {
        let mut inbox = self.inbox();
        inbox.queue.push_back(request);
        !std::mem::replace(&mut inbox.running, true)
    }

    /// True while requests wait for the next batch.
    fn has_waiting(&self) -> bool {
        !self.inbox().queue.is_empty()
    }

    pub(crate) fn is_idle(&self) -> bool {
        let inbox = self.inbox();
        !inbox.running && inbox.queue.is_empty()
    }

    /// Up to `max` waiting requests; `None` (and the task stops) when none wait.
    fn take_batch(&self, max: usize) -> Option<Vec<AppendRequest>> {
        let mut inbox = self.inbox();
        if inbox.queue.is_empty() {
            inbox.running = false;
            return None;
        }
        let n = inbox.queue.len().min(max);
        Some(inbox.queue.drain(..n).collect())
    }

    fn requeue_front(&self, requests: Vec<AppendRequest>) {
        let mut inbox = self.inbox();
        for request in requests.into_iter().rev() {
            inbox.queue.push_front(request);
        }
    }
}

/// The room's append task: drains the inbox in batches until it is empty.
pub(crate) async fn run(inner: Arc<Inner>, room: Arc<LiveRoom>, _task: GaugeGuard) {
    let mut backoff = Duration::from_millis(50);
    let mut unpublished = Unpublished::default();
    while let Some(batch) = room.log.take_batch(inner.config.append_batch_max) {
        let (entries, tails): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|r| (r.entry, (r.ack, r.permit)))
            .unzip();
        match inner.writer.append(entries).await {
            Ok(outcomes) => {
                backoff = Duration::from_millis(50);
                deliver(&inner, &room, outcomes, tails, &mut unpublished).await;
            }
            Err(Refused { error, entries }) => {
                tracing::debug!(room = %room.id, code = error.code(), batch = entries.len(), "append failed");
                unpublished.publish(&inner, &room).await;
                fail(&room, entries, tails, &error, &mut backoff).await;
            }
        }
    }
    unpublished.publish(&inner, &room).await;
    inner.directory.unload_if_idle(&room);
}

/// New entries that are stored but not yet published.
///
/// Why hold any: a burst of sends to a room spreads over a few commits (the
/// first commits alone while the rest arrive), and every publish wakes every
/// subscriber and costs each of their sockets a write. While more sends wait
/// to be stored, a room holds what it stored for up to
/// [`EngineConfig::publish_hold`](crate::EngineConfig::publish_hold), so the
/// burst reaches N subscribers with N socket writes, not N per commit. Acks
/// are sent at once: the entries are durable. A new subscriber misses
/// nothing held: it reads storage up to `last_seq`, which already counts them.
#[derive(Default)]
struct Unpublished {
    entries: Vec<Arc<Entry>>,
    /// When the oldest of them was stored.
    since: Option<Instant>,
}

impl Unpublished {
    /// Adds `fresh` and publishes everything held, unless the room may hold
    /// it for the next commit.
    async fn add(&mut self, fresh: Vec<Arc<Entry>>, inner: &Inner, room: &LiveRoom) {
        self.entries.extend(fresh);
        if self.entries.is_empty() {
            return;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= inner.config.publish_hold || !room.log.has_waiting() {
            self.publish(inner, room).await;
        }
    }

    /// Publishes everything held, in seq order.
    async fn publish(&mut self, inner: &Inner, room: &LiveRoom) {
        if !self.entries.is_empty() {
            inner.bus.publish(&room.log.room_id, &self.entries).await;
            self.entries.clear();
        }
        self.since = None;
    }
}

type Tail = (Option<AckSender>, Option<OwnedSemaphorePermit>);

async fn deliver(
    inner: &Inner,
    room: &LiveRoom,
    outcomes: Vec<Appended>,
    tails: Vec<Tail>,
    unpublished: &mut Unpublished,
) {
    let mut fresh = Vec::with_capacity(outcomes.len());
    let mut acks = Vec::with_capacity(outcomes.len());
    for (outcome, (ack, _permit)) in outcomes.into_iter().zip(tails) {
        let entry = match outcome {
            Appended::New(e) => {
                let e = Arc::new(e);
                fresh.push(Arc::clone(&e));
                e
            }
            Appended::Existing(e) => Arc::new(e),
            Appended::Unchanged => {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(None));
                }
                continue;
            }
        };
        if let Some(ack) = ack {
            acks.push((ack, entry));
        }
    }
    if let Some(newest) = fresh.last() {
        room.log.observe(newest.seq);
        inner
            .counters
            .entries_appended
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
    }
    unpublished.add(fresh, inner, room).await;
    for (ack, entry) in acks {
        // The sender may have gone; the entry is stored either way.
        let _ = ack.send(Ok(Some(entry)));
    }
}

async fn fail(
    room: &LiveRoom,
    entries: Vec<NewEntry>,
    tails: Vec<Tail>,
    err: &Error,
    backoff: &mut Duration,
) {
    let mut keep = Vec::new();
    for (entry, (ack, permit)) in entries.into_iter().zip(tails) {
        if entry.kind == EntryKind::Text {
            if let Some(ack) = ack {
                let _ = ack.send(Err(Error::new(err.kind(), err.message())));
            }
        } else {
            keep.push(AppendRequest { entry, ack, permit });
        }
    }
    if !keep.is_empty() {
        room.log.requeue_front(keep);
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(2));
    }
}
