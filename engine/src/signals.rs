//! Signals (docs/contract.md §2, "Signals"): a joined member's momentary
//! message to the room's other live members — `typing`, `stopped_typing`
//! or an app's own `x-…` name — sent now as a [`Notice`], never stored,
//! without a `seq`, not in history, not replayed on resume. Matrix keeps
//! `m.typing` out of its log the same way; Socket.IO calls such messages
//! volatile.

use std::sync::Arc;

use crate::{
    append::check_data_within,
    authorization::authorize,
    entry::{Data, Timestamp},
    error::{Error, ErrorKind, Result},
    ids::RoomId,
    notice::{Notice, NoticeKind},
    ports::{Action, Principal},
    state::EngineState,
};

/// The largest `data` of a signal, in bytes of serialized JSON.
pub const MAX_SIGNAL_DATA_BYTES: usize = 256;

/// The longest signal name, in bytes.
pub const MAX_SIGNAL_NAME_BYTES: usize = 64;

/// The prefix of the names an app picks for itself.
pub const APP_SIGNAL_PREFIX: &str = "x-";

/// Sends `name` (with `data`) from the caller to `room_id`'s other live
/// members, on every node. Needs a joined seat, as a send does, and the
/// right to send there; has its own rate bucket.
///
/// Errors: `FORBIDDEN` for a service (it holds no seat) or a member who
/// may not send (muted by the policy); `INVALID_INPUT` for a name neither
/// configured nor `x-` followed by 1..=62 of `a-z 0-9 _ . -`;
/// `MESSAGE_TOO_LARGE` for data over 256 bytes; `RATE_LIMITED` (with the
/// wait); `NOT_A_MEMBER` without a joined seat; storage errors (a cluster
/// asks storage whether another node seats the caller).
pub(crate) async fn signal(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    name: &str,
    data: Option<Data>,
) -> Result<()> {
    if principal.service {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "a service holds no seat; signals come from members",
        ));
    }
    check_name(&state.config.signal_names, name)?;
    if let Some(data) = &data {
        check_data_within(data, MAX_SIGNAL_DATA_BYTES)?;
    }
    let user = &principal.user;
    state.limits.signal(user)?;
    let seated_here = state
        .directory
        .get(room_id)
        .map(|room| room.ledger().may_send(user));
    match seated_here {
        Some(Ok(())) => {}
        // Joined here, but the policy's refusal of `send` stands.
        Some(Err(err)) if err.kind() != ErrorKind::NotAMember => return Err(err),
        _ => {
            let room = state.seated_elsewhere(room_id, user).await?;
            let facts = room.as_stored();
            authorize(state, principal, room_id, Some(&facts), Action::Send).await?;
        }
    }
    let notice = Notice {
        room_id: room_id.clone(),
        sender: user.clone(),
        at: Timestamp::now(),
        kind: NoticeKind::Signal {
            name: name.to_owned(),
            data,
        },
    };
    state.bus.notify(Arc::new(notice)).await;
    Ok(())
}

/// `INVALID_INPUT` unless `name` is configured or an app's own `x-` name.
fn check_name(configured: &[String], name: &str) -> Result<()> {
    if configured.iter().any(|n| n == name) {
        return Ok(());
    }
    let own = name.strip_prefix(APP_SIGNAL_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && name.len() <= MAX_SIGNAL_NAME_BYTES
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    });
    if own {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "unknown signal name; use one of {configured:?} or an app's own \
                 `x-` name of a-z, 0-9, _ . - (at most {MAX_SIGNAL_NAME_BYTES} bytes)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_configured_or_the_apps_own() {
        let configured = vec!["typing".to_owned(), "stopped_typing".to_owned()];
        for ok in ["typing", "stopped_typing", "x-a", "x-reaction.pick_2-b"] {
            assert!(check_name(&configured, ok).is_ok(), "{ok}");
        }
        let long = format!("x-{}", "a".repeat(MAX_SIGNAL_NAME_BYTES - 1));
        for bad in [
            "",
            "x-",
            "Typing",
            "x-Up",
            "x-a b",
            "read",
            "x-é",
            long.as_str(),
        ] {
            let err = check_name(&configured, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        assert!(check_name(&configured, &long[..MAX_SIGNAL_NAME_BYTES]).is_ok());
    }
}
