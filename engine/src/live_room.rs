//! [`LiveRoom`]: a room held in memory — its seats and its log's inbox.
//!
//! Lock order, everywhere: directory → ledger → inbox. No lock is held
//! across an `.await`.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::{OnceCell, watch};

use crate::{
    ids::{RoomId, UserId},
    room::{RoomSpec, StoredRoom},
    room_log::RoomLog,
    seat_ledger::SeatLedger,
};

/// What a room says about itself besides its seats and log: the facts a
/// room policy is asked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomFacts {
    pub(crate) title: Option<String>,
    pub(crate) owner: Option<UserId>,
    pub(crate) private: bool,
    pub(crate) closed: bool,
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
            }),
            ledger: Mutex::new(ledger),
            stored,
            unloaded: watch::Sender::new(false),
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
            }),
            ledger: Mutex::new(ledger),
            stored: OnceCell::new(),
            unloaded: watch::Sender::new(false),
        }
    }

    pub(crate) fn ledger(&self) -> MutexGuard<'_, SeatLedger> {
        self.ledger
            .lock()
            .expect("a ledger critical section panicked")
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
        };
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
        }
    }
}
