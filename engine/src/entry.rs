//! The room log's vocabulary: [`Entry`], [`EntryKind`], [`NewEntry`],
//! [`Message`] (what a sender writes: body and/or app data), [`SeqRange`]
//! and [`HistoryPage`].

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
    /// A message of the integrator's backend (a service key), which holds
    /// no seat: its `sender` is the key's name, never a user.
    System,
    /// A new body (and data) for the `text` entry at `target_seq`, written
    /// by its sender: the target reads back with it and `edited_at`.
    Edit,
    /// The erasure of the message at `target_seq`: its body and data (and
    /// those of its edits) are deleted from storage in the same transaction.
    Redaction,
}

impl EntryKind {
    /// Every kind.
    pub const ALL: [EntryKind; 6] = [
        EntryKind::Text,
        EntryKind::Join,
        EntryKind::Leave,
        EntryKind::System,
        EntryKind::Edit,
        EntryKind::Redaction,
    ];

    /// `text`, `join`, `leave`, `system`, `edit` or `redaction`, as on the
    /// wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Text => "text",
            EntryKind::Join => "join",
            EntryKind::Leave => "leave",
            EntryKind::System => "system",
            EntryKind::Edit => "edit",
            EntryKind::Redaction => "redaction",
        }
    }

    /// The inverse of [`EntryKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl EntryKind {
    /// Whether entries of this kind are messages (`text`, `system`): they
    /// carry a `client_id`, a body and data, and are idempotent by
    /// (room, sender, `client_id`).
    pub fn is_message(self) -> bool {
        matches!(self, EntryKind::Text | EntryKind::System)
    }

    /// Whether entries of this kind change an earlier entry (`edit`,
    /// `redaction`): they name it by `target_seq`, and are idempotent by
    /// (room, sender, `client_id`) when they carry one.
    pub fn is_amendment(self) -> bool {
        matches!(self, EntryKind::Edit | EntryKind::Redaction)
    }

    /// Whether entries of this kind record a seat (`join`, `leave`).
    pub fn is_membership(self) -> bool {
        matches!(self, EntryKind::Join | EntryKind::Leave)
    }

    /// Whether an entry of this kind counts as unread for a user who did
    /// not send it (`text`, `system`).
    pub fn counts_as_unread(self) -> bool {
        self.is_message()
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

    /// Reads an RFC 3339 date-time (`2026-11-21T10:00:00.123Z`, or with an
    /// offset such as `+02:00`; fractions optional), to the millisecond.
    /// `None` for anything else, or outside what [`Timestamp`] holds.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        Some(Timestamp(t.timestamp_millis()))
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
    /// The message (text; optional on system entries).
    pub body: Option<String>,
    /// What the app attached (text and system entries; a JSON object).
    pub data: Option<Data>,
    /// Why a seat was taken away (`leave` entries of a kick or a close:
    /// [`LeaveReason`]); `None` for an ordinary leave and every other kind.
    pub reason: Option<LeaveReason>,
    /// The entry an `edit` or a `redaction` changes; `None` for other kinds.
    pub target_seq: Option<Seq>,
    /// The moderator's or sender's note on a `redaction` (at most 500
    /// characters; `reason` on the wire); `None` for other kinds.
    pub redaction_reason: Option<String>,
    /// When the message was last edited (a `text` entry with an `edit` after
    /// it); its `body` and `data` are the edit's.
    pub edited_at: Option<Timestamp>,
    /// Whether the message (or, for an `edit`, its target) was redacted: its
    /// `body` and `data` are erased, in storage too.
    pub redacted: bool,
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
    /// The message (text; optional on system entries).
    pub body: Option<String>,
    /// What the app attached (text and system entries).
    pub data: Option<Data>,
    /// Why a seat was taken away (`leave` only).
    pub reason: Option<LeaveReason>,
    /// The entry an `edit` or `redaction` changes.
    pub target_seq: Option<Seq>,
    /// A `redaction`'s note.
    pub redaction_reason: Option<String>,
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
            data: None,
            reason: None,
            target_seq: None,
            redaction_reason: None,
            created_at: Timestamp::now(),
        }
    }

    /// A message: a `text` entry of a user, or a `system` entry of a service
    /// (`kind`), with the message's body and data.
    pub fn message(
        room_id: RoomId,
        kind: EntryKind,
        sender: UserId,
        client_id: &str,
        message: Message,
    ) -> Self {
        debug_assert!(kind.is_message());
        NewEntry {
            room_id,
            id: Uuid::now_v7(),
            kind,
            sender,
            client_id: Some(client_id.to_owned()),
            body: message.body,
            data: message.data,
            reason: None,
            target_seq: None,
            redaction_reason: None,
            created_at: Timestamp::now(),
        }
    }

    /// An `edit` of the `text` entry at `target` by its sender: the new
    /// body and data. `client_id` makes it idempotent (one is made when the
    /// caller gave none).
    pub fn edit(
        room_id: RoomId,
        sender: UserId,
        target: Seq,
        client_id: Option<&str>,
        message: Message,
    ) -> Self {
        let id = Uuid::now_v7();
        NewEntry {
            room_id,
            id,
            kind: EntryKind::Edit,
            sender,
            client_id: Some(client_id.map_or_else(|| id.to_string(), str::to_owned)),
            body: message.body,
            data: message.data,
            reason: None,
            target_seq: Some(target),
            redaction_reason: None,
            created_at: Timestamp::now(),
        }
    }

    /// A `redaction` of the message at `target` by `sender` (its sender, a
    /// moderator or a service), with an optional note.
    pub fn redaction(room_id: RoomId, sender: UserId, target: Seq, reason: Option<String>) -> Self {
        NewEntry {
            room_id,
            id: Uuid::now_v7(),
            kind: EntryKind::Redaction,
            sender,
            client_id: None,
            body: None,
            data: None,
            reason: None,
            target_seq: Some(target),
            redaction_reason: reason,
            created_at: Timestamp::now(),
        }
    }

    /// This `leave` entry, saying why the seat was taken away.
    pub fn because(mut self, reason: LeaveReason) -> Self {
        debug_assert_eq!(self.kind, EntryKind::Leave);
        self.reason = Some(reason);
        self
    }

    /// A `join` or `leave` entry.
    pub fn membership(room_id: RoomId, user: UserId, kind: EntryKind) -> Self {
        debug_assert!(!kind.is_message());
        NewEntry {
            room_id,
            id: Uuid::now_v7(),
            kind,
            sender: user,
            client_id: None,
            body: None,
            data: None,
            reason: None,
            target_seq: None,
            redaction_reason: None,
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
            data: self.data,
            reason: self.reason,
            target_seq: self.target_seq,
            redaction_reason: self.redaction_reason,
            edited_at: None,
            redacted: false,
            created_at: self.created_at,
        }
    }
}

