//! The two-phase join, end to end (docs/contract.md §2): reserve a seat and
//! get a ticket, commit the ticket when the connection's stream starts, and
//! release the seat on every way out.
//!
//! - **Reserve** ([`reserve`]): the room's `SeatLedger` takes the seat under
//!   its lock (the only capacity check); a room that does not exist yet is a
//!   *pending* room in memory, held by its creator's seat. The ticket goes
//!   into the reservation cache, whose eviction frees the seat
//!   ([`ticket_gone`]). In a cluster the database counts the seat too.
//! - **Commit** ([`commit`]): the ticket is consumed and the `join` queued in
//!   one critical section, so the log follows the ledger's order; a pending
//!   room is written first. [`finish_commit`] waits for the `join`, then
//!   opens the entry stream. A cluster node may commit a ticket another node
//!   reserved ([`commit_reserved_elsewhere`]).
//! - **Release** ([`release`]): the one way a seat changes on the way out —
//!   a connection lost or left ([`SeatGuard`]), a ticket gone, a grace period
//!   over, a leave of the room. It queues the `leave` the ledger asks for
//!   under the same lock, then does the follow-ups: a grace timer, emptying
//!   the ticket cache, dropping the cluster's seat row, unloading the room.

use std::{sync::Arc, time::Duration};

use tokio::{sync::oneshot, time::Instant};

use crate::{
    append::append_membership,
    authorization::authorize,
    entry::{EntryKind, LeaveReason, Seq, Timestamp, check_seq},
    entry_stream::EntryStream,
    error::{Error, ErrorKind, Result},
    ids::{RoomId, SeatId, UserId},
    live_room::LiveRoom,
    ports::{Action, CreateOutcome, Principal},
    reservations::Hold,
    room::RoomSpec,
    room_log::AppendResult,
    seat_ledger::{ConnectedSeat, Departure, ReleaseFollowUp, SeatLedger},
    state::EngineState,
    ticket::{TicketKey, VerifiedTicket},
};

/// A reserved seat's ticket (phase 1 of the join).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Opaque, single-use; commit it within the ttl.
    pub ticket: String,
    /// The room.
    pub room_id: RoomId,
    /// When the reservation lapses (server wall clock).
    pub expires_at: Timestamp,
}

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
    /// Users whose seats are joined or in grace, sorted — the first
    /// [`JOINED_MEMBERS_MAX`] of them by user id; the rest through
    /// presence (`Engine::members`).
    pub members: Vec<UserId>,
    /// How many users' seats are joined or in grace: `members.len()` unless
    /// the room has more than [`JOINED_MEMBERS_MAX`].
    pub member_count: u32,
    /// The oldest seq the room still stores (retention prunes below it).
    pub first_seq: Seq,
    /// False when entries after the asked-for `after_seq` were pruned: the
    /// stream starts at `first_seq` and the client missed what lay between
    /// (docs/contract.md §2, "Retention"). True otherwise, and without
    /// `after_seq`.
    pub resumed: bool,
}

/// At most this many names in [`Joined::members`]: a `joined` frame, and the
/// write buffer it leaves behind, stay small in a room of thousands
/// (docs/contract.md §2, "Presence and listing").
pub const JOINED_MEMBERS_MAX: usize = 100;

/// A committed connection, in parts: what `Membership` is made of.
pub(crate) type Committed = (Joined, EntryStream, SeatGuard);

/// How long an explicit leave waits for its `leave` entry before returning
/// (the entry stays queued and is written either way).
const LEAVE_ACK_WAIT: Duration = Duration::from_secs(5);

/// Tries to drop a cluster seat row (about two minutes with the backoff).
const RELEASE_ATTEMPTS: u32 = 30;

