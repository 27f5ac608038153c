//! The [`Store`] port: durable rooms and room logs.

use async_trait::async_trait;

use crate::{
    entry::{Entry, NewEntry, SeqRange},
    error::Result,
    ids::{RoomId, UserId},
    room::{Ban, RoomPatch, StoredRoom},
};

/// What [`Store::create_room`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The room was inserted.
    Created,
    /// A room with that id was already stored (it is returned, unchanged).
    AlreadyExists(StoredRoom),
}

/// What [`Store::append`] did with one entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, at the seq it carries.
    New(Entry),
    /// A text entry whose (room, sender, client_id) was stored before: the
    /// original entry, unchanged. Nothing was written for it.
    Existing(Entry),
    /// A `join` of a user who is already an open member, or a `leave` of one
    /// who is not (or who is still seated on another node): the log already
    /// says it. Nothing was written.
    Unchanged,
}

impl Appended {
    /// The stored entry, new or original; `None` when nothing changed.
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Appended::New(e) | Appended::Existing(e) => Some(e),
            Appended::Unchanged => None,
        }
    }

    /// Whether this entry was stored by this call.
    pub fn is_new(&self) -> bool {
        matches!(self, Appended::New(_))
    }
}

/// Durable storage for rooms and their logs.
///
/// Rules every implementation keeps (the conformance suite in
/// `parlor_engine::testkit` checks them):
/// - `create_room` is an INSERT: an existing id is reported, never merged.
/// - `append` is one transaction for the whole batch: either every entry of it
///   is durable when it returns `Ok`, or none is. A batch naming a room that
///   is not stored (never created, or purged) fails with `ROOM_NOT_FOUND`. It assigns each room's new
///   entries the next seqs (last + 1, …) in batch order; it answers a text
///   entry whose (room, sender, client_id) is already stored — before or
///   earlier in the same batch — with `Existing` and writes nothing for it.
/// - It keeps the set of *open members* in step with the log: a `join` opens
///   (room, user), a `leave` closes it. A `join` of an open member or a
///   `leave` of a closed one is answered `Unchanged` and writes nothing, so
///   whichever node (or restart) reports a membership change, it is logged
///   once.
/// - `create_room` keeps `owner` and `private` as given; `room` returns them.
/// - Invitations are a set of (room, user) pairs of stored rooms.
/// - `rooms` pages by id with a keyset (`id > after`), never an offset, and
///   lists open rooms only (a closed one is not listed).
/// - `update_room` changes only what the patch names; `close_room` keeps the
///   log (closed = true) or, with `purge`, deletes the room and everything
///   stored about it (log, open members, invitations, moderators, bans).
/// - Moderators and bans are sets keyed by (room, user) of stored rooms, like
///   invitations; a ban is replaced by a later one.
/// - Backend errors are translated: unreachable, busy or locked become
///   `UNAVAILABLE` (temporary); nothing backend-specific leaks in the message.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new room with `last_seq` 0.
    async fn create_room(&self, room: &StoredRoom) -> Result<CreateOutcome>;

    /// The stored room, with its current `last_seq`.
    async fn room(&self, id: &RoomId) -> Result<Option<StoredRoom>>;

    /// Appends a batch (entries of one or more rooms) in one transaction,
    /// returning one outcome per entry, in order.
    async fn append(&self, batch: &[NewEntry]) -> Result<Vec<Appended>>;

    /// Entries of `room` within `range`, ascending by seq.
    async fn entries(&self, room: &RoomId, range: SeqRange) -> Result<Vec<Entry>>;

    /// Every (room, user) whose latest membership entry is a `join`.
    async fn open_members(&self) -> Result<Vec<(RoomId, UserId)>>;

    /// Invites `user` to `room` (`invited = true`) or withdraws the
    /// invitation (`false`). Idempotent: inviting twice keeps one invitation,
    /// withdrawing an absent one is no error. A room that is not stored:
    /// `ROOM_NOT_FOUND`.
    async fn set_invite(&self, room: &RoomId, user: &UserId, invited: bool) -> Result<()>;

    /// Whether `user` holds an invitation to `room`.
    async fn is_invited(&self, room: &RoomId, user: &UserId) -> Result<bool>;

    /// Up to `limit` open rooms whose id starts with `prefix` and sorts
    /// after `after`, ascending by id.
    async fn rooms(
        &self,
        prefix: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<StoredRoom>>;

    /// Applies `patch` to a stored room and returns it as it is now;
    /// `None` when the room is not stored.
    async fn update_room(&self, id: &RoomId, patch: &RoomPatch) -> Result<Option<StoredRoom>>;

    /// Closes a stored room (`purge = false`: marked closed, log kept) or
    /// deletes it with everything stored about it (`purge = true`). False
    /// when the room is not stored (closing a closed room again is true).
    async fn close_room(&self, id: &RoomId, purge: bool) -> Result<bool>;

    /// Makes `user` a moderator of `room` (`true`) or not. Idempotent; a
    /// room that is not stored: `ROOM_NOT_FOUND`.
    async fn set_moderator(&self, room: &RoomId, user: &UserId, moderator: bool) -> Result<()>;

    /// Whether `user` moderates `room`.
    async fn is_moderator(&self, room: &RoomId, user: &UserId) -> Result<bool>;

    /// Bans `user` from `room` (`Some`, replacing an earlier ban) or lifts
    /// the ban (`None`; lifting an absent one is no error). A room that is
    /// not stored: `ROOM_NOT_FOUND`.
    async fn set_ban(&self, room: &RoomId, user: &UserId, ban: Option<&Ban>) -> Result<()>;

    /// `user`'s ban from `room`, as stored (expired or not: the caller
    /// compares `until` with its clock).
    async fn ban(&self, room: &RoomId, user: &UserId) -> Result<Option<Ban>>;

    /// How many `append` transactions the engine may have in flight at once
    /// (never two batches of the same room). A store with one writer (SQLite)
    /// gains nothing from more than 1; a database server overlaps one
    /// transaction's commit with the next one's statements.
    fn append_lanes(&self) -> usize {
        1
    }
}
