//! [`Membership`]: a committed seat — its `joined` facts, its entry stream,
//! and the `SeatGuard` that holds the seat (`join.rs`, beside the release
//! path it drives).
//!
//! Dropping the guard is how a connection is *lost*: the seat goes to grace.
//! Every way a transport task can end — close, error, panic, cancellation —
//! drops it, so no seat outlives its connection by more than the grace.
//! `SeatGuard::leave` is the explicit leave: the seat is freed at once.

use std::sync::Arc;

use crate::{
    entry::Entry,
    entry_stream::EntryStream,
    error::Result,
    join::{Committed, Joined, SeatGuard},
};

/// A committed seat: facts, entries, and the guard that holds the seat.
pub struct Membership {
    joined: Joined,
    // Field order matters: the stream is dropped before the seat is released.
    entries: EntryStream,
    guard: SeatGuard,
}

impl Membership {
    pub(crate) fn from_parts((joined, entries, guard): Committed) -> Self {
        Membership {
            joined,
            entries,
            guard,
        }
    }

    /// The facts at commit.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// The next entry after the join point, in seq order, each exactly once.
    /// Cancel-safe.
    pub async fn next_entry(&mut self) -> Result<Arc<Entry>> {
        self.entries.next().await
    }

    /// Leaves explicitly: frees the seat now if this was the user's last
    /// connection in the room, appending a `leave` entry.
    pub async fn leave(self) -> Result<()> {
        let Membership { entries, guard, .. } = self;
        drop(entries);
        guard.leave().await
    }

    /// The parts, for transports that drive the stream and the seat apart.
    pub fn into_parts(self) -> (Joined, EntryStream, SeatGuard) {
        (self.joined, self.entries, self.guard)
    }
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("joined", &self.joined)
            .field("delivered", &self.entries.delivered())
            .field("guard", &self.guard)
            .finish()
    }
}