/// Phase 1: reserve a seat in `room_id` (creating the room, pending, when it
/// is absent and `create` is given) and mint its ticket.
///
/// Errors: `INVALID_INPUT` for a bad spec, `RATE_LIMITED` over the user's
/// reservation or creation rate, the room policy's refusal of `create` or
/// `join` (`FORBIDDEN`; `ROOM_NOT_FOUND` in a private room), `FORBIDDEN`
/// for a banned user or a service, `ROOM_NOT_FOUND`, `ROOM_CLOSED`,
/// `ROOM_FULL`,
/// `ROOM_PENDING` (another user is creating it), storage errors.
pub(crate) async fn reserve(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    create: Option<RoomSpec>,
) -> Result<Reservation> {
    let user = &principal.user;
    if principal.service {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "a service holds no seat; it posts and moderates without one",
        ));
    }
    if let Some(spec) = &create {
        spec.validate(state.config.max_capacity)?;
    }
    state.limits.reserve(user)?;
    let ttl = state.config.reservation_ttl;
    let deadline = Instant::now() + ttl;
    let (key, ticket) = state.tickets.mint(deadline, room_id, user);
    let (room, new_seat) = loop {
        let (room, seated) =
            room_for_reserve(state, principal, room_id, create.as_ref(), key).await?;
        if seated {
            break (room, None);
        }
        // A refusal holds nothing: a room loaded only for this reserve is
        // unloaded again (a closed room, say, would stay in memory forever).
        let refused = |err: Error| {
            state.directory.unload_if_idle(&room);
            err
        };
        // Asked before the ledger is touched.
        state.refresh_facts(&room).await.map_err(refused)?;
        authorize(
            state,
            principal,
            room_id,
            Some(&room.as_stored()),
            Action::Join,
        )
        .await
        .map_err(refused)?;
        let mut ledger = room.ledger();
        if ledger.is_retired() {
            continue; // unloaded meanwhile: look again
        }
        // A pending room's seat is only its creator's: nothing to count.
        let new_seat = match ledger.reserve(user, key) {
            Ok(seat) => seat.filter(|_| !ledger.is_pending()),
            Err(kind) => {
                drop(ledger);
                return Err(refused(kind.into()));
            }
        };
        drop(ledger);
        break (room, new_seat);
    };
    let mut uncached = UncachedTicket {
        state,
        room: &room,
        user,
        key,
        armed: true,
    };
    // Read after the seat is taken (a refusal frees it through the guard):
    // a ban stored meanwhile is either read here, or its kick, which runs
    // after it is stored, finds this seat and takes it away.
    refuse_if_banned(state, room_id, user).await?;
    if let (Some(cluster), Some(seat)) = (&state.cluster, new_seat) {
        // The local ledger only knows this node's seats; the database
        // decides for the cluster. On refusal the guard frees the seat.
        cluster
            .leases
            .take(room_id, user, &cluster.node_id, seat)
            .await?;
    }
    let hold = Hold {
        room: Arc::clone(&room),
        user: user.clone(),
        key,
        deadline,
    };
    state.reservations.insert(Arc::new(hold)).await;
    uncached.armed = false;
    let expires_at = Timestamp(Timestamp::now().millis() + ttl.as_millis() as i64);
    Ok(Reservation {
        ticket,
        room_id: room_id.clone(),
        expires_at,
    })
}

/// `FORBIDDEN` while `user` is banned from the room (docs/contract.md §2,
/// "Moderation"); a lapsed ban is no refusal.
pub(crate) async fn refuse_if_banned(
    state: &EngineState,
    room_id: &RoomId,
    user: &UserId,
) -> Result<()> {
    match state.store.ban(room_id, user).await? {
        Some(ban) if ban.holds_at(Timestamp::now()) => Err(Error::new(
            ErrorKind::Forbidden,
            "you are banned from this room",
        )),
        _ => Ok(()),
    }
}

/// The room for a reserve: in memory, else loaded from storage, else (with
/// `create`) a new pending room already holding `user`'s seat. Returns the
/// room and whether the seat is already taken.
async fn room_for_reserve(
    state: &EngineState,
    principal: &Principal,
    id: &RoomId,
    create: Option<&RoomSpec>,
    key: TicketKey,
) -> Result<(Arc<LiveRoom>, bool)> {
    if let Some(room) = state.stored_room(id).await? {
        return Ok((room, false));
    }
    let user = &principal.user;
    let spec = create.ok_or(ErrorKind::RoomNotFound)?;
    state.limits.create(user)?;
    if let Some(max) = state.config.max_pending_rooms
        && state.directory.pending_rooms_of(user) >= max as usize
    {
        return Err(Error::new(
            ErrorKind::RateLimited,
            format!("at most {max} rooms may be pending at once; commit or wait for one to lapse"),
        )
        .retry_after(state.config.reservation_ttl));
    }
    authorize(state, principal, id, None, Action::Create).await?;
    if let Some(cluster) = &state.cluster
        && !cluster
            .claims
            .claim(id, user, state.config.reservation_ttl)
            .await?
    {
        return Err(ErrorKind::RoomPending.into());
    }
    let ledger = SeatLedger::pending(spec.capacity, user.clone(), key);
    let queue = state.config.append_queue;
    let fresh = Arc::new(LiveRoom::pending(
        id.clone(),
        spec.clone(),
        user.clone(),
        ledger,
        queue,
    ));
    let room = state.directory.insert_if_absent(Arc::clone(&fresh));
    let seated = Arc::ptr_eq(&room, &fresh);
    Ok((room, seated))
}

