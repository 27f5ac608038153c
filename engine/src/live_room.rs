//! [`LiveRoom`]: a room held in memory — its seats and its log's inbox.
//!
//! Lock order, everywhere: directory → ledger → inbox. No lock is held
//! across an `.await`.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::OnceCell;

use crate::{
    ids::RoomId,
    room::{RoomSpec, StoredRoom},
    room_log::RoomLog,
    seat_ledger::SeatLedger,
};

/// A room in memory.
pub(crate) struct LiveRoom {
    pub(crate) id: RoomId,
    title: Mutex<Option<String>>,
    ledger: Mutex<SeatLedger>,
    pub(crate) log: RoomLog,
    /// Resolves once a pending room is in storage; shared by concurrent
    /// commits so the INSERT happens once.
    pub(crate) stored: OnceCell<()>,
}

impl LiveRoom {
    pub(crate) fn from_stored(room: StoredRoom, append_queue: usize) -> Self {
        let stored = OnceCell::new_with(Some(()));
        LiveRoom {
            log: RoomLog::new(room.last_seq, append_queue),
            id: room.id,
            title: Mutex::new(room.title),
            ledger: Mutex::new(SeatLedger::stored(room.capacity)),
            stored,
        }
    }

    pub(crate) fn pending(
        id: RoomId,
        spec: RoomSpec,
        ledger: SeatLedger,
        append_queue: usize,
    ) -> Self {
        LiveRoom {
            log: RoomLog::new(0, append_queue),
            id,
            title: Mutex::new(spec.title),
            ledger: Mutex::new(ledger),
            stored: OnceCell::new(),
        }
    }

    pub(crate) fn ledger(&self) -> MutexGuard<'_, SeatLedger> {
        self.ledger
            .lock()
            .expect("a ledger critical section panicked")
    }

    pub(crate) fn title(&self) -> Option<String> {
        self.title.lock().expect("title lock").clone()
    }

    pub(crate) fn set_title(&self, title: Option<String>) {
        *self.title.lock().expect("title lock") = title;
    }

    /// The room as storage would describe it.
    pub(crate) fn as_stored(&self) -> StoredRoom {
        StoredRoom {
            id: self.id.clone(),
            capacity: self.ledger().capacity(),
            title: self.title(),
            last_seq: 0,
        }
    }
}
