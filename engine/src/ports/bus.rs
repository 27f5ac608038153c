//! The [`Bus`] port: fan-out of stored entries to live subscribers, and
//! [`InProcessBus`], the single-node implementation.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{entry::Entry, ids::RoomId};

/// A live feed of one room's entries. It may lag (a slow reader is told how
/// many it missed) and, across nodes, arrive out of order: the engine's
/// entry stream re-reads storage to close any gap, so a bus may be
/// at-most-once.
pub type LiveEntries = broadcast::Receiver<Arc<Entry>>;

/// Fan-out of stored entries.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Starts receiving `room`'s entries published from now on.
    fn subscribe(&self, room: &RoomId) -> LiveEntries;

    /// Hands freshly stored entries (of one room, ascending seq) to every
    /// subscriber of that room.
    async fn publish(&self, room: &RoomId, entries: &[Arc<Entry>]);
}

/// Fan-out within one process: a bounded broadcast channel per room with at
/// least one subscriber. Channels are dropped with their last subscriber.
pub struct InProcessBus {
    capacity: usize,
    rooms: Mutex<HashMap<RoomId, broadcast::Sender<Arc<Entry>>>>,
}

impl InProcessBus {
    /// A bus whose per-room channels hold `capacity` entries for their
    /// slowest reader.
    pub fn new(capacity: usize) -> Self {
        InProcessBus {
            capacity: capacity.max(1),
            rooms: Mutex::new(HashMap::new()),
        }
    }

    /// Rooms with a live channel (for leak checks).
    pub fn channels(&self) -> usize {
        let mut rooms = self.rooms.lock().expect("bus lock");
        rooms.retain(|_, tx| tx.receiver_count() > 0);
        rooms.len()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    fn subscribe(&self, room: &RoomId) -> LiveEntries {
        let mut rooms = self.rooms.lock().expect("bus lock");
        match rooms.get(room) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                rooms.insert(room.clone(), tx);
                rx
            }
        }
    }

    async fn publish(&self, room: &RoomId, entries: &[Arc<Entry>]) {
        let mut rooms = self.rooms.lock().expect("bus lock");
        let Some(tx) = rooms.get(room) else { return };
        if tx.receiver_count() == 0 {
            rooms.remove(room);
            return;
        }
        for entry in entries {
            // An error means every receiver is gone; nothing to deliver.
            let _ = tx.send(Arc::clone(entry));
        }
    }
}