/// Drops a ticket's seat if the reserve is abandoned before the ticket is in
/// the reservation cache (so a cancelled request leaks nothing).
struct UncachedTicket<'a> {
    state: &'a Arc<EngineState>,
    room: &'a Arc<LiveRoom>,
    user: &'a UserId,
    key: TicketKey,
    armed: bool,
}

impl Drop for UncachedTicket<'_> {
    fn drop(&mut self) {
        if self.armed {
            ticket_gone(self.state, self.room, self.user, &self.key);
        }
    }
}

/// Phase 2: use `ticket` as `user`'s live connection, streaming entries
/// after `after_seq` (or after the room's last seq).
///
/// Errors: `TICKET_INVALID` (forged, used, another user's), `TICKET_EXPIRED`,
/// `INVALID_INPUT` for an `after_seq` beyond the room's head, `ROOM_FULL`
/// (a cluster filled meanwhile), storage errors.
pub(crate) async fn commit(
    state: &Arc<EngineState>,
    principal: &Principal,
    ticket: &str,
    after_seq: Option<Seq>,
) -> Result<Committed> {
    let user = &principal.user;
    let verified = state
        .tickets
        .verify(ticket, user)
        .ok_or(ErrorKind::TicketInvalid)?;
    let expired = || Instant::now() >= verified.deadline;
    let refused = |expired: bool| -> Error {
        if expired {
            ErrorKind::TicketExpired
        } else {
            ErrorKind::TicketInvalid
        }
        .into()
    };
    if expired() {
        state.reservations.invalidate(&verified.key).await;
        return Err(ErrorKind::TicketExpired.into());
    }
    // The policy's answer for the ticket's room, once asked.
    let mut asked = None;
    if let Some(cluster) = &state.cluster {
        // `use_ticket` spends the ticket cluster-wide for good: first ask
        // what may refuse this commit, so a refusal leaves the ticket
        // usable, as on one node.
        if let Some(room) = state.stored_room(&verified.room).await? {
            // One read of the room's row: its facts and its head.
            state.refresh_facts(&room).await?;
            after_seq_within_head(&room, after_seq)?;
            asked = Some(ask_policy(state, principal, &room).await?);
        }
        if !cluster
            .leases
            .use_ticket(&verified.key, verified.expires_at)
            .await?
        {
            return Err(ErrorKind::TicketInvalid.into());
        }
    }
    let Some(hold) = state.reservations.get(&verified.key).await else {
        if state.cluster.is_some() && !expired() {
            return commit_reserved_elsewhere(state, principal, verified, after_seq, asked).await;
        }
        return Err(refused(expired()));
    };
    if hold.user != *user {
        return Err(ErrorKind::TicketInvalid.into());
    }
    let room = Arc::clone(&hold.room);
    drop(hold);
    if let Some(cluster) = &state.cluster
        && room.stored.get().is_some()
        && !cluster.leases.is_seated(&room.id, user).await?
    {
        // Its rows are gone: a kick, a ban or a close made on another
        // node, which this node hears of only for members. The seat goes.
        release(state, &room, user, |ledger| ledger.take_away(user, None));
        return Err(ErrorKind::TicketInvalid.into());
    }
    let send_refusal = match asked {
        Some(send_refusal) => send_refusal,
        None => {
            check_after_seq(state, &room, after_seq).await?;
            ask_policy(state, principal, &room).await?
        }
    };

    // Consume the ticket and, for a stored room, queue the join — one
    // critical section, so the log follows the ledger's order.
    let (pending, mut join_ack, connected) = {
        let mut ledger = room.ledger();
        if expired() {
            drop(ledger);
            ticket_gone(state, &room, user, &verified.key);
            return Err(ErrorKind::TicketExpired.into());
        }
        if ledger.is_closed() {
            drop(ledger);
            ticket_gone(state, &room, user, &verified.key);
            return Err(ErrorKind::RoomClosed.into());
        }
        let connected = ledger
            .consume(user, &verified.key)
            .map_err(|_| refused(expired()))?;
        ledger.set_send_refusal(user, send_refusal.as_ref());
        let pending = ledger.is_pending();
        let join = (!pending && ledger.mark_member(user))
            .then(|| append_membership(state, &room, user, EntryKind::Join, None));
        (pending, join, connected)
    };
    // From here every way out of this function releases the connection.
    let guard = SeatGuard::new(state, &room, user, connected.seat);
    state.reservations.invalidate(&verified.key).await;

    if pending {
        if let Err(err) = store_pending_room(state, &room, user, connected.seat).await {
            guard.abandon();
            return Err(err);
        }
        if room.facts().owner.as_ref() != Some(user) {
            // Another path stored the room meanwhile, under another owner
            // (a creator on another node): the policy's answers were about
            // this user's own room, so ask again on the stored facts.
            match ask_policy(state, principal, &room).await {
                Ok(send_refusal) => room.ledger().set_send_refusal(user, send_refusal.as_ref()),
                Err(err) => {
                    guard.abandon();
                    return Err(err);
                }
            }
        }
        let mut ledger = room.ledger();
        ledger.mark_stored();
        if ledger.mark_member(user) {
            join_ack = Some(append_membership(state, &room, user, EntryKind::Join, None));
        }
    }
    finish_commit(state, room, guard, connected, join_ack, after_seq).await
}

