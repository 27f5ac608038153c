//! [`RoomDirectory`]: the rooms held in memory, at most one [`LiveRoom`] per id.
//!
//! A room is loaded when someone reserves a seat in it and unloaded as soon as
//! it holds no seat and its log task is idle, so memory follows activity and
//! nothing lingers after every seat is gone. Unloading marks the ledger
//! *retired* under its lock; a caller that raced with it sees the mark and
//! looks the room up again, so two ledgers for one room never coexist.
//!
//! Loading reads storage once however many callers miss at the same time:
//! a burst of reserves on a cold room (a join storm) would otherwise send
//! every one of them to the database for the same row.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::OnceCell;

use crate::{
    error::Result,
    ids::{RoomId, UserId},
    live_room::LiveRoom,
    room::StoredRoom,
};

/// A storage read of one room, shared by everyone waiting for it.
type Load = Arc<OnceCell<Option<StoredRoom>>>;

/// What runs when a room comes into memory (a cluster node starts following
/// it for removals made elsewhere: `remote_removals.rs`).
type OnInsert = Box<dyn Fn(&Arc<LiveRoom>) + Send + Sync>;

pub(crate) struct RoomDirectory {
    rooms: Mutex<HashMap<RoomId, Arc<LiveRoom>>>,
    loads: Mutex<HashMap<RoomId, Load>>,
    on_insert: OnInsert,
}

impl Default for RoomDirectory {
    fn default() -> Self {
        RoomDirectory::new(|_| {})
    }
}

impl RoomDirectory {
    /// A directory that calls `on_insert` for each room it takes in (outside
    /// its lock).
    pub(crate) fn new(on_insert: impl Fn(&Arc<LiveRoom>) + Send + Sync + 'static) -> Self {
        RoomDirectory {
            rooms: Mutex::default(),
            loads: Mutex::default(),
            on_insert: Box::new(on_insert),
        }
    }

    pub(crate) fn get(&self, id: &RoomId) -> Option<Arc<LiveRoom>> {
        self.rooms.lock().expect("directory lock").get(id).cloned()
    }

    /// The stored room, read by `read` — once for all callers that ask
    /// while a read of `id` is in flight.
    pub(crate) async fn load<F, Fut>(&self, id: &RoomId, read: F) -> Result<Option<StoredRoom>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<StoredRoom>>>,
    {
        let load = Arc::clone(
            self.loads
                .lock()
                .expect("loads lock")
                .entry(id.clone())
                .or_default(),
        );
        let outcome = load.get_or_try_init(read).await.cloned();
        // Done: the next miss reads afresh (by then the room is usually in).
        let mut loads = self.loads.lock().expect("loads lock");
        if loads.get(id).is_some_and(|l| Arc::ptr_eq(l, &load)) {
            loads.remove(id);
        }
        outcome
    }

    /// Inserts `room` unless one is there already; returns whichever is in.
    pub(crate) fn insert_if_absent(&self, room: Arc<LiveRoom>) -> Arc<LiveRoom> {
        let current = {
            let mut rooms = self.rooms.lock().expect("directory lock");
            Arc::clone(
                rooms
                    .entry(room.id.clone())
                    .or_insert_with(|| Arc::clone(&room)),
            )
        };
        if Arc::ptr_eq(&current, &room) {
            (self.on_insert)(&current);
        }
        current
    }

    /// Drops `room` from memory if it holds no seat and its log is idle.
    pub(crate) fn unload_if_idle(&self, room: &Arc<LiveRoom>) {
        let mut rooms = self.rooms.lock().expect("directory lock");
        let Some(current) = rooms.get(&room.id) else {
            return;
        };
        if !Arc::ptr_eq(current, room) {
            return;
        }
        let mut ledger = room.ledger();
        if room.log.is_idle() && ledger.retire_if_vacant() {
            drop(ledger);
            rooms.remove(&room.id);
            room.mark_unloaded();
        }
    }

    /// How many pending rooms `creator` holds (one pass over the rooms in
    /// memory, under the directory lock then each ledger's: the documented
    /// lock order). Asked only when a user creates a room, which is rate
    /// limited, so the pass is not on a hot path.
    pub(crate) fn pending_rooms_of(&self, creator: &UserId) -> usize {
        let rooms = self.rooms.lock().expect("directory lock");
        rooms
            .values()
            .filter(|room| room.ledger().is_pending_by(creator))
            .count()
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<LiveRoom>> {
        self.rooms
            .lock()
            .expect("directory lock")
            .values()
            .cloned()
            .collect()
    }
}
