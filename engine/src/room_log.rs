//! [`RoomLog`]: one room's append queue — the requests waiting to be stored,
//! the room's durable head (`last_seq`) and the bound on queued sends.
//!
//! Only data and its short critical sections live here; the task that
//! drains the queue (group commit, publish, acks) is in `append.rs`. The
//! queue's `running` flag is what makes that task exist only while there is
//! work: the first push into an idle log starts it, and it stops when a
//! take finds the queue empty.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::{
    entry::{Entry, NewEntry, Seq},
    error::Result,
};

/// What an append answers: the stored entry, `None` for a membership entry
/// that changed nothing (the log already said it), or why it failed.
pub(crate) type AppendResult = Result<Option<Arc<Entry>>>;

/// Where the stored entry (or the failure) goes.
pub(crate) type AckSender = oneshot::Sender<AppendResult>;

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
    inbox: Mutex<Inbox>,
    last_seq: AtomicU64,
    send_permits: Arc<Semaphore>,
}

impl RoomLog {
    pub(crate) fn new(last_seq: Seq, queue: usize) -> Self {
        RoomLog {
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
    pub(crate) fn has_waiting(&self) -> bool {
        !self.inbox().queue.is_empty()
    }

    pub(crate) fn is_idle(&self) -> bool {
        let inbox = self.inbox();
        !inbox.running && inbox.queue.is_empty()
    }

    /// Up to `max` waiting requests; `None` (and the task stops) when none wait.
    pub(crate) fn take_batch(&self, max: usize) -> Option<Vec<AppendRequest>> {
        let mut inbox = self.inbox();
        if inbox.queue.is_empty() {
            inbox.running = false;
            return None;
        }
        let n = inbox.queue.len().min(max);
        Some(inbox.queue.drain(..n).collect())
    }

    /// Puts requests back at the head of the queue, in their order.
    pub(crate) fn requeue_front(&self, requests: Vec<AppendRequest>) {
        let mut inbox = self.inbox();
        for request in requests.into_iter().rev() {
            inbox.queue.push_front(request);
        }
    }
}