/// Commits a ticket that another node of the cluster reserved: the database
/// still seats its user, so this node takes a row for the same seat and a
/// local seat without a ticket. `asked`: the policy's `send` answer when
/// `commit` already asked it (with `after_seq` checked).
async fn commit_reserved_elsewhere(
    state: &Arc<EngineState>,
    principal: &Principal,
    ticket: VerifiedTicket,
    after_seq: Option<Seq>,
    mut asked: Option<Option<Error>>,
) -> Result<Committed> {
    let user = &principal.user;
    let cluster = state.cluster.as_ref().expect("only in a cluster");
    loop {
        let room = state
            .stored_room(&ticket.room)
            .await?
            .ok_or(ErrorKind::TicketInvalid)?;
        let send_refusal = match asked.take() {
            Some(send_refusal) => send_refusal,
            None => {
                check_after_seq(state, &room, after_seq).await?;
                ask_policy(state, principal, &room).await?
            }
        };
        let seat = room.ledger().seat_of(user).unwrap_or_else(SeatId::fresh);
        if !cluster
            .leases
            .adopt(&room.id, user, &cluster.node_id, seat)
            .await?
        {
            // Its seat was freed (a leave, or the ticket's node died).
            return Err(ErrorKind::TicketInvalid.into());
        }
        let (connected, join_ack) = {
            let mut ledger = room.ledger();
            if ledger.is_retired() {
                continue; // unloaded meanwhile: look again
            }
            if ledger.is_closed() {
                return Err(ErrorKind::RoomClosed.into());
            }
            let connected = ledger.adopt(user, seat);
            ledger.set_send_refusal(user, send_refusal.as_ref());
            let join = ledger
                .mark_member(user)
                .then(|| append_membership(state, &room, user, EntryKind::Join, None));
            (connected, join)
        };
        let guard = SeatGuard::new(state, &room, user, connected.seat);
        return finish_commit(state, room, guard, connected, join_ack, after_seq).await;
    }
}

/// The policy's questions at commit: `join` again (a grant may have been
/// withdrawn since the reserve; in a cluster, a ban too), and `send`, whose answer the seat keeps so
/// that a message costs no policy call. Returns the refusal of `send`, if
/// any.
///
/// Errors: the refusal of `join`; storage errors.
async fn ask_policy(
    state: &EngineState,
    principal: &Principal,
    room: &LiveRoom,
) -> Result<Option<Error>> {
    let facts = room.as_stored();
    authorize(state, principal, &room.id, Some(&facts), Action::Join).await?;
    if state.cluster.is_some() {
        // A ban made on another node while this ticket waited: that node
        // dropped the seat's rows, but this node's ledger never heard.
        refuse_if_banned(state, &room.id, &principal.user).await?;
    }
    Ok(
        authorize(state, principal, &room.id, Some(&facts), Action::Send)
            .await
            .err(),
    )
}

