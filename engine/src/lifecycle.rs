//! A stored room's lifecycle (docs/contract.md §2, "Lifecycle"): change its
//! title or capacity, close it, purge it. Each needs the policy's
//! `moderate` (the owner, the room's moderators and services have it). A
//! pending room does not exist yet: it can be neither changed nor closed.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    append::append_membership,
    authorization::authorize,
    entry::{EntryKind, LeaveReason},
    error::{Error, ErrorKind, Result},
    ids::RoomId,
    join::{take_every_seat_away, wait_for_leave},
    live_room::LiveRoom,
    ports::{Action, Principal},
    reads,
    room::{RoomInfo, RoomPatch, StoredRoom},
    state::EngineState,
};

/// The room's facts for a moderator: stored, visible and moderated by the
/// caller.
///
/// Errors: `ROOM_NOT_FOUND` (absent, pending, or private and hidden from the
/// caller), the policy's refusal of `moderate` (`FORBIDDEN`), storage
/// errors.
pub(crate) async fn moderated_room(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
) -> Result<StoredRoom> {
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Moderate).await?;
    Ok(facts)
}

/// Changes the room's title and/or capacity. A capacity below the
/// occupancy evicts no one: the ledger admits a seat only while occupancy <
/// capacity, so new seats wait until members leave.
///
/// Errors: `INVALID_INPUT` for a bad title or capacity, those of
/// [`moderated_room`], `ROOM_CLOSED`, storage errors.
pub(crate) async fn update_room(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    patch: &RoomPatch,
) -> Result<RoomInfo> {
    patch.validate(state.config.max_capacity)?;
    let facts = moderated_room(state, principal, room_id).await?;
    if facts.closed {
        return Err(ErrorKind::RoomClosed.into());
    }
    let stored = state
        .store
        .update_room(room_id, patch)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    if let Some(room) = state.directory.get(room_id) {
        room.adopt_stored(&stored);
    }
    reads::room_info(state, principal, room_id)
        .await?
        .ok_or_else(|| ErrorKind::RoomNotFound.into())
}

/// Closes the room: it admits no seat from now on, every seat is taken away
/// with a `leave` entry of reason `room_closed` (their streams end with
/// `ROOM_CLOSED`), unused tickets die, and later reserves get
/// `ROOM_CLOSED`. History stays readable to those allowed. With `purge`,
/// the log and everything stored about the room are then deleted: the id
/// is free again (`ROOM_NOT_FOUND`, and a reserve with `create` makes a new
/// room).
///
/// Errors: those of [`moderated_room`], storage errors.
pub(crate) async fn close_room(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    purge: bool,
) -> Result<()> {
    moderated_room(state, principal, room_id).await?;
    // Stored as closed first: a node or a restart that loads the room now
    // finds it closed and seats no one.
    if !state.store.close_room(room_id, false).await? {
        return Err(ErrorKind::RoomNotFound.into());
    }
    state.stored_a_change();
    // In a cluster, seats held through other nodes: their rows go (the
    // database refuses new seats in a closed room), and their `leave`
    // entries are written here; each node frees its seats when they reach
    // it (`remote_removals.rs`).
    let mut elsewhere = Vec::new();
    if let Some(cluster) = &state.cluster {
        elsewhere = cluster.leases.seated(room_id).await?.members;
        cluster.leases.evict(room_id, None).await?;
    }
    if let Some(room) = state.stored_room(room_id).await? {
        // Closed under the ledger lock, then emptied: a reserve that raced
        // this either took its seat before (and loses it here) or is refused.
        let here = {
            let mut ledger = room.ledger();
            ledger.close();
            ledger.seated_users()
        };
        room.mark_closed();
        for user in here.iter().chain(&elsewhere) {
            room.mark_removed_here(user);
        }
        take_every_seat_away(state, &room, LeaveReason::RoomClosed).await?;
        let reason = Some(LeaveReason::RoomClosed);
        let acks: Vec<_> = elsewhere
            .iter()
            .map(|user| append_membership(state, &room, user, EntryKind::Leave, reason))
            .collect();
        for ack in acks {
            wait_for_leave(Some(ack)).await?;
        }
        if purge {
            wait_until_idle(&room).await?;
        }
        state.directory.unload_if_idle(&room);
    }
    if purge {
        if !state.store.close_room(room_id, true).await? {
            return Err(ErrorKind::RoomNotFound.into());
        }
        state.stored_a_change();
    }
    tracing::info!(room = %room_id, by = %principal.user, purge, "room closed");
    Ok(())
}

/// How long a purge waits for the room's queued entries to be written.
const PURGE_WAIT: Duration = Duration::from_secs(10);

/// Waits until nothing of `room` is queued for storage: an entry written
/// after its room was purged would fail its whole batch (and other rooms'
/// entries with it) for good.
///
/// Errors: `UNAVAILABLE` when storage keeps the queue from emptying.
async fn wait_until_idle(room: &LiveRoom) -> Result<()> {
    let deadline = Instant::now() + PURGE_WAIT;
    while !room.log.is_idle() {
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the room's last entries are still being stored; retry the purge",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
