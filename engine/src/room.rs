//! What a room is, outside its seats: [`RoomSpec`] (asked for at creation),
//! [`StoredRoom`] (what storage keeps), [`RoomInfo`] (what clients see) and
//! [`Retention`] (how much of its log is kept).

use std::time::Duration;

use crate::{
    entry::{Seq, Timestamp},
    error::{Error, ErrorKind},
    ids::{RoomId, UserId},
};

/// The most characters a room title may have.
pub const MAX_TITLE_CHARS: usize = 200;

/// What a creator asks for: a capacity, an optional title, and whether the
/// room is private (docs/contract.md §2: to anyone its policy does not
/// admit, a private room does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSpec {
    /// 1..=`max_capacity` seats.
    pub capacity: u32,
    /// At most 200 characters.
    pub title: Option<String>,
    /// Private: admits its owner, users the room policy allows, and users a
    /// moderator invited.
    pub private: bool,
}

impl RoomSpec {
    /// A public spec with `capacity` seats and no title.
    pub fn with_capacity(capacity: u32) -> Self {
        RoomSpec {
            capacity,
            title: None,
            private: false,
        }
    }

    /// The same spec, private.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    pub(crate) fn validate(&self, max_capacity: u32) -> Result<(), Error> {
        if !(1..=max_capacity).contains(&self.capacity) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("capacity must be between 1 and {max_capacity}"),
            ));
        }
        if let Some(title) = &self.title
            && title.chars().count() > MAX_TITLE_CHARS
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("title must be at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        Ok(())
    }
}

/// A room as storage keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room.
    pub id: RoomId,
    /// Its seats.
    pub capacity: u32,
    /// Its title.
    pub title: Option<String>,
    /// The seq of its newest entry; 0 for an empty log.
    pub last_seq: Seq,
    /// The user who created it (its first moderator); `None` for a room
    /// stored before rooms had owners.
    pub owner: Option<UserId>,
    /// Whether it is private.
    pub private: bool,
    /// Whether it was closed (`DELETE /v1/rooms/{id}` without `purge`): it
    /// takes no seats and no messages; its history stays readable.
    pub closed: bool,
    /// The oldest seq still stored: 1 until retention prunes, `last_seq + 1`
    /// when every entry was pruned. Seqs below it are never used again.
    pub first_seq: Seq,
    /// This room's own retention, replacing the server's; `None` follows
    /// the server's (`EngineConfig::retention`).
    pub retention: Option<Retention>,
}

impl StoredRoom {
    /// A new room's row: an empty log (`last_seq` 0, `first_seq` 1), open,
    /// following the server's retention.
    pub fn new(id: RoomId, capacity: u32) -> Self {
        StoredRoom {
            id,
            capacity,
            title: None,
            last_seq: 0,
            owner: None,
            private: false,
            closed: false,
            first_seq: 1,
            retention: None,
        }
    }
}

/// How much of a room's log is kept (docs/contract.md §2, "Retention"):
/// entries beyond either bound are pruned by a background task, oldest
/// first. Neither bound: everything is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Retention {
    /// Keep at most this many newest entries (1..=2^63-1).
    pub max_entries: Option<u64>,
    /// Keep entries younger than this (at least 1 s).
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Whether this keeps everything (no bound).
    pub fn keeps_everything(&self) -> bool {
        self.max_entries.is_none() && self.max_age.is_none()
    }

    /// `INVALID_INPUT` for `max_entries` 0 or over 2^63-1, or a `max_age`
    /// under one second. (A very long age is kept as given; times computed
    /// from it saturate, so it prunes nothing.)
    pub fn validate(&self) -> Result<(), Error> {
        if self
            .max_entries
            .is_some_and(|n| n == 0 || n > crate::entry::MAX_SEQ)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "retention max_entries must be at least 1",
            ));
        }
        if self.max_age.is_some_and(|a| a < Duration::from_secs(1)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "retention max_age must be at least 1s",
            ));
        }
        Ok(())
    }
}