/// `INVALID_INPUT` unless `after_seq` is a seq and at most the room's head.
async fn check_after_seq(
    state: &EngineState,
    room: &LiveRoom,
    after_seq: Option<Seq>,
) -> Result<()> {
    if after_seq.is_some() {
        state.refresh_last_seq(room).await?;
    }
    after_seq_within_head(room, after_seq)
}

/// [`check_after_seq`] against the head this node knows (just refreshed).
fn after_seq_within_head(room: &LiveRoom, after_seq: Option<Seq>) -> Result<()> {
    let Some(after) = after_seq else {
        return Ok(());
    };
    check_seq("after_seq", after)?;
    if after > room.log.last_seq() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "after_seq is beyond the room's last seq",
        ));
    }
    Ok(())
}

/// Writes a pending room to storage, once however many commits ask; in a
/// cluster, then seats its creator (`user`, as `seat`) in the database.
async fn store_pending_room(
    state: &EngineState,
    room: &LiveRoom,
    user: &UserId,
    seat: SeatId,
) -> Result<()> {
    room.stored
        .get_or_try_init(|| async {
            let created = state.store.create_room(&room.as_stored()).await?;
            state.stored_a_change();
            match created {
                CreateOutcome::Created => {}
                CreateOutcome::AlreadyExists(stored) => {
                    // Created meanwhile by another path: the stored room is
                    // the truth. Only the creator is seated, so any capacity
                    // (≥ 1) still holds.
                    tracing::info!(room = %room.id, "pending room was already stored; adopting it");
                    room.adopt_stored(&stored);
                }
            }
            Ok::<(), Error>(())
        })
        .await?;
    if let Some(cluster) = &state.cluster {
        // Counted like any seat: a room created meanwhile by another node
        // may already be full.
        cluster
            .leases
            .take(&room.id, user, &cluster.node_id, seat)
            .await?;
    }
    Ok(())
}

/// The end of every commit: wait for the `join`, then open the stream.
async fn finish_commit(
    state: &EngineState,
    room: Arc<LiveRoom>,
    guard: SeatGuard,
    connected: ConnectedSeat,
    join_ack: Option<oneshot::Receiver<AppendResult>>,
    after_seq: Option<Seq>,
) -> Result<Committed> {
    if let Some(ack) = join_ack {
        // Storage trouble: the join stays queued and is retried; this commit
        // gives up and its seat goes to grace.
        match tokio::time::timeout(state.config.reservation_ttl, ack).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(err))) => return Err(err),
            Ok(Err(_)) | Err(_) => return Err(ErrorKind::Unavailable.into()),
        }
    }

    // Subscribe before reading last_seq: whatever is stored after this point
    // reaches the live feed, whatever before is in the backlog.
    let live = state.bus.subscribe(&room.id).await;
    state.refresh_last_seq(&room).await?;
    if after_seq.is_some() && state.cluster.is_none() {
        // A resume: where the log starts decides `resumed` (a cluster
        // just read the row).
        state.refresh_first_seq(&room).await?;
    }
    let last_seq = room.log.last_seq();
    let first_seq = room.facts().first_seq;
    let asked = after_seq.unwrap_or(last_seq);
    // Entries after `asked` that retention pruned cannot be replayed: start
    // where the log starts, and say so.
    let resumed = asked + 1 >= first_seq;
    let start = asked.max(first_seq.saturating_sub(1));
    let joined = match &state.cluster {
        // Seats on every node: the database's count.
        Some(cluster) => {
            let seated = cluster.leases.seated(&room.id).await?;
            let member_count = u32::try_from(seated.members.len()).unwrap_or(u32::MAX);
            let mut members = seated.members; // sorted
            members.truncate(JOINED_MEMBERS_MAX);
            Joined {
                room_id: room.id.clone(),
                capacity: room.ledger().capacity(),
                occupancy: seated.occupancy,
                last_seq,
                members,
                member_count,
                first_seq,
                resumed,
            }
        }
        None => {
            let ledger = room.ledger();
            let (members, member_count) = ledger.members(JOINED_MEMBERS_MAX);
            Joined {
                room_id: room.id.clone(),
                capacity: ledger.capacity(),
                occupancy: ledger.occupancy(),
                last_seq,
                members,
                member_count,
                first_seq,
                resumed,
            }
        }
    };
    let entries = EntryStream::new(
        Arc::clone(&state.store),
        Arc::clone(&state.bus),
        room.id.clone(),
        guard.user().clone(),
        live,
        start,
        last_seq,
        state.config.reorder_wait,
        connected.ended,
        state.counters.subscribers.enter(),
    );
    Ok((joined, entries, guard))
}

