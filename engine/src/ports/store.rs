//! The [`Store`] port: durable rooms and room logs.

use async_trait::async_trait;

use crate::{
    entry::{Entry, NewEntry, Seq, SeqRange, Timestamp},
    error::{ErrorKind, Result},
    events::OutboxEvent,
    ids::{RoomId, UserId},
    room::{Ban, ReadState, RoomPatch, StoredRoom},
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
    /// An `edit` or `redaction` the log cannot take (its target is gone,
    /// not a message, or redacted): `EntryNotFound` or `InvalidInput`.
    /// Nothing was written for it; the rest of the batch stands.
    Refused(ErrorKind),
}

impl Appended {
    /// The stored entry, new or original; `None` when nothing changed.
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Appended::New(e) | Appended::Existing(e) => Some(e),
            Appended::Unchanged | Appended::Refused(_) => None,
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
/// - Amendments (docs/contract.md §2, "Edits and redactions") are checked
///   and applied in the append's transaction, in batch order. An `edit`
///   needs a stored, unredacted `text` target: the target's `body` and
///   `data` become the edit's and its `edited_at` the edit's `created_at`.
///   A `redaction` needs a stored `text` or `system` target: the target's
///   and its edits' `body` and `data` are erased (NULL, `redacted` true);
///   a target redacted before answers `Existing` with the first
///   redaction. A target below `first_seq` or above the head is
///   `Refused(ENTRY_NOT_FOUND)`, one of another kind `Refused(INVALID_INPUT)`.
///   An edit is idempotent by (room, sender, client_id) like a message.
/// - Retention: `prune` deletes the oldest entries of a room, never one at
///   or above a bound, and moves `first_seq` past them; seqs are never
///   reused (`last_seq` stays). Reads start at `first_seq`. An `edit` kept
///   whose target was pruned is erased like a redacted one (body and data
///   NULL, `redacted` true), in the same transaction: a message's text does
///   not outlive it in its edits.
/// - Read markers are monotone: a lower seq than the stored one changes
///   nothing.
/// - Webhooks (docs/contract.md §10): `set_webhooks` names the registered
///   hooks. While any is registered, `create_room`, `close_room` (once per
///   room: closing a closed room again writes nothing) and `set_ban`
///   (`Some`) write an outbox row ([`OutboxEvent`]) in the same
///   transaction as the change, with the room's `last_seq` as `after_seq`
///   and ids increasing over the whole store, never reused; with none
///   registered they write none. A purge (`close_room` with `purge`) sets
///   every outbox row of the room to seq 0, gives every registered hook a
///   cursor there at seq 0 with its `epoch` bumped (a hook with none gets
///   one at outbox row 0), and adds a `room.purged` row at 0: the room's
///   next incarnation starts its stream after them. `prune` and `prune_rooms` never delete an entry above
///   any registered hook's cursor in that room (no cursor: nothing
///   delivered, nothing pruned). `advance_webhook` is a compare-and-set,
///   and drops the outbox rows every registered hook has passed.
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

    /// Up to `limit` stored rooms (open or closed) sorting after `after`,
    /// ascending by id, whose log still holds entries (`first_seq <=
    /// last_seq`) and that have a retention of their own — or, with `all`
    /// (the server has a retention), every such room: the candidates for
    /// pruning.
    async fn retained_rooms(
        &self,
        after: Option<&RoomId>,
        limit: u32,
        all: bool,
    ) -> Result<Vec<StoredRoom>>;

    /// Deletes the oldest entries of `room` that `bound` lets go — a
    /// prefix of the log, at most `max_rows` entries, stopping at the first
    /// entry the bound keeps — and returns how many went and the room's
    /// `first_seq` now. Also `Ok` (nothing deleted) for a room that is not
    /// stored.
    async fn prune(&self, room: &RoomId, bound: PruneBound, max_rows: u32) -> Result<Pruned>;

    /// Prunes several rooms at once, as [`Store::prune`] does one: at most
    /// `max_rows` entries in all, never anything but a prefix a room's
    /// bound lets go. Answers, for each room it looked at, what went and
    /// where the log starts now — `deleted: 0` means the room is within its
    /// bound; a room left out was not reached this time (or changed while
    /// the store looked at it). A store may leave budget unused while rooms
    /// still have entries to let go: the caller calls again while rooms
    /// lose entries.
    ///
    /// The default prunes room after room ([`prune_room_by_room`]). A
    /// store with a single writer overrides it: deleting rows stored
    /// together (SQLite: the oldest few of every room, in one statement)
    /// rewrites a page once, where room-by-room pruning rewrites it once
    /// per room (docs/benchmarks.md, steps 23 and 30).
    async fn prune_rooms(
        &self,
        rooms: &[(RoomId, PruneBound)],
        max_rows: u32,
    ) -> Result<Vec<(RoomId, Pruned)>> {
        prune_room_by_room(self, rooms, max_rows).await
    }

