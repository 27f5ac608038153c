//! [`RoomDirectory`]: the rooms held in memory, at most one [`LiveRoom`] per id.
//!
//! A room is loaded when someone reserves a seat in it and unloaded as soon as
//! it holds no seat and its log task is idle, so memory follows activity and
//! nothing lingers after every seat is gone. Unloading marks the ledger
//! *retired* under its lock; a caller that raced with it sees the mark and
//! looks the room up again, so two ledgers for one room never coexist.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{ids::RoomId, live_room::LiveRoom};

#[derive(Default)]
pub(crate) struct RoomDirectory {
    rooms: Mutex<HashMap<RoomId, Arc<LiveRoom>>>,
}

impl RoomDirectory {
    pub(crate) fn get(&self, id: &RoomId) -> Option<Arc<LiveRoom>> {
        self.rooms.lock().expect("directory lock").get(id).cloned()
    }

    /// Inserts `room` unless one is there already; returns whichever is in.
    pub(crate) fn insert_if_absent(&self, room: Arc<LiveRoom>) -> Arc<LiveRoom> {
        let mut rooms = self.rooms.lock().expect("directory lock");
        Arc::clone(rooms.entry(room.id.clone()).or_insert(room))
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
        }
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
