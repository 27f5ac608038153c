//! The cluster ports: what several engines sharing one database need to keep
//! docs/contract.md §2 across nodes. [`SeatLeases`] makes the database the authority
//! for seats; [`PendingClaims`] keeps one user's pending room from being
//! created by another user on another node.
//!
//! A seat held by a node is a row (room, user, node, seat) that lives as long
//! as the node's own lease: a node renews *one* row for itself, not one per
//! seat, and when it stops renewing, every seat it held dies with it at once.
//! See `docs/cluster.md` for the failure analysis.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    entry::{Entry, Timestamp},
    error::Result,
    ids::{RoomId, SeatId, UserId},
};

/// Seats as rows in the shared database, beside the room logs.
///
/// Rules every implementation keeps:
/// - `take` and the capacity count are one transaction, serialized per room
///   with every other `take` and every append that carries a `leave`.
/// - A seat counts while its node's lease is live.
/// - [`Store::append`](crate::Store::append) on a store that knows its node
///   skips a `leave` for a user who still holds a live seat on *another*
///   node (the seat lives on there), and `close_orphans` skips one for a
///   user who holds a live seat anywhere.
#[async_trait]
pub trait SeatLeases: Send + Sync + 'static {
    /// Starts or renews `node`'s lease until `ttl` from now (database clock).
    /// False when the lease had lapsed: other nodes may have freed its seats.
    async fn renew_node(&self, node: &str, ttl: Duration) -> Result<bool>;

    /// Forgets every seat `node` held (a node starting again under its old
    /// name: its connections are gone).
    async fn reset_node(&self, node: &str) -> Result<()>;

    /// Seats `user` in `room` for `node` under `seat`. A user with a live
    /// seat anywhere in the room keeps that seat and is not counted again;
    /// otherwise `ROOM_FULL` when the room's live seats reach its capacity,
    /// `ROOM_NOT_FOUND` when the room is not stored.
    async fn take(&self, room: &RoomId, user: &UserId, node: &str, seat: SeatId) -> Result<()>;

    /// Like `take`, but only for a user who already holds a live seat in the
    /// room (a ticket reserved on another node); false when they hold none.
    async fn adopt(&self, room: &RoomId, user: &UserId, node: &str, seat: SeatId) -> Result<bool>;

    /// Drops `node`'s row for (room, user) if it is still seat `seat`.
    async fn release(&self, room: &RoomId, user: &UserId, node: &str, seat: SeatId) -> Result<()>;

    /// Who holds a live seat in `room`, on any node.
    async fn seated(&self, room: &RoomId) -> Result<Seated>;

    /// Whether `user` holds a live seat in `room` on any node.
    async fn is_seated(&self, room: &RoomId, user: &UserId) -> Result<bool>;

    /// Marks a ticket used, cluster-wide; false when it was used before.
    async fn use_ticket(&self, key: &[u8], expires_at: Timestamp) -> Result<bool>;

    /// Appends a `leave` for every open member that holds no live seat on any
    /// node (their node died), at most `limit`, and returns the new entries;
    /// also forgets dead nodes' rows and expired used tickets.
    async fn close_orphans(&self, limit: u32) -> Result<Vec<Entry>>;

    /// Drops the seat rows of `user` in `room` on every node (a kick, a
    /// ban), or of every user when `user` is `None` (a close): the seats
    /// stop counting cluster-wide at once, and a `leave` appended after this
    /// is no longer held back by another node's seat. Each node then frees
    /// its own ledger's seat when the `leave` reaches it through the bus.
    async fn evict(&self, room: &RoomId, user: Option<&UserId>) -> Result<()>;

    /// Takes or keeps the delivery of webhook `hook` for `node`: true while
    /// `node` holds it. A holder keeps it while its node lease is live;
    /// when that lapses, the next node to ask takes it over. One node at a
    /// time delivers a hook's events, so they leave in order.
    async fn hold_webhook(&self, hook: &str, node: &str) -> Result<bool>;
}

/// A room's live seats across the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seated {
    /// Users with a live seat, each once.
    pub occupancy: u32,
    /// Those of them who are members in the log (joined or in grace), sorted.
    pub members: Vec<UserId>,
    /// Every user with a live seat, sorted, with whether they are members
    /// and since when they hold the seat (its oldest row).
    pub seats: Vec<SeatedUser>,
}

/// One user's live seat in [`Seated`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatedUser {
    /// Whose seat.
    pub user: UserId,
    /// A member in the log (joined or in grace); else only reserved.
    pub member: bool,
    /// When the seat's oldest row was taken.
    pub since: Timestamp,
}

/// Cluster-wide claims on pending rooms (a room held in one node's memory
/// until its creator commits).
#[async_trait]
pub trait PendingClaims: Send + Sync + 'static {
    /// Claims `room`'s creation for `user` for `ttl`, or renews `user`'s own
    /// claim; false when another user's claim is live.
    async fn claim(&self, room: &RoomId, user: &UserId, ttl: Duration) -> Result<bool>;
}

/// What makes an engine one node of a cluster.
#[derive(Clone)]
pub struct Cluster {
    /// This node's name, unique in the cluster.
    pub node_id: String,
    /// Seat rows in the shared database.
    pub leases: Arc<dyn SeatLeases>,
    /// Pending-room claims.
    pub claims: Arc<dyn PendingClaims>,
    /// How long a node's seats outlive its last renewal (renewed every third).
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}