    /// Raises `user`'s read marker in `room` to `seq` (never lowers it) and
    /// returns the marker as it is now. A room that is not stored:
    /// `ROOM_NOT_FOUND`.
    async fn set_read_marker(&self, room: &RoomId, user: &UserId, seq: Seq) -> Result<Seq>;

    /// `user`'s read state in each of `rooms`, in order: the marker (0 when
    /// none) and the count of stored, unredacted `text` and `system`
    /// entries after it sent by someone else.
    async fn read_states(&self, user: &UserId, rooms: &[RoomId]) -> Result<Vec<ReadState>>;

    /// Registers exactly `hooks` (their names: the URLs) as the webhooks
    /// that get outbox rows and hold back retention; forgets every other
    /// hook and its cursors. With none, every outbox row goes too. A hook
    /// not registered before gets a cursor at every stored room's head,
    /// past every outbox row: it hears what happens from now on.
    async fn set_webhooks(&self, hooks: &[String]) -> Result<()>;

    /// Up to `limit` rooms, ascending by id after `after`, with events
    /// `hook` has not delivered: entries above its cursor (no cursor: any
    /// stored entry) or outbox rows past it — purged rooms' rows too.
    async fn webhook_rooms(
        &self,
        hook: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomId>>;

    /// `hook`'s cursor in `room`; `None` before its first delivery there.
    async fn webhook_cursor(&self, hook: &str, room: &RoomId) -> Result<Option<WebhookCursor>>;

    /// Up to `limit` of `room`'s outbox rows with `outbox_id > after` and
    /// `after_seq <= upto`, ascending by `outbox_id`.
    async fn outbox(
        &self,
        room: &RoomId,
        after: u64,
        upto: Seq,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>>;

    /// Moves `hook`'s cursors, each from its `from` (`None`: no cursor
    /// yet) to its `to`, in one transaction, and answers for each whether
    /// it moved: false, changing nothing for that room, when its cursor is
    /// not `from` (another node delivered, or a purge reset it), or when
    /// `hook` is not registered.
    async fn advance_webhook(&self, hook: &str, moves: &[CursorMove]) -> Result<Vec<bool>>;

    /// How many `append` transactions the engine may have in flight at once
    /// (never two batches of the same room). A store with one writer (SQLite)
    /// gains nothing from more than 1; a database server overlaps one
    /// transaction's commit with the next one's statements.
    fn append_lanes(&self) -> usize {
        1
    }
}

/// [`Store::prune_rooms`] as [`Store::prune`] calls, room after room, each
/// with what is left of the `max_rows` budget; stops when it is spent.
pub async fn prune_room_by_room<S: Store + ?Sized>(
    store: &S,
    rooms: &[(RoomId, PruneBound)],
    max_rows: u32,
) -> Result<Vec<(RoomId, Pruned)>> {
    let mut left = u64::from(max_rows);
    let mut done = Vec::new();
    for (room, bound) in rooms {
        if left == 0 {
            break;
        }
        let budget = u32::try_from(left).unwrap_or(u32::MAX);
        let pruned = store.prune(room, *bound, budget).await?;
        left = left.saturating_sub(pruned.deleted);
        done.push((room.clone(), pruned));
    }
    Ok(done)
}

/// Where a webhook's delivery of one room stands: every entry up to `seq`
/// and every outbox row up to `outbox_id` was delivered (a 2xx).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookCursor {
    /// The last entry delivered (0: none).
    pub seq: Seq,
    /// The last outbox row delivered (0: none).
    pub outbox_id: u64,
    /// How many times the room was purged since the cursor was made: a
    /// purge rewinds `seq` to 0 and bumps it, so a delivery read before
    /// the purge can never move the cursor (its compare-and-set fails).
    pub epoch: u64,
}

/// One room's cursor move in [`Store::advance_webhook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorMove {
    /// The room.
    pub room: RoomId,
    /// Where the cursor was read (`None`: there was none).
    pub from: Option<WebhookCursor>,
    /// Where it goes.
    pub to: WebhookCursor,
}

/// What [`Store::prune`] may delete: an entry below `below_seq`, or one
/// created before `older_than` — always the log's oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBound {
    /// Entries with a smaller seq go (the count bound: `last_seq -
    /// max_entries + 1`; 0 or 1 keeps all).
    pub below_seq: Seq,
    /// Entries stored before this go (the age bound).
    pub older_than: Option<Timestamp>,
    /// The room's `last_seq` when the bound was worked out (0: the bound
    /// applies whatever the log). A log never shrinks: see
    /// [`PruneBound::is_stale`].
    pub seen_last_seq: Seq,
}

impl PruneBound {
    /// Whether the room this bound was worked out for is gone, its id's
    /// log now at `last_seq`: lower than the bound saw, so purged and
    /// created again since. A store deletes nothing by a stale bound.
    pub fn is_stale(&self, last_seq: Seq) -> bool {
        last_seq < self.seen_last_seq
    }
}

/// What [`Store::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Entries deleted.
    pub deleted: u64,
    /// The room's oldest stored seq now.
    pub first_seq: Seq,
}
