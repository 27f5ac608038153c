//! Moderation (docs/contract.md §2, "Moderation"): invitations, kicks, bans
//! and moderators. Each action needs the room policy's `moderate`, which a
//! room's owner, its moderators and services always have; naming
//! moderators is the owner's (or a service's) alone. Only a service may
//! kick or ban a room's owner; only the owner or a service, a moderator. A
//! ban also ends the user's moderator status.

use std::sync::Arc;

use crate::{
    append::append_membership,
    entry::{EntryKind, LeaveReason},
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    join::{take_seat_away, wait_for_leave},
    lifecycle::moderated_room,
    ports::Principal,
    room::{Ban, StoredRoom, check_reason},
    state::EngineState,
};

/// Invites `user` to `room_id`, or withdraws the invitation. A withdrawn
/// invitation refuses the user's next reserve of a private room; seats
/// already held stay until left.
///
/// Errors: `ROOM_NOT_FOUND` (absent, pending, or private and not visible to
/// the caller), the policy's refusal (`FORBIDDEN`), storage errors.
pub(crate) async fn set_invite(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    user: &UserId,
    invited: bool,
) -> Result<()> {
    moderated_room(state, principal, room_id).await?;
    state.store.set_invite(room_id, user, invited).await
}

/// Takes `user`'s seat away at once, with a `leave` entry of reason
/// `kicked`; their streams end with `KICKED`. They may reserve again. True
/// when a seat was taken. `note` (the moderator's reason) goes to the log
/// of the server, not to the room.
///
/// Errors: `INVALID_INPUT` for a note over 500 characters, those of
/// [`moderated_room`], `FORBIDDEN` for the room's owner (unless a service
/// asks), storage errors.
pub(crate) async fn kick(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    user: &UserId,
    note: Option<&str>,
) -> Result<bool> {
    check_reason(note)?;
    let facts = moderated_room(state, principal, room_id).await?;
    refuse_untouchable(state, principal, &facts, user).await?;
    let kicked = remove(state, room_id, user).await?;
    tracing::info!(room = %room_id, %user, by = %principal.user, kicked, reason = note, "kick");
    Ok(kicked)
}

/// Bans `user` from the room until `ban.until` (`None`: until lifted), and
/// kicks them if seated; while it holds, their reserves get `FORBIDDEN`.
/// `None` lifts the ban. Stored, so it holds on every node and after a
/// restart.
///
/// Errors: `INVALID_INPUT` for a reason over 500 characters, those of
/// [`moderated_room`], `FORBIDDEN` for the room's owner, storage errors.
pub(crate) async fn set_ban(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    user: &UserId,
    ban: Option<&Ban>,
) -> Result<()> {
    check_reason(ban.and_then(|b| b.reason.as_deref()))?;
    let facts = moderated_room(state, principal, room_id).await?;
    if let Some(ban) = ban {
        refuse_untouchable(state, principal, &facts, user).await?;
        state.store.set_ban(room_id, user, Some(ban)).await?;
        state.stored_a_change();
        // A banned moderator could lift their own ban.
        state.store.set_moderator(room_id, user, false).await?;
        let kicked = remove(state, room_id, user).await?;
        let until = ban.until.map(|t| t.to_string());
        tracing::info!(
            room = %room_id, %user, by = %principal.user, kicked, until, reason = ban.reason,
            "ban"
        );
    } else {
        state.store.set_ban(room_id, user, None).await?;
        tracing::info!(room = %room_id, %user, by = %principal.user, "ban lifted");
    }
    Ok(())
}

/// Makes `user` a moderator of the room, or not. Only the room's owner or a
/// service may.
///
/// Errors: those of [`moderated_room`], `FORBIDDEN` for anyone else,
/// storage errors.
pub(crate) async fn set_moderator(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    user: &UserId,
    moderator: bool,
) -> Result<()> {
    let facts = moderated_room(state, principal, room_id).await?;
    if !principal.service && facts.owner.as_ref() != Some(&principal.user) {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "only the room's owner names moderators",
        ));
    }
    state.store.set_moderator(room_id, user, moderator).await
}

/// `FORBIDDEN` when a moderator aims at the room's owner or at another
/// moderator: only the owner (or a service) acts on moderators, and only a
/// service on the owner.
async fn refuse_untouchable(
    state: &EngineState,
    principal: &Principal,
    facts: &StoredRoom,
    user: &UserId,
) -> Result<()> {
    if principal.service {
        return Ok(());
    }
    if facts.owner.as_ref() == Some(user) {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "the room's owner cannot be kicked or banned",
        ));
    }
    if facts.owner.as_ref() != Some(&principal.user)
        && state.store.is_moderator(&facts.id, user).await?
    {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "only the room's owner kicks or bans a moderator",
        ));
    }
    Ok(())
}

/// Takes `user`'s seat in the room away, as a kick. In a cluster the seat
/// may be held through any node: every node's rows go first (so the seat
/// stops counting and the `leave` is not held back by another node's
/// seat), then the `leave` is appended here; the other nodes free their
/// seats when it reaches them (`remote_removals.rs`).
async fn remove(state: &Arc<EngineState>, room_id: &RoomId, user: &UserId) -> Result<bool> {
    let reason = Some(LeaveReason::Kicked);
    let Some(cluster) = &state.cluster else {
        let Some(room) = state.directory.get(room_id) else {
            return Ok(false);
        };
        return take_seat_away(state, &room, user, reason).await;
    };
    let seated = cluster.leases.is_seated(room_id, user).await?;
    cluster.leases.evict(room_id, Some(user)).await?;
    let Some(room) = state.stored_room(room_id).await? else {
        return Ok(false);
    };
    room.mark_removed_here(user);
    let here = take_seat_away(state, &room, user, reason).await?;
    // A member through another node: its `leave` is written here (the
    // store answers `Unchanged` when the log has it already).
    let ack = append_membership(state, &room, user, EntryKind::Leave, reason);
    wait_for_leave(Some(ack)).await?;
    Ok(here || seated)
}
