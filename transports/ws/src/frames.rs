//! [`FrameCache`]: each entry's `"type":"entry"` frame, encoded once and
//! shared by every connection that delivers it.
//!
//! Subscribers of a room receive the same `Arc<Entry>` from the bus; the
//! first to need its frame encodes it, the rest clone the bytes (a reference
//! count, not a copy). Entries live here briefly: long enough for a fan-out.
//!
//! Frames are keyed by the entry's id, never reused (a purged room's id
//! may start a new log from seq 1). A message that was edited or redacted
//! since it was stored reads back changed from storage (a resume's
//! backlog): its frame is encoded afresh and never cached, so that neither
//! the original text (an erased one least of all) nor one edit's text is
//! served for another.

use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use moka::sync::Cache;
use parlor_engine::Entry;
use uuid::Uuid;

use crate::wire::ServerFrame;

pub(crate) struct FrameCache {
    frames: Cache<Uuid, Utf8Bytes>,
}

impl FrameCache {
    pub(crate) fn new() -> Self {
        FrameCache {
            frames: Cache::builder()
                .max_capacity(65_536)
                .time_to_live(Duration::from_secs(30))
                .build(),
        }
    }

    /// The entry's frame, encoding it if nobody has yet (an amended
    /// message's always: see the module docs).
    pub(crate) fn entry(&self, entry: &Entry) -> Utf8Bytes {
        let encode = || Utf8Bytes::from(ServerFrame::Entry(entry.into()).to_json());
        if entry.edited_at.is_some() || entry.redacted {
            return encode();
        }
        self.frames.get_with(entry.id, encode)
    }
}
