//! Read markers (docs/contract.md §2, "Read markers"): a user's last-read
//! seq per room, stored and monotone, with the unread count derived from
//! the log when asked (so it is exact whatever raced with it), and a live
//! `receipt` notice to the room's other members.

use std::sync::Arc;

use crate::{
    authorization::authorize,
    entry::{Seq, Timestamp, check_seq},
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    notice::{Notice, NoticeKind},
    ports::{Action, Principal},
    room::ReadState,
    state::EngineState,
};

/// Raises the caller's read marker in `room_id` to `seq` (a lower seq
/// changes nothing) and returns their read state as it is now. Unless the
/// seq was ignored, the room's other live members get a `receipt` notice.
/// Needs the policy's `read`.
///
/// Errors: `FORBIDDEN` for a service (it reads no messages of its own),
/// `INVALID_INPUT` for a seq beyond the room's last, `ROOM_NOT_FOUND`, the
/// policy's refusal, storage errors.
pub(crate) async fn mark_read(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    seq: Seq,
) -> Result<ReadState> {
    if principal.service {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "a service has no read marker; mark as a user",
        ));
    }
    check_seq("seq", seq)?;
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Read).await?;
    let head = match &state.cluster {
        // Other nodes append too: the stored head.
        Some(_) => state.store.room(room_id).await?.map_or(0, |r| r.last_seq),
        None => facts.last_seq,
    };
    if seq > head {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "seq is beyond the room's last seq",
        ));
    }
    let user = &principal.user;
    let now = state.store.set_read_marker(room_id, user, seq).await?;
    // This seq is the marker now (a lower one was ignored): tell the others.
    if now == seq {
        let notice = Notice {
            room_id: room_id.clone(),
            sender: user.clone(),
            at: Timestamp::now(),
            kind: NoticeKind::Receipt { seq: now },
        };
        state.bus.notify(Arc::new(notice)).await;
    }
    read_state(state, room_id, user).await
}

/// `user`'s read state in `room_id`, for the user themselves (who needs
/// the policy's `read`, as for the room's facts: a private room they may
/// not see stays hidden) or a service.
///
/// Errors: `FORBIDDEN` for anyone else, `ROOM_NOT_FOUND`, the policy's
/// refusal, storage errors.
pub(crate) async fn read_marker(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    user: &UserId,
) -> Result<ReadState> {
    if !principal.service && &principal.user != user {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "only a service reads another user's read marker",
        ));
    }
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Read).await?;
    read_state(state, room_id, user).await
}

/// One room's read state of `user`, from storage.
pub(crate) async fn read_state(
    state: &EngineState,
    room_id: &RoomId,
    user: &UserId,
) -> Result<ReadState> {
    let states = state
        .store
        .read_states(user, std::slice::from_ref(room_id))
        .await?;
    Ok(states.into_iter().next().unwrap_or_default())
}
