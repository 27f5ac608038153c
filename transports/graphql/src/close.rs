//! Every close the GraphQL socket makes, with its code and reason. Codes
//! 44xx come from graphql-transport-ws's PROTOCOL.md
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>);
//! 1001/1013 from RFC 6455 §7.4.1 and the IANA registry. Every one of them
//! is a *lost* connection for the rooms (seats go to grace): only a client's
//! `complete`, its close with 1000, or `leaveRoom` is a leave.
//!
//! A reason travels in a control frame, whose payload is at most 125 bytes:
//! 2 for the code, so at most [`MAX_REASON`] for the reason (a longer one is
//! dropped by clients, which then see no reason at all).

use std::borrow::Cow;

/// Most bytes a close reason may have (RFC 6455 §5.5: 125-byte control
/// payloads, 2 of them the code).
pub(crate) const MAX_REASON: usize = 123;

/// A close the server makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: Cow<'static, str>,
}

impl Close {
    const fn of(code: u16, reason: &'static str) -> Close {
        Close {
            code,
            reason: Cow::Borrowed(reason),
        }
    }
}

/// A text that is not a valid message of the protocol, before or after init.
pub(crate) const INVALID_MESSAGE: Close = Close::of(4400, "Invalid message");
/// `subscribe` before `connection_ack`.
pub(crate) const UNAUTHORIZED: Close = Close::of(4401, "Unauthorized");
/// `connection_init` refused (no, bad or expired token).
pub(crate) const FORBIDDEN: Close = Close::of(4403, "Forbidden");
/// The token from `connection_init` expired on the live socket; reconnect
/// with a fresh one (and `joinRoom(afterSeq)`) within the grace.
pub(crate) const TOKEN_EXPIRED: Close = Close::of(4403, "Forbidden: token expired");
/// No `connection_init` within the init timeout.
pub(crate) const INIT_TIMEOUT: Close = Close::of(4408, "Connection initialisation timeout");
/// A second `connection_init`.
pub(crate) const TOO_MANY_INITS: Close = Close::of(4429, "Too many initialisation requests");
/// The client stayed unable to take frames (graphql-transport-ws owns 4409,
/// so Parlor's "too slow" is 1013 Try Again Later here).
pub(crate) const TOO_SLOW: Close = Close::of(1013, "too slow: resume with afterSeq");
/// Nothing arrived for `ping_interval + ping_timeout`.
pub(crate) const PING_TIMEOUT: Close = Close::of(1001, "ping timeout");
/// The server stops.
pub(crate) const SHUTDOWN: Close = Close::of(1001, "server shutting down");

/// Every fixed close, for the size check.
#[cfg(test)]
const ALL: &[Close] = &[
    INVALID_MESSAGE,
    UNAUTHORIZED,
    FORBIDDEN,
    TOKEN_EXPIRED,
    INIT_TIMEOUT,
    TOO_MANY_INITS,
    TOO_SLOW,
    PING_TIMEOUT,
    SHUTDOWN,
];

/// 4409 `Subscriber for <id> already exists`: a `subscribe` whose id is still
/// running. A long id is cut so that the reason still fits.
pub(crate) fn duplicate(id: &str) -> Close {
    Close {
        code: 4409,
        reason: Cow::Owned(fit(&format!("Subscriber for {id} already exists")).to_owned()),
    }
}

/// `reason` cut to at most [`MAX_REASON`] bytes, on a character boundary.
pub(crate) fn fit(reason: &str) -> &str {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_fits_a_control_frame() {
        for close in ALL {
            assert!(close.reason.len() <= MAX_REASON, "{close:?}");
        }
        assert_eq!(duplicate("s1").reason, "Subscriber for s1 already exists");
        assert_eq!(duplicate("s1").code, 4409);
        let long = duplicate(&"é".repeat(200));
        assert!(long.reason.len() <= MAX_REASON, "{}", long.reason.len());
        assert!(long.reason.starts_with("Subscriber for é"));
    }
}