/// A room as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room.
    pub room_id: RoomId,
    /// Its title.
    pub title: Option<String>,
    /// Its seats.
    pub capacity: u32,
    /// Seats held in any state (reserved, joined, grace).
    pub occupancy: u32,
    /// The seq of its newest entry.
    pub last_seq: Seq,
    /// Whether it is private.
    pub private: bool,
    /// Whether it was closed.
    pub closed: bool,
    /// The oldest seq still stored (see [`StoredRoom::first_seq`]).
    pub first_seq: Seq,
    /// Its own retention, if it has one (else the server's applies).
    pub retention: Option<Retention>,
    /// The caller's read marker and unread count, for a user (not a
    /// service); `None` otherwise.
    pub read: Option<ReadState>,
    /// Whether the caller may moderate the room (kick, ban, redact
    /// others' messages: the policy's `moderate`), in one room's facts;
    /// `None` in a listing (not asked per room).
    pub can_moderate: Option<bool>,
}

/// A user's read state in a room (docs/contract.md §2, "Read markers").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReadState {
    /// The seq the user marked read last (0: never).
    pub last_read_seq: Seq,
    /// Stored `text` and `system` entries after it that others sent and
    /// that are not redacted.
    pub unread: u64,
}

/// A change of a stored room's facts (`PATCH /v1/rooms/{id}`): each field
/// given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPatch {
    /// A new title (`Some(None)` clears it).
    pub title: Option<Option<String>>,
    /// A new capacity, 1..=`max_capacity`. Lowering it below the occupancy
    /// evicts no one: new seats are refused until occupancy falls under it.
    pub capacity: Option<u32>,
    /// A retention of its own (`Some(Some(_))`), or back to the server's
    /// (`Some(None)`).
    pub retention: Option<Option<Retention>>,
}

impl RoomPatch {
    pub(crate) fn validate(&self, max_capacity: u32) -> Result<(), Error> {
        let spec = RoomSpec {
            capacity: self.capacity.unwrap_or(1),
            title: self.title.clone().flatten(),
            private: false,
        };
        spec.validate(max_capacity)?;
        if let Some(Some(retention)) = &self.retention {
            retention.validate()?;
        }
        Ok(())
    }

    /// `room` with this patch applied.
    pub fn apply(&self, mut room: StoredRoom) -> StoredRoom {
        if let Some(title) = &self.title {
            room.title = title.clone();
        }
        if let Some(capacity) = self.capacity {
            room.capacity = capacity;
        }
        if let Some(retention) = self.retention {
            room.retention = retention;
        }
        room
    }
}

/// One page of the room listing (`GET /v1/rooms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomQuery<'a> {
    /// Only ids starting with this ("" for all).
    pub prefix: &'a str,
    /// Only ids after this one (the previous page's `next`).
    pub after: Option<&'a RoomId>,
    /// At most this many rooms, 1..=[`MAX_ROOM_PAGE`].
    pub limit: u32,
}

/// The most rooms one listing page returns.
pub const MAX_ROOM_PAGE: u32 = 500;
/// A listing page's size when none is asked for.
pub const DEFAULT_ROOM_PAGE: u32 = 100;

/// A page of rooms, ordered by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPage {
    /// The rooms the caller may see, ascending by id.
    pub rooms: Vec<RoomInfo>,
    /// Where the next page starts (pass it as `after`); `None` at the end.
    pub next: Option<RoomId>,
}

/// A seat's state as presence shows it (docs/contract.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// A ticket was issued and not used yet (shown to the service only).
    Reserved,
    /// At least one live connection holds it.
    Joined,
    /// Its last connection was lost; the seat waits out the grace period.
    Grace,
}

impl MemberState {
    /// `reserved`, `joined` or `grace`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Reserved => "reserved",
            MemberState::Joined => "joined",
            MemberState::Grace => "grace",
        }
    }
}

/// One seat of a room's presence list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Whose seat.
    pub user_id: UserId,
    /// Its state.
    pub state: MemberState,
    /// When it entered that state (server clock).
    pub since: Timestamp,
}

/// A ban of a user from a room (`PUT /v1/rooms/{id}/bans/{user}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// When it lapses (`None`: never).
    pub until: Option<Timestamp>,
    /// The moderator's note, at most [`MAX_REASON_CHARS`] characters.
    pub reason: Option<String>,
}

impl Ban {
    /// Whether the ban still holds at `now`.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// The longest moderator's note (a kick's or a ban's `reason`).
pub const MAX_REASON_CHARS: usize = 500;

/// `INVALID_INPUT` unless a moderator's note fits [`MAX_REASON_CHARS`].
pub(crate) fn check_reason(reason: Option<&str>) -> Result<(), Error> {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("reason must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(())
}