/// Holds one live connection's claim on a seat. Drop = connection lost
/// (grace); [`SeatGuard::leave`] = explicit leave.
pub struct SeatGuard {
    state: Arc<EngineState>,
    room: Arc<LiveRoom>,
    user: UserId,
    /// Which seat of `user` this connection holds: after a leave and a new
    /// join, a stale guard releases nothing.
    seat: SeatId,
    armed: bool,
}

impl SeatGuard {
    fn new(state: &Arc<EngineState>, room: &Arc<LiveRoom>, user: &UserId, seat: SeatId) -> Self {
        SeatGuard {
            state: Arc::clone(state),
            room: Arc::clone(room),
            user: user.clone(),
            seat,
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

    /// Explicit leave: frees the seat now if this was the user's last
    /// connection in the room. Returns once the `leave` entry (if any) is
    /// stored, or after a few seconds of storage trouble (it stays queued and
    /// is written).
    pub async fn leave(mut self) -> Result<()> {
        self.armed = false;
        let outcome = self.let_go(Departure::Leave);
        wait_for_leave(outcome.leave_ack).await
    }

    /// Frees the seat at once, as a leave does, without waiting: for a commit
    /// that failed before the client saw it.
    fn abandon(mut self) {
        self.armed = false;
        self.let_go(Departure::Leave);
    }

    fn let_go(&self, how: Departure) -> Release {
        let (user, seat) = (&self.user, self.seat);
        release(&self.state, &self.room, user, |ledger| {
            ledger.release(user, seat, how)
        })
    }
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        if self.armed {
            self.let_go(Departure::Lost);
        }
    }
}

impl std::fmt::Debug for SeatGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeatGuard")
            .field("room", &self.room.id)
            .field("user", &self.user)
            .field("seat", &self.seat)
            .finish()
    }
}

/// `user` leaves `room_id` from every connection at once: the seat is freed,
/// a `leave` appended, unused tickets invalidated, every entry stream of the
/// seat ends. False when the user held no seat there.
pub(crate) async fn leave_room(
    state: &Arc<EngineState>,
    user: &UserId,
    room_id: &RoomId,
) -> Result<bool> {
    let Some(room) = state.directory.get(room_id) else {
        return Ok(false);
    };
    take_seat_away(state, &room, user, None).await
}

/// Takes `user`'s seat in `room` away from every connection at once: a
/// leave of the room (`reason` `None`), a kick, a ban or a close. The
/// `leave` entry and the end of the user's streams carry `reason`. Waits
/// for the `leave` as [`leave_room`] does; false when no seat was held here.
pub(crate) async fn take_seat_away(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    user: &UserId,
    reason: Option<LeaveReason>,
) -> Result<bool> {
    let outcome = release(state, room, user, |ledger| ledger.take_away(user, reason));
    wait_for_leave(outcome.leave_ack).await?;
    Ok(outcome.freed)
}

/// Takes `user`'s seat away for a removal another node made, unless the
/// seat was taken after `taken_before` (see `remote_removals.rs`), without
/// waiting: its `leave` was appended there already, so the one the ledger
/// asks for here is answered `Unchanged`.
pub(crate) fn take_seat_away_now(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    user: &UserId,
    reason: LeaveReason,
    taken_before: Timestamp,
) {
    release(state, room, user, |ledger| {
        ledger.take_away_taken_before(user, reason, taken_before)
    });
}