/// What an app attaches to a message: a JSON object, at most
/// `EngineConfig::max_data_bytes` (4096 by default) serialized.
pub type Data = serde_json::Map<String, serde_json::Value>;

/// What a sender writes: a `body`, `data` or both (a user's becomes a
/// `text` entry, a service's a `system` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The text, 1..=`max_message_bytes` bytes of UTF-8.
    pub body: Option<String>,
    /// The app's JSON object.
    pub data: Option<Data>,
}

impl Message {
    /// A message of `body` alone.
    pub fn text(body: impl Into<String>) -> Self {
        Message {
            body: Some(body.into()),
            data: None,
        }
    }

    /// This message with `data` attached.
    pub fn with_data(mut self, data: Data) -> Self {
        self.data = Some(data);
        self
    }
}

/// Why a seat was taken away from its user, carried by the `leave` entry
/// and by the end of the user's streams (docs/contract.md §2, "Moderation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    /// A moderator (or the service) kicked or banned the user.
    Kicked,
    /// The room was closed.
    RoomClosed,
}

impl LeaveReason {
    /// `kicked` or `room_closed`, as on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Kicked => "kicked",
            LeaveReason::RoomClosed => "room_closed",
        }
    }

    /// The inverse of [`LeaveReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "kicked" => Some(LeaveReason::Kicked),
            "room_closed" => Some(LeaveReason::RoomClosed),
            _ => None,
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

/// One page of a room's history (`GET /v1/rooms/{id}/messages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The entries, ascending by seq; a message shows its latest edit and
    /// a redacted one neither body nor data.
    pub entries: Vec<Entry>,
    /// The oldest seq the room still stores (retention prunes below it;
    /// `last_seq + 1` when it stores none). A read from before it starts
    /// at it: the entries below are gone.
    pub first_seq: Seq,
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
    fn rfc3339_reads_what_it_prints() {
        for t in [Timestamp(0), Timestamp(1_700_000_000_123), Timestamp::MAX] {
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(Timestamp(1_700_000_000_000)),
            "offsets are read"
        );
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59Z"),
            Some(Timestamp(-1_000))
        );
        for bad in ["", "2023-11-14", "2023-11-14T22:13:20", "tomorrow"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntryKind::parse("TEXT"), None);
    }
}
