//! Moderation (docs/contract.md §2): invitations to a room. Each action
//! needs the room policy's `moderate`; a room's owner — its first
//! moderator — always has it.

use crate::{
    authorization::authorize,
    error::{ErrorKind, Result},
    ids::{RoomId, UserId},
    ports::{Action, Principal},
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
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Moderate).await?;
    state.store.set_invite(room_id, user, invited).await
}