/// [`take_seat_away`] for every user of `room` at once (a close): every
/// `leave` is queued before the first is waited for, so they share commits.
pub(crate) async fn take_every_seat_away(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    reason: LeaveReason,
) -> Result<()> {
    let users = room.ledger().seated_users();
    let acks: Vec<_> = users
        .iter()
        .map(|user| {
            let outcome = release(state, room, user, |ledger| {
                ledger.take_away(user, Some(reason))
            });
            outcome.leave_ack
        })
        .collect();
    for ack in acks {
        wait_for_leave(ack).await?;
    }
    Ok(())
}

/// Waits up to [`LEAVE_ACK_WAIT`] for a `leave` entry to be stored; a
/// storage error it reports is returned, a timeout is not an error.
pub(crate) async fn wait_for_leave(ack: Option<oneshot::Receiver<AppendResult>>) -> Result<()> {
    if let Some(ack) = ack
        && let Ok(Ok(stored)) = tokio::time::timeout(LEAVE_ACK_WAIT, ack).await
    {
        stored?;
    }
    Ok(())
}

/// A ticket left the reservation cache (used, expired or invalidated): its
/// seat goes if nothing else holds it.
pub(crate) fn ticket_gone(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    user: &UserId,
    key: &TicketKey,
) {
    release(state, room, user, |ledger| ledger.drop_ticket(user, key));
}

/// Every seat held here ends at once, as if each user left (a cluster node
/// whose lease lapsed).
pub(crate) fn end_every_seat(state: &Arc<EngineState>) {
    for room in state.directory.snapshot() {
        let users = room.ledger().seated_users();
        for user in users {
            release(state, &room, &user, |ledger| ledger.leave_everywhere(&user));
        }
    }
}

/// What a release did.
struct Release {
    /// A seat was freed.
    freed: bool,
    /// Resolves once the `leave` entry is stored, when one was appended.
    leave_ack: Option<oneshot::Receiver<AppendResult>>,
}

/// The one way a seat changes on the way out: `change` runs on the room's
/// ledger, the `leave` it calls for is queued under the same lock (so the log
/// orders it with the seat decisions around it), then the follow-ups that
/// need no lock run.
fn release(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    user: &UserId,
    change: impl FnOnce(&mut SeatLedger) -> ReleaseFollowUp,
) -> Release {
    let (follow_up, leave_ack) = {
        let mut ledger = room.ledger();
        let follow_up = change(&mut ledger);
        let ack = follow_up.append_leave.then(|| {
            append_membership(state, room, user, EntryKind::Leave, follow_up.leave_reason)
        });
        (follow_up, ack)
    };
    let freed = follow_up.freed();
    follow_up_release(state, room, user, follow_up);
    Release { freed, leave_ack }
}

/// The follow-ups of a release that need no ledger lock.
fn follow_up_release(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    user: &UserId,
    follow_up: ReleaseFollowUp,
) {
    if let Some(grace) = follow_up.grace {
        let weak = Arc::downgrade(state);
        let (room, user) = (Arc::clone(room), user.clone());
        let period = state.config.reconnect_grace;
        let timer = state.counters.grace_timers.enter();
        state.runtime.spawn(async move {
            let _timer = timer;
            tokio::time::sleep(period).await;
            if let Some(state) = weak.upgrade() {
                release(&state, &room, &user, |ledger| {
                    ledger.end_grace(&user, grace)
                });
            }
        });
    }
    if !follow_up.invalidated.is_empty() {
        // Already gone from the ledger; this only empties the cache early.
        let weak = Arc::downgrade(state);
        state.runtime.spawn(async move {
            if let Some(state) = weak.upgrade() {
                for key in follow_up.invalidated {
                    state.reservations.invalidate(&key).await;
                }
            }
        });
    }
    let Some(seat) = follow_up.freed_seat else {
        return;
    };
    if let Some(cluster) = &state.cluster {
        let (cluster, room, user) = (cluster.clone(), room.id.clone(), user.clone());
        state.runtime.spawn(async move {
            // A row left behind would count as a seat for as long as this
            // node lives: retry through a database blip. (A late delete is
            // safe: it names this seat's id only.)
            let node = &cluster.node_id;
            let mut backoff = Duration::from_millis(100);
            for _ in 0..RELEASE_ATTEMPTS {
                match cluster.leases.release(&room, &user, node, seat).await {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(%room, code = err.code(), "could not drop a seat row; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            tracing::error!(%room, "gave up dropping a seat row: it counts until this node restarts");
        });
    }
    state.directory.unload_if_idle(room);
}
