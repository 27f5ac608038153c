//! The engine's side of "who may do what" (docs/contract.md §2): the rules
//! it keeps whatever the policy, then the question to the [`RoomPolicy`]
//! port. Every action of the join, append and read paths goes through
//! [`authorize`]; transports never decide.
//!
//! 1. A service (an API key) and a room's owner may do everything in it.
//! 2. Otherwise the policy decides; where it refuses, the engine's own
//!    grants still allow: a room's moderators may do everything in it, and
//!    in a private room a user a moderator invited may create, join, read
//!    and send. (Looked up only on a refusal, so an allowed action costs no
//!    storage read.)
//! 3. Otherwise the refusal stands. A refusal in a private room is
//!    `ROOM_NOT_FOUND` whatever the policy said — `UNAVAILABLE` included,
//!    which would otherwise tell a stranger during a hook outage that the id
//!    is taken — so a private room's existence never leaks. The exception is
//!    `send`, asked only of a user who holds a seat there and so knows the
//!    room exists: its refusal passes as the policy gave it.

use crate::{
    error::{ErrorKind, Result},
    ids::RoomId,
    ports::{
        auth::Principal,
        policy::{Action, Decision, PolicyRequest},
    },
    room::StoredRoom,
    state::EngineState,
};

/// Allows `action` in `room_id` (`room`: its stored facts, `None` only for a
/// room being created) or says why not.
///
/// Errors: whatever the policy denies with (`FORBIDDEN`, `NOT_A_MEMBER`,
/// `ROOM_NOT_FOUND`, `UNAVAILABLE`); `ROOM_NOT_FOUND` for any refusal in a
/// private room but `send`'s; storage errors of the invitation lookup.
pub(crate) async fn authorize(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    room: Option<&StoredRoom>,
    action: Action,
) -> Result<()> {
    if principal.service {
        return Ok(());
    }
    let private = room.is_some_and(|r| r.private);
    let hide_refusal = private && action != Action::Send;
    if room.is_some_and(|r| r.owner.as_ref() == Some(&principal.user)) {
        return Ok(());
    }
    let request = PolicyRequest {
        principal,
        room_id,
        room,
        action,
    };
    let refusal = match state.policy.decide(&request).await {
        Decision::Allow => return Ok(()),
        Decision::Deny(err) => err,
    };
    // Grants the engine keeps, looked up only when the policy refused, so
    // that an allowed action costs no storage read.
    if room.is_some() {
        let user = &principal.user;
        if state.store.is_moderator(room_id, user).await? {
            return Ok(());
        }
        if private && action != Action::Moderate && state.store.is_invited(room_id, user).await? {
            return Ok(());
        }
    }
    if hide_refusal {
        return Err(ErrorKind::RoomNotFound.into());
    }
    Err(refusal)
}
