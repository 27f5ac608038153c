//! [`Membership`]: a committed seat — its `joined` facts, its entry stream,
//! and the [`SeatGuard`] that holds the seat.
//!
//! Dropping the guard is how a connection is *lost*: the seat goes to grace.
//! Every way a transport task can end — close, error, panic, cancellation —
//! drops it, so no seat outlives its connection by more than the grace.
//! [`SeatGuard::leave`] is the explicit leave: the seat is freed at once.

use std::sync::Arc;

use crate::{
    engine::{Inner, LEAVE_ACK_WAIT},
    entry::{Entry, Seq},
    entry_stream::EntryStream,
    error::Result,
    ids::{RoomId, UserId},
    live_room::LiveRoom,
    seat_ledger::Letting,
};

/// What a client learns when its commit succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The room.
    pub room_id: RoomId,
    /// Its seats.
    pub capacity: u32,
    /// Seats held in any state, this one included.
    pub occupancy: u32,
    /// The room's newest seq, this commit's own `join` included.
    pub last_seq: Seq,
    /// Users whose seats are joined or in grace, sorted.
    pub members: Vec<UserId>,
}

/// A committed seat: facts, entries, and the guard that holds the seat.
pub struct Membership {
    joined: Joined,
    // Field order matters: the stream is dropped before the seat is released.
    entries: EntryStream,
    guard: SeatGuard,
}

impl Membership {
    pub(crate) fn new(joined: Joined, entries: EntryStream, guard: SeatGuard) -> Self {
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

/// Holds one live connection's claim on a seat. Drop = connection lost
/// (grace); [`SeatGuard::leave`] = explicit leave.
pub struct SeatGuard {
    inner: Arc<Inner>,
    room: Arc<LiveRoom>,
    user: UserId,
    /// Which seat of `user` this connection holds (see `SeatLedger`).
    epoch: u64,
    armed: bool,
}

impl SeatGuard {
    pub(crate) fn new(inner: Arc<Inner>, room: Arc<LiveRoom>, user: UserId, epoch: u64) -> Self {
        SeatGuard {
            inner,
            room,
            user,
            epoch,
            armed: true,
        }
    }

    /// The room this seat is in.
    pub fn room_id(&self) -> &RoomId {
        &self.room.id
    }

    /// The user holding it.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// Explicit leave. Returns once the `leave` entry (if any) is stored, or
    /// after a few seconds of storage trouble (it stays queued and is written).
    pub async fn leave(mut self) -> Result<()> {
        self.armed = false;
        if let Some(ack) = self
            .inner
            .release(&self.room, &self.user, self.epoch, Letting::Leave)
            && let Ok(Ok(stored)) = tokio::time::timeout(LEAVE_ACK_WAIT, ack).await
        {
            stored?;
        }
        Ok(())
    }

    /// Frees the seat at once, as a leave does, without waiting: for a commit
    /// that failed before the client saw it.
    pub(crate) fn abandon(mut self) {
        self.armed = false;
        drop(
            self.inner
                .release(&self.room, &self.user, self.epoch, Letting::Leave),
        );
    }
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        if self.armed {
            drop(
                self.inner
                    .release(&self.room, &self.user, self.epoch, Letting::Lost),
            );
        }
    }
}

impl std::fmt::Debug for SeatGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeatGuard")
            .field("room", &self.room.id)
            .field("user", &self.user)
            .finish()
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
