//! The read paths: a page of a room's history (docs/contract.md §3) and a
//! room's facts. Neither changes a seat or the log.

use crate::{
    entry::{Entry, MAX_HISTORY_LIMIT, SeqRange, check_seq},
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    room::RoomInfo,
    state::EngineState,
};

/// A page of `room_id`'s log for `user`, who must hold a seat there (in any
/// state; in a cluster, on any node).
///
/// Errors: `INVALID_INPUT` for a bad range, `NOT_A_MEMBER`, storage errors.
pub(crate) async fn history(
    state: &EngineState,
    user: &UserId,
    room_id: &RoomId,
    range: SeqRange,
) -> Result<Vec<Entry>> {
    validate_range(&range)?;
    let seated_here = state
        .directory
        .get(room_id)
        .is_some_and(|room| room.ledger().holds_seat(user));
    if !seated_here {
        state.seated_elsewhere(room_id, user).await?;
    }
    state.store.entries(room_id, range).await
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

/// The room's facts, if it is stored (a pending room is not). Occupancy is
/// this node's ledger, or in a cluster the database's count of every node.
pub(crate) async fn room_info(state: &EngineState, id: &RoomId) -> Result<Option<RoomInfo>> {
    if let Some(cluster) = &state.cluster {
        let Some(stored) = state.store.room(id).await? else {
            return Ok(None);
        };
        let occupancy = cluster.leases.seated(id).await?.occupancy;
        return Ok(Some(RoomInfo {
            room_id: stored.id,
            title: stored.title,
            capacity: stored.capacity,
            occupancy,
            last_seq: stored.last_seq,
        }));
    }
    if let Some(room) = state.directory.get(id) {
        let ledger = room.ledger();
        if !ledger.is_retired() {
            if ledger.is_pending() {
                return Ok(None);
            }
            return Ok(Some(RoomInfo {
                room_id: id.clone(),
                title: room.facts().title,
                capacity: ledger.capacity(),
                occupancy: ledger.occupancy(),
                last_seq: room.log.last_seq(),
            }));
        }
    }
    Ok(state.store.room(id).await?.map(|stored| RoomInfo {
        room_id: stored.id,
        title: stored.title,
        capacity: stored.capacity,
        occupancy: 0,
        last_seq: stored.last_seq,
    }))
}
