//! [`FrameCache`]: each entry's `"type":"entry"` frame, encoded once and
//! shared by every connection that delivers it.
//!
//! Subscribers of a room receive the same `Arc<Entry>` from the bus; the
//! first to need its frame encodes it, the rest clone the bytes (a reference
//! count, not a copy). A frame stays until a later entry takes its slot:
//! long enough for a fan-out, and never served again once its message is
//! edited or redacted (below).
//!
//! Frames are keyed by the entry's id, never reused (a purged room's id
//! may start a new log from seq 1). A message that was edited or redacted
//! since it was stored reads back changed from storage (a resume's
//! backlog): its frame is encoded afresh and never cached, so that neither
//! the original text (an erased one least of all) nor one edit's text is
//! served for another.
//!
//! Why a direct-mapped table and not a cache library: this lookup runs once
//! per delivery — 400 000 times a second in a room of 4 000 — and a general
//! cache's bookkeeping per read (an access log, a clock read for its ttl,
//! its maintenance) was about a seventh of the server's CPU in that fan-out
//! (docs/benchmarks.md, step 26). A fan-out needs far less: the frames of
//! the last few hundred entries, found by id. Each id has one slot (from
//! its random bits); a newer entry that lands on the slot replaces the
//! older, whose late readers encode it again — a cost, never a wrong frame,
//! since the id is compared. Memory is bounded by the slots.

use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use parlor_engine::Entry;
use uuid::Uuid;

use crate::wire::ServerFrame;

/// Slots in the table: far more than the entries a fan-out has in flight
/// (the live feed holds 1 024 per room by default), few enough to be small.
const SLOTS: usize = 4_096;

/// One slot: the id of the entry whose frame it holds, and the frame.
type Slot = Mutex<Option<(Uuid, Utf8Bytes)>>;

pub(crate) struct FrameCache {
    slots: Box<[Slot]>,
}

impl FrameCache {
    pub(crate) fn new() -> Self {
        FrameCache {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The entry's frame, encoding it if nobody has yet (an amended
    /// message's always: see the module docs).
    pub(crate) fn entry(&self, entry: &Entry) -> Utf8Bytes {
        let encode = || Utf8Bytes::from(ServerFrame::Entry(entry.into()).to_json());
        if entry.edited_at.is_some() || entry.redacted {
            return encode();
        }
        let slot = &self.slots[slot_of(&entry.id)];
        if let Some((id, frame)) = &*slot.lock().unwrap_or_else(|e| e.into_inner())
            && *id == entry.id
        {
            return frame.clone();
        }
        // Encoded outside the lock: two connections may both encode an
        // entry the first time, which costs less than making one wait.
        let frame = encode();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((entry.id, frame.clone()));
        frame
    }
}

/// The slot of `id`: its last bits, random in a v4 and a v7 UUID alike (a
/// v7's leading bits are its time, which consecutive entries share).
fn slot_of(id: &Uuid) -> usize {
    let bytes = id.as_bytes();
    usize::from(u16::from_le_bytes([bytes[14], bytes[15]])) % SLOTS
}

#[cfg(test)]
mod tests {
    use parlor_engine::{EntryKind, NewEntry, RoomId, UserId};

    use super::*;

    fn entry(seq: u64, body: &str) -> Entry {
        NewEntry::text(
            RoomId::new("r").unwrap(),
            UserId::new("ann").unwrap(),
            &format!("c{seq}"),
            body,
        )
        .at(seq)
    }

    #[test]
    fn a_frame_is_shared_by_id_and_never_served_for_another_entry() {
        let cache = FrameCache::new();
        let first = entry(1, "hello");
        let a = cache.entry(&first);
        assert!(a.as_str().contains(r#""body":"hello""#), "{a}");
        // The same entry again: the same bytes, not a new encoding.
        assert_eq!(cache.entry(&first).as_str().as_ptr(), a.as_str().as_ptr());
        // Thousands of entries later, every frame is still its own entry's.
        for seq in 2..(3 * SLOTS as u64) {
            let e = entry(seq, &format!("m{seq}"));
            let frame = cache.entry(&e);
            assert!(
                frame.as_str().contains(&format!(r#""seq":{seq},"#)),
                "{frame}"
            );
        }
        let again = cache.entry(&first);
        assert_eq!(again.as_str(), a.as_str(), "re-encoded alike if evicted");
        // An edited message is never taken from the table.
        let mut edited = first.clone();
        edited.body = Some("changed".into());
        edited.edited_at = Some(edited.created_at);
        assert!(cache.entry(&edited).as_str().contains("changed"));
        assert_eq!(edited.kind, EntryKind::Text);
    }
}
