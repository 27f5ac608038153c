//! The room log's vocabulary: [`Entry`], [`EntryKind`], [`NewEntry`] and
//! [`SeqRange`].

use std::{fmt, time::SystemTime};

use uuid::Uuid;

use crate::ids::{RoomId, UserId};

/// A position in a room log. The first entry is 1; 0 means "before the first".
pub type Seq = u64;

/// The largest seq a request may name: 2^63 - 1. Stores keep seqs as signed
/// 64-bit integers (SQL `BIGINT`), so a larger number is refused as
/// `INVALID_INPUT` rather than wrapping to a negative bound.
pub const MAX_SEQ: Seq = i64::MAX as Seq;

/// `INVALID_INPUT` unless `seq` is in `0..=MAX_SEQ`; `name` says which
/// parameter it was (`after_seq`, …).
pub(crate) fn check_seq(name: &str, seq: Seq) -> crate::error::Result<()> {
    if seq > MAX_SEQ {
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::InvalidInput,
            format!("{name} must be between 0 and {MAX_SEQ}"),
        ));
    }
    Ok(())
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A message.
    Text,
    /// A user's seat was committed (reserved → joined).
    Join,
    /// A user's seat was freed after a join.
    Leave,
}

impl EntryKind {
    /// `text`, `join` or `leave`, as on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Text => "text",
            EntryKind::Join => "join",
            EntryKind::Leave => "leave",
        }
    }

    /// The inverse of [`EntryKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(EntryKind::Text),
            "join" => Some(EntryKind::Join),
            "leave" => Some(EntryKind::Leave),
            _ => None,
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Server time in milliseconds since the Unix epoch; printed as RFC 3339 UTC
/// with milliseconds. Clients order by `seq`, never by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The last millisecond RFC 3339 can write, 9999-12-31T23:59:59.999Z:
    /// later times (a token that "never" expires) are held at it.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// Now, by the server's wall clock.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339, UTC, milliseconds: `2026-11-21T10:00:00.123Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Clamped, so that formatting never fails (humantime refuses years
        // past 9999, and a `Display` error would panic in `to_string`).
        let ms = self.0.clamp(0, Timestamp::MAX.0) as u64;
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

/// One stored entry of a room log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The room.
    pub room_id: RoomId,
    /// Position in the room log: 1, 2, 3, … gap-free.
    pub seq: Seq,
    /// Server-made id.
    pub id: Uuid,
    /// What the entry records.
    pub kind: EntryKind,
    /// Who sent the message, or whose seat joined or left.
    pub sender: UserId,
    /// The sender's idempotency key (text only).
    pub client_id: Option<String>,
    /// The message (text only).
    pub body: Option<String>,
    /// Server time at append.
    pub created_at: Timestamp,
}

/// An entry on its way into the log: everything but the `seq`, which the
/// store assigns inside the append transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The room.
    pub room_id: RoomId,
    /// Server-made id (kept only if the entry is new).
    pub id: Uuid,
    /// What the entry records.
    pub kind: EntryKind,
    /// The sender, or the user who joined or left.
    pub sender: UserId,
    /// The idempotency key (text only).
    pub client_id: Option<String>,
    /// The message (text only).
    pub body: Option<String>,
    /// Server time at append.
    pub created_at: Timestamp,
}

impl NewEntry {
    /// A text entry.
    pub fn text(room_id: RoomId, sender: UserId, client_id: &str, body: &str) -> Self {
        NewEntry {
            room_id,
            id: Uuid::now_v7(),
            kind: EntryKind::Text,
            sender,
            client_id: Some(client_id.to_owned()),
            body: Some(body.to_owned()),
            created_at: Timestamp::now(),
        }
    }

    /// A `join` or `leave` entry.
    pub fn membership(room_id: RoomId, user: UserId, kind: EntryKind) -> Self {
        debug_assert_ne!(kind, EntryKind::Text);
        NewEntry {
            room_id,
            id: Uuid::now_v7(),
            kind,
            sender: user,
            client_id: None,
            body: None,
            created_at: Timestamp::now(),
        }
    }

    /// The stored entry this becomes at `seq`.
    pub fn at(self, seq: Seq) -> Entry {
        Entry {
            room_id: self.room_id,
            seq,
            id: self.id,
            kind: self.kind,
            sender: self.sender,
            client_id: self.client_id,
            body: self.body,
            created_at: self.created_at,
        }
    }
}

/// The most entries one history read returns.
pub const MAX_HISTORY_LIMIT: u32 = 500;
/// The page size when none is asked for.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// Which part of a log to read: `seq > after` and `seq < before`, at most
/// `limit` entries, always ascending. With `before` and no `after`, the
/// *last* `limit` entries below `before` (scrolling back); with neither, the
/// last `limit` entries of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// Exclusive lower bound.
    pub after: Option<Seq>,
    /// Exclusive upper bound.
    pub before: Option<Seq>,
    /// At most this many entries (1..=500).
    pub limit: u32,
}

impl SeqRange {
    /// Entries after `seq`, oldest first.
    pub fn after(seq: Seq, limit: u32) -> Self {
        SeqRange {
            after: Some(seq),
            before: None,
            limit,
        }
    }

    /// Whether the read starts from the newest end (`before` or nothing given).
    pub fn from_newest(&self) -> bool {
        self.after.is_none()
    }
}

impl Default for SeqRange {
    fn default() -> Self {
        SeqRange {
            after: None,
            before: None,
            limit: DEFAULT_HISTORY_LIMIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_rfc3339_utc_millis() {
        assert_eq!(
            Timestamp(1_700_000_000_123).to_string(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn kinds_round_trip() {
        for k in [EntryKind::Text, EntryKind::Join, EntryKind::Leave] {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntryKind::parse("TEXT"), None);
    }
}
