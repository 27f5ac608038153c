//! Edits and redactions, end to end (docs/contract.md §2, "Edits and
//! redactions"): each is an entry of its own, with its own `seq`, queued on
//! the room's log like a send, so every subscriber and every resume sees it
//! in order. The store applies it to its target in the same transaction:
//! an edit replaces the target's body and data, a redaction erases them
//! (and those of the target's edits) from storage.
//!
//! 1. The room must be stored and readable by the caller (a private room
//!    stays hidden: `ROOM_NOT_FOUND`).
//! 2. The target is read once here to decide who may act: its sender never
//!    changes. What may change meanwhile (a redaction or pruning queued
//!    ahead) the store checks again in the transaction, and refuses.
//! 3. The entry is queued without a seat: a user may fix or take back their
//!    words from any connection, a moderator or service may act on any.

use std::sync::Arc;

use crate::{
    append::{Closed, queue_unseated, validate_send},
    authorization::authorize,
    entry::{Entry, EntryKind, Message, NewEntry, Seq, SeqRange, check_seq},
    error::{Error, ErrorKind, Result},
    ids::RoomId,
    ports::{Action, Decision, PolicyRequest, Principal},
    room::{StoredRoom, check_reason},
    state::EngineState,
};

/// Appends an `edit` of the `text` entry at `seq`: its sender may; anyone
/// else only where the room policy allows [`Action::Edit`] (no one by
/// default; a service always may). The same size and rate rules as a send;
/// idempotent by `client_id` when given. Returns the `edit` entry.
///
/// Errors: `INVALID_INPUT` (bad body, data or `client_id`; the target is
/// not a text message or was redacted; a `client_id` used for another
/// entry), `MESSAGE_TOO_LARGE`, `RATE_LIMITED`, `ROOM_NOT_FOUND`,
/// `ROOM_CLOSED`, `ENTRY_NOT_FOUND`, `FORBIDDEN` (the policy, a ban),
/// storage errors.
pub(crate) async fn edit(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    seq: Seq,
    client_id: Option<&str>,
    message: Message,
) -> Result<Arc<Entry>> {
    check_seq("seq", seq)?;
    validate_send(&state.config, client_id.unwrap_or("edit"), &message)?;
    let (facts, target) = readable_target(state, principal, room_id, seq).await?;
    if target.kind != EntryKind::Text || target.redacted {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "only a text message that was not redacted can be edited",
        ));
    }
    let own = !principal.service && target.sender == principal.user;
    if own {
        // A user's edit is a send in all but its place in the log.
        authorize(state, principal, room_id, Some(&facts), Action::Send).await?;
        crate::join::refuse_if_banned(state, room_id, &principal.user).await?;
    } else if !principal.service {
        // Another user's words: only where the policy says so, with none of
        // the engine's own grants (owner, moderators), which are about
        // running a room, not rewriting what people said.
        let request = PolicyRequest {
            principal,
            room_id,
            room: Some(&facts),
            action: Action::Edit,
        };
        if let Decision::Deny(err) = state.policy.decide(&request).await {
            return Err(err);
        }
    }
    if !principal.service {
        state.limits.send(&principal.user)?;
    }
    let entry = NewEntry::edit(
        room_id.clone(),
        principal.user.clone(),
        seq,
        client_id,
        message,
    );
    let stored = queue_unseated(state, entry, Closed::Refuse).await?.await?;
    // (The pending send checked the kind; an edit of another message under
    // the same client_id is no answer either.)
    if stored.target_seq != Some(seq) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "client_id was used for another entry",
        ));
    }
    Ok(stored)
}

/// Appends a `redaction` of the message (`text` or `system`) at `seq`,
/// erasing its body and data — and those of its edits — from storage: its
/// sender, a moderator (the policy's `moderate`; the owner and the room's
/// moderators always) or a service may. A redaction of a message redacted
/// before answers with the first redaction. Allowed in a closed room: an
/// erasure request must always be possible. Returns the `redaction` entry.
///
/// Errors: `INVALID_INPUT` (reason over 500 characters; the target is a
/// `join`, `leave`, `edit` or `redaction`), `RATE_LIMITED`,
/// `ROOM_NOT_FOUND`, `ENTRY_NOT_FOUND`, `FORBIDDEN`, storage errors.
pub(crate) async fn redact(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    seq: Seq,
    reason: Option<&str>,
) -> Result<Arc<Entry>> {
    check_seq("seq", seq)?;
    check_reason(reason)?;
    let (facts, target) = readable_target(state, principal, room_id, seq).await?;
    if !target.kind.is_message() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "only a message (text or system) can be redacted",
        ));
    }
    let own = !principal.service && target.sender == principal.user;
    if !own {
        match authorize(state, principal, room_id, Some(&facts), Action::Moderate).await {
            // The caller may read the room (checked above): a private
            // room's refusal need not hide it from them.
            Err(err) if err.kind() == ErrorKind::RoomNotFound => {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    "only the sender or a moderator may redact a message",
                ));
            }
            other => other?,
        }
    }
    if !principal.service {
        state.limits.send(&principal.user)?;
    }
    let entry = NewEntry::redaction(
        room_id.clone(),
        principal.user.clone(),
        seq,
        reason.map(str::to_owned),
    );
    queue_unseated(state, entry, Closed::Allow).await?.await
}

/// The room's facts and the stored entry at `seq`, for a caller who may
/// read the room.
///
/// Errors: `ROOM_NOT_FOUND` (absent, pending, or private and hidden), the
/// policy's refusal of `read`, `ENTRY_NOT_FOUND`, storage errors.
async fn readable_target(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    seq: Seq,
) -> Result<(StoredRoom, Entry)> {
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Read).await?;
    let range = SeqRange {
        after: Some(seq.saturating_sub(1)),
        before: Some(seq.saturating_add(1)),
        limit: 1,
    };
    let target = state
        .store
        .entries(room_id, range)
        .await?
        .into_iter()
        .find(|e| e.seq == seq)
        .ok_or(ErrorKind::EntryNotFound)?;
    Ok((facts, target))
}
