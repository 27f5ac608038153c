//! [`LiveRoom`]: a room held in memory — its seats and its log's inbox.
//!
//! Lock order, everywhere: directory → ledger → inbox. No lock is held
//! across an `.await`.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use tokio::sync::{OnceCell, watch};

use crate::{
    entry::Seq,
    entry::Timestamp,
    ids::{RoomId, UserId},
    room::{Retention, RoomSpec, StoredRoom},
    room_log::RoomLog,
    seat_ledger::SeatLedger,
};

/// How far apart a removal's mark and its `leave` entry's time may be for
/// the entry to count as this node's own (both read this node's clock).
const OWN_REMOVAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// What a room says about itself besides its seats and log: the facts a
/// room policy is asked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomFacts {
    pub(crate) title: Option<String>,
    pub(crate) owner: Option<UserId>,
    pub(crate) private: bool,
    pub(crate) closed: bool,
    /// The oldest seq still stored (retention moves it).
    pub(crate) first_seq: Seq,
    pub(crate) retention: Option<Retention>,
}

/// A room in memory.
pub(crate) struct LiveRoom {
    pub(crate) id: RoomId,
    facts: Mutex<RoomFacts>,
    ledger: Mutex<SeatLedger>,
    pub(crate) log: RoomLog,
    /// Resolves once a pending room is in storage; shared by concurrent
    /// commits so the INSERT happens once.
    pub(crate) stored: OnceCell<()>,
    /// Set once the room left the directory (tasks that follow it stop).
    unloaded: watch::Sender<bool>,
    /// Users this node took a seat away from for a kick, ban or close, and
    /// when: in a cluster its own `leave` comes back on the bus, and must
    /// not take a seat the user took again since (`remote_removals.rs`).
    removed_here: Mutex<HashMap<UserId, Timestamp>>,
}

impl LiveRoom {
    pub(crate) fn from_stored(room: StoredRoom, append_queue: usize) -> Self {
        let stored = OnceCell::new_with(Some(()));
        let mut ledger = SeatLedger::stored(room.capacity);
        if room.closed {
            ledger.close();
        }
        LiveRoom {
            log: RoomLog::new(room.last_seq, append_queue),
            id: room.id,
            facts: Mutex::new(RoomFacts {
                title: room.title,
                owner: room.owner,
                private: room.private,
                closed: room.closed,
                first_seq: room.first_seq,
                retention: room.retention,
            }),
            ledger: Mutex::new(ledger),
            stored,
            unloaded: watch::Sender::new(false),
            removed_here: Mutex::default(),
        }
    }

    /// A room not stored yet, created by `owner` (who holds its one seat).
    pub(crate) fn pending(
        id: RoomId,
        spec: RoomSpec,
        owner: UserId,
        ledger: SeatLedger,
        append_queue: usize,
    ) -> Self {
        LiveRoom {
            log: RoomLog::new(0, append_queue),
            id,
            facts: Mutex::new(RoomFacts {
                title: spec.title,
                owner: Some(owner),
                private: spec.private,
                closed: false,
                first_seq: 1,
                retention: None,
            }),
            ledger: Mutex::new(ledger),
            stored: OnceCell::new(),
            unloaded: watch::Sender::new(false),
            removed_here: Mutex::default(),
        }
    }

    pub(crate) fn ledger(&self) -> MutexGuard<'_, SeatLedger> {
        self.ledger
            .lock()
            .expect("a ledger critical section panicked")
    }

    /// Records that this node removes `user` (a kick, a ban, a close) now.
    pub(crate) fn mark_removed_here(&self, user: &UserId) {
        let mut removed = self.removed_here.lock().expect("removals lock");
        removed.insert(user.clone(), Timestamp::now());
    }

    /// Whether this node made the removal of `user` whose `leave` was made
    /// at `made_at` (forgetting it): a mark within [`OWN_REMOVAL_WINDOW`]
    /// of it.
    pub(crate) fn removed_here(&self, user: &UserId, made_at: Timestamp) -> bool {
        let mut removed = self.removed_here.lock().expect("removals lock");
        removed.remove(user).is_some_and(|at| {
            (at.millis() - made_at.millis()).abs() <= OWN_REMOVAL_WINDOW.as_millis() as i64
        })
    }

    /// Resolves (to true) once the room left the directory.
    pub(crate) fn unloaded(&self) -> watch::Receiver<bool> {
        self.unloaded.subscribe()
    }

    /// Records that the room left the directory.
    pub(crate) fn mark_unloaded(&self) {
        self.unloaded.send_replace(true);
    }

    pub(crate) fn facts(&self) -> RoomFacts {
        self.facts.lock().expect("facts lock").clone()
    }

    /// Takes the stored room's facts: a pending room that turned out to be
    /// stored already, or a room whose title, capacity or state changed
    /// (`PATCH`, a close).
    pub(crate) fn adopt_stored(&self, stored: &StoredRoom) {
        {
            let mut ledger = self.ledger();
            ledger.set_capacity(stored.capacity);
            if stored.closed {
                ledger.close();
            }
        }
        *self.facts.lock().expect("facts lock") = RoomFacts {
            title: stored.title.clone(),
            owner: stored.owner.clone(),
            private: stored.private,
            closed: stored.closed,
            first_seq: stored.first_seq,
            retention: stored.retention,
        };
    }

    /// Records that retention pruned the log below `first_seq`.
    pub(crate) fn pruned_below(&self, first_seq: Seq) {
        let mut facts = self.facts.lock().expect("facts lock");
        facts.first_seq = facts.first_seq.max(first_seq);
    }

    /// Records that the room was closed (its ledger is closed separately,
    /// under its own lock).
    pub(crate) fn mark_closed(&self) {
        self.facts.lock().expect("facts lock").closed = true;
    }

    /// The room as storage describes it (for a pending room: what its
    /// INSERT writes).
    pub(crate) fn as_stored(&self) -> StoredRoom {
        let facts = self.facts();
        StoredRoom {
            id: self.id.clone(),
            capacity: self.ledger().capacity(),
            title: facts.title,
            last_seq: self.log.last_seq(),
            owner: facts.owner,
            private: facts.private,
            closed: facts.closed,
            first_seq: facts.first_seq,
            retention: facts.retention,
        }
    }
}
