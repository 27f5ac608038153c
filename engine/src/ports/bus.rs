//! The [`Bus`] port: fan-out of stored entries (and of [`Notice`]s, which
//! are never stored) to live subscribers, and [`InProcessBus`], the
//! single-node implementation.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{entry::Entry, ids::RoomId, notice::Notice};

/// A live feed of one room's entries. It may lag (a slow reader is told how
/// many it missed) and, across nodes, arrive out of order: the engine's
/// entry stream re-reads storage to close any gap, so a bus may be
/// at-most-once.
pub type LiveEntries = broadcast::Receiver<Arc<Entry>>;

/// A live feed of one room's notices: at-most-once, as they come; a reader
/// that lags loses the oldest (they are momentary).
pub type LiveNotices = broadcast::Receiver<Arc<Notice>>;

/// Fan-out of stored entries.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Starts receiving `room`'s entries published from now on, on any
    /// node. A bus across nodes returns once this node receives the room's
    /// entries from the others; when it cannot say so in time (its link
    /// is down or slow) it returns the feed anyway and closes it once the
    /// link is in place, so the stream takes a new feed and reads storage
    /// to its end (nothing published meanwhile is missed).
    async fn subscribe(&self, room: &RoomId) -> LiveEntries;

    /// Hands freshly stored entries (of one room, ascending seq) to every
    /// subscriber of that room.
    async fn publish(&self, room: &RoomId, entries: &[Arc<Entry>]);

    /// Starts receiving `room`'s notices sent from now on. Across nodes,
    /// notices of other nodes come while this node has the room's entries
    /// subscribed too (a stream always has both).
    fn subscribe_notices(&self, room: &RoomId) -> LiveNotices;

    /// Hands a notice to every notice subscriber of its room (on every node
    /// of a cluster). Best effort: nothing is stored or retried.
    async fn notify(&self, notice: Arc<Notice>);
}

/// Notices a room's channel keeps for its slowest reader: they are
/// momentary, so a reader that falls behind loses the oldest rather than
/// costing every room a buffer the size of the entries' one.
const NOTICE_BUFFER: usize = 64;

/// Fan-out within one process: a bounded broadcast channel per room with at
/// least one subscriber. Channels are dropped with their last subscriber.
pub struct InProcessBus {
    capacity: usize,
    rooms: Mutex<HashMap<RoomId, broadcast::Sender<Arc<Entry>>>>,
    notices: Mutex<HashMap<RoomId, broadcast::Sender<Arc<Notice>>>>,
}

impl InProcessBus {
    /// A bus whose per-room channels hold `capacity` entries for their
    /// slowest reader.
    pub fn new(capacity: usize) -> Self {
        InProcessBus {
            capacity: capacity.max(1),
            rooms: Mutex::new(HashMap::new()),
            notices: Mutex::new(HashMap::new()),
        }
    }

    /// Live channels, of entries and of notices (for leak checks).
    pub fn channels(&self) -> usize {
        let mut rooms = self.rooms.lock().expect("bus lock");
        rooms.retain(|_, tx| tx.receiver_count() > 0);
        let mut notices = self.notices.lock().expect("bus lock");
        notices.retain(|_, tx| tx.receiver_count() > 0);
        rooms.len() + notices.len()
    }

    /// Whether `room` has a live subscriber here, of entries or notices
    /// (a bus across nodes stops receiving a room without one).
    pub fn has_subscribers(&self, room: &RoomId) -> bool {
        fn live<T>(channels: &Mutex<HashMap<RoomId, broadcast::Sender<T>>>, room: &RoomId) -> bool {
            let channels = channels.lock().expect("bus lock");
            channels.get(room).is_some_and(|tx| tx.receiver_count() > 0)
        }
        live(&self.rooms, room) || live(&self.notices, room)
    }

    /// Closes `room`'s live feeds here: each of its readers sees `Closed`
    /// once it has taken what was sent, and takes a new feed.
    pub fn close_room(&self, room: &RoomId) {
        self.rooms.lock().expect("bus lock").remove(room);
    }

    /// What [`Bus::subscribe`] returns, at once (this bus never waits).
    pub fn feed(&self, room: &RoomId) -> LiveEntries {
        subscribe_to(&self.rooms, room, self.capacity)
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn subscribe(&self, room: &RoomId) -> LiveEntries {
        self.feed(room)
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

    fn subscribe_notices(&self, room: &RoomId) -> LiveNotices {
        subscribe_to(&self.notices, room, self.capacity.min(NOTICE_BUFFER))
    }

    async fn notify(&self, notice: Arc<Notice>) {
        send_to(&self.notices, &notice.room_id.clone(), notice);
    }
}

/// A receiver of `room`'s channel in `channels`, made if absent (a channel
/// per room, dropped with its last receiver).
fn subscribe_to<T: Clone>(
    channels: &Mutex<HashMap<RoomId, broadcast::Sender<T>>>,
    room: &RoomId,
    capacity: usize,
) -> broadcast::Receiver<T> {
    let mut channels = channels.lock().expect("bus lock");
    match channels.get(room) {
        Some(tx) => tx.subscribe(),
        None => {
            let (tx, rx) = broadcast::channel(capacity.max(1));
            channels.insert(room.clone(), tx);
            rx
        }
    }
}

/// Sends `item` on `room`'s channel in `channels`, if it has receivers
/// (a channel without any is dropped).
fn send_to<T: Clone>(
    channels: &Mutex<HashMap<RoomId, broadcast::Sender<T>>>,
    room: &RoomId,
    item: T,
) {
    let mut channels = channels.lock().expect("bus lock");
    let Some(tx) = channels.get(room) else { return };
    if tx.receiver_count() == 0 {
        channels.remove(room);
        return;
    }
    let _ = tx.send(item);
}
