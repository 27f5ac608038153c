//! [`FrameCache`]: each entry's `"type":"entry"` frame, encoded once and
//! shared by every connection that delivers it.
//!
//! Subscribers of a room receive the same `Arc<Entry>` from the bus; the
//! first to need its frame encodes it, the rest clone the bytes (a reference
//! count, not a copy). Entries live here briefly: long enough for a fan-out.

use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use moka::sync::Cache;
use parlor_engine::{Entry, RoomId, Seq};

use crate::wire::ServerFrame;

pub(crate) struct FrameCache {
    frames: Cache<(RoomId, Seq), Utf8Bytes>,
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

    /// The entry's frame, encoding it if nobody has yet.
    pub(crate) fn entry(&self, entry: &Entry) -> Utf8Bytes {
        self.frames
            .get_with((entry.room_id.clone(), entry.seq), || {
                Utf8Bytes::from(ServerFrame::Entry(entry.into()).to_json())
            })
    }
}
