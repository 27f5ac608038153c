//! The one error type of the engine boundary.
//!
//! Every failure a caller can see is an [`Error`] whose [`ErrorKind`] maps 1:1
//! to a docs/contract.md §7 code. The message is safe to show a client; the `source`
//! (a storage backend's error, say) is for logs only and never leaves the
//! server, which is why transports print `message()`, not `source()`.

use std::fmt;

/// What went wrong, as a client needs to know it. `code()` is the docs/contract.md §7
/// string; transports map kinds to HTTP statuses and close codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No, bad or expired token.
    Unauthenticated,
    /// The origin is not allowed.
    Forbidden,
    /// Malformed request: bad id, capacity, body, range.
    InvalidInput,
    /// No such room, and no `create` was given.
    RoomNotFound,
    /// Occupancy equals capacity.
    RoomFull,
    /// Another user's creation of this room is pending.
    RoomPending,
    /// Unknown, forged, used, or another user's ticket.
    TicketInvalid,
    /// The ticket's reservation expired.
    TicketExpired,
    /// No (joined) seat in the room.
    NotAMember,
    /// A body over `max_message_bytes`.
    MessageTooLarge,
    /// Over the per-user send rate.
    RateLimited,
    /// Storage unreachable or busy; retry (with the same `client_id`).
    Unavailable,
    /// The room was closed (`DELETE /v1/rooms/{id}`): no new seats, no
    /// messages; its history stays readable.
    RoomClosed,
    /// A moderator took the seat away: ends the user's live streams (they
    /// may reserve again unless banned).
    Kicked,
    /// No such entry to edit or redact: its seq is beyond the room's log or
    /// was pruned by retention.
    EntryNotFound,
    /// Ends a live stream that fell so far behind that entries it had not
    /// delivered yet were pruned by retention: join again with `after_seq`
    /// to learn `first_seq` (`resumed: false`).
    HistoryPruned,
    /// A bug.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of docs/contract.md §7's table: what a
    /// transport lists when it describes its errors (the OpenAPI document's
    /// `ErrorCode`). A new kind goes here as well as in the matches below.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::InvalidInput,
        ErrorKind::RoomNotFound,
        ErrorKind::RoomFull,
        ErrorKind::RoomPending,
        ErrorKind::TicketInvalid,
        ErrorKind::TicketExpired,
        ErrorKind::RoomClosed,
        ErrorKind::Kicked,
        ErrorKind::EntryNotFound,
        ErrorKind::HistoryPruned,
        ErrorKind::NotAMember,
        ErrorKind::MessageTooLarge,
        ErrorKind::RateLimited,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The docs/contract.md §7 code.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::Forbidden => "FORBIDDEN",
            ErrorKind::InvalidInput => "INVALID_INPUT",
            ErrorKind::RoomNotFound => "ROOM_NOT_FOUND",
            ErrorKind::RoomFull => "ROOM_FULL",
            ErrorKind::RoomPending => "ROOM_PENDING",
            ErrorKind::TicketInvalid => "TICKET_INVALID",
            ErrorKind::TicketExpired => "TICKET_EXPIRED",
            ErrorKind::NotAMember => "NOT_A_MEMBER",
            ErrorKind::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorKind::RateLimited => "RATE_LIMITED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::RoomClosed => "ROOM_CLOSED",
            ErrorKind::Kicked => "KICKED",
            ErrorKind::EntryNotFound => "ENTRY_NOT_FOUND",
            ErrorKind::HistoryPruned => "HISTORY_PRUNED",
            ErrorKind::Internal => "INTERNAL",
        }
    }

    /// The HTTP status that answers this code on every HTTP-speaking
    /// transport: part of the contract's table (docs/contract.md §7), so it
    /// lives beside [`code`](Self::code) as a plain number, and each
    /// transport turns it into its framework's status type.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden
            | ErrorKind::TicketInvalid
            | ErrorKind::NotAMember
            | ErrorKind::Kicked => 403,
            ErrorKind::InvalidInput => 400,
            ErrorKind::RoomNotFound | ErrorKind::EntryNotFound => 404,
            ErrorKind::RoomFull | ErrorKind::RoomPending => 409,
            ErrorKind::TicketExpired | ErrorKind::RoomClosed | ErrorKind::HistoryPruned => 410,
            ErrorKind::MessageTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// Whether the same request may succeed if retried later unchanged.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::RateLimited | ErrorKind::RoomPending
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An engine error: a kind, a client-safe message, and an optional internal
/// source kept for logs.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// For `RATE_LIMITED`: how long until the same request may succeed.
    retry_after: Option<std::time::Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a client-safe `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Storage could not be reached or was busy: temporary, retry.
    /// `source` goes to the logs, never to a client.
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::new(ErrorKind::Unavailable, "storage is unavailable, retry").with_source(source)
    }

    /// A bug or an unexpected backend answer. `source` goes to the logs only.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::new(ErrorKind::Internal, "internal error").with_source(source)
    }

    /// Attaches an internal cause, for logs.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Says when the same request may succeed (a `RATE_LIMITED` refusal).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// How long to wait before retrying, when the error says
    /// (`retry_after_ms` in error frames and bodies, `Retry-After` in whole
    /// seconds rounded up on HTTP 429, `extensions.retryAfterMs` on GraphQL).
    pub fn retry_after_duration(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The docs/contract.md §7 code.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The client-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a retry of the same request may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind.is_temporary()
    }

    /// Logs what the client must not see, and returns the message the client
    /// may: an `INTERNAL` error is logged in full (`error` level) under a
    /// fresh trace id and only that id goes out; an `UNAVAILABLE` one logs its
    /// backend cause (`warn`) and sends its own message; any other kind logs
    /// nothing and sends its message. Call it once per error sent.
    pub fn log_and_client_message(&self) -> String {
        match self.kind {
            ErrorKind::Internal => {
                let trace_id = format!("{:016x}", rand::random::<u64>());
                tracing::error!(%trace_id, error = ?self, "internal error");
                format!("internal error (trace id {trace_id})")
            }
            ErrorKind::Unavailable => {
                tracing::warn!(source = ?self.source, "storage unavailable");
                self.message.clone()
            }
            _ => self.message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        let message = match kind {
            ErrorKind::Unauthenticated => "authentication required",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::RoomNotFound => "no such room",
            ErrorKind::RoomFull => "the room is full",
            ErrorKind::RoomPending => "another user is creating this room",
            ErrorKind::TicketInvalid => "the ticket is not valid",
            ErrorKind::TicketExpired => "the ticket has expired",
            ErrorKind::NotAMember => "not a member of this room",
            ErrorKind::MessageTooLarge => "the message is too large",
            ErrorKind::RateLimited => "too many messages, slow down",
            ErrorKind::Unavailable => "storage is unavailable, retry",
            ErrorKind::RoomClosed => "this room was closed",
            ErrorKind::Kicked => "you were removed from this room",
            ErrorKind::EntryNotFound => "no such entry",
            ErrorKind::HistoryPruned => "entries you had not read were pruned; join again",
            ErrorKind::Internal => "internal error",
        };
        Error::new(kind, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_contract_and_sources_stay_internal() {
        let e = Error::unavailable(std::io::Error::other("db password=hunter2 refused"));
        assert_eq!(e.code(), "UNAVAILABLE");
        assert!(e.is_temporary());
        assert!(!e.message().contains("hunter2"));
        assert!(!e.to_string().contains("hunter2"));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            Error::from(ErrorKind::TicketExpired).code(),
            "TICKET_EXPIRED"
        );
        assert!(!ErrorKind::RoomFull.is_temporary());
        let bug = Error::internal(std::io::Error::other("table secret_table is gone"));
        let said = bug.log_and_client_message();
        assert!(said.starts_with("internal error (trace id ") && !said.contains("secret_table"));
    }

    #[test]
    fn all_lists_each_kind_once() {
        let codes: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        // The contract's table (docs/contract.md §7), row for row.
        let contract = include_str!("../../docs/contract.md");
        let table = &contract[contract.find("## 7 Error codes").unwrap()..];
        let table = &table[..table.find("\n## 8").unwrap()];
        for kind in ErrorKind::ALL {
            let row = format!("| `{}` | {} |", kind.code(), kind.http_status());
            assert!(table.contains(&row), "docs/contract.md §7 lacks `{row}`");
        }
        let rows = table.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            rows,
            ErrorKind::ALL.len(),
            "a §7 code missing from ErrorKind::ALL"
        );
    }
}
