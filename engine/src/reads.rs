//! The read paths: a page of a room's history (docs/contract.md §3) and a
//! room's facts. Neither changes a seat or the log.

use crate::{
    authorization::authorize,
    entry::{Entry, MAX_HISTORY_LIMIT, SeqRange, check_seq},
    error::{Error, ErrorKind, Result},
    ids::RoomId,
    ports::{Action, Principal},
    room::{RoomInfo, StoredRoom},
    state::EngineState,
};

/// A page of `room_id`'s log. The reader needs the policy's `read` and a
/// member's seat — joined or in grace, on any node of a cluster; a
/// reservation alone is not enough — or to be the room's owner.
///
/// Errors: `INVALID_INPUT` for a bad range, `ROOM_NOT_FOUND` for a room that
/// is not stored (or a private room the reader may not see), the policy's
/// refusal (`FORBIDDEN`), `NOT_A_MEMBER`, storage errors.
pub(crate) async fn history(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    range: SeqRange,
) -> Result<Vec<Entry>> {
    validate_range(&range)?;
    let user = &principal.user;
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Read).await?;
    let member_here = state
        .directory
        .get(room_id)
        .is_some_and(|room| room.ledger().is_member(user));
    let owner = facts.owner.as_ref() == Some(user);
    if !member_here && !owner && !member_elsewhere(state, room_id, principal).await? {
        return Err(ErrorKind::NotAMember.into());
    }
    state.store.entries(room_id, range).await
}

/// In a cluster, whether the user is a member through another node.
async fn member_elsewhere(
    state: &EngineState,
    room_id: &RoomId,
    principal: &Principal,
) -> Result<bool> {
    let Some(cluster) = &state.cluster else {
        return Ok(false);
    };
    let seated = cluster.leases.seated(room_id).await?;
    Ok(seated.members.contains(&principal.user))
}

/// `after`/`before` are seqs; `limit` is 1..=[`MAX_HISTORY_LIMIT`].
fn validate_range(range: &SeqRange) -> Result<()> {
    if let Some(after) = range.after {
        check_seq("after_seq", after)?;
    }
    if let Some(before) = range.before {
        check_seq("before_seq", before)?;
    }
    if !(1..=MAX_HISTORY_LIMIT).contains(&range.limit) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("limit must be between 1 and {MAX_HISTORY_LIMIT}"),
        ));
    }
    Ok(())
}

/// The room's facts, if it is stored (a pending room is not) and the
/// policy lets the caller `read` it; `None` for a private room the caller
/// may not see, as for an absent one. Occupancy is this node's ledger, or
/// in a cluster the database's count of every node.
///
/// Errors: the policy's refusal for a public room (`FORBIDDEN`); storage
/// errors.
pub(crate) async fn room_info(
    state: &EngineState,
    principal: &Principal,
    id: &RoomId,
) -> Result<Option<RoomInfo>> {
    let Some(facts) = state.stored_facts(id).await? else {
        return Ok(None);
    };
    match authorize(state, principal, id, Some(&facts), Action::Read).await {
        Err(err) if err.kind() == ErrorKind::RoomNotFound => return Ok(None),
        other => other?,
    }
    if let Some(cluster) = &state.cluster {
        // Seats and appends of every node: ask the database.
        let Some(stored) = state.store.room(id).await? else {
            return Ok(None);
        };
        let occupancy = cluster.leases.seated(id).await?.occupancy;
        return Ok(Some(info(stored, occupancy)));
    }
    let occupancy = state
        .directory
        .get(id)
        .map_or(0, |room| room.ledger().occupancy());
    Ok(Some(info(facts, occupancy)))
}

fn info(stored: StoredRoom, occupancy: u32) -> RoomInfo {
    RoomInfo {
        room_id: stored.id,
        title: stored.title,
        capacity: stored.capacity,
        occupancy,
        last_seq: stored.last_seq,
    }
}
